import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '@flotilla/e2e/harness';
import { createLogger } from '@flotilla/shared';
import { sql } from 'drizzle-orm';
import type { Database } from './database.js';
import { type LeaderElection, startLeaderElection } from './leader.js';
import { openTestDatabase } from './testing.js';

const logger = createLogger({ name: 'test', level: 'silent' });

/** One replica's view of the election: what it was told, and the passes it was asked to run. */
function replica(database: Database) {
  const seen = { leading: false, elected: 0, deposed: 0, passes: [] as string[] };
  const start = () =>
    startLeaderElection({
      database,
      logger,
      checkMs: 100,
      onElected: () => {
        seen.leading = true;
        seen.elected++;
      },
      onDeposed: () => {
        seen.leading = false;
        seen.deposed++;
      },
      onPassRequested: (reason) => seen.passes.push(reason),
    });
  return { seen, start };
}

describe('leader election among hub replicas on one PostgreSQL', () => {
  let database: Database;
  const running: LeaderElection[] = [];

  before(async () => {
    database = await openTestDatabase('postgres');
  });
  after(async () => {
    for (const e of running) await e.stop();
    await database?.close();
  });

  test('exactly one replica leads; a follower hands its passes to the leader; when the leader goes another takes over', async () => {
    const a = replica(database);
    const b = replica(database);
    const ea = await a.start();
    const eb = await b.start();
    running.push(ea, eb);
    assert.equal(ea.isLeader(), true);
    assert.equal(eb.isLeader(), false, 'the lock is held: the second replica follows');
    assert.deepEqual([a.seen.elected, b.seen.elected], [1, 0]);
    // Still one leader after several checks.
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual([ea.isLeader(), eb.isLeader()], [true, false]);

    await eb.requestPass('webhook at b');
    await eventually(() => assert.deepEqual(a.seen.passes, ['webhook at b']), { timeoutMs: 5000 });
    assert.deepEqual(b.seen.passes, []);
    await ea.requestPass('api at a');
    assert.deepEqual(a.seen.passes, ['webhook at b', 'api at a'], 'the leader runs its own at once');

    await ea.stop();
    assert.equal(a.seen.deposed, 1);
    await eventually(() => assert.equal(eb.isLeader(), true), { timeoutMs: 5000 });
    assert.equal(b.seen.elected, 1);
  });

  test('a leader whose database session is killed stops leading, and leads again once it gets the lock back', async () => {
    const c = replica(database);
    const ec = await c.start();
    running.push(ec);
    // The first test left a leader running: stop everything else first.
    for (const e of running.slice(0, -1)) await e.stop();
    await eventually(() => assert.equal(ec.isLeader(), true), { timeoutMs: 5000 });
    // An operator (or a failover) ends the leader's backend: the server drops its lock.
    await database.db.execute(
      sql.raw(
        `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted ` +
          `AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      ),
    );
    await eventually(() => assert.ok(c.seen.deposed >= 1, 'not yet: c.seen.deposed >= 1'), {
      timeoutMs: 5000,
    });
    await eventually(() => assert.equal(ec.isLeader(), true), { timeoutMs: 5000 });
    assert.ok(c.seen.elected >= 2, 'elected again on a new session');
  });

  test('a hub on PGlite is alone and always leads', async () => {
    const lite = await openTestDatabase('pglite');
    try {
      const d = replica(lite);
      const e = await d.start();
      assert.equal(e.isLeader(), true);
      await e.requestPass('webhook');
      assert.deepEqual(d.seen.passes, ['webhook']);
      await e.stop();
    } finally {
      await lite.close();
    }
  });
});
