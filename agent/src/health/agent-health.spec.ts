import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { eventually } from '@flotilla/e2e/harness';
import { HeartbeatSchema } from '@flotilla/proto';
import { generateSigningKey, trustedKeys } from '@flotilla/shared';
import { createAgent } from '../agent.js';
import { createOutbox } from '../outbox.js';
import { emptyChangeSet, type Reconciler } from '../reconcile/index.js';
import { createBundleStore } from '../state.js';
import { createFakeReconciler, makeBundle, signedBytes, tempDir } from '../test-support.js';
import { type AgentHealth, createAgentHealth } from './agent-health.js';

const hubKey = generateSigningKey();
const keys = trustedKeys([{ keyId: hubKey.keyId, publicKey: hubKey.publicKey }]);

/** One sample of a Prometheus text exposition. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** The run loop wired to a health view as run.ts wires it, over the in-memory reconciler. */
function setup(
  t: Parameters<typeof tempDir>[0],
  options: { reconciler?: Reconciler; now?: () => number; healBaseMs?: number } = {},
) {
  const dir = tempDir(t);
  const outbox = createOutbox({ dir });
  const fake = createFakeReconciler();
  const health = createAgentHealth({
    cluster: 'dev-1',
    version: 'test',
    stallTimeoutMs: 60_000,
    ...(options.now ? { now: options.now } : {}),
  });
  const agent = createAgent({
    cluster: 'dev-1',
    keys,
    reconciler: health.instrument(options.reconciler ?? fake),
    outbox,
    bundleStore: createBundleStore(dir),
    healBaseMs: options.healBaseMs ?? 60_000,
    onHealScheduled: health.healScheduled,
  });
  health.attach({
    snapshot: () => agent.snapshot(),
    pendingReports: () => outbox.pending(),
    credentialExpiresAt: () => '2030-01-01T00:00:00Z',
  });
  t.after(async () => {
    await agent.stop();
    outbox.close();
  });
  return { agent, fake, outbox, health };
}

const metrics = async (health: AgentHealth) => health.metrics.render();

test('ready only once a bundle is applied without failure; a later failure does not take it back', async (t) => {
  const fake = createFakeReconciler();
  let fail = true;
  const flaky: Reconciler = {
    ...fake,
    async apply(bundle, options) {
      if (!fail) return fake.apply(bundle, options);
      return {
        changes: emptyChangeSet(),
        resources: [],
        phase: 'Failed',
        health: 'Unknown',
        error: 'inventory flotilla-system/flotilla-inventory-dev-1: read failed: connect ECONNREFUSED',
      };
    },
  };
  const { agent, health } = setup(t, { reconciler: flaky });
  assert.deepEqual(health.readiness(), { ok: false, reason: 'no bundle applied yet' });
  await agent.offer(signedBytes(makeBundle('dev-1', 1), hubKey));
  assert.equal(health.readiness().ok, false);
  assert.match(health.readiness().reason, /^the apply failed: inventory .*ECONNREFUSED/);
  assert.equal(sample(await metrics(health), 'flotilla_agent_ready'), 0);

  fail = false;
  await agent.offer(signedBytes(makeBundle('dev-1', 2), hubKey));
  assert.deepEqual(health.readiness(), { ok: true, reason: 'ready' });
  const m = await metrics(health);
  assert.equal(sample(m, 'flotilla_agent_ready'), 1);
  assert.equal(sample(m, 'flotilla_agent_applied_generation'), 2);
  assert.equal(sample(m, 'flotilla_agent_reconciles_total', { phase: 'Failed' }), 1);
  assert.equal(sample(m, 'flotilla_agent_reconciles_total', { phase: 'Synced' }), 1);
  assert.equal(sample(m, 'flotilla_agent_objects', { sync: 'Synced', health: 'Healthy' }), 1);
  assert.equal(
    sample(m, 'flotilla_agent_credential_expiry_timestamp_seconds'),
    Date.parse('2030-01-01') / 1000,
  );

  fail = true;
  await agent.offer(signedBytes(makeBundle('dev-1', 3), hubKey));
  assert.equal(health.readiness().ok, true, 'still ready: the failure is in the status, not in readiness');
});

