// A Pipe carries one half of a proxied TCP connection (downstream to upstream, or back) and applies
// the faults of its Direction to it. What the source sends becomes a queue of items (a chunk, the
// end of the stream, a reset) that are forwarded in order, each no sooner than its due time and only
// while the direction is not cut. A cut holds the queue: nothing is lost, nothing is refused, the
// receiver just hears nothing, as behind a real partition, and everything held flows on heal.
import type { Socket } from 'node:net';
import type { Direction, Waker } from './direction.js';

/** pipeQueueBytesMax bounds what a pipe holds; past it the source is paused (TCP backpressure). */
export const pipeQueueBytesMax = 1024 * 1024;

type Item =
  | { readonly kind: 'data'; readonly chunk: Buffer; readonly dueMs: number }
  | { readonly kind: 'end'; readonly dueMs: number }
  | { readonly kind: 'reset'; readonly dueMs: number };

export interface PipeOptions {
  readonly direction: Direction;
  readonly source: Socket;
  readonly random: () => number;
  /** onInjectedReset is called when a chunk draws a reset (lossy): the whole connection must go. */
  readonly onInjectedReset: () => void;
}

export class Pipe implements Waker {
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private lastDueMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private awaitingDrain = false;
  private pausedSource = false;
  private target: Socket | undefined;
  private closed = false;

  constructor(private readonly options: PipeOptions) {
    options.direction.register(this);
  }

  /** connect gives the pipe its target; items queued before it flow from now on. */
  connect(target: Socket): void {
    this.target = target;
    this.wake();
  }

  /** acceptData queues a chunk from the source, or resets the connection if the chunk draws a loss. */
  acceptData(chunk: Buffer): void {
    if (this.closed) return;
    const { direction, random } = this.options;
    const { resetRate } = direction.faults;
    if (resetRate > 0 && random() < resetRate) {
      direction.resets++;
      this.options.onInjectedReset();
      return;
    }
    this.push({ kind: 'data', chunk, dueMs: this.dueMs() });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > pipeQueueBytesMax && !this.pausedSource) {
      this.pausedSource = true;
      this.options.source.pause();
    }
  }

  /** acceptEnd queues the source's FIN. */
  acceptEnd(): void {
    if (!this.closed) this.push({ kind: 'end', dueMs: this.dueMs() });
  }

  /** acceptReset queues the source's RST (or its failure to connect, seen by the other side as one). */
  acceptReset(): void {
    if (!this.closed) this.push({ kind: 'reset', dueMs: this.dueMs() });
  }

  /** wake forwards whatever the faults allow now; it is called on every change of the direction. */
  wake(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (!this.closed && this.canForward()) {
      const head = this.queue[0]!;
      const waitMs = head.dueMs - performance.now();
      if (waitMs > 0) {
        this.timer = setTimeout(() => this.wake(), Math.ceil(waitMs));
        return;
      }
      this.queue.shift();
      this.forward(head, this.target!);
    }
    this.resumeSourceIfRoom();
  }

  /** close drops what is queued and stops every timer; the connection is gone. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.options.direction.unregister(this);
  }

  private canForward(): boolean {
    return this.queue.length > 0 && this.target !== undefined && !this.awaitingDrain && !this.options.direction.faults.cut;
  }

  private forward(item: Item, target: Socket): void {
    if (item.kind === 'reset') {
      resetSocket(target);
      return;
    }
    if (item.kind === 'end') {
      if (!target.destroyed) target.end();
      return;
    }
    this.queuedBytes -= item.chunk.length;
    if (target.destroyed || target.writableEnded) return;
    this.options.direction.bytes += item.chunk.length;
    if (target.write(item.chunk)) return;
    this.awaitingDrain = true;
    target.once('drain', () => {
      this.awaitingDrain = false;
      this.wake();
    });
  }

  private resumeSourceIfRoom(): void {
    if (!this.pausedSource || this.queuedBytes > pipeQueueBytesMax / 2) return;
    this.pausedSource = false;
    if (!this.closed) this.options.source.resume();
  }

  private push(item: Item): void {
    this.queue.push(item);
    this.wake();
  }

  /** dueMs is when a chunk arriving now may leave: after the delay and jitter, never before the one ahead of it. */
  private dueMs(): number {
    const { delayMs, jitterMs } = this.options.direction.faults;
    const jitter = jitterMs > 0 ? this.options.random() * jitterMs : 0;
    this.lastDueMs = Math.max(this.lastDueMs, performance.now() + delayMs + jitter);
    return this.lastDueMs;
  }
}

/** resetSocket closes a socket with a TCP RST (or simply destroys it while it is still connecting). */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}
