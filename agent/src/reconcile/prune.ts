import { formatIdentity, type KubeObject, type Logger, type ObjectIdentity } from '@flotilla/shared';
import { apiMessage, type Cluster } from './cluster.js';
import { entryObject, type InventoryEntry } from './inventory.js';
import { type RetryOptions, withRetry } from './retry.js';

/** An annotation on a live object that keeps it from being pruned, whatever the policy. */
export const PRUNE_ANNOTATION = 'flotilla.dev/prune';

export interface PruneOutcome {
  deleted: InventoryEntry[];
  /** Left alone: another manager took the object over, or it opted out of pruning. */
  skipped: { entry: InventoryEntry; reason: string }[];
  failed: { entry: InventoryEntry; error: string }[];
}

export interface PruneContext {
  cluster: Cluster;
  fieldManager: string;
  logger: Logger;
  retry: RetryOptions;
}

/** Prune order: namespaced objects first, then cluster-scoped, CRDs after their resources, Namespaces last. */
function rank(e: ObjectIdentity): number {
  if (e.group === '' && e.kind === 'Namespace') return 3;
  if (e.group === 'apiextensions.k8s.io' && e.kind === 'CustomResourceDefinition') return 2;
  return e.namespace ? 0 : 1;
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
 * deletes everything in it.
 */
export async function pruneObjects(stale: InventoryEntry[], ctx: PruneContext): Promise<PruneOutcome> {
  const out: PruneOutcome = { deleted: [], skipped: [], failed: [] };
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
      await withRetry(() => ctx.cluster.delete(obj), ctx.retry);
      ctx.logger.info({ object: subject }, 'pruned');
      out.deleted.push(entry);
    } catch (err) {
      out.failed.push({ entry, error: `${subject}: prune failed: ${apiMessage(err)}` });
    }
  }
  return out;
}
