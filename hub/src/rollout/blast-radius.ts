import { identityKey, identityOf, type KubeObject, type SyncPolicy } from '@flotilla/shared';

/** How many of the previous bundle's objects a new one would prune. */
export interface PruneCount {
  pruned: number;
  of: number;
  share: number;
}

/**
 * The objects of `previous` that `next` no longer holds: what the agent would delete. The
 * empty-render guard generalized: a render that drops most of a cluster's objects is more
 * often a broken render (a moved directory, a bad selector) than a wish.
 */
export function countPrunes(previous: readonly KubeObject[], next: readonly KubeObject[]): PruneCount {
  const keep = new Set(next.map((o) => identityKey(identityOf(o))));
  const before = new Set(previous.map((o) => identityKey(identityOf(o))));
  let pruned = 0;
  for (const k of before) if (!keep.has(k)) pruned++;
  return { pruned, of: before.size, share: before.size === 0 ? 0 : pruned / before.size };
}

/**
 * Whether a render's prunes go unchecked: its policy does not prune, the threshold is 100 %, or
 * an empty bundle is explicitly allowed to prune everything. Then no previous bundle is needed.
 */
export function pruneUnchecked(policy: SyncPolicy, maxPrune: number, next: readonly KubeObject[]): boolean {
  return !policy.prune || maxPrune >= 1 || (next.length === 0 && policy.allowEmpty);
}

/**
 * Why a render must be held for its blast radius, or undefined. Nothing is held when the
 * policy does not prune, when an empty bundle is explicitly allowed to prune everything, or
 * when the threshold is 100 %.
 */
export function blastRadiusHold(input: {
  cluster: string;
  previous: readonly KubeObject[];
  next: readonly KubeObject[];
  policy: SyncPolicy;
  maxPrune: number;
}): string | undefined {
  const { policy, maxPrune } = input;
  if (pruneUnchecked(policy, maxPrune, input.next)) return undefined;
  const count = countPrunes(input.previous, input.next);
  if (count.share <= maxPrune) return undefined;
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  return (
    `blast radius: this render would prune ${count.pruned} of the ${count.of} objects of cluster ${input.cluster} (${pct(count.share)}), ` +
    `more than rollout.maxPrune ${pct(maxPrune)} allows; it is held until approved (flotilla bundle approve ${input.cluster}) or the threshold is raised`
  );
}
