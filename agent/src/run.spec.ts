import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually, startNatsServer } from '@flotilla/e2e/harness';
import {
  encodeEnvelope,
  generateSigningKey,
  importSigningKey,
  rawPublicKey,
  signBundle,
  trustedKeys,
  verifyStatusExport,
} from '@flotilla/shared';
import { connect } from 'nats';
import { exportStatusFile, importBundleFile } from './air-gap.js';
import { runAgent } from './run.js';
import type { AgentIdentity } from './state.js';
import {
  createFakeReconciler,
  createTestPki,
  ensureBundleStream,
  type FakeHub,
  makeBundle,
  publishEnvelope,
  signedBytes,
  startFakeHub,
  tempDir,
} from './test-support.js';

const hubKey = generateSigningKey();

async function world(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const pki = createTestPki(dir);
  const nats = await startNatsServer();
  t.after(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.after(() => nc.close());
  await ensureBundleStream(nc);
  const hub = await startFakeHub(pki, { token: 'x', response: {} });
  t.after(() => hub.stop());
  const agentKey = generateSigningKey();
  const identity: AgentIdentity = {
    hub: hub.address,
    caPem: pki.caPem,
    cluster: 'dev-1',
    environment: 'dev',
    labels: {},
    agentCredential: 'cred',
    nats: { servers: [nats.url], jwt: '', seed: '', inboxPrefix: '' },
    hubKeys: [
      { keyId: hubKey.keyId, publicKey: Buffer.from(rawPublicKey(hubKey.publicKey)).toString('base64') },
    ],
    agentKey: agentKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    registeredAt: new Date().toISOString(),
  };
  const stateDir = join(dir, 'state');
  return { dir, pki, nats, nc, hub, identity, stateDir };
}

const received = (hub: FakeHub) =>
  hub.received.map((r) => (r.body.case === 'refused' ? `refused:${r.body.value.code}` : r.body.case));

test('a bundle from NATS is applied and reported; one with a bad signature is reported to the hub and never applied', async (t) => {
  const w = await world(t);
  const reconciler = createFakeReconciler();
  const running = await runAgent({
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler,
    natsRetryMs: 200,
    hubRetryMs: 200,
  });
  t.after(() => running.stop());
  await publishEnvelope(w.nc, 'dev-1', 1, signedBytes(makeBundle('dev-1', 1), hubKey));
  await eventually(() => assert.deepEqual(reconciler.applied, [1]));

  const envelope = signBundle(makeBundle('dev-1', 2), hubKey);
  const forged = {
    ...envelope,
    payload: Buffer.from(JSON.stringify(makeBundle('dev-1', 3))).toString('base64'),
  };
  await publishEnvelope(w.nc, 'dev-1', 3, encodeEnvelope(forged));
  await eventually(
    () =>
      assert.ok(
        received(w.hub).includes('refused:bad-signature'),
        "not yet: received(w.hub).includes('refused:bad-signature')",
      ),
    { timeoutMs: 40_000 },
  );
  const refusal = w.hub.received.find((r) => r.body.case === 'refused')!;
  assert.equal(refusal.body.case === 'refused' && refusal.body.value.generation, 3n);
  assert.deepEqual(reconciler.applied, [1], 'the forged bundle was not applied');
  await eventually(() => assert.equal(running.outbox.pending().length, 0), {
    message: 'everything acknowledged',
  });
});

test('with hub and NATS stopped the agent keeps enforcing and healing, queues status, and catches up on reconnect', async (t) => {
  const w = await world(t);
  const reconciler = createFakeReconciler();
  const running = await runAgent({
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler,
    natsRetryMs: 200,
    hubRetryMs: 200,
  });
  t.after(() => running.stop());
  await publishEnvelope(w.nc, 'dev-1', 1, signedBytes(makeBundle('dev-1', 1), hubKey));
  await eventually(() => assert.deepEqual(reconciler.applied, [1]));
  await eventually(() => assert.equal(running.outbox.pending().length, 0));

  const port = Number(w.hub.address.split(':')[1]);
  await w.hub.stop();
  await w.nats.process.stop();
  reconciler.drift();
  await eventually(() => assert.deepEqual(reconciler.applied, [1, 1]), { message: 'healed while offline' });
  await eventually(() => assert.ok(running.outbox.pending().length >= 1, 'status queued'));
  const queued = running.outbox.pending().map((r) => r.seq);

  await w.nats.restart();
  const hub = await startFakeHub(w.pki, { token: 'x', response: {} }, port);
  t.after(() => hub.stop());
  await eventually(() => assert.equal(running.outbox.pending().length, 0), { timeoutMs: 40_000 });
  const seqs = hub.received.map((r) => r.seq);
  for (const s of queued) assert.ok(seqs.includes(s), `queued report ${s} delivered`);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => (a < b ? -1 : 1)),
    'in order',
  );
  // NATS is back too: a new bundle flows again.
  await publishEnvelope(w.nc, 'dev-1', 2, signedBytes(makeBundle('dev-1', 2), hubKey)).catch(async () => {
    const nc = await connect({ servers: w.nats.url });
    await publishEnvelope(nc, 'dev-1', 2, signedBytes(makeBundle('dev-1', 2), hubKey));
    await nc.close();
  });
  await eventually(() => assert.equal(reconciler.applied.at(-1), 2), { timeoutMs: 30_000 });
});

