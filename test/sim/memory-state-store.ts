// MemoryStateStore is the simulator's state store: the NodeStateStore of src/storage/state-store.ts
// in memory, with LevelDB's durability model. A write is visible at once; a synced write is durable
// when its promise resolves (the simulator decides when, through `syncLatency`), and makes every
// earlier write durable with it, as a synced LevelDB write flushes its log; an unsynced write (a
// commit index) survives a crash only if a later synced write completed. crash() forgets the rest;
// killProcess() (kill -9, the machine up) forgets nothing.
import { emptyHardState, type GroupId, type HardState } from '../../src/raft/types.js';
import type { NodeStateStore } from '../../src/storage/state-store.js';

export class MemoryStateStore implements NodeStateStore {
  private current = new Map<GroupId, HardState>();
  private durable = new Map<GroupId, HardState>();
  /** generation: bumped by crash, so a sync that completes after a crash changes nothing. */
  private generation = 0;
  /** writes counts synced writes; durableWrite is the latest whose content is durable (syncs may complete out of order). */
  private writes = 0;
  private durableWrite = 0;

  /** syncLatency returns a promise that resolves when a synced write reaches the media (set by the simulator). */
  constructor(private readonly syncLatency: () => Promise<void>) {}

  async saveHardStates(states: readonly { group: GroupId; hardState: HardState }[], options: { sync: boolean }): Promise<void> {
    if (states.length === 0) return; // as StateStore: an empty batch writes nothing, so syncs nothing
    for (const { group, hardState } of states) this.current.set(group, { ...hardState });
    if (options.sync) await this.sync();
  }

  loadHardState(group: GroupId): Promise<HardState> {
    return Promise.resolve(this.current.get(group) ?? emptyHardState);
  }

  async deleteGroup(group: GroupId): Promise<void> {
    this.current.delete(group);
    await this.sync();
  }

  private async sync(): Promise<void> {
    const content = new Map(this.current);
    const generation = this.generation;
    const write = ++this.writes;
    await this.syncLatency();
    if (generation !== this.generation || write < this.durableWrite) return;
    this.durable = content;
    this.durableWrite = write;
  }

  /** killProcess: the process dies, the machine stays up; what was written stays (a sync in flight no longer reports). */
  killProcess(): void {
    this.generation++;
  }

  /** crash (power loss) keeps only what was durable. */
  crash(): void {
    this.generation++;
    this.current = new Map(this.durable);
  }
}
