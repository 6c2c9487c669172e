import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateGates, type SourceClusterState } from './gates.js';

const now = new Date('2026-01-01T12:00:00Z');
const healthy = (
  name: string,
  revision = 'aaaaaaaaaaaaaaaa',
  since = new Date('2026-01-01T11:00:00Z'),
): SourceClusterState => ({
  name,
  revision,
  sync: 'Synced',
  health: 'Healthy',
  connected: true,
  healthySince: since,
});
const gate = (clusters: SourceClusterState[], promotion = { soakMs: 0, approve: false }, approved = false) =>
  evaluateGates({ from: 'dev', to: 'staging', clusters, promotion, approved, now });

test('every FROM cluster Synced and Healthy at one revision lets that revision through', () => {
  assert.deepEqual(gate([healthy('a'), healthy('b')]), { ok: true, revision: 'aaaaaaaaaaaaaaaa', notes: [] });
});

test('an unhealthy, out-of-sync or disconnected FROM cluster refuses, naming each', () => {
  const r = gate([
    healthy('a'),
    { ...healthy('b'), health: 'Degraded' },
    { ...healthy('c'), sync: 'OutOfSync', connected: false },
  ]);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reasons.some((x) => /dev cluster b is Degraded, not Healthy/.test(x)));
  assert.ok(!r.ok && r.reasons.some((x) => /dev cluster c is OutOfSync, not Synced/.test(x)));
  assert.ok(!r.ok && r.reasons.some((x) => /dev cluster c is disconnected/.test(x)));
});

test('FROM clusters on different revisions refuse: there is no one revision FROM runs', () => {
  const r = gate([healthy('a', 'aaaa'), healthy('b', 'bbbb')]);
  assert.ok(!r.ok && /different revisions: a@aaaa, b@bbbb/.test(r.reasons.join()));
});

test('an environment with no clusters cannot be promoted from', () => {
  assert.ok(!gate([]).ok);
});

test('soak time and approval declared by TO are enforced', () => {
  const soak = gate([healthy('a', 'r', new Date('2026-01-01T11:55:00Z'))], {
    soakMs: 600_000,
    approve: false,
  });
  assert.ok(!soak.ok && /soaked 5m of the 10m staging requires/.test(soak.reasons.join()));
  assert.ok(gate([healthy('a')], { soakMs: 600_000, approve: false }).ok);
  const approve = gate([healthy('a')], { soakMs: 0, approve: true });
  assert.ok(!approve.ok && /requires approval: run again with --approve/.test(approve.reasons.join()));
  assert.ok(gate([healthy('a')], { soakMs: 0, approve: true }, true).ok);
});

test('a paused FROM cluster is left out of the gates, and the result says so', () => {
  const r = gate([
    healthy('a'),
    {
      ...healthy('gone', 'bbbb'),
      health: 'Unknown',
      connected: false,
      paused: 'paused by ops (site rebuild)',
    },
  ]);
  assert.deepEqual(r, {
    ok: true,
    revision: 'aaaaaaaaaaaaaaaa',
    notes: ['dev cluster gone is paused by ops (site rebuild): left out of the gates'],
  });
});

test('an environment whose every cluster is paused verifies nothing and is refused', () => {
  const r = gate([{ ...healthy('a'), paused: 'paused by ops' }]);
  assert.ok(!r.ok && /dev has no cluster that is not paused/.test(r.reasons.join()));
  assert.equal(r.notes.length, 1);
});
