import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, type NatsCluster, startNatsCluster, startNatsServer } from '@flotilla/e2e/harness';
import {
  BUNDLE_STREAM,
  bundleSubject,
  createLogger,
  decodeTransportHead,
  FlotillaError,
} from '@flotilla/shared';
import { connect, jwtAuthenticator, type NatsConnection } from 'nats';
import { runCli } from '../cli/run.js';
import { parseHubOptions } from '../hub.js';
import { initDataDir } from '../pki/init.js';
import { createBundleBus } from './bus.js';
import { mintHubUser, type NatsIdentity } from './identity.js';

const logger = createLogger({ name: 'test', level: 'silent' });

async function connectHub(servers: string[], identity: NatsIdentity): Promise<NatsConnection> {
  const user = await mintHubUser(identity);
  return connect({ servers, authenticator: jwtAuthenticator(user.jwt, user.seed) });
}

describe('BUNDLES stream replicas on a three-node NATS cluster', { timeout: 120_000 }, () => {
  let dir: string;
  let identity: NatsIdentity;
  let cluster: NatsCluster;
  let nc: NatsConnection;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-hub-nats-r3-'));
    identity = (await initDataDir(dir)).nats;
    cluster = await startNatsCluster({ config: readFileSync(join(dir, 'nats-server.conf'), 'utf8') });
    nc = await connectHub(cluster.urls, identity);
  });
  after(async () => {
    await nc?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const streamInfo = async () => (await nc.jetstreamManager()).streams.info(BUNDLE_STREAM);

  test('a stream made at R1 is scaled to R3 in place, and the bundle it held is still there', async () => {
    const r1 = await createBundleBus({ servers: cluster.urls, identity, replicas: 1, logger });
    await r1.publish('dev-1', 1, new TextEncoder().encode('generation one'));
    await r1.close();
    const r1Info = await streamInfo();
    assert.equal(r1Info.config.num_replicas, 1);
    assert.equal(r1Info.cluster?.replicas?.length ?? 0, 0, 'one copy: no followers');

    const r3 = await createBundleBus({ servers: cluster.urls, identity, replicas: 3, logger });
    await r3.close();
    assert.equal((await streamInfo()).config.num_replicas, 3);
    // The new peers join and catch up with the leader in the background.
    await eventually(
      async () => {
        const { cluster: c } = await streamInfo();
        assert.ok(c?.leader, 'a stream leader');
        assert.ok(
          c.replicas?.every((r) => r.current),
          'every follower caught up',
        );
        assert.deepEqual([c.leader, ...(c.replicas ?? []).map((r) => r.name)].sort(), ['n1', 'n2', 'n3']);
      },
      { timeoutMs: 20_000, message: 'a current copy of the stream on every node' },
    );
    const head = decodeTransportHead(
      (
        await (
          await nc.jetstreamManager()
        ).streams.getMessage(BUNDLE_STREAM, { last_by_subj: bundleSubject('dev-1') })
      ).data,
    );
    assert.equal(head.generation, 1, 'the bundle published at R1 survived the scale-up');
  });

  test('at R3, with the stream leader killed, the next publish goes through by itself and is read back', async () => {
    const bus = await createBundleBus({ servers: cluster.urls, identity, replicas: 3, logger });
    try {
      const leader = await eventually(async () => {
        const name = (await streamInfo()).cluster?.leader;
        assert.ok(name, 'a stream leader');
        return name;
      });
      const victim = cluster.nodes.find((n) => n.name === leader);
      assert.ok(victim, `the stream leader ${leader} is one of the nodes`);
      await victim.kill();
      // One call: the bus itself retries through the leader election.
      await bus.publish('dev-1', 2, new TextEncoder().encode('generation two'));
      // This test's own connection may have been on the killed node: it reconnects meanwhile.
      await eventually(
        async () => {
          const info = await streamInfo();
          assert.ok(info.cluster?.leader, 'a stream leader');
          assert.notEqual(info.cluster.leader, leader, 'another node leads the stream');
          const msg = await (await nc.jetstreamManager()).streams.getMessage(BUNDLE_STREAM, {
            last_by_subj: bundleSubject('dev-1'),
          });
          assert.equal(decodeTransportHead(msg.data).generation, 2);
        },
        { timeoutMs: 30_000, intervalMs: 250, message: 'generation 2 read back with a node down' },
      );
    } finally {
      await bus.close();
    }
  });

  test('with two of three nodes down (no quorum), a publish fails after the retry window, naming cluster and generation', async () => {
    const bus = await createBundleBus({
      servers: cluster.urls,
      identity,
      replicas: 3,
      publishRetryMs: 1000,
      logger,
    });
    try {
      for (const node of cluster.nodes.filter((n) => n.process.alive).slice(1)) await node.kill();
      await assert.rejects(bus.publish('dev-1', 3, new TextEncoder().encode('generation three')), (err) => {
        assert.ok(err instanceof FlotillaError);
        assert.equal(err.code, 'unavailable');
        assert.match(
          err.message,
          /publishing bundle generation 3 of cluster dev-1 failed: .*published again on the next pass/,
        );
        return true;
      });
    } finally {
      await bus.close();
    }
  });
});

describe('BUNDLES stream replicas beyond what NATS offers', () => {
  test('on a single server, replicas 3 is refused with an error naming the stream and the way out', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-hub-nats-r3-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const identity = (await initDataDir(dir)).nats;
    const nats = await startNatsServer({ config: readFileSync(join(dir, 'nats-server.conf'), 'utf8') });
    t.after(() => nats.stop());
    await assert.rejects(createBundleBus({ servers: nats.url, identity, replicas: 3, logger }), (err) => {
      assert.ok(err instanceof FlotillaError);
      assert.equal(err.code, 'invalid');
      assert.match(err.message, /^nats stream BUNDLES: .*num_replicas 3.*single server.*--bundle-replicas 1/);
      return true;
    });
  });

  test('hub options: bundleReplicas defaults to 1 and outside 1 to 5 is refused naming the option', () => {
    const base = { nats: 'nats://127.0.0.1:4222', repo: { url: 'http://git' }, logger };
    assert.equal(parseHubOptions(base).bundleReplicas, 1);
    assert.equal(parseHubOptions({ ...base, bundleReplicas: 3 }).bundleReplicas, 3);
    for (const bad of [0, 6, 2.5]) {
      assert.throws(
        () => parseHubOptions({ ...base, bundleReplicas: bad }),
        /^FlotillaError: hub options: bundleReplicas: /,
      );
    }
  });

  test('flotilla hub start --bundle-replicas: not a whole number, or above 5, is a one-line error naming it', async () => {
    for (const [value, code, message] of [
      ['3x', 2, /^flotilla: hub start: --bundle-replicas: 3x is not a whole number\n$/],
      ['7', 1, /^flotilla: hub options: bundleReplicas: 7 is not a whole number from 1 to 5\n$/],
    ] as const) {
      let err = '';
      const exit = await runCli(
        ['hub', 'start', '--nats', 'nats://127.0.0.1:1', '--repo', 'http://git', '--bundle-replicas', value],
        {},
        { out: () => {}, err: (t) => (err += t) },
      );
      assert.equal(exit, code, value);
      assert.match(err, message);
    }
  });
});
