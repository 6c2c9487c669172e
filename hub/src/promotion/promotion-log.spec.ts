import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Database } from '../db/database.js';
import { openTestDatabase, TEST_DATABASE_KINDS } from '../db/testing.js';
import { createPromotionLog, type PromotionLog } from './promotion-log.js';

for (const kind of TEST_DATABASE_KINDS) {
  describe(`promotion log on ${kind}`, () => {
    let database: Database;
    let log: PromotionLog;
    before(async () => {
      database = await openTestDatabase(kind);
      log = createPromotionLog(database.db);
    });
    after(() => database?.close());

    test('promotions and rollbacks are recorded with who, from which revision, and listed newest first', async () => {
      await log.record({
        actor: 'alice',
        from: 'dev',
        to: 'staging',
        fromRevision: 'aaa',
        commit: 'c1',
        kind: 'promote',
      });
      await log.record({
        actor: 'bob',
        from: 'staging',
        to: 'staging',
        fromRevision: 'c1',
        commit: 'c2',
        kind: 'rollback',
        undoes: 1,
      });
      const list = await log.list();
      assert.deepEqual(
        list.map((p) => [p.actor, p.kind, p.fromRevision, p.commit]),
        [
          ['bob', 'rollback', 'c1', 'c2'],
          ['alice', 'promote', 'aaa', 'c1'],
        ],
      );
      assert.ok(!Number.isNaN(Date.parse(list[0]!.at)));
    });
  });
}
