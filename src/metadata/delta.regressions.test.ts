// Regressions: defects found in the metadata model and its codec, now fixed (a delta reused after
// apply() changed the image it returned; decoded no-op payloads shared the entry's buffer).
import { describe, expect, it } from 'vitest';
import { decodeRecordBatch, encodeRecordBatch } from '../rpc/metadata-codec.js';
import { MetadataDelta } from './delta.js';
import { MetadataImage } from './image.js';
import type { MetadataRecord } from './records.js';

const register = (brokerId: number, brokerEpoch: number): MetadataRecord => ({
  type: 'registerBroker',
  brokerId,
  incarnationId: `incarnation-${brokerId}`,
  endpoint: { host: `broker-${brokerId}`, port: 9092 },
  rack: '',
  brokerEpoch,
});

// MetadataImage says "Immutable". MetadataDelta.apply() hands the image the delta's own working maps;
// a replay on the same delta after apply() writes into them, changing the image already returned.
// MetadataStateMachine makes a new delta for each apply(), so the node does not hit this today; any
// caller that publishes an intermediate image (e.g. per entry) and keeps replaying would.
describe('regression: an image returned by MetadataDelta.apply() changes when the delta replays more', () => {
  it('keeps the first image as it was', () => {
    const delta = new MetadataDelta(MetadataImage.empty);
    delta.replay(register(1, 1), 1);
    const first = delta.apply();
    delta.replay(register(2, 2), 2);
    delta.replay({ type: 'fenceBroker', brokerId: 1, brokerEpoch: 1 }, 2);
    delta.replay({ type: 'topic', name: 'orders', topicId: 'orders-id', requestId: 'create-orders' }, 2);
    const second = delta.apply();

    expect(second.brokers.size).toBe(2);
    // Actual: first.brokers is the same Map as second.brokers (size 2), and so on for topics and requests.
    expect(first.offset).toBe(1);
    expect([...first.brokers.keys()]).toEqual([1]);
    expect(first.topics.size).toBe(0);
    expect(first.topicIds.size).toBe(0);
    expect(first.requests.size).toBe(0);
  });
});

// metadata-codec.ts asks protobufjs for `bytes: Uint8Array`, an option protobufjs does not know (it
// knows String and Array); it returns the reader's slice: a Node Buffer over the memory of the
// encoded entry. So a decoded noOp payload is not the plain Uint8Array that was encoded (vitest's
// toEqual tells them apart), and it changes when the entry's bytes are reused. No replay reads a
// noOp payload today, so only exact round-trip comparisons see it.
describe('regression: decoded bytes are a Buffer sharing the encoded entry memory', () => {
  it('decodes a payload equal to the one encoded, owning its bytes', () => {
    const records: MetadataRecord[] = [{ type: 'noOp', payload: new Uint8Array([1, 2, 3]) }];
    const bytes = encodeRecordBatch(records);
    const decoded = decodeRecordBatch(bytes);
    bytes.fill(0); // the entry buffer is reused
    // Actual: payload is Buffer [0, 0, 0] (and a Buffer [1, 2, 3] before the fill).
    expect(decoded).toEqual(records);
  });
});
