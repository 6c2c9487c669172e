import { type ObjectIdentity, splitApiVersion } from '@flotilla/shared';
import { worstHealth } from './health.js';
import type { ChangeSet, ReconcileResult, ResourceReport } from './types.js';

export function emptyChangeSet(): ChangeSet {
  return {
    created: [],
    configured: [],
    unchanged: [],
    deleted: [],
    skipped: [],
    failed: [],
    terminating: [],
  };
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
