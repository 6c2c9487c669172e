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
