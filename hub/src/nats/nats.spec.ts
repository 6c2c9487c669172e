import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, type NatsServer, startNatsServer } from '@flotilla/e2e/harness';
import {
  BUNDLE_STREAM,
  bundleChunkSubject,
  bundleSubject,
  createLogger,
  decodeTransportHead,
  notifySubject,
  unpackTransport,
} from '@flotilla/shared';
import { connect, ErrorCode, jwtAuthenticator, type Msg, type NatsConnection, type StoredMsg } from 'nats';
import { initDataDir } from '../pki/init.js';
import { type BundleBus, createBundleBus } from './bus.js';
import { type AgentNatsUser, mintAgentUser, revokeNatsUser } from './identity.js';

const logger = createLogger({ name: 'test', level: 'silent' });

async function connectAgent(url: string, user: AgentNatsUser): Promise<NatsConnection> {
  return connect({
    servers: url,
    authenticator: jwtAuthenticator(user.jwt, new TextEncoder().encode(user.seed)),
    inboxPrefix: user.inboxPrefix,
    maxReconnectAttempts: 0,
  });
}

async function directGet(nc: NatsConnection, subject: string): Promise<Uint8Array> {
  // `direct` exists on the manager at runtime; nats.js 2.29's interface type omits it.
  const jsm = (await nc.jetstreamManager({ checkAPI: false })) as unknown as {
    direct: { getMessage(stream: string, q: { last_by_subj: string }): Promise<StoredMsg> };
  };
  const msg = await jsm.direct.getMessage(BUNDLE_STREAM, { last_by_subj: subject });
  return msg.data;
}

describe('NATS operator mode: per-cluster isolation and bundle transport', () => {
  let dir: string;
  let nats: NatsServer;
  let bus: BundleBus;
  let identity: Awaited<ReturnType<typeof initDataDir>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-hub-nats-'));
    identity = await initDataDir(dir);
    nats = await startNatsServer({ config: readFileSync(join(dir, 'nats-server.conf'), 'utf8') });
    bus = await createBundleBus({ servers: nats.url, identity: identity.nats, logger });
  });
  after(async () => {
    await bus?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a 10 MB bundle is published in chunks and read back intact via direct get', async () => {
    const envelope = new Uint8Array(randomBytes(10 * 1024 * 1024));
    await bus.publish('big', 1, envelope);
    const user = await mintAgentUser(identity.nats, 'big');
    const nc = await connectAgent(nats.url, user);
    try {
      const head = decodeTransportHead(await directGet(nc, bundleSubject('big')));
      assert.ok(head.chunks.length > 10, `expected many chunks, got ${head.chunks.length}`);
      const bytes = await unpackTransport(head, (i) => directGet(nc, bundleChunkSubject('big', i)));
      assert.deepEqual(Buffer.compare(Buffer.from(bytes), Buffer.from(envelope)), 0);
    } finally {
      await nc.close();
    }
  });

  test("a cluster's credentials direct-get its own bundle but the server refuses another cluster's", async () => {
    await bus.publish('alpha', 1, new TextEncoder().encode('{"alpha":true}'));
    await bus.publish('beta', 1, new TextEncoder().encode('{"beta":true}'));
    const alpha = await connectAgent(nats.url, await mintAgentUser(identity.nats, 'alpha'));
    const errors: string[] = [];
    (async () => {
      for await (const s of alpha.status())
        if (s.type === 'error') errors.push(String((s.data as unknown as Error).message ?? s.data));
    })();
    try {
      const own = decodeTransportHead(await directGet(alpha, bundleSubject('alpha')));
      assert.equal(own.cluster, 'alpha');
      await assert.rejects(
        directGet(alpha, bundleSubject('beta')),
        /Permissions Violation for Publish to "\$JS\.API\.DIRECT\.GET\.BUNDLES\.bundles\.beta"/,
      );
      await assert.rejects(directGet(alpha, 'bundles.>'), /Permissions Violation for Publish/);
      // Subscribing to another cluster's notify subject or the shared inbox is refused too.
      const before = errors.length;
      const sub = alpha.subscribe(notifySubject('beta'));
      const inbox = alpha.subscribe('_INBOX.>');
      await eventually(() =>
        assert.ok(
          errors.slice(before).filter((e) => /permissions.violation/i.test(e)).length >= 2,
          errors.join(),
        ),
      );
      sub.unsubscribe();
      inbox.unsubscribe();
      // A violation does not disconnect: its own subject still works.
      assert.equal(decodeTransportHead(await directGet(alpha, bundleSubject('alpha'))).cluster, 'alpha');
    } finally {
      await alpha.close();
    }
  });

  test('an agent receives the notify message for its cluster', async () => {
    const user = await mintAgentUser(identity.nats, 'gamma');
    const nc = await connectAgent(nats.url, user);
    try {
      // `timeout` ends the iteration with an error if nothing arrives, so the test cannot pass empty.
      const sub = nc.subscribe(notifySubject('gamma'), { max: 1, timeout: 10_000 });
      await nc.flush();
      await bus.publish('gamma', 7, new TextEncoder().encode('{}'));
      const received: Msg[] = [];
      for await (const m of sub) received.push(m);
      assert.equal(received.length, 1, 'exactly one notify message');
      const notice = JSON.parse(new TextDecoder().decode(received[0]!.data));
      assert.equal(notice.generation, 7);
      assert.equal(notice.head.generation, 7, 'the notify carries the head just stored');
    } finally {
      await nc.close();
    }
  });

  test('revoking an agent user closes its connection and refuses new ones', async () => {
    const user = await mintAgentUser(identity.nats, 'delta');
    const nc = await connectAgent(nats.url, user);
    const closed = nc.closed();
    await bus.updateAccount(await revokeNatsUser(dir, identity.nats, user.publicKey));
    await closed;
    await assert.rejects(connectAgent(nats.url, user), { code: ErrorCode.AuthorizationViolation });
  });

  test('a revocation made while NATS is away takes effect once it is back', async () => {
    const user = await mintAgentUser(identity.nats, 'echo');
    (await connectAgent(nats.url, user)).close();
    await nats.process.stop();
    const revoked = await revokeNatsUser(dir, identity.nats, user.publicKey);
    // With the server gone the request to $SYS gets no answer: the push times out.
    await assert.rejects(bus.updateAccount(revoked), { code: ErrorCode.Timeout });
    await nats.restart();
    await eventually(
      () => assert.rejects(connectAgent(nats.url, user), { code: ErrorCode.AuthorizationViolation }),
      {
        timeoutMs: 20_000,
        message: 'the revocation was pushed again after the hub reconnected',
      },
    );
  });
});
