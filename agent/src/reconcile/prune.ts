import { formatIdentity, type KubeObject, type Logger, type ObjectIdentity } from '@flotilla/shared';
import { apiMessage, type Cluster } from './cluster.js';
import { entryObject, type InventoryEntry } from './inventory.js';
import { type RetryOptions, sleep, withRetry } from './retry.js';

/** An annotation on a live object that keeps it from being pruned, whatever the policy. */
export const PRUNE_ANNOTATION = 'flotilla.dev/prune';

export interface PruneOutcome {
  deleted: InventoryEntry[];
  /** Left alone: another manager took the object over, or it opted out of pruning. */
  skipped: { entry: InventoryEntry; reason: string }[];
  failed: { entry: InventoryEntry; error: string }[];
  /**
   * Deleted but still there (finalizers keep it Terminating): not pruned yet, and kept in the
   * inventory so the next apply looks again.
   */
  terminating: { entry: InventoryEntry; reason: string }[];
}

export interface PruneContext {
  cluster: Cluster;
  fieldManager: string;
  logger: Logger;
  retry: RetryOptions;
  /** How long to wait for a deleted object to be gone before reporting it Terminating. */
  waitMs: number;
}

/** Prune order: namespaced objects first, then cluster-scoped, CRDs after their resources, Namespaces last. */
function rank(e: ObjectIdentity): number {
  if (e.group === '' && e.kind === 'Namespace') return 3;
  if (e.group === 'apiextensions.k8s.io' && e.kind === 'CustomResourceDefinition') return 2;
  return e.namespace ? 0 : 1;
}

/** Why a live object is still there after its deletion: the finalizers that hold it. */
function terminatingReason(live: KubeObject): string {
  const finalizers = Array.isArray(live.metadata.finalizers) ? (live.metadata.finalizers as string[]) : [];
  return finalizers.length > 0
    ? `Terminating: waiting for finalizers ${finalizers.join(', ')}`
    : 'Terminating: waiting for the API server to delete it';
}

/** The live object once it is gone (undefined) or after `waitMs` (still there). */
async function waitGone(obj: KubeObject, ctx: PruneContext): Promise<KubeObject | undefined> {
  const deadline = Date.now() + ctx.waitMs;
  for (;;) {
    const live = await withRetry(() => ctx.cluster.get(obj), ctx.retry);
    if (!live || Date.now() >= deadline) return live;
    await sleep(100);
  }
}

/** Whether the agent's field manager still owns any field of the live object. */
function managedBy(live: KubeObject, fieldManager: string): boolean {
  const managed = live.metadata.managedFields;
  // A server that records no managedFields cannot tell us otherwise: the inventory decides.
  if (!Array.isArray(managed) || managed.length === 0) return true;
  return managed.some((m) => (m as { manager?: string }).manager === fieldManager);
}

/**
 * Deletes the inventory entries the new bundle no longer holds. Only objects in the
 * inventory are candidates, so objects the agent never applied are never touched; one
 * that another manager has taken over entirely, or that is annotated
 * `flotilla.dev/prune: disabled`, is skipped. Namespaces go last, since deleting one
 * deletes everything in it. An object counts as pruned only once it is gone: one that
 * finalizers keep Terminating is reported as such.
 */
export async function pruneObjects(stale: InventoryEntry[], ctx: PruneContext): Promise<PruneOutcome> {
  const out: PruneOutcome = { deleted: [], skipped: [], failed: [], terminating: [] };
  const ordered = [...stale].sort((a, b) => rank(a) - rank(b));
  for (const entry of ordered) {
    const subject = formatIdentity(entry);
    const obj = entryObject(entry);
    try {
      const live = await withRetry(() => ctx.cluster.get(obj), ctx.retry);
      if (!live) {
        out.deleted.push(entry);
        continue;
      }
      if (live.metadata.annotations?.[PRUNE_ANNOTATION] === 'disabled') {
        out.skipped.push({
          entry,
          reason: `${subject}: prune skipped: annotated ${PRUNE_ANNOTATION}: disabled`,
        });
        continue;
      }
      if (!managedBy(live, ctx.fieldManager)) {
        out.skipped.push({
          entry,
          reason: `${subject}: prune skipped: no longer managed by ${ctx.fieldManager}`,
        });
        continue;
      }
      // Deleted before (a finalizer held it): wait again, do not delete again.
      if (!live.metadata.deletionTimestamp) await withRetry(() => ctx.cluster.delete(obj), ctx.retry);
      const left = await waitGone(obj, ctx);
      if (left) {
        out.terminating.push({ entry, reason: terminatingReason(left) });
        ctx.logger.info({ object: subject }, 'prune waiting for deletion');
        continue;
      }
      ctx.logger.info({ object: subject }, 'pruned');
      out.deleted.push(entry);
    } catch (err) {
      out.failed.push({ entry, error: `${subject}: prune failed: ${apiMessage(err)}` });
    }
  }
  return out;
}