test('a restarted agent resends what the hub never acknowledged, with seq numbers that keep increasing', async (t) => {
  const w = await world(t);
  w.hub.acking = false;
  const first = await runAgent({
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler: createFakeReconciler(),
    hubRetryMs: 200,
  });
  await publishEnvelope(w.nc, 'dev-1', 1, signedBytes(makeBundle('dev-1', 1), hubKey));
  await eventually(() =>
    assert.ok(
      w.hub.received.some((r) => r.body.case === 'status' && r.body.value.appliedGeneration === 1n),
      "not yet: w.hub.received.some((r) => r.body.case === 'status' && r.body.value.appliedGeneration === 1n)",
    ),
  );
  const before = first.outbox.pending().map((r) => r.seq);
  await first.stop();

  w.hub.acking = true;
  const reconciler = createFakeReconciler();
  const second = await runAgent({ identity: w.identity, stateDir: w.stateDir, reconciler, hubRetryMs: 200 });
  t.after(() => second.stop());
  await second.started;
  assert.deepEqual(
    reconciler.applied,
    [1],
    'the stored bundle is enforced without waiting for any connection',
  );
  await eventually(() => assert.equal(second.outbox.pending().length, 0));
  const seqs = w.hub.received.map((r) => r.seq);
  for (const s of before)
    assert.ok(seqs.filter((x) => x === s).length >= 2, `report ${s} resent after restart`);
  assert.ok(second.outbox.lastSeq() > before.at(-1)!, 'new reports got new seq numbers');
});

