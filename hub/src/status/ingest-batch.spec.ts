import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { eventually } from '@flotilla/e2e/harness';
import {
  Health,
  Phase,
  type ReportStatusRequest,
  ReportStatusRequestSchema,
  SyncState,
} from '@flotilla/proto';
import { and, asc, eq } from 'drizzle-orm';
import pg from 'pg';
import type { Database } from '../db/database.js';
import { clusterStatus, clusters, drift, statusReports } from '../db/schema.js';
import { openTestDatabase, TEST_DATABASE_KINDS } from '../db/testing.js';
import { createStatusIngest, type StatusIngest } from './ingest.js';

function report(
  seq: number,
  opts: { live?: string; error?: string; generation?: number } = {},
): ReportStatusRequest {
  return create(ReportStatusRequestSchema, {
    seq: BigInt(seq),
    observedAt: timestampFromDate(new Date(Date.UTC(2026, 0, 1, 0, 0, seq))),
    body: {
      case: 'status',
      value: {
        appliedGeneration: BigInt(opts.generation ?? seq),
        revision: 'abc123',
        phase: Phase.SYNCED,
        health: Health.HEALTHY,
        error: opts.error ?? '',
        resources: [
          {
            ref: { group: '', version: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'web' },
            sync: opts.live ? SyncState.OUT_OF_SYNC : SyncState.SYNCED,
            health: Health.HEALTHY,
            drift: opts.live ? [{ path: 'data.level', desired: 'info', live: opts.live }] : [],
          },
        ],
      },
    },
  });
}

