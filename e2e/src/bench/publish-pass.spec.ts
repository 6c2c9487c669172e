import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPublishBench } from './publish-pass.js';

/**
 * bench:publish's whole machinery at a tiny size, so CI proves it still runs. Times are printed
 * by the benchmark, never asserted; runPublishBench itself throws unless every round announced
 * every cluster's next generation exactly once.
 */
test('bench:publish at 6 clusters on 2 hub replicas: each commit gives every cluster one new generation, announced once, and an unchanged pass publishes nothing', {
  timeout: 300_000,
}, async () => {
  const r = await runPublishBench({ clusters: 6, rounds: 2, replicas: 2, environments: 2 });
  assert.equal(r.clusters, 6);
  assert.equal(r.replicas, 2);
  assert.equal(r.database, 'postgres');
  assert.equal(r.rounds.length, 2);
  for (const x of r.rounds) {
    assert.ok(x.passMs > 0 && x.publishMs >= x.passMs, JSON.stringify(x));
    assert.equal(x.hubCpuSByReplica.length, 2, 'both replicas were sampled from /proc');
  }
  assert.equal(r.unchangedPublished, 0, 'an unchanged commit publishes no bundle');
  assert.ok(r.hubRssMiB > 0);
});
