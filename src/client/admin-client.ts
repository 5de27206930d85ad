// AdminClient speaks the Admin service of one node over gRPC.
import { adminServiceName, type MetadataLogPage, type QuorumDescription } from '../rpc/admin-service.js';
import { UnaryClient } from '../rpc/unary.js';

export interface AdminClientOptions {
  /** deadlineMs bounds every call; default 5 s. */
  readonly deadlineMs?: number;
}

export class AdminClient {
  private readonly client: UnaryClient;

  constructor(
    readonly address: string,
    options: AdminClientOptions = {},
  ) {
    this.client = new UnaryClient(address, adminServiceName, options.deadlineMs ?? 5000);
  }

  /** call invokes any Admin method by name (the SDK's Admin builds on this). */
  call<T>(method: string, request: object): Promise<T> {
    return this.client.call(method, request);
  }

  describeQuorum(): Promise<QuorumDescription> {
    return this.call('DescribeQuorum', {});
  }

  appendNoOp(payload: Uint8Array): Promise<{ index: number; term: number }> {
    return this.call('AppendNoOp', { payload });
  }

  readMetadataLog(options: { fromIndex: number; maxEntries: number }): Promise<MetadataLogPage> {
    return this.call('ReadMetadataLog', options);
  }

  close(): void {
    this.client.close();
  }
}
