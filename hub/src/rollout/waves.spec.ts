import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_ROLLOUT, type RolloutConfig } from '../config/index.js';
import { assignWaves, planRollout, type RolloutRecord, type WaveClusterState } from './waves.js';

const members = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => ({
  name,
  labels: (name === 'a' ? { ring: 'canary' } : {}) as Record<string, string>,
}));
const config = (over: Partial<RolloutConfig> = {}): RolloutConfig => ({
  ...DEFAULT_ROLLOUT,
  waves: [
    { name: 'canary', selector: { matchLabels: { ring: 'canary' }, matchExpressions: [] } },
    { name: 'half', percent: 50 },
  ],
  ...over,
});
const T0 = new Date('2026-03-01T10:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** Every cluster ready at generation `gen` (healthy since T0) unless overridden. */
function states(gen: number, over: Record<string, Partial<WaveClusterState>> = {}) {
  return new Map(
    members.map((m) => [
      m.name,
      {
        name: m.name,
        generation: gen,
        desiredGeneration: gen,
        phase: 'Synced',
        health: 'Healthy',
        connected: true,
        healthySince: T0.toISOString(),
        error: null,
        ...over[m.name],
      } satisfies WaveClusterState,
    ]),
  );
}

describe('waves', () => {
  test('a selector wave, a cumulative percent wave and the rest split six clusters 1 / 2 / 3', () => {
    const waves = assignWaves(config(), members);
    assert.deepEqual(
      waves.map((w) => [w.name, w.clusters]),
      [
        ['canary', ['a']],
        ['half', ['b', 'c']],
        ['rest', ['d', 'e', 'f']],
      ],
    );
  });

  test('a new rollout releases the first wave only and holds the others, naming the wave they wait for', () => {
    const plan = planRollout({
      config: config({ soakMs: 60_000 }),
      waves: assignWaves(config(), members),
      record: undefined,
      key: 'k1',
      commit: 'c'.repeat(40),
      states: states(1),
      paused: new Set(),
      now: T0,
    });
    assert.deepEqual(plan.record.released, ['a']);
    assert.deepEqual([...plan.holds.keys()].sort(), ['b', 'c', 'd', 'e', 'f']);
    assert.match(
      plan.holds.get('b')!,
      /wave 2 \(half\) waits for wave 1 \(canary\) to be Synced and Healthy for 1m/,
    );
  });

  test('the next wave starts only once the previous one is ready at its newest generation for the soak time', () => {
    const cfg = config({ soakMs: 60_000 });
    const waves = assignWaves(cfg, members);
    const record: RolloutRecord = {
      key: 'k1',
      commit: 'c',
      wave: 0,
      waveAt: T0,
      released: ['a'],
      halted: null,
    };
    const input = { config: cfg, waves, key: 'k1', commit: 'c', paused: new Set<string>() };
    // a got generation 2 and has not applied it yet
    let plan = planRollout({
      ...input,
      record,
      states: states(1, { a: { desiredGeneration: 2 } }),
      now: at(90),
    });
    assert.equal(plan.record.wave, 0);
    // applied and healthy since t=100: not soaked at t=120, soaked at t=161
    const ready = states(1, {
      a: { generation: 2, desiredGeneration: 2, healthySince: at(100).toISOString() },
    });
    plan = planRollout({ ...input, record, states: ready, now: at(120) });
    assert.equal(plan.record.wave, 0);
    plan = planRollout({ ...input, record, states: ready, now: at(161) });
    assert.equal(plan.record.wave, 1);
    assert.deepEqual(plan.record.released, ['a', 'b', 'c']);
    assert.deepEqual(plan.events, [{ kind: 'wave', wave: 1 }]);
  });

  test('a Degraded cluster of the current wave halts the rollout: later waves stay held, naming the cluster', () => {
    const cfg = config();
    const waves = assignWaves(cfg, members);
    const record: RolloutRecord = {
      key: 'k1',
      commit: 'c',
      wave: 1,
      waveAt: T0,
      released: ['a', 'b', 'c'],
      halted: null,
    };
    const plan = planRollout({
      config: cfg,
      waves,
      record,
      key: 'k1',
      commit: 'c',
      states: states(2, {
        c: { health: 'Degraded', error: 'apps/v1 Deployment shop/web: progress deadline exceeded' },
      }),
      paused: new Set(),
      now: at(10),
    });
    assert.equal(plan.record.halted?.cluster, 'c');
    assert.match(
      plan.record.halted!.reason,
      /cluster c is Degraded at generation 2: apps\/v1 Deployment shop\/web/,
    );
    assert.deepEqual([...plan.holds.keys()].sort(), ['d', 'e', 'f']);
    assert.match(plan.holds.get('d')!, /halted at wave 2 \(half\)/);
    assert.deepEqual(plan.events, [{ kind: 'halted', cluster: 'c', reason: plan.record.halted!.reason }]);
    // A halted record stays halted: nothing more is released on the next plan.
    const again = planRollout({
      config: cfg,
      waves,
      record: plan.record,
      key: 'k1',
      commit: 'c',
      states: states(2),
      paused: new Set(),
      now: at(20),
    });
    assert.deepEqual(again.record.released, ['a', 'b', 'c']);
    assert.deepEqual(again.events, []);
    // A new key (a new commit) starts over from the first wave.
    const fresh = planRollout({
      config: cfg,
      waves,
      record: plan.record,
      key: 'k2',
      commit: 'd',
      states: states(2),
      paused: new Set(),
      now: at(30),
    });
    assert.equal(fresh.record.halted, null);
    assert.equal(fresh.record.wave > 0, true, 'ready waves pass at once when nothing needs soaking');
  });

  test('maxUnavailable releases a wave a cluster at a time, the next once the one before is ready', () => {
    const cfg = config({ maxUnavailable: 1 });
    const waves = assignWaves(cfg, members);
    const record: RolloutRecord = {
      key: 'k',
      commit: 'c',
      wave: 1,
      waveAt: T0,
      released: ['a'],
      halted: null,
    };
    const input = { config: cfg, waves, key: 'k', commit: 'c', paused: new Set<string>() };
    let plan = planRollout({ ...input, record, states: states(1), now: at(1) });
    assert.deepEqual(plan.record.released, ['a', 'b']);
    assert.match(plan.holds.get('c')!, /at most 1 cluster\(s\) at a time/);
    plan = planRollout({
      ...input,
      record: plan.record,
      states: states(1, { b: { desiredGeneration: 2 } }),
      now: at(2),
    });
    assert.deepEqual(plan.record.released, ['a', 'b'], 'b is updating: c waits');
  });

  test('a paused cluster neither blocks its wave nor gets released', () => {
    const cfg = config();
    const waves = assignWaves(cfg, members);
    const plan = planRollout({
      config: cfg,
      waves,
      record: undefined,
      key: 'k',
      commit: 'c',
      states: states(1, { a: { health: 'Unknown', connected: false } }),
      paused: new Set(['a']),
      now: T0,
    });
    assert.ok(!plan.record.released.includes('a'));
    assert.ok(plan.complete, 'every other cluster was ready: the rollout went through');
    assert.ok(!plan.holds.has('a'), 'a pause is its own hold, not the rollout’s');
  });
});
