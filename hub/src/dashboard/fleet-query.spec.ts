import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { fleetQueryString, pageFleet, parseFleetQuery } from './fleet-query.js';

function cluster(i: number, over: Partial<FleetClusterStatus> = {}): FleetClusterStatus {
  return {
    name: `c-${String(i).padStart(4, '0')}`,
    environment: i % 2 ? 'prod' : 'dev',
    labels: { region: i % 3 ? 'eu' : 'us' },
    revision: 'abc',
    generation: 1,
    phase: 'Synced',
    sync: 'Synced',
    health: 'Healthy',
    drifted: 0,
    error: null,
    connected: true,
    lastSeen: null,
    desiredGeneration: 1,
    desiredRevision: 'abc',
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

describe('fleet filters and paging', () => {
  const fleet = Array.from({ length: 1000 }, (_, i) =>
    cluster(i, i % 100 === 7 ? { health: 'Degraded', drifted: 2 } : {}),
  );

  test('1,000 clusters come 50 to a page, the last page clamped', () => {
    const first = pageFleet(fleet, parseFleetQuery(new URLSearchParams()));
    assert.equal(first.clusters.length, 50);
    assert.equal(first.pages, 20);
    assert.equal(first.clusters[0]!.name, 'c-0000');
    const beyond = pageFleet(fleet, parseFleetQuery(new URLSearchParams('page=99')));
    assert.equal(beyond.page, 20);
    assert.equal(beyond.clusters.at(-1)!.name, 'c-0999');
  });

  test('environment, label selector and state narrow the fleet, and the counts follow the scope', () => {
    const q = parseFleetQuery(new URLSearchParams('env=prod&labels=region%3Deu&state=degraded'));
    const page = pageFleet(fleet, q);
    const expected = fleet.filter(
      (c) => c.environment === 'prod' && c.labels.region === 'eu' && c.health === 'Degraded',
    );
    assert.deepEqual(
      page.clusters.map((c) => c.name),
      expected.map((c) => c.name),
    );
    assert.equal(page.matching, expected.length);
    assert.equal(page.counts.drifted, expected.length, 'every Degraded one has drifted too');
    assert.equal(
      page.counts.healthy + page.counts.degraded,
      1000 / 2 - fleet.filter((_c, i) => i % 2 && i % 3 === 0).length,
    );
    assert.equal(fleetQueryString(q, { page: 2 }), '?env=prod&labels=region%3Deu&state=degraded&page=2');
  });

  test('a bad state, page or selector names its parameter', () => {
    assert.throws(() => parseFleetQuery(new URLSearchParams('state=green')), /state: must be one of/);
    assert.throws(() => parseFleetQuery(new URLSearchParams('page=0')), /page: must be a whole number/);
    assert.throws(() => parseFleetQuery(new URLSearchParams('labels=a%20in')), /labels/);
  });
});
