import type { MaintenanceWindow, SyncPolicy } from '@flotilla/shared';
import { type EnvironmentConfig, selectorMatches } from '../config/index.js';

/**
 * The sync policy a cluster's bundle carries: its environment's, plus the maintenance windows
 * whose selector picks the cluster (without their selectors: the agent only needs times).
 * Without windows it is the environment's policy object itself, so digests stay as they were.
 */
export function clusterPolicy(env: EnvironmentConfig, labels: Readonly<Record<string, string>>): SyncPolicy {
  const windows: MaintenanceWindow[] = (env.rollout?.windows ?? [])
    .filter((w) => !w.selector || selectorMatches(w.selector, labels))
    .map(({ selector: _selector, ...w }) => w);
  return windows.length > 0 ? { ...env.policy, windows } : env.policy;
}
