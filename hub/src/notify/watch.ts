import type { FleetClusterStatus, FleetDrift } from '../status/fleet-view.js';
import type { Notifier } from './notifier.js';

/**
 * Turns what the fleet view shows into events: a cluster Degraded (once per generation it is
 * Degraded at), disconnected (once per silence), a new open drift (a render error is told by the pass, once per
 * message; emitted by the publish pass). Keys are derived from the state itself, so a hub restart or another replica sends
 * nothing twice.
 */
export function fleetEvents(
  notifier: Pick<Notifier, 'emit'>,
  clusters: FleetClusterStatus[],
  drift: FleetDrift[],
): void {
  for (const c of clusters) {
    if (c.health === 'Degraded' && c.connected)
      notifier.emit({
        kind: 'cluster.degraded',
        key: `${c.name}:${c.generation}:${c.healthySince ?? ''}`,
        summary: `cluster ${c.name} (${c.environment}) is Degraded at generation ${c.generation}${c.error ? `: ${c.error}` : ''}`,
        cluster: c.name,
        environment: c.environment,
      });
    if (!c.connected && c.lastSeen && !c.paused)
      notifier.emit({
        kind: 'cluster.disconnected',
        key: `${c.name}:${c.lastSeen}`,
        summary: `cluster ${c.name} (${c.environment}) is disconnected; last seen ${c.lastSeen}`,
        cluster: c.name,
        environment: c.environment,
      });
  }
  for (const d of drift)
    notifier.emit({
      kind: 'cluster.drift',
      key: `${d.cluster}:${d.group}/${d.kind}/${d.namespace}/${d.name}:${d.field}:${d.since}`,
      summary: `cluster ${d.cluster}: ${d.group ? `${d.group}/` : ''}${d.kind} ${d.namespace ? `${d.namespace}/` : ''}${d.name} drifted at ${d.field} (desired ${d.desired}, live ${d.live})`,
      cluster: d.cluster,
      environment: d.environment,
      details: { field: d.field, desired: d.desired, live: d.live, since: d.since },
    });
}
