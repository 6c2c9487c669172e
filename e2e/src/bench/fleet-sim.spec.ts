import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runFleetBench } from './fleet-sim.js';

/**
 * bench:fleet's whole machinery at a tiny size, so CI proves it still runs. Times are printed
 * by the benchmark, never asserted; what is asserted is that each phase did what it measures.
 */
test('bench:fleet at 5 clusters, with label-selected apps and groups: agents join and converge on every commit, an unchanged pass publishes nothing, every cluster reports its drift and its heal, and all come back after a hub SIGKILL', {
  timeout: 600_000,
}, async () => {
  const r = await runFleetBench({ clusters: 5, rounds: 1, environments: 2, apps: true });
  assert.equal(r.clusters, 5);
  assert.equal(r.apps, true);
  assert.equal(r.replicas, 1);
  assert.equal(r.database, 'pglite');
  // runFleetBench throws unless every cluster was Synced and Healthy at each round's revision.
  for (const p of [
    r.publishMs,
    r.convergeMs,
    r.clusterConvergeMs,
    r.unchangedPassMs,
    r.fleetStatusMs,
    r.uiFleetMs,
  ]) {
    assert.ok(Number.isFinite(p.p50) && Number.isFinite(p.max), JSON.stringify(p));
  }
  assert.equal(r.unchangedPublished, 0, 'an unchanged commit publishes no bundle');
  assert.equal(r.ingest.edited, 5, 'every simulated cluster had its object changed');
  // runFleetBench also throws unless the hub's drift history holds every cluster's drift.
  // The burst ends once every agent reported the drift and then the heal (runFleetBench throws
  // otherwise), so at least two reports each; heartbeats are counted apart, never in the rate.
  assert.ok(
    r.ingest.reports >= 2 * 5,
    `every agent reported the drift and the heal: ${r.ingest.reports} reports stored`,
  );
  assert.ok(Number.isInteger(r.ingest.heartbeats), 'heartbeats during the burst are counted apart');
  assert.ok(Number.isFinite(r.restartRecoveryMs), 'every agent reconnected after the SIGKILL');
  assert.ok(r.hubRssMiB > 0 && r.natsRssMiB > 0, 'hub and nats-server were sampled from /proc');
});

test('bench:fleet --replicas 2 --profile: every hub replica and agent process is profiled, each file named by role and pid, and each replica CPU is counted per round', {
  timeout: 600_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-profile-'));
  try {
    const r = await runFleetBench({
      clusters: 4,
      rounds: 1,
      environments: 2,
      replicas: 2,
      database: 'postgres',
      profileDir: dir,
    });
    assert.equal(r.replicas, 2);
    assert.deepEqual(
      r.replicaRounds.map((x) => x.name),
      ['hub-0', 'hub-1'],
    );
    assert.equal(r.replicaRounds.filter((x) => x.leader).length, 1, 'exactly one replica leads the rounds');
    for (const x of r.replicaRounds) assert.equal(x.cpuS.length, 1, `${x.name}: CPU counted for the round`);
    assert.equal(r.postgresCpuSPerRound.length, 1);
    assert.equal(r.agentsCpuSPerRound.length, 1);
    const names = (r.profiles ?? []).map((p) => p.name).sort();
    assert.equal(names.length, 4, `two replicas and two agent processes profiled: ${names.join(', ')}`);
    assert.deepEqual(names.slice(0, 2), ['agents-0', 'agents-1']);
    assert.ok(names.includes('hub-0 (follower)') || names.includes('hub-0 (leader)'), names.join(', '));
    assert.ok(names.includes('hub-1 (follower)') || names.includes('hub-1 (leader)'), names.join(', '));
    for (const p of r.profiles ?? []) {
      assert.ok(existsSync(p.file), p.file);
      assert.ok(p.file.includes(`.${p.pid}.0.`), `${p.name}: ${p.file} is the main thread of pid ${p.pid}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