for (const kind of TEST_DATABASE_KINDS) {
  describe(`status ingest in batches on ${kind}`, () => {
    let database: Database;
    let ingest: StatusIngest;
    const names = Array.from({ length: 40 }, (_, i) => `c${i}`);

    before(async () => {
      database = await openTestDatabase(kind);
      // Batches of 7: 160 reports arriving together are written in many transactions.
      ingest = createStatusIngest(database.db, { maxBatch: 7 });
      await database.db.insert(clusters).values(names.map((name) => ({ name, environment: 'dev' })));
    });
    after(() => database?.close());

    test('reports arriving together are each stored once and leave each cluster at its newest report', async () => {
      const sent: Array<[string, ReportStatusRequest]> = [];
      for (const name of names)
        sent.push([name, report(1)], [name, report(3)], [name, report(2)], [name, report(3)]);
      const outcomes = await Promise.all(sent.map(([c, r]) => ingest.ingest(c, r, 'stream')));
      for (const name of names) {
        const mine = outcomes.filter((_, i) => sent[i]![0] === name);
        assert.deepEqual(
          mine.map((o) => [o.seq, o.stored]),
          [
            [1, true],
            [3, true],
            [2, true],
            [3, false],
          ],
          `${name}: the second seq 3 is a duplicate`,
        );
      }
      const stored = await database.db.select().from(statusReports);
      assert.equal(stored.length, names.length * 3);
      const rows = await database.db.select().from(clusterStatus);
      assert.equal(rows.length, names.length);
      for (const row of rows) {
        assert.equal(row.lastSeq, 3, `${row.cluster}: seq 2 arrived after 3 and does not rewind it`);
        assert.equal(row.appliedGeneration, 3);
      }
    });

    test('drift opened and cleared within one batch is kept as history, and what stays open is open', async () => {
      const sent: Array<Promise<unknown>> = [];
      for (const name of names.slice(0, 10)) {
        sent.push(ingest.ingest(name, report(10, { live: 'debug' }), 'stream'));
        sent.push(ingest.ingest(name, report(11), 'stream'));
        sent.push(ingest.ingest(name, report(12, { live: 'trace' }), 'stream'));
      }
      await Promise.all(sent);
      const rows = await database.db
        .select()
        .from(drift)
        .where(eq(drift.cluster, 'c0'))
        .orderBy(asc(drift.id));
      assert.deepEqual(
        rows.map((r) => [r.live, r.clearedAt !== null]),
        [
          ['debug', true],
          ['trace', false],
        ],
      );
      const open = (await database.db.select().from(drift)).filter((r) => r.clearedAt === null);
      assert.equal(open.length, 10);
    });

    test('two batches in flight on one cluster: the later waits for the earlier to commit, then applies after it, each report stored once', async () => {
      // Batches of 2, two transactions at once: [1, 2] and [2 again, 3] are in flight together,
      // [4] follows. The first holds p0's row until the second is waiting for it.
      const held: string[][] = [];
      let waiting: () => Promise<void> = async () => {};
      const overlapping = createStatusIngest(database.db, {
        maxBatch: 2,
        maxInFlight: 2,
        onBatchFailed: (err) => assert.fail(`no batch fails: ${err}`),
        onLocked: async (clusters) => {
          held.push([...clusters]);
          if (held.length === 1) await waiting();
        },
      });
      if (database.kind === 'postgres') {
        // Proven on the server: another transaction waits for a row lock while the first holds p0.
        const observer = new pg.Client({ connectionString: database.url });
        await observer.connect();
        after(() => observer.end());
        waiting = () =>
          eventually(
            async () => {
              const { rows } = await observer.query(
                "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
              );
              assert.equal(rows[0].n, 1, "the second batch waits for the first one's lock");
            },
            { timeoutMs: 10_000, intervalMs: 10 },
          );
      }
      await database.db.insert(clusters).values({ name: 'p0', environment: 'dev' });
      const outcomes = await Promise.all([
        overlapping.ingest('p0', report(1, { live: 'debug' }), 'stream'),
        overlapping.ingest('p0', report(2), 'stream'),
        overlapping.ingest('p0', report(2), 'stream'),
        overlapping.ingest('p0', report(3, { live: 'trace' }), 'stream'),
        overlapping.ingest('p0', report(4, { live: 'warn' }), 'stream'),
      ]);
      assert.deepEqual(
        outcomes.map((o) => [o.seq, o.stored]),
        [
          [1, true],
          [2, true],
          [2, false],
          [3, true],
          [4, true],
        ],
      );
      assert.deepEqual(held, [['p0'], ['p0'], ['p0']], 'three transactions, each locking p0');
      const stored = await database.db.select().from(statusReports).where(eq(statusReports.cluster, 'p0'));
      assert.deepEqual(stored.map((r) => r.seq).sort(), [1, 2, 3, 4], 'each report stored once');
      const [row] = await database.db.select().from(clusterStatus).where(eq(clusterStatus.cluster, 'p0'));
      assert.equal(row?.lastSeq, 4);
      // The second batch saw the first one's drift cleared (by seq 2), so seq 3 opened a new
      // event, which seq 4 then updated: the history of one cluster applied in order.
      const events = await database.db
        .select()
        .from(drift)
        .where(eq(drift.cluster, 'p0'))
        .orderBy(asc(drift.id));
      assert.deepEqual(
        events.map((r) => [r.live, r.clearedAt !== null]),
        [
          ['debug', true],
          ['warn', false],
        ],
      );
    });

    test("two hub replicas store the same clusters' reports at once, handed over in opposite orders: both lock in one order, no transaction fails, each report stored once", async () => {
      const failures: unknown[] = [];
      const lockOrders: string[][] = [];
      const replica = () =>
        createStatusIngest(database.db, {
          maxBatch: 40,
          maxInFlight: 2,
          onBatchFailed: (err) => failures.push(err),
          onLocked: (clusters) => void lockOrders.push([...clusters]),
        });
      const [a, b] = [replica(), replica()];
      const names = Array.from({ length: 40 }, (_, i) => `r${String(i).padStart(2, '0')}`);
      await database.db.insert(clusters).values(names.map((name) => ({ name, environment: 'dev' })));
      // Every report reaches both replicas (an agent that reconnected elsewhere and resent),
      // one in the clusters' order, the other in reverse: a batch a seq, each in flight with the
      // other replica's batch of the same clusters.
      const sent: Array<Promise<{ cluster: string; seq: number; stored: boolean }>> = [];
      for (let seq = 1; seq <= 4; seq++)
        for (const [i, name] of names.entries()) {
          const other = names[names.length - 1 - i]!;
          sent.push(
            a
              .ingest(name, report(seq, { live: seq % 2 ? 'x' : undefined }), 'stream')
              .then((o) => ({ cluster: name, ...o })),
          );
          sent.push(
            b
              .ingest(other, report(seq, { live: seq % 2 ? 'x' : undefined }), 'stream')
              .then((o) => ({ cluster: other, ...o })),
          );
        }
      const outcomes = await Promise.all(sent);
      assert.deepEqual(failures, [], 'no transaction failed (a deadlock would, and be retried)');
      assert.ok(lockOrders.length >= 8, `a batch a seq on each replica, got ${lockOrders.length}`);
      for (const order of lockOrders) assert.deepEqual(order, [...order].sort(), 'rows locked in name order');
      for (const name of names)
        for (let seq = 1; seq <= 4; seq++)
          assert.equal(
            outcomes.filter((o) => o.cluster === name && o.seq === seq && o.stored).length,
            1,
            `${name} seq ${seq}: stored by exactly one replica`,
          );
      const stored = await database.db.select().from(statusReports);
      assert.equal(stored.filter((r) => names.includes(r.cluster)).length, names.length * 4);
      for (const row of (await database.db.select().from(clusterStatus)).filter((r) =>
        names.includes(r.cluster),
      ))
        assert.equal(row.lastSeq, 4, `${row.cluster}: at its newest report`);
      const open = await database.db
        .select()
        .from(drift)
        .where(and(eq(drift.cluster, 'r00')));
      assert.deepEqual(
        open.map((r) => r.clearedAt !== null),
        [true, true],
        'r00: drift opened by seq 1 and 3, each cleared by the next report',
      );
    });

    test('a report the database refuses fails alone: the others of its batch are stored', async () => {
      const bad = report(20, { error: 'nul \u0000 byte' });
      const results = await Promise.allSettled([
        ingest.ingest('c20', report(20), 'stream'),
        ingest.ingest('c21', bad, 'stream'),
        ingest.ingest('c22', report(20), 'stream'),
      ]);
      assert.equal(results[0]!.status, 'fulfilled');
      assert.equal(results[1]!.status, 'rejected');
      assert.equal(results[2]!.status, 'fulfilled');
      const seqs = await database.db.select().from(clusterStatus);
      assert.equal(seqs.find((r) => r.cluster === 'c20')?.lastSeq, 20);
      assert.equal(seqs.find((r) => r.cluster === 'c21')?.lastSeq, 3);
      assert.equal(seqs.find((r) => r.cluster === 'c22')?.lastSeq, 20);
    });
  });
}
