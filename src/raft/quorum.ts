// Quorum arithmetic over a set of voters. Learners never appear here.
import type { NodeId } from './types.js';

/** majority is the smallest number of voters that forms a quorum (n/2 + 1). */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * committedIndex returns the highest index that a majority of voters has persisted, given each
 * voter's match index. With no voters it returns Infinity (nothing constrains it) — callers
 * never ask that, since a group always has at least one voter.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const matches = voters.map(matchOf).sort((x, y) => y - x);
  return matches[majority(voters.length) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** voteResult counts granted and rejected votes of voters only; votes of others are ignored. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const needed = majority(voters.length);
  if (granted >= needed) return 'won';
  if (granted + missing >= needed) return 'pending';
  return 'lost';
}

/** hasQuorum says whether the voters for which `active` holds form a majority. */
export function hasQuorum(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  return voters.filter(active).length >= majority(voters.length);
}

/**
 * majoritiesCanBeDisjoint says whether some majority of a and some majority of b share no node.
 * Raft's safety needs this false for any two configurations that can be in effect at once.
 */
export function majoritiesCanBeDisjoint(options: { a: readonly NodeId[]; b: readonly NodeId[] }): boolean {
  const setA = new Set(options.a);
  const setB = new Set(options.b);
  const shared = options.a.filter((id) => setB.has(id)).length;
  const onlyA = setA.size - shared;
  const onlyB = setB.size - shared;
  const needA = Math.max(0, majority(setA.size) - onlyA);
  const needB = Math.max(0, majority(setB.size) - onlyB);
  return needA + needB <= shared;
}
