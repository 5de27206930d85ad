// How CLI commands find the cluster: --bootstrap-server host:port[,host:port], else every node
// of the cluster file (default cluster.example.json).
import { Admin } from '../client/admin.js';
import { ClusterFileError, formatIssue, loadClusterFile, type LoadedClusterFile } from '../node/cluster-file.js';

export interface ConnectOptions {
  readonly bootstrapServer?: string;
  readonly cluster: string;
}

/** CliError: a message for the person at the terminal, and the exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** loadCluster loads a cluster file for a command; a bad file becomes a CliError (exit code 2). */
export async function loadCluster(path: string): Promise<LoadedClusterFile> {
  try {
    const loaded = await loadClusterFile(path);
    for (const warning of loaded.warnings) console.error(`warning: ${formatIssue(warning)}`);
    return loaded;
  } catch (error) {
    if (error instanceof ClusterFileError) throw new CliError(error.message, 2);
    throw error;
  }
}

export async function bootstrapAddresses(options: ConnectOptions): Promise<string[]> {
  if (options.bootstrapServer !== undefined) {
    const addresses = options.bootstrapServer.split(',').map((address) => address.trim()).filter((address) => address.length > 0);
    const bad = addresses.find((address) => !/^[^:\s]+:\d{1,5}$/.test(address));
    if (addresses.length === 0 || bad !== undefined) throw new CliError(`--bootstrap-server: '${bad ?? options.bootstrapServer}' is not host:port (e.g. 127.0.0.1:9091)`, 2);
    return addresses;
  }
  try {
    const loaded = await loadCluster(options.cluster);
    return loaded.cluster.nodes.map((node) => `${node.host}:${node.clientPort}`);
  } catch (error) {
    if (error instanceof CliError) throw new CliError(`${error.message}\n(or name a node with --bootstrap-server host:port)`, 2);
    throw error;
  }
}

export async function connectAdmin(options: ConnectOptions): Promise<Admin> {
  return new Admin({ bootstrap: await bootstrapAddresses(options), retryForMs: 15_000 });
}
