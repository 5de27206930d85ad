import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { grpcServiceDefinition, protoDir, protoRoot, protoType, ProtoLoadError } from './proto.js';

describe('proto loading', () => {
  it('finds proto/ from this module and loads every file once', () => {
    expect(existsSync(join(protoDir(), 'peer.proto'))).toBe(true);
    expect(protoRoot()).toBe(protoRoot());
    expect(() => protoType('raftbus.peer.v1.NoSuchMessage')).toThrow(ProtoLoadError);
  });

  it('builds a grpc-js service definition that serializes with protobufjs', () => {
    const definition = grpcServiceDefinition('raftbus.peer.v1.Peer');
    const stream = definition['Stream']!;
    expect(stream).toMatchObject({ path: '/raftbus.peer.v1.Peer/Stream', requestStream: true, responseStream: true, originalName: 'stream' });
    const bytes = stream.requestSerialize({ hello: { clusterId: 'c', from: 1, to: 2, protocolVersion: 1 } });
    expect(stream.requestDeserialize(bytes)).toMatchObject({ kind: 'hello', hello: { clusterId: 'c', from: '1', to: '2' } });
  });

  it('passes bytes through with the raw codec', () => {
    const stream = grpcServiceDefinition('raftbus.peer.v1.Peer', { kind: 'raw' })['Stream']!;
    const bytes = Buffer.from([1, 2, 3]);
    expect(stream.requestDeserialize(stream.requestSerialize(bytes))).toEqual(bytes);
  });
});
