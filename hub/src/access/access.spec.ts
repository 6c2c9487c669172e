import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import type { Route } from '../api/router.js';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createAuditLog } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { apiTokens } from '../db/schema.js';
import { openTestDatabase } from '../db/testing.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { createAccess } from './access.js';
import { can, type Identity, ROLE_PERMISSIONS } from './roles.js';
import { tokenRoutes } from './routes.js';
import { createTokenStore, type TokenStore } from './token-store.js';

const BOOTSTRAP = newSecret('flt_admin');
const SECRET_HASH = '[redacted 0123456789ab]';

test('roles: a viewer only reads; a deployer and an approver act only in their environments; an admin everywhere', () => {
  const id = (role: Identity['role'], environments: string[] = []): Identity => ({
    actor: 'x',
    role,
    environments,
  });
  assert.deepEqual(ROLE_PERMISSIONS.viewer, ['read']);
  assert.equal(can(id('viewer'), 'read-secrets'), false);
  assert.equal(can(id('deployer', ['staging']), 'promote', 'staging'), true);
  assert.equal(can(id('deployer', ['staging']), 'promote', 'prod'), false);
  assert.equal(can(id('deployer', ['staging']), 'promote'), true, 'on some environment');
  assert.equal(can(id('deployer'), 'promote', 'prod'), true, 'no --env: every environment');
  assert.equal(can(id('deployer'), 'approve', 'prod'), false);
  assert.equal(can(id('deployer'), 'clusters'), false);
  assert.equal(can(id('approver', ['prod']), 'approve', 'prod'), true);
  assert.equal(can(id('approver', ['prod']), 'promote', 'prod'), false);
  for (const p of ['clusters', 'tokens', 'keys', 'promote', 'approve'] as const)
    assert.ok(can(id('admin'), p, 'prod'));
});

