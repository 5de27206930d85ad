// freePorts asks the OS for loopback ports that are free right now (for clusters on ports of their own).
import { createServer, type Server } from 'node:net';

/**
 * freePorts returns count distinct free ports. Every listener stays open until all have their
 * port: a port asked for and closed one at a time can come back on the next ask, and two nodes
 * of a cluster file would then share it.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            if (typeof address === 'object' && address !== null) resolve(address.port);
            else reject(new Error('no free port'));
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
  }
}

/** nodePorts returns a distinct peer port and client port for each of count nodes. */
export async function nodePorts(count: number): Promise<{ peerPort: number; clientPort: number }[]> {
  const ports = await freePorts(2 * count);
  return Array.from({ length: count }, (_, i) => ({ peerPort: ports[2 * i]!, clientPort: ports[2 * i + 1]! }));
}
