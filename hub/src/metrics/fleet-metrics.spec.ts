import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { registerFleetMetrics } from './fleet-metrics.js';
import { createMetrics } from './metrics.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

function row(name: string, over: Partial<FleetClusterStatus>): FleetClusterStatus {
  return {
    name,
    environment: 'dev',
    labels: {},
    revision: 'abc',
    generation: 3,
    phase: 'Synced',
    sync: 'Synced',
    health: 'Healthy',
    drifted: 0,
    error: null,
    connected: true,
    lastSeen: new Date(NOW - 4000).toISOString(),
    desiredGeneration: 3,
    desiredRevision: 'abc',
    renderedRevision: 'abc',
    reportedAt: null,
    reportedVia: 'stream',
    healthySince: null,
    paused: null,
    hold: null,
    pendingGeneration: null,
    pendingUntil: null,
    ...over,
  };
}

test('per-cluster gauges: info with sync, health and connection labels, drift, generations, last seen; one fleet read per scrape', async () => {
  const metrics = createMetrics();
  let reads = 0;
  registerFleetMetrics(
    metrics,
    {
      async status() {
        reads++;
        return [
          row('dev-1', { sync: 'OutOfSync', drifted: 2, generation: 4, desiredGeneration: 5 }),
          row('prod-1', {
            environment: 'prod',
            connected: false,
            health: 'Unknown',
            lastSeen: null,
            generation: null,
          }),
        ];
      },
    },
    () => NOW,
  );
  const text = await metrics.render();
  assert.equal(reads, 1);
  const lines = text.split('\n');
  const has = (line: string) => assert.ok(lines.includes(line), `missing ${line} in\n${text}`);
  has('# TYPE flotilla_cluster_info gauge');
  has(
    'flotilla_cluster_info{cluster="dev-1",environment="dev",sync="OutOfSync",health="Healthy",connected="true"} 1',
  );
  has(
    'flotilla_cluster_info{cluster="prod-1",environment="prod",sync="Synced",health="Unknown",connected="false"} 1',
  );
  has('flotilla_cluster_drifted_objects{cluster="dev-1",environment="dev"} 2');
  has('flotilla_cluster_drifted_objects{cluster="prod-1",environment="prod"} 0');
  has('flotilla_cluster_applied_generation{cluster="dev-1",environment="dev"} 4');
  has('flotilla_cluster_desired_generation{cluster="dev-1",environment="dev"} 5');
  has('flotilla_cluster_last_seen_seconds{cluster="dev-1",environment="dev"} 4');
  assert.ok(
    !text.includes('flotilla_cluster_applied_generation{cluster="prod-1"'),
    'no series for an unknown value',
  );
  assert.ok(!text.includes('flotilla_cluster_last_seen_seconds{cluster="prod-1"'));
});
