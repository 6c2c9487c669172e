/**
 * The agent's reconcile engine: server-side apply in order, prune by inventory, health and
 * drift of every object of a bundle, and a watch that reports changes. Model: fluxcd/pkg ssa.
 */

export type { ApplyAction, ObjectOutcome } from './apply.js';
export type { Cluster, ResourceInfo, WatchStream, WatchTarget } from './cluster.js';
export { PRESENT, WHOLE_OBJECT } from './drift-check.js';
export { MISSING } from './drift-clock.js';
export { assessHealth, type HealthResult, worstHealth } from './health.js';
export { IGNORE_ANNOTATION } from './ignore.js';
export type { Inventory, InventoryEntry } from './inventory.js';
export { inventoryName } from './inventory.js';
export { ADOPT_ANNOTATION } from './ownership.js';
export type { PruneOutcome } from './prune.js';
export { PRUNE_ANNOTATION } from './prune.js';
export {
  createClusterReconciler,
  createReconciler,
  DEFAULT_FIELD_MANAGER,
  DEFAULT_INVENTORY_NAMESPACE,
} from './reconciler.js';
export { emptyChangeSet } from './result.js';
export type {
  AppliedObjects,
  ApplyOptions,
  ChangeSet,
  FieldDrift,
  HealthState,
  ObjectDecoder,
  ReconcileResult,
  Reconciler,
  ReconcilerOptions,
  ResourceReport,
  SyncState,
  WatchHandle,
  WatchOptions,
} from './types.js';
