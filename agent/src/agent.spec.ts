import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '@flotilla/e2e/harness';
import { Phase, SyncState } from '@flotilla/proto';
import {
  encodeEnvelope,
  generateSigningKey,
  signBundle,
  trustedKeys,
  VerifyErrorCode,
} from '@flotilla/shared';
import { createAgent } from './agent.js';
import { createOutbox, type Outbox } from './outbox.js';
import { createBundleStore } from './state.js';
import { createFakeReconciler, makeBundle, signedBytes, tempDir } from './test-support.js';

const hubKey = generateSigningKey();
const keys = trustedKeys([{ keyId: hubKey.keyId, publicKey: hubKey.publicKey }]);

function setup(
  t: Parameters<typeof tempDir>[0],
  dir = tempDir(t),
  options: { healBaseMs?: number; healMaxMs?: number; healResetMs?: number } = {},
) {
  const outbox = createOutbox({ dir });
  const reconciler = createFakeReconciler();
  const agent = createAgent({
    cluster: 'dev-1',
    keys,
    reconciler,
    outbox,
    bundleStore: createBundleStore(dir),
    healBaseMs: 50,
    healMaxMs: 400,
    ...options,
  });
  t.after(async () => {
    await agent.stop();
    outbox.close();
  });
  return { dir, outbox, reconciler, agent };
}

const kinds = (outbox: Outbox) =>
  outbox
    .pending()
    .map((r) => (r.body.case === 'refused' ? `refused:${r.body.value.code}` : `${r.body.case}`));

test('auto sync applies each newer bundle and reports a full status for it', async (t) => {
  const { agent, reconciler, outbox } = setup(t);
  assert.equal((await agent.offer(signedBytes(makeBundle('dev-1', 1), hubKey))).kind, 'applied');
  assert.equal((await agent.offer(signedBytes(makeBundle('dev-1', 2), hubKey))).kind, 'applied');
  assert.deepEqual(reconciler.applied, [1, 2]);
  const last = outbox.pending().at(-1)!;
  assert.equal(last.body.case, 'status');
  if (last.body.case === 'status') {
    assert.equal(last.body.value.appliedGeneration, 2n);
    assert.equal(last.body.value.revision, 'rev2');
    assert.equal(last.body.value.resources.length, 1);
  }
});

test('the already-applied generation is a no-op, an older one is refused and reported', async (t) => {
  const { agent, reconciler, outbox } = setup(t);
  await agent.offer(signedBytes(makeBundle('dev-1', 3), hubKey));
  assert.equal((await agent.offer(signedBytes(makeBundle('dev-1', 3), hubKey))).kind, 'unchanged');
  const older = await agent.offer(signedBytes(makeBundle('dev-1', 2), hubKey));
  assert.equal(older.kind, 'refused');
  assert.equal(older.kind === 'refused' && older.code, VerifyErrorCode.StaleGeneration);
  assert.deepEqual(reconciler.applied, [3]);
  assert.deepEqual(kinds(outbox), ['status', 'refused:stale-generation']);
});

test('bundles with a bad signature, an unknown key or for another cluster are reported and never applied', async (t) => {
  const { agent, reconciler, outbox } = setup(t);
  const envelope = signBundle(makeBundle('dev-1', 1), hubKey);
  const tampered = {
    ...envelope,
    payload: Buffer.from(JSON.stringify(makeBundle('dev-1', 9))).toString('base64'),
  };
  const outcomes = [
    await agent.offer(encodeEnvelope(tampered)),
    await agent.offer(signedBytes(makeBundle('dev-1', 1), generateSigningKey())),
    await agent.offer(signedBytes(makeBundle('prod-1', 1), hubKey)),
  ];
  assert.deepEqual(
    outcomes.map((o) => (o.kind === 'refused' ? o.code : o.kind)),
    ['bad-signature', 'unknown-key', 'wrong-cluster'],
  );
  assert.deepEqual(reconciler.applied, []);
  assert.deepEqual(kinds(outbox), ['refused:bad-signature', 'refused:unknown-key', 'refused:wrong-cluster']);
  const report = outbox.pending()[2]!;
  assert.equal(report.body.case === 'refused' && report.body.value.generation, 1n);
  // The same refused bundle seen again (a reconnect) is not reported twice.
  await agent.offer(signedBytes(makeBundle('prod-1', 1), hubKey));
  assert.equal(outbox.pending().length, 3);
});

test('manual sync holds a new bundle, reports it as pending, and applies it on a sync command', async (t) => {
  const { agent, reconciler, outbox } = setup(t);
  const bundle = makeBundle('dev-1', 4, undefined, { sync: 'manual' });
  assert.equal((await agent.offer(signedBytes(bundle, hubKey))).kind, 'held');
  assert.deepEqual(reconciler.applied, []);
  const held = outbox.pending().at(-1)!;
  assert.equal(held.body.case === 'status' && held.body.value.pendingGeneration, 4n);
  assert.equal((await agent.sync(4))?.kind, 'applied');
  assert.deepEqual(reconciler.applied, [4]);
  const after = outbox.pending().at(-1)!;
  assert.equal(after.body.case === 'status' && after.body.value.pendingGeneration, 0n);
  assert.equal(after.body.case === 'status' && after.body.value.appliedGeneration, 4n);
});

test('a sync command that arrives before its bundle lets that bundle apply when it comes', async (t) => {
  const { agent, reconciler } = setup(t);
  assert.equal(await agent.sync(5), undefined);
  const outcome = await agent.offer(
    signedBytes(makeBundle('dev-1', 5, undefined, { sync: 'manual' }), hubKey),
  );
  assert.equal(outcome.kind, 'applied');
  assert.deepEqual(reconciler.applied, [5]);
});