test('an imported bundle file is verified, applied, stored, and adopted by a running agent; tampered and older files are refused', async (t) => {
  const w = await world(t);
  const reconciler = createFakeReconciler();
  const running = await runAgent({
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler,
    importPollMs: 100,
    hubRetryMs: 200,
  });
  t.after(() => running.stop());
  const file = join(w.dir, 'bundle-5.json');
  writeFileSync(file, signedBytes(makeBundle('dev-1', 5), hubKey));
  const importer = createFakeReconciler();
  const { bundle } = await importBundleFile({
    file,
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler: importer,
  });
  assert.equal(bundle.generation, 5);
  assert.deepEqual(importer.applied, [5]);
  await eventually(() => assert.equal(running.agent.snapshot().bundle?.generation, 5), {
    message: 'the running agent adopted the import',
  });

  const older = join(w.dir, 'bundle-4.json');
  writeFileSync(older, signedBytes(makeBundle('dev-1', 4), hubKey));
  await assert.rejects(
    importBundleFile({ file: older, identity: w.identity, stateDir: w.stateDir, reconciler: importer }),
    /bundle-4\.json: bundle refused \(stale-generation\)/,
  );
  // The same generation with other content is a replay, refused; the applied file itself re-enforces.
  const other = join(w.dir, 'bundle-5-other.json');
  writeFileSync(other, signedBytes({ ...makeBundle('dev-1', 5), environment: 'other' }, hubKey));
  await assert.rejects(
    importBundleFile({ file: other, identity: w.identity, stateDir: w.stateDir, reconciler: importer }),
    /stale-generation/,
  );
  await importBundleFile({ file, identity: w.identity, stateDir: w.stateDir, reconciler: importer });
  assert.deepEqual(importer.applied, [5, 5], 'the applied bundle imported again is enforced again');
  importer.applied.pop();
  const tampered = join(w.dir, 'bundle-6.json');
  const text = readFileSync(file, 'utf8');
  const env = JSON.parse(text);
  env.payload = Buffer.from(JSON.stringify(makeBundle('dev-1', 6))).toString('base64');
  writeFileSync(tampered, JSON.stringify(env));
  await assert.rejects(
    importBundleFile({ file: tampered, identity: w.identity, stateDir: w.stateDir, reconciler: importer }),
    /bad-signature/,
  );
  assert.deepEqual(importer.applied, [5]);
});

test('a status export holds the unacknowledged reports plus a fresh status, signed with the agent key', async (t) => {
  const w = await world(t);
  await w.hub.stop();
  const running = await runAgent({
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler: createFakeReconciler(),
  });
  await publishEnvelope(w.nc, 'dev-1', 2, signedBytes(makeBundle('dev-1', 2), hubKey));
  await eventually(() => assert.equal(running.agent.snapshot().bundle?.generation, 2));
  const queued = running.outbox.pending().length;
  await running.stop();

  // While another agent process holds the state dir: its queue as it is, read-only.
  writeFileSync(join(w.stateDir, 'agent.pid'), String(w.nats.process.pid));
  const live = join(w.dir, 'status-live.json');
  assert.equal(
    (await exportStatusFile({ file: live, identity: w.identity, stateDir: w.stateDir })).reports.length,
    queued,
  );
  rmSync(join(w.stateDir, 'agent.pid'));

  // Stopped: the queue plus a freshly assessed status.
  const file = join(w.dir, 'status.json');
  const { reports } = await exportStatusFile({
    file,
    identity: w.identity,
    stateDir: w.stateDir,
    reconciler: createFakeReconciler(),
  });
  assert.equal(reports.length, queued + 1);
  const agentPub = importSigningKey(w.identity.agentKey).publicKey;
  const keysOf = (cluster: string) =>
    cluster === 'dev-1'
      ? trustedKeys([{ keyId: importSigningKey(w.identity.agentKey).keyId, publicKey: agentPub }])
      : undefined;
  const verified = verifyStatusExport(new Uint8Array(readFileSync(file)), keysOf);
  assert.equal(verified.cluster, 'dev-1');
  assert.deepEqual(
    verified.reports.map((r) => r.seq),
    reports.map((r) => r.seq),
  );
  const fresh = verified.reports.at(-1)!;
  assert.equal(fresh.body.case === 'status' && fresh.body.value.appliedGeneration, 2n);
  // Any edit breaks the signature.
  const edited = JSON.parse(readFileSync(file, 'utf8'));
  edited.payload = Buffer.from(JSON.stringify({ cluster: 'dev-1', exportedAt: 'x', reports: [] })).toString(
    'base64',
  );
  assert.throws(
    () => verifyStatusExport(new TextEncoder().encode(JSON.stringify(edited)), keysOf),
    /bad-signature/,
  );
});
