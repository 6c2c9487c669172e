import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { eventually, startNatsServer } from '@flotilla/e2e/harness';
import {
  bundleSubject,
  generateSigningKey,
  packForTransport,
  trustedKeys,
  verifyBundle,
} from '@flotilla/shared';
import { connect } from 'nats';
import { fetchLatestBundle, type PullOutcome, startBundlePuller } from './pull.js';
import {
  configMap,
  ensureBundleStream,
  makeBundle,
  publishEnvelope,
  publishWithoutNotify,
  signedBytes,
} from './test-support.js';

const hubKey = generateSigningKey();
const keys = trustedKeys([{ keyId: hubKey.keyId, publicKey: hubKey.publicKey }]);

async function natsFor(t: { after(fn: () => Promise<void>): void }) {
  const server = await startNatsServer();
  t.after(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  return { server, nc };
}

test('fetching before anything is published for this cluster finds nothing', async (t) => {
  const { nc } = await natsFor(t);
  await ensureBundleStream(nc);
  await publishEnvelope(nc, 'dev-2', 1, signedBytes(makeBundle('dev-2', 1), hubKey));
  assert.deepEqual(await fetchLatestBundle(nc, 'dev-1'), { kind: 'none' });
});

test('a chunked 10 MB bundle is fetched by direct get, reassembled and verifies', async (t) => {
  const { nc } = await natsFor(t);
  await ensureBundleStream(nc);
  // Random data does not compress: about 13 MB on the wire, in 768 KiB chunks.
  const big = makeBundle('dev-1', 1, [
    configMap('big', { blob: randomBytes(10 * 1024 * 1024).toString('base64') }),
  ]);
  const envelope = signedBytes(big, hubKey);
  await publishEnvelope(nc, 'dev-1', 1, envelope);
  // Another cluster's bundle is not what dev-1 gets.
  await publishEnvelope(nc, 'dev-2', 5, signedBytes(makeBundle('dev-2', 5), hubKey));
  const outcome = await fetchLatestBundle(nc, 'dev-1', { timeoutMs: 30_000 });
  assert.equal(outcome.kind, 'bundle');
  if (outcome.kind !== 'bundle') return;
  assert.ok(outcome.head.chunks.length > 10, `${outcome.head.chunks.length} chunks`);
  assert.deepEqual(outcome.envelope, envelope);
  assert.equal(verifyBundle(outcome.envelope, { keys, cluster: 'dev-1' }).generation, 1);
  // Seen before (a reconnect, a repeated notify): the head alone tells, no chunk is fetched again.
  const again = await fetchLatestBundle(nc, 'dev-1', { knownDigest: outcome.head.digest });
  assert.equal(again.kind, 'unchanged');
});

test('chunks that never match their head are unreadable after retries, never half-used', async (t) => {
  const { nc } = await natsFor(t);
  await ensureBundleStream(nc);
  await publishEnvelope(nc, 'dev-1', 1, signedBytes(makeBundle('dev-1', 1), hubKey));
  // A head naming other content than the chunks hold (as if the chunks had been replaced).
  const { head } = packForTransport(signedBytes(makeBundle('dev-1', 2), hubKey), {
    cluster: 'dev-1',
    generation: 2,
  });
  await nc.jetstream().publish(bundleSubject('dev-1'), new TextEncoder().encode(JSON.stringify(head)));
  const outcome = await fetchLatestBundle(nc, 'dev-1', { digestRetries: 2 });
  assert.equal(outcome.kind, 'unreadable');
  assert.equal(outcome.kind === 'unreadable' && outcome.error.reason, 'digest-mismatch');
});

test('the puller fetches on start, on every notify, and after a reconnect', async (t) => {
  const { server, nc } = await natsFor(t);
  await ensureBundleStream(nc);
  await publishEnvelope(nc, 'dev-1', 1, signedBytes(makeBundle('dev-1', 1), hubKey));
  const seen: number[] = [];
  const puller = startBundlePuller(
    { cluster: 'dev-1', servers: [server.url], retryMs: 200 },
    async (o: PullOutcome) => {
      if (o.kind === 'bundle') seen.push(verifyBundle(o.envelope, { keys, cluster: 'dev-1' }).generation);
    },
  );
  t.after(() => puller.stop());
  await eventually(() => assert.deepEqual(seen, [1]));

  await publishEnvelope(nc, 'dev-1', 2, signedBytes(makeBundle('dev-1', 2), hubKey));
  await eventually(() => assert.deepEqual(seen, [1, 2]));

  // Published without a notify, then the server restarts: the reconnect alone brings it.
  await publishWithoutNotify(nc, 'dev-1', 3, signedBytes(makeBundle('dev-1', 3), hubKey));
  await server.restart();
  await eventually(() => assert.equal(seen.at(-1), 3), { timeoutMs: 30_000 });
});

test('the puller keeps trying while NATS is down and pulls once it is up', async (t) => {
  const { server, nc } = await natsFor(t);
  await ensureBundleStream(nc);
  await publishEnvelope(nc, 'dev-1', 4, signedBytes(makeBundle('dev-1', 4), hubKey));
  await nc.close();
  await server.process.stop();
  const seen: number[] = [];
  const puller = startBundlePuller({ cluster: 'dev-1', servers: [server.url], retryMs: 200 }, async (o) => {
    if (o.kind === 'bundle') seen.push(o.head.generation);
  });
  t.after(() => puller.stop());
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(seen, []);
  await server.restart();
  await eventually(() => assert.deepEqual(seen, [4]), { timeoutMs: 30_000 });
});

test('a bundle published without a notify (lost on a leaf link) is found by the periodic recheck', async (t) => {
  const { nc } = await natsFor(t);
  await ensureBundleStream(nc);
  await publishEnvelope(nc, 'dev-1', 1, signedBytes(makeBundle('dev-1', 1), hubKey));
  const seen: number[] = [];
  const puller = startBundlePuller(
    { cluster: 'dev-1', servers: [nc.getServer()].map((s) => `nats://${s}`), recheckMs: 300 },
    async (o) => {
      if (o.kind === 'bundle') seen.push(o.head.generation);
    },
  );
  t.after(() => puller.stop());
  await eventually(() => assert.deepEqual(seen, [1]));
  await publishWithoutNotify(nc, 'dev-1', 2, signedBytes(makeBundle('dev-1', 2), hubKey));
  await eventually(() => assert.deepEqual(seen, [1, 2]), {
    timeoutMs: 5000,
    message: 'recheck found generation 2',
  });
});

test("a notify's head saves the head request; a stale or wrong one falls back to the stream's head", async (t) => {
  const { nc } = await natsFor(t);
  await ensureBundleStream(nc);
  const first = signedBytes(makeBundle('dev-1', 1), hubKey);
  const announced = await publishEnvelope(nc, 'dev-1', 1, first);
  let requests = 0;
  const onRequest = () => requests++;
  const fetched = await fetchLatestBundle(nc, 'dev-1', { head: announced, onRequest });
  assert.equal(
    fetched.kind === 'bundle' && verifyBundle(fetched.envelope, { keys, cluster: 'dev-1' }).generation,
    1,
  );
  assert.equal(requests, 1, 'the chunk only');

  // Generation 2 replaced the chunks the old head names: the stream's head is read, and it wins.
  const second = signedBytes(makeBundle('dev-1', 2), hubKey);
  await publishEnvelope(nc, 'dev-1', 2, second);
  requests = 0;
  const stale = await fetchLatestBundle(nc, 'dev-1', { head: announced, onRequest });
  assert.equal(stale.kind, 'bundle');
  assert.deepEqual(stale.kind === 'bundle' && stale.envelope, second);
  assert.equal(requests, 3, 'the stale chunk, then head and chunk from the stream');

  // A head of another cluster, or the one handled last, is never taken from a notify.
  const other = packForTransport(first, { cluster: 'dev-2', generation: 9 }).head;
  const current = await fetchLatestBundle(nc, 'dev-1', { head: other });
  assert.equal(current.kind === 'bundle' && current.head.generation, 2);
  const seen = await fetchLatestBundle(nc, 'dev-1', {
    head: current.kind === 'bundle' ? current.head : undefined,
    knownDigest: current.kind === 'bundle' ? current.head.digest : '',
  });
  assert.equal(seen.kind, 'unchanged');
});

test('the puller takes the head from each notify: one request per bundle', async (t) => {
  const { server, nc } = await natsFor(t);
  await ensureBundleStream(nc);
  const seen: number[] = [];
  let requests = 0;
  const puller = startBundlePuller({ cluster: 'dev-1', servers: [server.url] }, async (o) => {
    if (o.kind === 'bundle') seen.push(verifyBundle(o.envelope, { keys, cluster: 'dev-1' }).generation);
  });
  t.after(() => puller.stop());
  await eventually(() => assert.ok(puller.connected()));
  const sub = nc.subscribe('$JS.API.DIRECT.GET.>', { callback: () => requests++ });
  t.after(() => sub.unsubscribe());
  await nc.flush();
  for (const generation of [1, 2, 3]) {
    await publishEnvelope(nc, 'dev-1', generation, signedBytes(makeBundle('dev-1', generation), hubKey));
    await eventually(() => assert.equal(seen.at(-1), generation));
  }
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(requests, 3, 'one chunk request per bundle, no head request');
});