test('the last good bundle is enforced on start, before and without any connection', async (t) => {
  const dir = tempDir(t);
  const first = setup(t, dir);
  await first.agent.offer(signedBytes(makeBundle('dev-1', 7), hubKey));
  await first.agent.stop();
  first.outbox.close();

  const second = setup(t, dir);
  await second.agent.start();
  assert.deepEqual(second.reconciler.applied, [7]);
  assert.equal(second.agent.snapshot().bundle?.generation, 7);
  assert.ok(second.reconciler.watching(), 'the stored bundle is watched for drift');
});

test('with selfHeal, drift is reported and healed; repeated drift backs off instead of spinning', async (t) => {
  const { agent, reconciler, outbox } = setup(t);
  await agent.offer(signedBytes(makeBundle('dev-1', 1), hubKey));
  reconciler.drift();
  const drifted = outbox.pending().at(-1)!;
  assert.equal(drifted.body.case === 'status' && drifted.body.value.resources[0]?.drift[0]?.path, 'data.gen');
  await eventually(() => assert.deepEqual(reconciler.applied, [1, 1]));
  // A controller fighting us: drift right after each heal. Heals keep coming, but spaced out.
  const started = Date.now();
  for (let i = 0; i < 4; i++) {
    const before = reconciler.applied.length;
    reconciler.drift(`data.x${i}`);
    await eventually(() => assert.equal(reconciler.applied.length, before + 1), { timeoutMs: 10_000 });
  }
  // Backoff of 50, 100, 200, 400 ms: at least 750 ms in all (a lower bound, never an upper one).
  assert.ok(Date.now() - started >= 700, 'heals are rate-limited');
});

test('drift that comes back only after the heal reset is a fresh change: healed at once, not backed off', async (t) => {
  // A backoff of 5 s would follow a heal; a reset of 200 ms forgives it.
  const { agent, reconciler } = setup(t, undefined, { healBaseMs: 5000, healMaxMs: 5000, healResetMs: 200 });
  await agent.offer(signedBytes(makeBundle('dev-1', 1), hubKey));
  reconciler.drift('data.first');
  await eventually(() => assert.deepEqual(reconciler.applied, [1, 1]));
  await new Promise((r) => setTimeout(r, 400));
  reconciler.drift('data.later');
  await eventually(() => assert.deepEqual(reconciler.applied, [1, 1, 1]), {
    timeoutMs: 4000,
    intervalMs: 20,
  });
});

test('without selfHeal, drift is reported and left alone', async (t) => {
  const { agent, reconciler, outbox } = setup(t);
  await agent.offer(signedBytes(makeBundle('dev-1', 1, undefined, { selfHeal: false }), hubKey));
  reconciler.drift();
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(reconciler.applied, [1]);
  const last = outbox.pending().at(-1)!;
  assert.equal(last.body.case === 'status' && last.body.value.resources[0]?.sync, SyncState.OUT_OF_SYNC);
  assert.equal(
    last.body.case === 'status' && last.body.value.phase,
    Phase.SYNCED,
    'drift is per object, not a phase',
  );
});

test('heartbeats are sent between changes', async (t) => {
  const dir = tempDir(t);
  const outbox = createOutbox({ dir });
  const agent = createAgent({
    cluster: 'dev-1',
    keys,
    reconciler: createFakeReconciler(),
    outbox,
    bundleStore: createBundleStore(dir),
    heartbeatMs: 100,
  });
  t.after(async () => {
    await agent.stop();
    outbox.close();
  });
  await agent.offer(signedBytes(makeBundle('dev-1', 2), hubKey));
  await eventually(() =>
    assert.ok(
      kinds(outbox).filter((k) => k === 'heartbeat').length >= 2,
      "not yet: kinds(outbox).filter((k) => k === 'heartbeat').length >= 2",
    ),
  );
  const hb = outbox.pending().find((r) => r.body.case === 'heartbeat')!;
  assert.equal(hb.body.case === 'heartbeat' && hb.body.value.appliedGeneration, 2n);
});

test('outside its maintenance window a new bundle is held with until when, and applied once the window opens (injected clock)', async (t) => {
  const dir = tempDir(t);
  const outbox = createOutbox({ dir });
  const reconciler = createFakeReconciler();
  let now = new Date('2026-03-07T01:00:00Z');
  const agent = createAgent({
    cluster: 'dev-1',
    keys,
    reconciler,
    outbox,
    bundleStore: createBundleStore(dir),
    now: () => now,
    windowCheckMs: 20,
  });
  t.after(async () => {
    await agent.stop();
    outbox.close();
  });
  const windows = [{ hours: '02:00-03:00' }];
  assert.equal(
    (await agent.offer(signedBytes(makeBundle('dev-1', 1, undefined, { windows }), hubKey))).kind,
    'held',
  );
  assert.deepEqual(reconciler.applied, []);
  const last = outbox.pending().at(-1)!;
  assert.ok(last.body.case === 'status');
  if (last.body.case === 'status') {
    assert.equal(last.body.value.pendingGeneration, 1n);
    assert.equal(last.body.value.pendingReason, 'outside its maintenance window');
    assert.equal(last.body.value.pendingUntil?.seconds, BigInt(Date.parse('2026-03-07T02:00:00Z') / 1000));
  }
  // Imported bundles wait too (an air-gapped site).
  assert.equal(
    (
      await agent.offer(signedBytes(makeBundle('dev-1', 2, undefined, { windows }), hubKey), {
        origin: 'import',
      })
    ).kind,
    'held',
  );
  now = new Date('2026-03-07T02:00:30Z');
  await eventually(() => assert.deepEqual(reconciler.applied, [2], 'the held bundle is applied'), {
    timeoutMs: 5000,
  });
});
