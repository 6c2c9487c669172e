import type { FleetClusterStatus } from '../status/fleet-view.js';
import type { Metrics } from './metrics.js';

/**
 * Per-cluster gauges for alerting on the fleet (the way `argocd_app_info` is used): one info
 * series with sync, health and connection as labels, the drifted-object count, the applied and
 * newest published generations, and seconds since the cluster was last heard from. One scrape
 * reads the fleet view once, however many gauges it renders.
 */
export function registerFleetMetrics(
  metrics: Metrics,
  fleet: { status(): Promise<FleetClusterStatus[]> },
  now: () => number = Date.now,
): void {
  let pending: { at: number; rows: Promise<FleetClusterStatus[]> } | undefined;
  const rows = () => {
    if (!pending || now() - pending.at > 1000) pending = { at: now(), rows: fleet.status() };
    return pending.rows;
  };
  const per = (value: (c: FleetClusterStatus) => number | null) => async () =>
    (await rows()).flatMap((c) => {
      const v = value(c);
      return v === null ? [] : [{ labels: { cluster: c.name, environment: c.environment }, value: v }];
    });
  metrics.gauge(
    'flotilla_cluster_info',
    'One series per cluster, always 1; sync, health and connected are labels.',
    async () =>
      (await rows()).map((c) => ({
        labels: {
          cluster: c.name,
          environment: c.environment,
          sync: c.sync,
          health: c.health,
          connected: String(c.connected),
        },
        value: 1,
      })),
  );
  metrics.gauge(
    'flotilla_cluster_drifted_objects',
    'Objects with open drift, per cluster.',
    per((c) => c.drifted),
  );
  metrics.gauge(
    'flotilla_cluster_applied_generation',
    'Bundle generation the agent reports applied.',
    per((c) => c.generation),
  );
  metrics.gauge(
    'flotilla_cluster_desired_generation',
    'Newest bundle generation the hub published for the cluster.',
    per((c) => c.desiredGeneration),
  );
  metrics.gauge(
    'flotilla_cluster_last_seen_seconds',
    'Seconds since the cluster was last heard from.',
    per((c) => (c.lastSeen ? Math.max(0, Math.round((now() - Date.parse(c.lastSeen)) / 1000)) : null)),
  );
}