test('drift that closes is counted as healed, and the heal backoff shows the pending re-apply', async (t) => {
  const { agent, fake, health } = setup(t);
  await agent.offer(signedBytes(makeBundle('dev-1', 1), hubKey));
  // First drift: healed at once, and the re-apply finds nothing drifted.
  fake.drift();
  await eventually(
    async () => {
      const m = await metrics(health);
      assert.equal(sample(m, 'flotilla_agent_drift_healed_total'), 1, 'healed');
      assert.equal(sample(m, 'flotilla_agent_heals_total'), 1);
      assert.equal(sample(m, 'flotilla_agent_heal_backoff_seconds'), 0);
    },
    { message: 'the first drift is healed' },
  );
  // It comes back at once: the next re-apply waits (healBaseMs = 60 s), and the drift stays open.
  fake.drift();
  await eventually(
    async () => {
      const m = await metrics(health);
      assert.equal(sample(m, 'flotilla_agent_heals_total'), 2);
      assert.equal(sample(m, 'flotilla_agent_heal_backoff_seconds'), 60);
      assert.equal(sample(m, 'flotilla_agent_drift_open_objects'), 1);
      assert.equal(sample(m, 'flotilla_agent_objects', { sync: 'OutOfSync', health: 'Healthy' }), 1);
    },
    { message: 'the second heal backs off' },
  );
});

test('an apply that never settles stalls the reconcile loop past the bound; the other loops stay idle', async (t) => {
  let now = Date.now();
  const fake = createFakeReconciler();
  // Settles only when the agent stops (it aborts the apply's signal).
  const hung: Reconciler = {
    ...fake,
    apply: (_bundle, options) =>
      new Promise((_, reject) =>
        options?.signal?.addEventListener('abort', () => reject(new Error('aborted'))),
      ),
  };
  const { agent, health } = setup(t, { reconciler: hung, now: () => now });
  void agent.offer(signedBytes(makeBundle('dev-1', 1), hubKey));
  await eventually(() => assert.equal(health.liveness().loops[2]!.state, 'busy', 'reconcile busy'));
  now += 60_001;
  const live = health.liveness();
  assert.equal(live.ok, false);
  assert.deepEqual(
    live.loops.map((l) => `${l.loop}:${l.state}`),
    ['pull:idle', 'watch:idle', 'reconcile:stalled', 'status:idle'],
  );
  const m = await metrics(health);
  assert.equal(sample(m, 'flotilla_agent_loop_stalled', { loop: 'reconcile' }), 1);
  assert.equal(sample(m, 'flotilla_agent_loop_silent_seconds', { loop: 'reconcile' }), 60.001);
});

test('the outbox depth and the age of its oldest report come from the outbox itself', async (t) => {
  const { outbox, health } = setup(t);
  let m = await metrics(health);
  assert.equal(sample(m, 'flotilla_agent_outbox_reports'), 0);
  assert.equal(sample(m, 'flotilla_agent_outbox_oldest_report_age_seconds'), 0);
  const body = { case: 'heartbeat' as const, value: create(HeartbeatSchema, { appliedGeneration: 0n }) };
  outbox.append(body, new Date(Date.now() - 90_000));
  outbox.append(body);
  m = await metrics(health);
  assert.equal(sample(m, 'flotilla_agent_outbox_reports'), 2);
  const age = sample(m, 'flotilla_agent_outbox_oldest_report_age_seconds')!;
  assert.ok(age >= 90 && age < 120, `oldest ${age} s`);
  outbox.ack(outbox.lastSeq());
  assert.equal(sample(await metrics(health), 'flotilla_agent_outbox_reports'), 0);
});

test('connections: state per link, and a reconnect counted only after the link was up once', async (t) => {
  const { health } = setup(t);
  health.connection('nats', false);
  health.connection('nats', true);
  health.connection('hub', true);
  health.connection('hub', false);
  health.connection('hub', true);
  health.connection('hub', true);
  const m = await metrics(health);
  assert.equal(sample(m, 'flotilla_agent_connected', { link: 'nats' }), 1);
  assert.equal(sample(m, 'flotilla_agent_reconnects_total', { link: 'nats' }), 0);
  assert.equal(sample(m, 'flotilla_agent_connected', { link: 'hub' }), 1);
  assert.equal(sample(m, 'flotilla_agent_reconnects_total', { link: 'hub' }), 1);
});
