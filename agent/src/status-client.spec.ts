import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '@flotilla/e2e/harness';
import { hubChannelCredentials } from './hub-tls.js';
import { createOutbox } from './outbox.js';
import { startStatusClient } from './status-client.js';
import { heartbeatBody } from './status-report.js';
import { createTestPki, type FakeHub, startFakeHub, tempDir } from './test-support.js';

async function hubFor(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const pki = createTestPki(dir);
  const hub = await startFakeHub(pki, { token: 'x', response: {} });
  t.after(() => hub.stop());
  return { dir, pki, hub };
}

const seqs = (hub: FakeHub) => hub.received.map((r) => Number(r.seq));

test('reports are sent with the agent credential and dropped from the outbox once acknowledged', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  const outbox = createOutbox({ dir });
  outbox.append(heartbeatBody(1));
  const client = startStatusClient({
    address: hub.address,
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'cred-1',
    outbox,
  });
  t.after(async () => {
    await client.stop();
    outbox.close();
  });
  outbox.append(heartbeatBody(2));
  await eventually(() => assert.equal(outbox.pending().length, 0));
  assert.deepEqual(seqs(hub), [1, 2]);
  assert.equal(hub.authorizations[0], 'Bearer cred-1');
});

test('unacknowledged reports survive an agent restart and a hub outage, and are resent in order', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  hub.acking = false;
  const first = createOutbox({ dir });
  const opts = {
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'c',
    retryMs: 100,
    retryMaxMs: 500,
  };
  const c1 = startStatusClient({ ...opts, address: hub.address, outbox: first });
  for (let g = 1; g <= 3; g++) first.append(heartbeatBody(g));
  await eventually(() => assert.deepEqual(seqs(hub), [1, 2, 3]));
  // The agent dies before any ack.
  await c1.stop();
  first.close();

  const second = createOutbox({ dir });
  assert.deepEqual(
    second.pending().map((r) => Number(r.seq)),
    [1, 2, 3],
  );
  const port = Number(hub.address.split(':')[1]);
  await hub.stop();
  // Appended while the hub is down: queued.
  second.append(heartbeatBody(4));
  const c2 = startStatusClient({ ...opts, address: hub.address, outbox: second });
  t.after(async () => {
    await c2.stop();
    second.close();
  });
  await new Promise((r) => setTimeout(r, 300));
  const revived = await startFakeHub(pki, { token: 'x', response: {} }, port);
  t.after(() => revived.stop());
  await eventually(() => assert.equal(second.pending().length, 0), { timeoutMs: 30_000 });
  assert.deepEqual(seqs(revived), [1, 2, 3, 4], 'nothing lost, nothing reordered');
  second.append(heartbeatBody(5));
  await eventually(() => assert.deepEqual(seqs(revived), [1, 2, 3, 4, 5]));
});

test('a dropped stream resends what was not acknowledged; duplicates are the hub’s to tolerate', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  const outbox = createOutbox({ dir });
  const client = startStatusClient({
    address: hub.address,
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'c',
    outbox,
    retryMs: 100,
  });
  t.after(async () => {
    await client.stop();
    outbox.close();
  });
  outbox.append(heartbeatBody(1));
  await eventually(() => assert.equal(outbox.pending().length, 0));
  hub.acking = false;
  outbox.append(heartbeatBody(2));
  await eventually(() => assert.deepEqual(seqs(hub), [1, 2]));
  hub.acking = true;
  hub.dropStreams();
  await eventually(() => assert.equal(outbox.pending().length, 0), { timeoutMs: 20_000 });
  assert.deepEqual(seqs(hub), [1, 2, 2]);
});

test('a SyncCommand from the hub reaches the agent', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  const outbox = createOutbox({ dir });
  const synced: number[] = [];
  const client = startStatusClient({
    address: hub.address,
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'c',
    outbox,
    onSync: (g) => synced.push(g),
  });
  t.after(async () => {
    await client.stop();
    outbox.close();
  });
  outbox.append(heartbeatBody(1));
  await eventually(() => assert.equal(hub.received.length, 1));
  hub.sendSync(6);
  await eventually(() => assert.deepEqual(synced, [6]));
});

test('a stream with reports in flight that hears nothing back is reopened and the reports resent', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  hub.acking = false;
  const outbox = createOutbox({ dir });
  const client = startStatusClient({
    address: hub.address,
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'c',
    outbox,
    retryMs: 100,
    ackTimeoutMs: 500,
  });
  t.after(async () => {
    await client.stop();
    outbox.close();
  });
  outbox.append(heartbeatBody(1));
  await eventually(() => assert.ok(seqs(hub).length >= 2, 'sent again on a new stream'));
  hub.acking = true;
  await eventually(() => assert.equal(outbox.pending().length, 0));
  assert.ok(hub.authorizations.length >= 2, 'a new stream was opened');
});

test('a credential due for rotation is traded before the stream opens, kept, then used; the rotation carries the age recipient', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  const outbox = createOutbox({ dir });
  outbox.append(heartbeatBody(1));
  const kept: { credential: string; expiresAt: Date }[] = [];
  let due = true;
  const client = startStatusClient({
    address: hub.address,
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'old-cred',
    outbox,
    rotation: {
      due: () => due,
      async rotated(credential, expiresAt) {
        kept.push({ credential, expiresAt });
        due = false;
      },
      ageRecipient: () => 'age1example',
    },
  });
  t.after(async () => {
    await client.stop();
    outbox.close();
  });
  await eventually(() => assert.equal(outbox.pending().length, 0));
  assert.deepEqual(hub.rotations, ['Bearer old-cred'], 'rotated with the credential it had');
  assert.deepEqual(hub.rotationRecipients, ['age1example'], 'and registered the age recipient again');
  assert.equal(kept[0]?.credential, 'rotated-1');
  assert.ok(kept[0]!.expiresAt.getTime() > Date.now(), 'not yet: kept[0]!.expiresAt.getTime() > Date.now()');
  assert.deepEqual(hub.authorizations, ['Bearer rotated-1'], 'the stream opened with the new one');
});

test('on a stream that stays open, a rotation that comes due is done and the stream reopened with the new credential', async (t) => {
  const { dir, pki, hub } = await hubFor(t);
  const outbox = createOutbox({ dir });
  let due = false;
  let keepFails = true;
  const client = startStatusClient({
    address: hub.address,
    credentials: hubChannelCredentials(pki.caPem),
    agentCredential: 'c0',
    outbox,
    retryMs: 100,
    rotation: {
      due: () => due,
      retryMs: 200,
      async rotated() {
        if (keepFails) throw new Error('disk full');
        due = false;
      },
    },
  });
  t.after(async () => {
    await client.stop();
    outbox.close();
  });
  outbox.append(heartbeatBody(1));
  await eventually(() => assert.equal(outbox.pending().length, 0));
  assert.deepEqual(hub.authorizations, ['Bearer c0']);
  due = true;
  // The new credential could not be kept: the agent stays on the old one and tries again later.
  await eventually(() => assert.ok(hub.rotations.length >= 1, 'not yet: hub.rotations.length >= 1'));
  assert.deepEqual(hub.authorizations, ['Bearer c0']);
  keepFails = false;
  await eventually(() => assert.equal(hub.authorizations.at(-1), `Bearer rotated-${hub.rotations.length}`), {
    timeoutMs: 10_000,
  });
  assert.ok(
    hub.rotations.every((r) => r === 'Bearer c0'),
    'every attempt used the credential it still had',
  );
  outbox.append(heartbeatBody(2));
  await eventually(() => assert.equal(outbox.pending().length, 0), {
    message: 'reports flow on the reopened stream',
  });
});
