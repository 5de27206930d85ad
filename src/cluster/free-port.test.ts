import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePorts, nodePorts } from './free-port.js';

describe('freePorts', () => {
  it('gives distinct ports, all free again once it returns', async () => {
    const ports = await freePorts(40);
    expect(ports).toHaveLength(40);
    expect(new Set(ports).size).toBe(40);
    for (const port of ports) {
      expect(port).toBeGreaterThan(0);
      expect(port).toBeLessThanOrEqual(65_535);
    }
    // Every listener was closed: each port can be bound by a node now.
    for (const port of ports.slice(0, 5)) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('gives every node of a cluster its own peer and client port', async () => {
    const nodes = await nodePorts(3);
    expect(nodes).toHaveLength(3);
    expect(new Set(nodes.flatMap((node) => [node.peerPort, node.clientPort])).size).toBe(6);
  });
});
