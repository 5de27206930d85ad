// Stopping a grpc-js server so that it lets the process exit.
import type * as grpc from '@grpc/grpc-js';

/**
 * stopServer stops taking calls, lets those running finish for up to graceMs, then cancels the
 * rest and closes every connection. It resolves once the server is closed or graceMs has passed.
 *
 * grpc-js 1.14's forceShutdown destroys only the connections channelz tracks, and raftbus's
 * servers run without channelz: after it, a client holding a stream (or a peer that connected
 * while the node closed) kept its connection, and the process did not exit until that client
 * left. drain closes the connections itself, so forceShutdown here only stops the listeners.
 * address is where the server was bound, with its real port (drain refuses port 0).
 */
export function stopServer(server: grpc.Server, address: string, graceMs: number): Promise<void> {
  server.drain(address, graceMs);
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs + 50);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
