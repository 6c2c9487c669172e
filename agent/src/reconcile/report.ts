import { type KubeObject, type ObjectIdentity, splitApiVersion } from '@flotilla/shared';
import { type DriftClock, diffObject } from './diff.js';
import { assessHealth, worstHealth } from './health.js';
import type { ChangeSet, ReconcileResult, ResourceReport } from './types.js';

/**
 * The report of one bundle object from its live state (undefined: missing): drift of the
 * fields the bundle sets, stamped with when each was first seen, and health with its reason.
 */
export function reportFor(
  id: ObjectIdentity,
  desired: KubeObject,
  live: KubeObject | undefined,
  clock: DriftClock,
  error?: string,
): ResourceReport {
  if (!live) {
    clock.forget(id);
    const { health, reason } = assessHealth(undefined);
    return { id, sync: 'Missing', health, healthReason: reason, drift: [], ...(error ? { error } : {}) };
  }
  const drift = clock.stamp(id, diffObject(desired, live, clock.diffOptions));
  const { health, reason } = assessHealth(live);
  return {
    id,
    sync: drift.length > 0 ? 'OutOfSync' : 'Synced',
    health,
    healthReason: reason,
    drift,
    ...(error ? { error } : {}),
  };
}

export function emptyChangeSet(): ChangeSet {
  return { created: [], configured: [], unchanged: [], deleted: [], skipped: [], failed: [] };
}

/**
 * Rolls resource reports up: Failed when an object failed, Synced when every object is in
 * sync and none is still progressing, Progressing otherwise. Pruned objects count for neither.
 */
export function summarise(changes: ChangeSet, resources: ResourceReport[], error?: string): ReconcileResult {
  const current = resources.filter((r) => r.sync !== 'Pruned');
  const health = worstHealth(current.map((r) => r.health));
  const firstError = error ?? changes.failed[0]?.error ?? current.find((r) => r.error)?.error;
  let phase: ReconcileResult['phase'];
  if (changes.failed.length > 0 || firstError) phase = 'Failed';
  else if (current.every((r) => r.sync === 'Synced' && r.health !== 'Progressing')) phase = 'Synced';
  else phase = 'Progressing';
  return { changes, resources, phase, health, ...(firstError ? { error: firstError } : {}) };
}

/**
 * A stand-in identity for a manifest too malformed to have one: what it says of its
 * apiVersion and kind, and `#i`, its position in the bundle, as the name.
 */
export function positionalIdentity(obj: unknown, i: number): ObjectIdentity {
  const o = (obj ?? {}) as { apiVersion?: unknown; kind?: unknown; metadata?: { namespace?: unknown } };
  return {
    ...splitApiVersion(typeof o.apiVersion === 'string' ? o.apiVersion : ''),
    kind: typeof o.kind === 'string' ? o.kind : '',
    namespace: typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : '',
    name: `#${i}`,
  };
}
