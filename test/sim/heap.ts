// A binary min-heap of events ordered by (at, seq): equal times keep insertion order, so the
// simulation is deterministic.

export interface Scheduled {
  readonly at: number;
  readonly seq: number;
}

export class EventHeap<T extends Scheduled> {
  private readonly items: T[] = [];

  size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let child = items.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!before(items[child]!, items[parent]!)) break;
      [items[child], items[parent]] = [items[parent]!, items[child]!];
      child = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let parent = 0;
    for (;;) {
      const left = parent * 2 + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < items.length && before(items[left]!, items[smallest]!)) smallest = left;
      if (right < items.length && before(items[right]!, items[smallest]!)) smallest = right;
      if (smallest === parent) break;
      [items[parent], items[smallest]] = [items[smallest]!, items[parent]!];
      parent = smallest;
    }
    return top;
  }

  peek(): T | undefined {
    return this.items[0];
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * firstOnly returns a settle function that runs only the first outcome handed to it (an answer or
 * a deadline, whichever comes first) and says whether it ran it.
 */
export function firstOnly(): (outcome: () => void) => boolean {
  let settled = false;
  return (outcome) => {
    if (settled) return false;
    settled = true;
    outcome();
    return true;
  };
}
