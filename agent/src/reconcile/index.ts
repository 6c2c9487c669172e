/**
 * The agent's reconcile engine: server-side apply in order, prune by inventory, health and
 * drift of every object of a bundle, and a watch that reports changes. Model: fluxcd/pkg ssa.
 */

export type { Cluster, ResourceInfo, WatchStream, WatchTarget } from './cluster.js';
export { type DiffOptions, diffObject } from './diff.js';
export { assessHealth, type HealthResult, worstHealth } from './health.js';
export { inventoryName } from './inventory.js';
export { PRUNE_ANNOTATION } from './prune.js';
export {
  createClusterReconciler,
  createReconciler,
  DEFAULT_FIELD_MANAGER,
  DEFAULT_INVENTORY_NAMESPACE,
} from './reconciler.js';
export type {
  ApplyOptions,
  ChangeSet,
  FieldDrift,
  HealthState,
  ReconcileResult,
  Reconciler,
  ReconcilerOptions,
  ResourceReport,
  SyncState,
  WatchHandle,
} from './types.js';
