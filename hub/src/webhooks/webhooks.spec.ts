import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import { createAccess } from '../access/access.js';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createAuditLog } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { openTestDatabase } from '../db/testing.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { createCoalescer, createRateLimiter } from './limits.js';
import { webhookRoutes } from './routes.js';
import { verifyWebhook } from './verify.js';

const SECRET = 'whsec-0123456789';
const BODY = new TextEncoder().encode('{"ref":"refs/heads/main"}');
const hmac = (secret: string, body: Uint8Array) => createHmac('sha256', secret).update(body).digest('hex');

test('GitHub, Gitea/Forgejo and GitLab calls are verified against the secret; a wrong or missing signature is named', () => {
  const ok = (headers: Record<string, string>) => verifyWebhook(headers, BODY, SECRET);
  assert.deepEqual(ok({ 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY)}` }), {
    ok: true,
    source: 'github',
  });
  assert.deepEqual(ok({ 'x-gitea-signature': hmac(SECRET, BODY) }), { ok: true, source: 'gitea' });
  assert.deepEqual(ok({ 'x-forgejo-signature': hmac(SECRET, BODY) }), { ok: true, source: 'gitea' });
  assert.deepEqual(ok({ 'x-gitlab-token': SECRET }), { ok: true, source: 'gitlab' });
  const forged = ok({ 'x-hub-signature-256': `sha256=${hmac('guess', BODY)}` });
  assert.deepEqual(forged, {
    ok: false,
    source: 'github',
    reason: 'X-Hub-Signature-256 does not match the body',
  });
  const tampered = verifyWebhook(
    { 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY)}` },
    new TextEncoder().encode('{"ref":"refs/heads/evil"}'),
    SECRET,
  );
  assert.equal(tampered.ok, false, 'the signature covers the body');
  assert.equal(ok({ 'x-hub-signature-256': 'sha1=abc' }).ok, false);
  assert.equal(ok({ 'x-gitea-signature': 'zz' }).ok, false);
  assert.equal(ok({ 'x-gitlab-token': `${SECRET}x` }).ok, false);
  assert.deepEqual(ok({}), {
    ok: false,
    source: 'unsigned',
    reason: 'no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header',
  });
});

test('the rate limiter lets a burst through, then the per-minute rate, per source, and forgets the oldest source', () => {
  let now = 0;
  const limiter = createRateLimiter({ perMinute: 60, burst: 3, maxSources: 2, now: () => now });
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take('a')),
    [true, true, true, false],
  );
  assert.equal(limiter.take('b'), true, 'another source has its own bucket');
  now += 1000;
  assert.deepEqual([limiter.take('a'), limiter.take('a')], [true, false], 'one call a second');
  limiter.take('c');
  assert.equal(limiter.take('b'), true, 'b was forgotten with a full bucket again');
});

test('the rate limiter keeps at most maxSources buckets, and drops a bucket once it would have refilled', () => {
  // Not 0: lru-cache reads a start time of 0 as "no time".
  let now = 1_000_000;
  const limiter = createRateLimiter({ perMinute: 60, burst: 3, maxSources: 100, now: () => now });
  for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(limiter.size, 100, 'a spray of 1000 addresses holds 100 buckets');
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take('a')),
    [true, true, true, false],
  );
  // Burst 3 at one a second: 3 s after its last call a bucket is full again, and so forgotten.
  now += 3000;
  assert.equal(limiter.size, 100, 'not before');
  now += 1;
  assert.equal(limiter.size, 0, 'every bucket past its TTL is gone');
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take('a')),
    [true, true, true, false],
    'a forgotten source starts with a full bucket',
  );
});

test('a flood of asks runs at most one fetch in flight and one queued', async () => {
  let runs = 0;
  let release!: () => void;
  const fetchSoon = createCoalescer(async () => {
    runs++;
    await new Promise<void>((r) => {
      release = r;
    });
  });
  const answers = Array.from({ length: 100 }, () => fetchSoon().coalesced);
  assert.equal(runs, 1, 'one running');
  assert.deepEqual(answers.slice(0, 3), [false, false, true], 'the second is queued, the rest fold into it');
  release();
  await new Promise((r) => setImmediate(r));
  assert.equal(runs, 2, 'the queued one runs once');
  release();
  await new Promise((r) => setImmediate(r));
  assert.equal(runs, 2, 'and nothing more');
});

describe('POST /api/v1/webhooks/git with a secret', () => {
  let database: Database;
  let api: ApiServer;
  let triggers = 0;
  const audit = () => createAuditLog(database.db);

  before(async () => {
    database = await openTestDatabase('pglite');
    api = await startApiServer({
      listen: '127.0.0.1:0',
      access: createAccess({ bootstrapTokenHash: hashSecret(newSecret('flt_admin')) }),
      routes: webhookRoutes({
        options: { secret: SECRET, burst: 5, perMinute: 1 },
        audit: audit(),
        trigger: async () => {
          triggers++;
        },
      }),
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
  });
  after(async () => {
    await api?.close();
    await database?.close();
  });

  const post = (headers: Record<string, string>) =>
    fetch(`${api.url}/api/v1/webhooks/git`, { method: 'POST', headers, body: BODY });

  test('a GitHub-signed call is accepted and asks for a fetch; a forged or unsigned one is 401 and audited; a flood is 429', async () => {
    const signed = await post({ 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY)}` });
    assert.equal(signed.status, 202);
    assert.equal(triggers, 1);
    const forged = await post({ 'x-hub-signature-256': `sha256=${hmac('guess', BODY)}` });
    assert.equal(forged.status, 401);
    assert.match(((await forged.json()) as { error: string }).error, /X-Hub-Signature-256 does not match/);
    assert.equal((await post({})).status, 401);
    assert.equal(triggers, 1, 'refused calls fetch nothing');
    const refused = (await audit().list()).filter((e) => e.action === 'webhook.refused');
    assert.deepEqual(
      refused.map((e) => [e.outcome, e.detail]),
      [
        ['refused', 'unsigned: no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header'],
        ['refused', 'github: X-Hub-Signature-256 does not match the body'],
      ],
    );
    assert.match(refused[0]!.actor, /^webhook@(127\.0\.0\.1|::ffff:127\.0\.0\.1)$/);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await post({ 'x-gitlab-token': SECRET })).status);
    assert.deepEqual(statuses, [202, 202, 429, 429, 429], 'a burst of 5, three of them used above');
    assert.ok(!JSON.stringify(await audit().list()).includes(SECRET), 'the secret is never audited');
  });
});
