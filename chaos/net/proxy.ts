// FaultProxy listens on a loopback port and forwards every connection to one target (a node's peer
// or client port) through two Pipes: downstream to upstream goes the proxy's forward Direction, the
// answers go its reverse Direction. Its connection to the target is opened only while the forward
// direction is not cut (behind a partition the SYN does not arrive either): until then the accepted
// connection waits, holding what it is sent. close() resets every connection and closes the server.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Direction, Waker } from './direction.js';
import { Pipe, resetSocket } from './pipe.js';

/** proxyConnectionsMax bounds the connections one proxy carries at once; more are reset on accept. */
export const proxyConnectionsMax = 1024;
/** proxyListenAttemptsMax bounds how often listen() draws a port again when it draws a reserved one. */
export const proxyListenAttemptsMax = 16;

export interface FaultProxyOptions {
  /** host is the loopback address the proxy listens on. */
  readonly host: string;
  readonly target: { readonly host: string; readonly port: number };
  readonly forward: Direction;
  readonly reverse: Direction;
  readonly random: () => number;
  /** reservedPorts are ports the proxy must not take (the nodes' own ports, not yet bound). */
  readonly reservedPorts: ReadonlySet<number>;
}

export class FaultProxy {
  private readonly connections = new Set<ProxyConnection>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly options: FaultProxyOptions,
  ) {
    server.on('connection', (socket) => this.accept(socket));
    // An accept that fails (EMFILE) fails the client's connect; the proxy keeps serving the others.
    server.on('error', () => {});
  }

  /** listen starts a proxy on a free port of options.host. Throws the listen error. */
  static async listen(options: FaultProxyOptions): Promise<FaultProxy> {
    const drawn: Server[] = [];
    try {
      for (let attempt = 0; attempt < proxyListenAttemptsMax; attempt++) {
        const server = createServer({ allowHalfOpen: true });
        const port = await listenOn(server, options.host);
        if (!options.reservedPorts.has(port)) return new FaultProxy(server, port, options);
        drawn.push(server);
      }
      throw new Error(`no free port outside the cluster's own ports after ${proxyListenAttemptsMax} attempts`);
    } finally {
      await Promise.all(drawn.map((server) => closeServer(server)));
    }
  }

  /** close resets every connection and stops listening; it resolves once the server is closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = closeServer(this.server);
      for (const connection of [...this.connections]) connection.destroy();
      await closed;
    })();
    return this.closing;
  }

  private accept(downstream: Socket): void {
    if (this.closing !== undefined || this.connections.size >= proxyConnectionsMax) {
      downstream.on('error', () => {});
      resetSocket(downstream);
      return;
    }
    const connection = new ProxyConnection(downstream, this.options, () => this.connections.delete(connection));
    this.connections.add(connection);
  }
}

/**
 * ProxyConnection is one accepted connection and, once its forward direction lets the SYN through,
 * its connection to the target. It is gone (onGone) when both of its sockets are closed.
 */
class ProxyConnection implements Waker {
  private readonly forward: Pipe;
  private reverse: Pipe | undefined;
  private upstream: Socket | undefined;
  private gone = false;

  constructor(
    private readonly downstream: Socket,
    private readonly options: FaultProxyOptions,
    private readonly onGone: () => void,
  ) {
    const onInjectedReset = (): void => this.destroy();
    this.forward = new Pipe({ direction: options.forward, source: downstream, random: options.random, onInjectedReset });
    downstream.on('data', (chunk: Buffer) => this.forward.acceptData(chunk));
    downstream.on('end', () => this.forward.acceptEnd());
    downstream.on('error', () => this.forward.acceptReset());
    downstream.on('close', () => this.closeIfDone());
    options.forward.register(this);
    this.wake();
  }

  /** wake opens the connection to the target once the forward direction is not cut. */
  wake(): void {
    if (this.gone || this.upstream !== undefined || this.options.forward.faults.cut) return;
    this.options.forward.unregister(this);
    const upstream = connect({ host: this.options.target.host, port: this.options.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    const reverse = new Pipe({ direction: this.options.reverse, source: upstream, random: this.options.random, onInjectedReset: () => this.destroy() });
    this.reverse = reverse;
    reverse.connect(this.downstream);
    upstream.on('connect', () => this.forward.connect(upstream));
    upstream.on('data', (chunk: Buffer) => reverse.acceptData(chunk));
    upstream.on('end', () => reverse.acceptEnd());
    upstream.on('error', () => reverse.acceptReset());
    upstream.on('close', () => this.closeIfDone());
  }

  /** destroy resets both sockets at once (an injected loss, or the proxy closing). */
  destroy(): void {
    if (this.gone) return;
    resetSocket(this.downstream);
    if (this.upstream !== undefined) resetSocket(this.upstream);
    this.finish();
  }

  private closeIfDone(): void {
    if (this.gone || !this.downstream.destroyed) return;
    // With no upstream yet, the client gave up while its SYN was held: nothing ever reached the target.
    if (this.upstream !== undefined && !this.upstream.destroyed) return;
    this.finish();
  }

  private finish(): void {
    this.gone = true;
    this.options.forward.unregister(this);
    this.forward.close();
    this.reverse?.close();
    this.onGone();
  }
}

function listenOn(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (typeof address === 'object' && address !== null) resolve(address.port);
      else reject(new Error(`listening on ${host} gave no port`));
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
