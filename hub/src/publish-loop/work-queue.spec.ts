import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  eventually,
  type GitServer,
  type NatsServer,
  startGitServer,
  startNatsServer,
} from '@flotilla/e2e/harness';
import { createLogger } from '@flotilla/shared';
import { sql } from 'drizzle-orm';
import { type BundlePublisher, createBundlePublisher } from '../bundles/publish-cluster.js';
import { parseFleetConfig } from '../config/index.js';
import type { Database } from '../db/database.js';
import { bundles, clusters } from '../db/schema.js';
import { openTestDatabase } from '../db/testing.js';
import { type BundleBus, createBundleBus } from '../nats/bus.js';
import { initDataDir } from '../pki/init.js';
import { createSigningKeyStore } from '../pki/signing-keys.js';
import { createRenderer } from '../render/index.js';
import { createGitSource, type GitSource } from '../source/index.js';
import { type ClusterWork, createClusterPublishing } from './cluster-publish.js';
import { createWorkQueue, type WorkQueue } from './work-queue.js';

const logger = createLogger({ name: 'work-queue-test', level: 'silent' });
const FLEET = 'environments:\n  - name: dev\n    path: env/dev\npipeline: [dev]\n';
const CONFIG_MAP = `apiVersion: v1
kind: ConfigMap
metadata: {name: web, namespace: shop}
data: {cluster: \${cluster.name}}
`;

