// SimNetwork is the simulator's network: per-message delay (which reorders), loss, duplication,
// and cuts between nodes in any shape (isolate one, majority against minority, a bridge, one way).
import type { Message, NodeId } from '../../src/raft/types.js';
import type { Random } from '../../src/raft/prng.js';

export interface LinkFaults {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
}

export const healthyLinks: LinkFaults = { dropRate: 0, duplicateRate: 0, delayMinMs: 1, delayMaxMs: 3 };

export class SimNetwork {
  private readonly cut = new Set<string>();
  faults: LinkFaults = healthyLinks;

  constructor(private readonly random: Random) {}

  /** deliveries returns the delays after which message arrives: none (lost), one, or two. */
  deliveries(message: Message): number[] {
    if (this.cut.has(linkKey(message.from, message.to))) return [];
    if (this.random() < this.faults.dropRate) return [];
    const copies = this.random() < this.faults.duplicateRate ? 2 : 1;
    const delays: number[] = [];
    for (let i = 0; i < copies; i++) {
      const { delayMinMs, delayMaxMs } = this.faults;
      delays.push(delayMinMs + Math.floor(this.random() * (delayMaxMs - delayMinMs + 1)));
    }
    return delays;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  /** partition cuts every link between nodes of different sides, both ways. */
  partition(sides: readonly (readonly NodeId[])[]): void {
    for (let i = 0; i < sides.length; i++) {
      for (let j = 0; j < sides.length; j++) {
        if (i === j) continue;
        for (const from of sides[i]!) for (const to of sides[j]!) this.cut.add(linkKey(from, to));
      }
    }
  }

  /** cutOneWay drops messages from `from` to `to` while the reverse direction still works. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(linkKey(from, to));
  }

  heal(): void {
    this.cut.clear();
    this.faults = healthyLinks;
  }

  describeCuts(): string[] {
    return [...this.cut].sort();
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}->${to}`;
}
