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
import { asc, eq } from 'drizzle-orm';
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