/** Real parts: PostgreSQL, git over HTTP, nats-server with the hub's NATS identity. */
describe('sync work shared by hub replicas through PostgreSQL row claims', () => {
  let base: string;
  let git: GitServer;
  let nats: NatsServer;
  let database: Database;
  let bus: BundleBus;
  let repoUrl: string;
  let commit: string;
  const replicas: Array<{ source: GitSource; publisher: BundlePublisher; cacheDir: string }> = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'flotilla-work-queue-'));
    git = await startGitServer();
    repoUrl = await git.createRepo('fleet', {
      'flotilla.yaml': FLEET,
      'env/dev/cm.yaml': CONFIG_MAP,
      'apps/mon/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mon, namespace: monitoring}\n',
    });
    const identity = await initDataDir(join(base, 'hub'));
    nats = await startNatsServer({ config: readFileSync(identity.natsConfigPath, 'utf8') });
    database = await openTestDatabase('postgres');
    bus = await createBundleBus({ servers: nats.url, identity: identity.nats, logger });
    const keys = createSigningKeyStore(identity.dataDir);
    for (const name of ['a', 'b']) {
      const cacheDir = join(base, name);
      const source = createGitSource({ url: repoUrl, cacheDir: join(cacheDir, 'git'), logger });
      const publisher = createBundlePublisher({
        db: database.db,
        bus,
        signingKeys: () => keys.ring(),
        sourceUrl: repoUrl,
        logger,
      });
      replicas.push({ source, publisher, cacheDir });
    }
    await replicas[0]!.source.fetch();
    commit = await replicas[0]!.source.resolveBranch('main');
  });

  after(async () => {
    await bus?.close();
    await database?.close();
    await nats?.stop();
    await git?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const env = () => parseFleetConfig(FLEET).environments[0]!;

  async function addClusters(prefix: string, n: number): Promise<ClusterWork[]> {
    const rows = Array.from({ length: n }, (_, i) => ({
      name: `${prefix}-${i}`,
      environment: 'dev',
      labels: {},
    }));
    await database.db.insert(clusters).values(rows);
    return rows.map((cluster) => ({ cluster, env: env(), branch: 'main', commit }));
  }

  function queue(
    i: number,
    overrides: {
      claimSize?: number;
      hang?: () => Promise<never>;
      /** Told of each claimed batch before it is published; publishing waits for what it returns. */
      observe?: (batch: ClusterWork[]) => Promise<void> | void;
      settleRecheckMs?: number;
    } = {},
  ): WorkQueue {
    const r = replicas[i]!;
    const renderer = createRenderer({ source: r.source, workDir: join(r.cacheDir, 'render'), logger });
    const publishing = createClusterPublishing({ renderer, publisher: r.publisher, logger, concurrency: 4 });
    const { hang, observe } = overrides;
    return createWorkQueue({
      db: database.db,
      url: database.url!,
      source: r.source,
      publisher: r.publisher,
      // A replica that stops answering in the middle of its claim, as a hung or killed process does.
      publishing: hang
        ? {
            ...publishing,
            publish: hang,
          }
        : observe
          ? {
              ...publishing,
              publish: async (batch, heads) => {
                await observe(batch);
                return publishing.publish(batch, heads);
              },
            }
          : publishing,
      logger,
      claimSize: overrides.claimSize ?? 3,
      ...(overrides.settleRecheckMs ? { settleRecheckMs: overrides.settleRecheckMs } : {}),
    });
  }

  async function generations(prefix: string): Promise<Map<string, number[]>> {
    const rows = await database.db
      .select({ cluster: bundles.cluster, generation: bundles.generation })
      .from(bundles)
      .where(sql`${bundles.cluster} like ${`${prefix}-%`}`);
    const out = new Map<string, number[]>();
    for (const r of rows) out.set(r.cluster, [...(out.get(r.cluster) ?? []), r.generation].sort());
    return out;
  }

  test('two replicas draining one pass publish every cluster exactly once, each taking a share', async () => {
    const work = await addClusters('share', 30);
    const [a, b] = [queue(0), queue(1)];
    await a.enqueue(1, work);
    // replica b has not fetched: it must fetch the pass's commit before rendering it.
    const [doneA, doneB] = await Promise.all([a.drain(), b.drain()]);
    assert.ok(doneA.size > 0, 'replica a published a share');
    assert.ok(doneB.size > 0, 'replica b published a share');
    for (const name of doneA.keys()) assert.ok(!doneB.has(name), `${name} was claimed by both replicas`);
    assert.equal(doneA.size + doneB.size, 30);
    for (const outcome of [...doneA.values(), ...doneB.values()])
      assert.ok('published' in outcome && outcome.published, JSON.stringify(outcome));
    const gens = await generations('share');
    assert.equal(gens.size, 30);
    for (const [name, list] of gens) assert.deepEqual(list, [1], `${name}: one generation for one change`);
    const { rows } = (await database.db.execute(
      sql`select count(*)::int as n from sync_work`,
    )) as unknown as {
      rows: Array<{ n: number }>;
    };
    assert.equal(rows[0]!.n, 0, 'the queue is empty once drained');
  });

  test('a replica whose database session dies mid-claim loses no cluster: another takes its rows over', async () => {
    const work = await addClusters('dies', 6);
    let release!: () => void;
    const claimed = new Promise<void>((r) => {
      release = r;
    });
    let gone!: (err: Error) => void;
    const dying = queue(0, {
      claimSize: 6,
      hang: () => {
        release();
        return new Promise<never>((_, reject) => {
          gone = reject;
        });
      },
    });
    await dying.enqueue(2, work);
    const stuck = dying.drain();
    await claimed;
    // The claim holds all six rows: the other replica finds nothing to take while it lives.
    const other = queue(1);
    assert.equal((await other.drain()).size, 0);
    // Kill the dying replica's session, as PostgreSQL does when its process is gone.
    await database.db.execute(sql`select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and state like 'idle in transaction%'`);
    const done = await other.drain();
    assert.equal(done.size, 6);
    const gens = await generations('dies');
    for (const w of work) assert.deepEqual(gens.get(w.cluster.name), [1], `${w.cluster.name} published once`);
    // The dead replica's process would be gone; here its stuck call ends so the pool can close.
    gone(new Error('replica gone'));
    assert.equal((await stuck).size, 0);
  });

  test('a queued cluster gets the fleet-wide apps its labels select when it is claimed, not when it was queued', async () => {
    await database.db.insert(clusters).values([
      { name: 'apps-0', environment: 'dev', labels: {} },
      { name: 'apps-1', environment: 'dev', labels: { tier: 'prod' } },
    ]);
    const fleet = {
      apps: [{ name: 'mon', path: 'apps/mon', selector: { matchLabels: { tier: 'prod' } } }],
      environments: ['dev'],
    };
    const work: ClusterWork[] = ['apps-0', 'apps-1'].map((name) => ({
      cluster: { name, environment: 'dev', labels: {} },
      env: env(),
      branch: 'main',
      commit,
      fleet,
    }));
    const q = queue(1);
    await q.enqueue(3, work);
    // Labelled after the pass queued it: the replica that claims it reads the labels then.
    await database.db.execute(
      sql`update clusters set labels = '{"tier": "prod"}'::jsonb where name = 'apps-0'`,
    );
    await database.db.execute(sql`update clusters set labels = '{}'::jsonb where name = 'apps-1'`);
    assert.equal((await q.drain()).size, 2);
    const rows = await database.db
      .select({ cluster: bundles.cluster, sources: bundles.sources })
      .from(bundles)
      .where(sql`${bundles.cluster} like 'apps-%'`)
      .orderBy(bundles.cluster);
    assert.deepEqual(
      rows.map((r) => [r.cluster, r.sources]),
      [
        ['apps-0', { '/ConfigMap/monitoring/mon': 'app/mon' }],
        ['apps-1', null],
      ],
    );
  });

  test('a replica claims the clusters it published before ahead of older rows, so their renders stay in its caches', async () => {
    const mine = await addClusters('aff-b', 6);
    const theirs = await addClusters('aff-a', 6);
    const batches: string[][] = [];
    const [a, b] = [
      queue(0),
      queue(1, { observe: (batch) => void batches.push(batch.map((w) => w.cluster.name)) }),
    ];
    await a.enqueue(10, theirs);
    assert.equal((await a.drain()).size, 6);
    await b.enqueue(11, mine);
    assert.equal((await b.drain()).size, 6);
    batches.length = 0;
    // b listens, as a running replica does: the next pass's notification makes what b
    // published in pass 11 its preference.
    await b.start();
    try {
      // The next pass queues every cluster; without a preference b's first claims would take
      // aff-a-* (first by name, all queued at once).
      await a.enqueue(12, [...theirs, ...mine]);
      await eventually(async () => {
        const { rows } = (await database.db.execute(
          sql`select count(*)::int as n from sync_work where cluster like 'aff-%'`,
        )) as unknown as { rows: Array<{ n: number }> };
        assert.equal(rows[0]!.n, 0, 'b alone takes every row in the end');
      });
    } finally {
      await b.stop();
    }
    const done = new Set(batches.flat());
    assert.equal(done.size, 12, 'b alone took every row in the end');
    const first = batches.slice(0, 2).flat().sort();
    assert.deepEqual(
      first,
      mine.map((w) => w.cluster.name).sort(),
      `b's first two claims (one per lane) took its own clusters: ${JSON.stringify(batches)}`,
    );
  });

  test("a replica waiting for a pass to settle is woken by another replica's finished claim, not by polling", async () => {
    const work = await addClusters('settle', 4);
    let entered!: () => void;
    const claimed = new Promise<void>((r) => {
      entered = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const claimer = queue(1, {
      claimSize: 4,
      observe: () => {
        entered();
        return gate;
      },
    });
    await claimer.enqueue(20, work);
    const claiming = claimer.drain();
    await claimed;
    // The waiting replica listens, and would look again on its own only after an hour.
    const waiting = queue(0, { settleRecheckMs: 3_600_000 });
    await waiting.start();
    try {
      // Settles only once the claimer's rows are gone: with an hour between its own looks, only
      // the claimer's notification at commit can wake it within the test's time.
      const settling = waiting.settled(
        20,
        work.map((w) => w.cluster.name),
      );
      release();
      assert.equal((await claiming).size, 4);
      await settling;
      const { rows } = (await database.db.execute(
        sql`select count(*)::int as n from sync_work where cluster like 'settle-%'`,
      )) as unknown as { rows: Array<{ n: number }> };
      assert.equal(rows[0]!.n, 0, 'settled once no row of the pass was left');
    } finally {
      release();
      await waiting.stop();
    }
  });
});