describe('access: API tokens with roles and environments, checked at every route', () => {
  let database: Database;
  let api: ApiServer;
  let tokens: TokenStore;
  let now = Date.now();
  const audit = () => createAuditLog(database.db);

  /** Stand-ins for the hub's routes, declared the way they are. */
  const routes = (): Route[] => [
    ...tokenRoutes(tokens),
    {
      method: 'GET',
      path: '/api/v1/fleet/drift',
      permission: 'read',
      handle: async () => ({ json: { drift: [{ path: 'data.password', desired: SECRET_HASH }] } }),
    },
    {
      method: 'POST',
      path: '/api/v1/promotions',
      permission: 'promote',
      environments: async (req) => [String((await req.json()).to)],
      handle: async (req) => ({ status: 201, json: { by: req.actor } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/clusters/:name',
      permission: 'clusters',
      handle: async (req) => ({ json: { removed: req.params.name, by: req.actor } }),
    },
  ];

  before(async () => {
    database = await openTestDatabase('pglite');
    tokens = createTokenStore({ db: database.db, audit: audit(), now: () => now });
    api = await startApiServer({
      listen: '127.0.0.1:0',
      access: createAccess({
        bootstrapTokenHash: hashSecret(BOOTSTRAP),
        tokens,
        audit: audit(),
        now: () => now,
      }),
      routes: routes(),
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
  });
  after(async () => {
    await api?.close();
    await database?.close();
  });

  const call = (
    token: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const create = async (name: string, role: string, environments: string[] = [], ttl?: string) => {
    const res = await call(BOOTSTRAP, 'POST', '/api/v1/tokens', {
      name,
      role,
      environments,
      ...(ttl ? { ttl } : {}),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as {
      name: string;
      role: string;
      environments: string[];
      token: string;
      expiresAt: string;
    };
  };

  test('the bootstrap admin token creates a token, shown once and stored only as a hash; list never shows it', async () => {
    const created = await create('ci-bot', 'deployer', ['staging'], '7d');
    assert.match(created.token, /^flt_tok_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(created.environments, ['staging']);
    assert.ok(Math.abs(Date.parse(created.expiresAt) - (now + 7 * 86_400_000)) < 5000, created.expiresAt);
    const dump = JSON.stringify(await database.db.select().from(apiTokens));
    assert.ok(!dump.includes(created.token), 'no clear token in the database');
    assert.ok(dump.includes(hashSecret(created.token)));
    const list = await (await call(BOOTSTRAP, 'GET', '/api/v1/tokens')).text();
    assert.match(list, /"name":"ci-bot","role":"deployer","environments":\["staging"\]/);
    assert.ok(!list.includes(created.token) && !list.includes(hashSecret(created.token)));
    const again = await call(BOOTSTRAP, 'POST', '/api/v1/tokens', { name: 'ci-bot', role: 'viewer' });
    assert.equal(again.status, 409);
    const bad = await call(BOOTSTRAP, 'POST', '/api/v1/tokens', { name: 'x', role: 'owner' });
    assert.equal(bad.status, 400);
    assert.match(
      ((await bad.json()) as { error: string }).error,
      /^role: "owner" is not one of viewer, deployer, approver, admin/,
    );
    const entries = (await audit().list()).filter((e) => e.action === 'token.create');
    assert.deepEqual(
      entries.map((e) => [e.actor, e.outcome]),
      [
        ['admin', 'refused'],
        ['admin', 'ok'],
      ],
    );
    assert.ok(!JSON.stringify(entries).includes(created.token));
  });

  test('a viewer reads, without Secret-derived values, and is refused every change: 403 naming the permission, audited under its name', async () => {
    const { token } = await create('vera', 'viewer');
    const drift = await call(token, 'GET', '/api/v1/fleet/drift');
    assert.equal(drift.status, 200);
    const text = await drift.text();
    assert.ok(text.includes('[redacted]') && !text.includes(SECRET_HASH), text);
    assert.ok((await (await call(BOOTSTRAP, 'GET', '/api/v1/fleet/drift')).text()).includes(SECRET_HASH));
    for (const [method, path, body, permission] of [
      ['POST', '/api/v1/promotions', { from: 'dev', to: 'staging' }, 'promote'],
      ['POST', '/api/v1/promotions', {}, 'promote'],
      ['DELETE', '/api/v1/clusters/dev-1', undefined, 'clusters'],
      ['POST', '/api/v1/tokens', { name: 'mine', role: 'admin' }, 'tokens'],
      ['GET', '/api/v1/tokens', undefined, 'tokens'],
    ] as const) {
      const res = await call(token, method, path, body);
      assert.equal(res.status, 403, `${method} ${path}`);
      const refusal = (await res.json()) as { error: string; code: string; permission: string };
      assert.equal(refusal.code, 'permission-denied');
      assert.equal(refusal.permission, permission);
      assert.match(refusal.error, new RegExp(`token:vera \\(viewer\\) lacks ${permission}`));
    }
    const refused = (await audit().list()).filter(
      (e) => e.action === 'access.refused' && e.actor === 'token:vera',
    );
    assert.equal(refused.length, 5, 'an empty body is refused for the role before it is read: 403, not 400');
    assert.match(refused.at(-1)!.detail!, /^POST \/api\/v1\/promotions: permission denied/);
  });

  test('a deployer of staging promotes into staging and is refused prod, the environment named', async () => {
    const { token } = await create('dora', 'deployer', ['staging']);
    const ok = await call(token, 'POST', '/api/v1/promotions', { from: 'dev', to: 'staging' });
    assert.equal(ok.status, 201);
    assert.deepEqual(await ok.json(), { by: 'token:dora' });
    const prod = await call(token, 'POST', '/api/v1/promotions', { from: 'staging', to: 'prod' });
    assert.equal(prod.status, 403);
    const refusal = (await prod.json()) as { error: string; environment: string };
    assert.equal(refusal.environment, 'prod');
    assert.match(refusal.error, /token:dora \(deployer of staging\) lacks promote on environment prod/);
  });

  test('the actor is the authenticated identity: an x-flotilla-actor header names nobody', async () => {
    const res = await call(BOOTSTRAP, 'DELETE', '/api/v1/clusters/c1', undefined, {
      'x-flotilla-actor': 'mallory',
    });
    assert.deepEqual(await res.json(), { removed: 'c1', by: 'admin' });
    const { token } = await create('ada', 'admin');
    const as = await call(token, 'DELETE', '/api/v1/clusters/c2', undefined, {
      'x-flotilla-actor': 'mallory',
    });
    assert.deepEqual(await as.json(), { removed: 'c2', by: 'token:ada' });
  });

  test('an expired or revoked token is a 401; revoking is audited; a wrong token is a 401', async () => {
    const short = await create('brief', 'viewer', [], '1h');
    const long = await create('gone', 'viewer');
    assert.equal((await call(short.token, 'GET', '/api/v1/fleet/drift')).status, 200);
    now += 3600_000 + 1;
    assert.equal((await call(short.token, 'GET', '/api/v1/fleet/drift')).status, 401, 'expired');
    const listed = (await (await call(BOOTSTRAP, 'GET', '/api/v1/tokens')).json()) as {
      tokens: { name: string; expired: boolean }[];
    };
    assert.equal(listed.tokens.find((t) => t.name === 'brief')?.expired, true);
    assert.equal((await call(BOOTSTRAP, 'DELETE', '/api/v1/tokens/gone')).status, 200);
    assert.equal((await call(long.token, 'GET', '/api/v1/fleet/drift')).status, 401, 'revoked');
    assert.equal((await call(BOOTSTRAP, 'DELETE', '/api/v1/tokens/gone')).status, 404);
    assert.equal((await call('flt_tok_wrong', 'GET', '/api/v1/fleet/drift')).status, 401);
    const revokes = (await audit().list()).filter((e) => e.action === 'token.revoke');
    assert.deepEqual(
      revokes.map((e) => e.outcome),
      ['refused', 'ok'],
    );
    assert.equal((await create('gone', 'deployer')).role, 'deployer', 'a revoked name can be used again');
  });
});
