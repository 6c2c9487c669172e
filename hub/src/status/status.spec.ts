import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  Health,
  Phase,
  type ReportStatusRequest,
  ReportStatusRequestSchema,
  SyncState,
} from '@flotilla/proto';
import { eq } from 'drizzle-orm';
import type { Database } from '../db/database.js';
import { bundles, clusters, statusReports } from '../db/schema.js';
import { openTestDatabase, TEST_DATABASE_KINDS } from '../db/testing.js';
import { createFleetView, type FleetView } from './fleet-view.js';
import { createStatusIngest, type StatusIngest } from './ingest.js';

const T0 = new Date('2026-01-01T00:00:00Z');

function statusReport(
  seq: number,
  opts: { generation?: number; replicasLive?: string | null; at?: Date; error?: string } = {},
): ReportStatusRequest {
  const drift =
    opts.replicasLive == null
      ? []
      : [{ path: 'spec.replicas', desired: '2', live: opts.replicasLive, since: timestampFromDate(T0) }];
  return create(ReportStatusRequestSchema, {
    seq: BigInt(seq),
    observedAt: timestampFromDate(opts.at ?? new Date()),
    body: {
      case: 'status',
      value: {
        appliedGeneration: BigInt(opts.generation ?? 1),
        revision: 'abc123',
        phase: Phase.SYNCED,
        health: Health.HEALTHY,
        error: opts.error ?? '',
        resources: [
          {
            ref: { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' },
            sync: drift.length ? SyncState.OUT_OF_SYNC : SyncState.SYNCED,
            health: Health.HEALTHY,
            drift,
          },
        ],
      },
    },
  });
}

for (const kind of TEST_DATABASE_KINDS) {
  describe(`status ingest on ${kind}`, () => {
    let database: Database;
    let ingest: StatusIngest;
    let view: FleetView;
    let now = new Date();

    before(async () => {
      database = await openTestDatabase(kind);
      ingest = createStatusIngest(database.db);
      view = createFleetView({ db: database.db, heartbeatWindowMs: 30_000, now: () => now });
      await database.db.insert(clusters).values([
        { name: 'a', environment: 'dev', labels: { region: 'eu' } },
        { name: 'b', environment: 'prod', labels: {} },
      ]);
      await database.db.insert(bundles).values({
        cluster: 'a',
        generation: 1,
        contentDigest: 'sha256:x',
        revision: 'abc123',
        envelope: new Uint8Array([1]),
      });
    });
    after(() => database?.close());

    test('a report is stored once: a duplicate seq is acknowledged as a duplicate, not stored twice', async () => {
      assert.deepEqual(await ingest.ingest('a', statusReport(1), 'stream'), { seq: 1, stored: true });
      assert.deepEqual(await ingest.ingest('a', statusReport(1), 'stream'), { seq: 1, stored: false });
      const rows = await database.db.select().from(statusReports).where(eq(statusReports.cluster, 'a'));
      assert.equal(rows.length, 1);
      // The same seq from another cluster is its own report.
      assert.equal((await ingest.ingest('b', statusReport(1), 'stream')).stored, true);
    });

    test('fleet status shows a synced, healthy, connected cluster and never a stale green', async () => {
      await ingest.touch('a', now);
      const [a] = await view.status();
      assert.equal(a?.name, 'a');
      assert.deepEqual(
        {
          sync: a?.sync,
          health: a?.health,
          connected: a?.connected,
          generation: a?.generation,
          error: a?.error,
        },
        { sync: 'Synced', health: 'Healthy', connected: true, generation: 1, error: null },
      );
      now = new Date(now.getTime() + 31_000);
      const [stale] = await view.status();
      assert.equal(stale?.connected, false);
      const list = await view.clusters();
      assert.deepEqual(Object.keys(list[0]!).sort(), [
        'connected',
        'createdAt',
        'environment',
        'labels',
        'lastSeen',
        'name',
      ]);
    });

    test('drift appearing opens an event with its since; drift gone clears it and keeps it as history', async () => {
      await ingest.ingest('a', statusReport(2, { replicasLive: '7' }), 'stream');
      let open = await view.drift();
      assert.equal(open.length, 1);
      assert.deepEqual(
        { ...open[0] },
        {
          cluster: 'a',
          environment: 'dev',
          source: 'env/dev',
          group: 'apps',
          kind: 'Deployment',
          namespace: 'shop',
          name: 'web',
          field: 'spec.replicas',
          desired: '2',
          live: '7',
          since: T0.toISOString(),
        },
      );
      assert.equal((await view.status()).find((c) => c.name === 'a')?.drifted, 1);
      assert.equal((await view.status()).find((c) => c.name === 'a')?.sync, 'OutOfSync');
      await ingest.ingest('a', statusReport(3), 'stream');
      open = await view.drift();
      assert.equal(open.length, 0);
      const history = await view.drift({ history: true });
      assert.equal(history.length, 1);
      assert.ok(history[0]?.clearedAt);
    });

    test('an older report stored late does not rewind the current status', async () => {
      await ingest.ingest('a', statusReport(10, { error: '' }), 'stream');
      assert.equal(
        (await ingest.ingest('a', statusReport(5, { error: 'apps/v1 Deployment shop/web: boom' }), 'import'))
          .stored,
        true,
      );
      assert.equal((await view.status()).find((c) => c.name === 'a')?.error, null);
    });

    test('a refused bundle is shown as the cluster error until a newer generation is applied', async () => {
      await ingest.ingest(
        'a',
        create(ReportStatusRequestSchema, {
          seq: 11n,
          body: {
            case: 'refused',
            value: { generation: 2n, code: 'bad-signature', reason: 'signature does not match' },
          },
        }),
        'stream',
      );
      assert.match(
        (await view.status()).find((c) => c.name === 'a')?.error ?? '',
        /generation 2 refused \(bad-signature\)/,
      );
      await ingest.ingest('a', statusReport(12, { generation: 2 }), 'stream');
      assert.equal((await view.status()).find((c) => c.name === 'a')?.error, null);

      // A forged head may claim any generation: the next genuine apply clears its refusal anyway.
      await ingest.ingest(
        'a',
        create(ReportStatusRequestSchema, {
          seq: 13n,
          body: { case: 'refused', value: { generation: 1001n, code: 'bad-signature', reason: 'forged' } },
        }),
        'stream',
      );
      await ingest.ingest('a', statusReport(14, { generation: 2 }), 'stream');
      assert.match((await view.status()).find((c) => c.name === 'a')?.error ?? '', /generation 1001 refused/);
      await ingest.ingest('a', statusReport(15, { generation: 3 }), 'stream');
      assert.equal((await view.status()).find((c) => c.name === 'a')?.error, null);
    });

    test('a cluster in full: its status row, every object with sync and health, and the open drift on each', async () => {
      await ingest.ingest('a', statusReport(100, { replicasLive: '5' }), 'stream');
      const detail = await view.cluster('a');
      assert.equal(detail?.cluster.name, 'a');
      assert.equal(detail?.cluster.drifted, 1);
      assert.deepEqual(detail?.resources, [
        {
          group: 'apps',
          version: 'v1',
          kind: 'Deployment',
          namespace: 'shop',
          name: 'web',
          source: 'env/dev',
          sync: 'OutOfSync',
          health: 'Healthy',
          healthReason: null,
          error: null,
          drift: [{ field: 'spec.replicas', desired: '2', live: '5', since: T0.toISOString() }],
        },
      ]);
      // Cleared drift is history, not part of the cluster's current objects.
      await ingest.ingest('a', statusReport(101), 'stream');
      assert.deepEqual((await view.cluster('a'))?.resources[0]?.drift, []);
      assert.equal(await view.cluster('nope'), undefined);
    });

    test('a deleted object is listed in fleet drift as the whole object, live <missing>, then in history with when it was seen and healed', async () => {
      const seen = new Date('2026-01-02T00:00:00Z');
      const healed = new Date('2026-01-02T00:05:00Z');
      const configMap = { group: '', version: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'settings' };
      const report = (seq: number, missing: boolean, at: Date) =>
        create(ReportStatusRequestSchema, {
          seq: BigInt(seq),
          observedAt: timestampFromDate(at),
          body: {
            case: 'status',
            value: {
              appliedGeneration: 1n,
              revision: 'abc123',
              phase: Phase.SYNCED,
              health: Health.HEALTHY,
              resources: [
                {
                  ref: configMap,
                  sync: missing ? SyncState.MISSING : SyncState.SYNCED,
                  health: Health.HEALTHY,
                  drift: missing
                    ? [
                        {
                          path: '(object)',
                          desired: '<present>',
                          live: '<missing>',
                          since: timestampFromDate(seen),
                        },
                      ]
                    : [],
                },
              ],
            },
          },
        });
      await ingest.ingest('b', report(200, true, seen), 'stream');
      const open = (await view.drift()).filter((d) => d.cluster === 'b');
      assert.deepEqual(
        open.map(({ kind, namespace, name, field, desired, live, since }) => ({
          kind,
          namespace,
          name,
          field,
          desired,
          live,
          since,
        })),
        [
          {
            kind: 'ConfigMap',
            namespace: 'shop',
            name: 'settings',
            field: '(object)',
            desired: '<present>',
            live: '<missing>',
            since: seen.toISOString(),
          },
        ],
      );
      assert.equal((await view.status()).find((c) => c.name === 'b')?.drifted, 1);
      // Still missing in a later report (self-heal off): still one open row, since unchanged.
      await ingest.ingest('b', report(201, true, new Date('2026-01-02T00:01:00Z')), 'stream');
      assert.equal((await view.drift()).filter((d) => d.cluster === 'b').length, 1);
      await ingest.ingest('b', report(202, false, healed), 'stream');
      assert.deepEqual(
        (await view.drift()).filter((d) => d.cluster === 'b'),
        [],
      );
      const history = (await view.drift({ history: true })).filter((d) => d.cluster === 'b');
      assert.deepEqual(
        history.map((d) => [d.field, d.live, d.since, d.clearedAt]),
        [['(object)', '<missing>', seen.toISOString(), healed.toISOString()]],
      );
    });

    test('every object shows its source, from the bundle the cluster applied; cluster show and fleet drift filter by it', async () => {
      await database.db.insert(clusters).values({ name: 'c', environment: 'prod', labels: { tier: 'prod' } });
      const bundle = (generation: number, sources: Record<string, string> | null) => ({
        cluster: 'c',
        generation,
        contentDigest: `sha256:${generation}`,
        revision: 'abc123',
        envelope: new Uint8Array([generation]),
        sources,
      });
      // Generation 2 (not applied yet) no longer has the app: what the cluster runs is generation 1.
      await database.db
        .insert(bundles)
        .values([bundle(1, { 'apps/Deployment/shop/web': 'app/monitoring' }), bundle(2, null)]);
      await ingest.ingest('c', statusReport(300, { replicasLive: '7' }), 'stream');
      const detail = await view.cluster('c');
      assert.deepEqual(
        detail?.resources.map((r) => [r.kind, r.source]),
        [['Deployment', 'app/monitoring']],
      );
      assert.equal((await view.cluster('c', { source: 'env/prod' }))?.resources.length, 0);
      assert.equal((await view.cluster('c', { source: 'app/monitoring' }))?.resources.length, 1);
      const drifted = (await view.drift()).filter((d) => d.cluster === 'c');
      assert.deepEqual(
        drifted.map((d) => [d.source, d.field]),
        [['app/monitoring', 'spec.replicas']],
      );
      assert.deepEqual(
        (await view.drift({ source: 'app/monitoring' })).map((d) => d.cluster),
        ['c'],
      );
      assert.ok(
        (await view.drift({ source: 'env/dev' })).every((d) => d.cluster !== 'c'),
        'the filter leaves other sources out',
      );
      // Once generation 2 is applied, the same object is the environment's.
      await ingest.ingest('c', statusReport(301, { generation: 2, replicasLive: '7' }), 'stream');
      assert.deepEqual(
        (await view.cluster('c'))?.resources.map((r) => r.source),
        ['env/prod'],
      );
    });
  });
}
