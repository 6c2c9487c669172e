import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { eventually } from '@flotilla/e2e/harness';
import { createLogger } from '@flotilla/shared';
import type { Database } from '../db/database.js';
import { openTestDatabase } from '../db/testing.js';
import { parseReceivers } from './config.js';
import { createNotifier } from './notifier.js';

/** A real HTTP receiver that records bodies, and can be down (503) or slow. */
function receiver() {
  const got: unknown[] = [];
  let mode: 'up' | 'down' | 'slow' = 'up';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'slow') return; // never answers
      if (mode === 'down') {
        res.writeHead(503).end();
        return;
      }
      got.push({ path: req.url, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(204).end();
    });
  });
  return {
    got,
    set: (m: typeof mode) => {
      mode = m;
    },
    async start() {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('webhook notifications', () => {
  let database: Database;
  const lines: string[] = [];
  const logger = createLogger({
    name: 'notify-test',
    level: 'debug',
    destination: { write: (l: string) => lines.push(l) },
  } as unknown as Parameters<typeof createLogger>[0]);

  before(async () => {
    database = await openTestDatabase('pglite');
  });
  after(() => database?.close());

  test('an event is delivered once per receiver, as generic JSON and as a Slack-compatible body, however often it is emitted', async (t) => {
    const a = receiver();
    const url = await a.start();
    t.after(() => a.stop());
    const n = createNotifier({
      db: database.db,
      receivers: [
        { name: 'generic', url: `${url}/hook/s3cr3t-generic`, format: 'json' },
        { name: 'slack', url: `${url}/services/s3cr3t-slack`, format: 'slack', events: ['rollout.halted'] },
      ],
      logger,
      pollMs: 50,
    });
    n.start();
    t.after(() => n.stop());
    for (let i = 0; i < 3; i++)
      n.emit({
        kind: 'rollout.halted',
        key: 'prod:k:1',
        summary: 'rollout of prod halted at wave 2',
        environment: 'prod',
      });
    n.emit({ kind: 'promotion.made', key: 'abc', summary: 'promoted dev → staging' });
    await eventually(() => assert.equal(a.got.length, 3, `3 deliveries, got ${a.got.length}`), {
      timeoutMs: 5000,
    });
    const bodies = a.got as Array<{ path: string; body: Record<string, unknown> }>;
    assert.deepEqual(
      bodies.filter((b) => b.path === '/services/s3cr3t-slack').map((b) => b.body),
      [{ text: '[flotilla] rollout.halted: rollout of prod halted at wave 2' }],
    );
    const generic = bodies.filter((b) => b.path === '/hook/s3cr3t-generic').map((b) => b.body.kind);
    assert.deepEqual(generic.sort(), ['promotion.made', 'rollout.halted']);
    // The receiver has the body before the notifier has its answer and records the delivery.
    await eventually(
      async () => {
        const history = await n.history();
        assert.ok(
          history.every((d) => d.state === 'delivered'),
          `every delivery recorded as delivered, got ${JSON.stringify(history.map((d) => d.state))}`,
        );
      },
      { timeoutMs: 20_000 },
    );
  });

  test('a receiver that is down gets the event after it comes back; a slow one delays nothing; its URL is never logged or listed', async (t) => {
    const down = receiver();
    const slow = receiver();
    const downUrl = await down.start();
    const slowUrl = await slow.start();
    t.after(() => Promise.all([down.stop(), slow.stop()]));
    down.set('down');
    slow.set('slow');
    const n = createNotifier({
      db: database.db,
      receivers: [
        { name: 'flaky', url: `${downUrl}/token-FLAKY`, format: 'json' },
        { name: 'slow', url: `${slowUrl}/token-SLOW`, format: 'json' },
      ],
      logger,
      pollMs: 50,
      baseDelayMs: 50,
      maxDelayMs: 200,
      timeoutMs: 300,
    });
    n.start();
    t.after(() => n.stop());
    // emit queues and returns: it hands back nothing to wait on, so no receiver can hold up its caller.
    const emitted: unknown = n.emit({
      kind: 'cluster.drift',
      key: 'd1',
      summary: 'cluster c1: ConfigMap a/b drifted',
    });
    assert.equal(emitted, undefined, 'emit returns at once, with nothing to wait on');
    await eventually(
      async () => {
        const h = (await n.history()).find((d) => d.receiver === 'flaky' && d.key === 'cluster.drift:d1');
        assert.ok(h && h.attempts >= 2 && h.lastError === 'HTTP 503', `retried: ${JSON.stringify(h)}`);
      },
      { timeoutMs: 5000, message: 'retried with backoff' },
    );
    down.set('up');
    await eventually(() => assert.equal(down.got.length, 1, 'delivered once it is back'), {
      timeoutMs: 5000,
    });
    // The slow receiver never answers: its attempt ends at the timeout, and it stays pending.
    const rows = await eventually(
      async () => {
        const all = await n.history();
        const row = all.find((d) => d.receiver === 'slow');
        assert.ok(row?.lastError, `the slow receiver's attempt timed out: ${JSON.stringify(row)}`);
        return all;
      },
      { timeoutMs: 5000 },
    );
    const slowRow = rows.find((d) => d.receiver === 'slow')!;
    assert.equal(slowRow.state, 'pending');
    assert.ok(!slowRow.lastError!.includes('token-SLOW'), slowRow.lastError ?? '');
    for (const text of [lines.join('\n'), JSON.stringify(rows)]) {
      assert.ok(!text.includes('token-FLAKY'), 'the flaky URL never appears');
      assert.ok(!text.includes('token-SLOW'), 'the slow URL never appears');
    }
  });

  test('receivers file: a bad entry names the field, never the URL', () => {
    assert.throws(
      () => parseReceivers('receivers: [{name: a, url: "ftp://x/SECRET"}]', 'notify.yaml'),
      (err: Error) =>
        /notify.yaml: receivers\[0\].url: must be an http/.test(err.message) &&
        !err.message.includes('SECRET'),
    );
    assert.throws(
      () => parseReceivers('receivers: [{name: a, url: "http://x", events: [nope]}]', 'n.yaml'),
      /events: "nope" is not one of/,
    );
    assert.deepEqual(
      parseReceivers('receivers: [{name: ops, url: "https://h/x", format: slack}]', 'n.yaml'),
      [{ name: 'ops', url: 'https://h/x', format: 'slack' }],
    );
  });
});
