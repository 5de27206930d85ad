// The Controller gRPC service (proto/controller.proto): broker registration and heartbeats.
import type * as grpc from '@grpc/grpc-js';
import type { BrokerHeartbeatRequest, BrokerHeartbeatResponse, RegisterBrokerRequest } from '../controller/operations.js';
import { grpcServiceDefinition } from './proto.js';
import { InvalidRequestError } from '../errors.js';
import { UnaryClient, answer, clientConversion } from './unary.js';

export const controllerServiceName = 'raftbus.controller.v1.Controller';

/** ControllerBackend is what the service needs from a controller node. */
export interface ControllerBackend {
  registerBroker(request: RegisterBrokerRequest): Promise<{ brokerEpoch: number }>;
  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse>;
}

interface RegisterMessage {
  brokerId: number;
  incarnationId: string;
  host: string;
  port: number;
  rack: string;
}

const incarnationIdCharsMax = 64;
const hostCharsMax = 253;

export function registerControllerService(server: grpc.Server, backend: ControllerBackend): void {
  server.addService(grpcServiceDefinition(controllerServiceName, { kind: 'protobuf', conversion: clientConversion }), {
    RegisterBroker: answer((request: RegisterMessage) => {
      if (request.brokerId <= 0) throw InvalidRequestError.of('brokerId', 'must be a positive node id');
      if (request.incarnationId.length === 0 || request.incarnationId.length > incarnationIdCharsMax) {
        throw InvalidRequestError.of('incarnationId', `must have 1 to ${incarnationIdCharsMax} characters`);
      }
      if (request.host.length === 0 || request.host.length > hostCharsMax) throw InvalidRequestError.of('host', `must have 1 to ${hostCharsMax} characters`);
      return backend.registerBroker({
        brokerId: request.brokerId,
        incarnationId: request.incarnationId,
        endpoint: { host: request.host, port: request.port },
        rack: request.rack === '' ? undefined : request.rack,
      });
    }),
    BrokerHeartbeat: answer((request: BrokerHeartbeatRequest) => backend.brokerHeartbeat(request)),
  });
}

/** ControllerClient calls the Controller service of one node. */
export class ControllerClient {
  private readonly client: UnaryClient;

  constructor(readonly address: string, deadlineMs: number) {
    this.client = new UnaryClient(address, controllerServiceName, deadlineMs);
  }

  registerBroker(request: RegisterBrokerRequest): Promise<{ brokerEpoch: number }> {
    return this.client.call('RegisterBroker', { brokerId: request.brokerId, incarnationId: request.incarnationId, host: request.endpoint.host, port: request.endpoint.port, rack: request.rack ?? '' });
  }

  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    return this.client.call('BrokerHeartbeat', request);
  }

  close(): void {
    this.client.close();
  }
}
