import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Health, Phase, ReportStatusRequestSchema, SyncState } from '@flotilla/proto';
import { type Bundle, createLogger, redactSecretValue, secretHashKey } from '@flotilla/shared';
import { type Access, createAccess } from '../access/access.js';
import { createTokenStore, type TokenStore } from '../access/token-store.js';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createAuditLog } from '../audit/audit.js';
import { parseFleetConfig } from '../config/index.js';
import type { Database } from '../db/database.js';
import { bundles, clusters } from '../db/schema.js';
import { openTestDatabase } from '../db/testing.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { createPromotionLog } from '../promotion/promotion-log.js';
import { createSecretValues } from '../secrets/secret-values.js';
import { createFleetView } from '../status/fleet-view.js';
import { createStatusIngest } from '../status/ingest.js';
import { createPipelineView } from './pipeline.js';
import { dashboardRoutes, SESSION_COOKIE } from './routes.js';
import { createSessions } from './sessions.js';

const ADMIN_TOKEN = newSecret('flt_admin');
const HOSTILE = '<script>alert(1)</script>';
const SECRET_HASH = '[redacted 0123456789ab]';
const CLEAR_PASSWORD = 'hunter2-in-clear';
const HUB_KEY = secretHashKey('dashboard spec hub key');
const PIPELINE_YAML = `environments:
  - {name: dev, path: environments/dev}
  - {name: prod, path: environments/prod, promotion: {soak: 10m, approve: true}}
pipeline: [dev, prod]
`;

describe('dashboard: the fleet in a browser, behind a login', () => {
  let database: Database;
  let api: ApiServer;
  let tokens: TokenStore;
  let access: Access;
  let now = Date.now();
  const audit = () => createAuditLog(database.db);

  before(async () => {
    database = await openTestDatabase('pglite');
    const db = database.db;
    await db.insert(clusters).values([
      { name: 'dev-1', environment: 'dev', labels: { region: 'eu' } },
      { name: 'prod-1', environment: 'prod', labels: {} },
    ]);
    await db.insert(bundles).values({
      cluster: 'dev-1',
      generation: 3,
      contentDigest: 'sha256:x',
      revision: 'c0ffee0123456789',
      envelope: new Uint8Array([1]),
      sources: { 'apps/Deployment/shop/web': 'app/monitoring' },
    });
    const since = timestampFromDate(new Date('2026-11-20T10:00:00Z'));
    await createStatusIngest(db).ingest(
      'dev-1',
      create(ReportStatusRequestSchema, {
        seq: 1n,
        observedAt: timestampFromDate(new Date()),
        body: {
          case: 'status',
          value: {
            appliedGeneration: 3n,
            revision: 'c0ffee0123456789',
            phase: Phase.SYNCED,
            health: Health.DEGRADED,
            resources: [
              {
                ref: { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' },
                sync: SyncState.OUT_OF_SYNC,
                health: Health.DEGRADED,
                healthReason: 'ProgressDeadlineExceeded',
                drift: [{ path: 'spec.replicas', desired: '2', live: '7', since }],
              },
              {
                ref: { group: '', version: 'v1', kind: 'Secret', namespace: 'shop', name: 'db' },
                sync: SyncState.OUT_OF_SYNC,
                health: Health.HEALTHY,
                drift: [{ path: 'data.password', desired: SECRET_HASH, live: SECRET_HASH, since }],
              },
              {
                ref: { group: '', version: 'v1', kind: 'ConfigMap', namespace: 'shop', name: HOSTILE },
                sync: SyncState.SYNCED,
                health: Health.HEALTHY,
              },
            ],
          },
        },
      }),
      'stream',
    );
    await createPromotionLog(db).record({
      actor: 'admin:ada',
      from: 'dev',
      to: 'prod',
      fromRevision: 'c0ffee0123456789',
      commit: 'beef000000000000',
      kind: 'promote',
    });
    tokens = createTokenStore({ db, audit: audit() });
    access = createAccess({ bootstrapTokenHash: hashSecret(ADMIN_TOKEN), tokens, audit: audit() });
    api = await startApiServer({
      listen: '127.0.0.1:0',
      access,
      routes: dashboardRoutes({
        fleet: createFleetView({ db, heartbeatWindowMs: 30_000 }),
        promotions: { history: (limit) => createPromotionLog(db).list(limit ? { limit } : {}) },
        audit: audit(),
        access,
        sessions: createSessions({ ttlMs: 60_000, now: () => now }),
        secretValues: createSecretValues(HUB_KEY),
        bundles: {
          applied: async (cluster) =>
            cluster === 'dev-1'
              ? ({
                  objects: [
                    {
                      apiVersion: 'apps/v1',
                      kind: 'Deployment',
                      metadata: { name: 'web', namespace: 'shop' },
                      spec: { replicas: 2 },
                    },
                    {
                      apiVersion: 'v1',
                      kind: 'Secret',
                      metadata: { name: 'db', namespace: 'shop' },
                      stringData: { password: CLEAR_PASSWORD },
                    },
                  ],
                } as unknown as Bundle)
              : undefined,
        },
        pipeline: createPipelineView({
          config: async () => parseFleetConfig(PIPELINE_YAML),
          fleet: createFleetView({ db, heartbeatWindowMs: 30_000 }),
          promotions: {
            diff: async (from, to) => ({
              from,
              to,
              fromRevision: 'c0ffee0123456789',
              fromRevisionSource: 'running',
              toRevision: null,
              files: [{ path: 'deployment.yaml', change: 'modified', patch: '' }],
            }),
            history: async () => [],
          },
          source: {
            commitParents: async () => [],
            treeId: async () => null,
            defaultBranch: async () => 'main',
          },
        }),
      }),
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
  });
  after(async () => {
    await api?.close();
    await database?.close();
  });

  const get = (path: string, cookie?: string) =>
    fetch(`${api.url}${path}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  const login = (token: string) =>
    fetch(`${api.url}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
  const sessionCookie = (res: Response) => {
    const set = res.headers.get('set-cookie') ?? '';
    return set.split(';')[0]!;
  };

  test('without a session every page sends the browser to the login form, which has a strict CSP', async () => {
    for (const path of ['/ui', '/ui/clusters/dev-1', '/ui/drift', '/ui/promotions']) {
      const res = await get(path);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get('location'), '/ui/login');
    }
    assert.equal((await get('/')).headers.get('location'), '/ui');
    const form = await get('/ui/login');
    assert.equal(form.status, 200);
    assert.match(form.headers.get('content-type') ?? '', /^text\/html/);
    const csp = form.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /script-src|unsafe-inline/, 'no script runs on any page');
    assert.match(await form.text(), /<input id="token" name="token" type="password"/);
  });

  test('a wrong token is refused and audited, and gets no session', async () => {
    const res = await login('flt_admin_wrong');
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('set-cookie'), null);
    assert.match(await res.text(), /not valid here/);
    const refused = (await audit().list()).filter((e) => e.action === 'dashboard.login');
    assert.equal(refused.at(0)?.outcome, 'refused');
  });

  test('the admin token buys an HttpOnly, SameSite=Strict session; the fleet page shows status and drift, escaped', async () => {
    const res = await login(ADMIN_TOKEN);
    assert.equal(res.status, 303);
    const set = res.headers.get('set-cookie') ?? '';
    assert.match(
      set,
      new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/ui`),
    );
    assert.ok(!set.includes(ADMIN_TOKEN), 'the cookie is a session id, not the token');
    const cookie = sessionCookie(res);
    const fleet = await get('/ui', cookie);
    assert.equal(fleet.status, 200);
    const body = await fleet.text();
    assert.match(body, /<meta http-equiv="refresh" content="5">/);
    assert.match(body, /href="\/ui\/clusters\/dev-1">dev-1</);
    assert.match(body, /href="\/ui\/clusters\/prod-1">prod-1</);
    assert.match(body, /class="b bad">Degraded</, 'dev-1 health');
    assert.match(body, /disconnected, last seen never/, 'prod-1 never reported: not a stale green');
    assert.match(body, /spec\.replicas/);
    assert.ok(body.includes('[redacted 0123456789ab]'), 'Secret drift as the hash the agent sent');
    assert.ok(!body.includes(ADMIN_TOKEN));
  });

  test('a cluster page lists its objects with reasons and drift; hostile names stay text; unknown clusters are 404', async () => {
    const cookie = sessionCookie(await login(ADMIN_TOKEN));
    const res = await get('/ui/clusters/dev-1', cookie);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.match(body, /apps\/Deployment shop\/web/);
    assert.match(body, /ProgressDeadlineExceeded/);
    assert.ok(!body.includes(HOSTILE), 'an object name never becomes markup');
    assert.ok(body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.equal((await get('/ui/clusters/nope', cookie)).status, 404);
    assert.match(await (await get('/ui/promotions', cookie)).text(), /admin:ada/);
    assert.match(await (await get('/ui/drift', cookie)).text(), /Drift history/);
  });

  test('objects and drift show their source, and a source link filters the page to it', async () => {
    const cookie = sessionCookie(await login(ADMIN_TOKEN));
    const all = await (await get('/ui/clusters/dev-1', cookie)).text();
    assert.match(all, /<th>Source<\/th>/);
    assert.ok(all.includes('href="/ui/clusters/dev-1?source=app%2Fmonitoring">app/monitoring</a>'), all);
    assert.ok(all.includes('href="/ui/clusters/dev-1?source=env%2Fdev">env/dev</a>'));
    const app = await (await get('/ui/clusters/dev-1?source=app%2Fmonitoring', cookie)).text();
    assert.match(app, /Showing objects from <strong>app\/monitoring<\/strong> only/);
    assert.match(app, /apps\/Deployment shop\/web/);
    assert.ok(!app.includes('Secret shop/db'), 'the environment’s objects are left out');
    const fleet = await (await get('/ui?source=env%2Fdev', cookie)).text();
    assert.ok(fleet.includes('data.password'), 'drift of the environment’s Secret');
    assert.ok(!fleet.includes('spec.replicas'), 'drift of the app’s Deployment is left out');
    const history = await (await get('/ui/drift?source=app%2Fmonitoring', cookie)).text();
    assert.ok(history.includes('spec.replicas') && !history.includes('data.password'));
  });

  test('a viewer token logs in and reads every page, Secret hashes as a bare [redacted]; revoking it ends its session', async () => {
    const viewer = await tokens.create({ name: 'vera', role: 'viewer' }, 'admin');
    const res = await login(viewer.token);
    assert.equal(res.status, 303);
    const cookie = sessionCookie(res);
    const fleet = await (await get('/ui', cookie)).text();
    assert.match(fleet, /spec\.replicas/, 'a viewer reads the fleet and its drift');
    assert.ok(fleet.includes('data.password'));
    assert.ok(!fleet.includes(SECRET_HASH), 'no Secret-derived hash for a viewer');
    assert.ok(fleet.includes('[redacted]'));
    for (const path of ['/ui/clusters/dev-1', '/ui/drift', '/ui/promotions'])
      assert.equal((await get(path, cookie)).status, 200, path);
    const logins = (await audit().list()).filter((e) => e.action === 'dashboard.login' && e.outcome === 'ok');
    assert.equal(logins.at(0)?.actor, 'token:vera', 'the login is audited under the token');
    await tokens.revoke('vera', 'admin');
    assert.equal((await get('/ui', cookie)).status, 303, 'a revoked token’s session ends at its next page');
    assert.equal((await login(viewer.token)).status, 401);
  });

  test('logging out ends the session, and a session expires', async () => {
    const cookie = sessionCookie(await login(ADMIN_TOKEN));
    const out = await fetch(`${api.url}/ui/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie },
    });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await get('/ui', cookie)).status, 303);
    const later = sessionCookie(await login(ADMIN_TOKEN));
    assert.equal((await get('/ui', later)).status, 200);
    now += 61_000;
    assert.equal((await get('/ui', later)).status, 303, 'expired');
  });
  test('the fleet filters by environment, label and state on the hub, and a bad filter names its parameter', async () => {
    const cookie = sessionCookie(await login(ADMIN_TOKEN));
    const prod = await (await get('/ui?env=prod', cookie)).text();
    assert.match(prod, /Fleet: 1 of 2 clusters/);
    assert.ok(prod.includes('>prod-1<') && !prod.includes('>dev-1<'));
    assert.match(prod, /<option value="prod" selected>/);
    const eu = await (await get('/ui?labels=region%3Deu&state=degraded', cookie)).text();
    assert.ok(eu.includes('>dev-1<') && !eu.includes('>prod-1<'));
    const none = await (await get('/ui?state=paused', cookie)).text();
    assert.match(none, /No cluster matches this filter/);
    const bad = await get('/ui?state=green', cookie);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /state: must be one of/);
    assert.doesNotMatch(bad.headers.get('content-security-policy') ?? '', /script-src/);
  });

  test('a drifted object links to its desired/live diff; a Secret’s values never reach the page', async () => {
    const cookie = sessionCookie(await login(ADMIN_TOKEN));
    const fleet = await (await get('/ui', cookie)).text();
    const href = '/ui/clusters/dev-1/object?ref=apps%2FDeployment%2Fshop%2Fweb';
    assert.ok(fleet.includes(`href="${href}"`), 'the drift row links to the object');
    const web = await (await get(href, cookie)).text();
    assert.match(web, /<span class="del">-\s+replicas: 2<\/span>/);
    assert.match(web, /<span class="add">\+\s+replicas: 7<\/span>/);
    const secret = await (await get('/ui/clusters/dev-1/object?ref=%2FSecret%2Fshop%2Fdb', cookie)).text();
    assert.ok(!secret.includes(CLEAR_PASSWORD), 'the bundle’s clear value is hidden');
    assert.ok(secret.includes(SECRET_HASH), 'drift as the hash the agent reported');
    assert.equal((await get('/ui/clusters/dev-1/object?ref=%2FSecret%2Fshop%2Fnope', cookie)).status, 404);
  });

  test('a Secret’s object diff shows hashes to read-secrets (the manifest’s under the hub key) and only [redacted] to a viewer', async () => {
    const path = '/ui/clusters/dev-1/object?ref=%2FSecret%2Fshop%2Fdb';
    const hubHash = redactSecretValue(CLEAR_PASSWORD, HUB_KEY);
    const admin = await (await get(path, sessionCookie(await login(ADMIN_TOKEN)))).text();
    assert.ok(admin.includes(hubHash), 'the manifest’s value as an HMAC under the hub key');
    assert.ok(admin.includes(SECRET_HASH), 'the drift as the agent’s hash');
    assert.ok(!admin.includes(CLEAR_PASSWORD) && !admin.includes('[hidden]'));
    const viewer = await tokens.create({ name: 'vic', role: 'viewer' }, 'admin');
    const page = await get(path, sessionCookie(await login(viewer.token)));
    assert.equal(page.status, 200);
    const shown = await page.text();
    assert.ok(shown.includes('[redacted]'));
    assert.doesNotMatch(shown, /\[(redacted|encrypted) [0-9a-f]{12}\]/, 'no hash at all for a viewer');
    assert.ok(!shown.includes(CLEAR_PASSWORD));
    await tokens.revoke('vic', 'admin');
  });

  test('the pipeline shows environments in order, clusters Synced and Healthy at the revision, and the gates', async () => {
    const cookie = sessionCookie(await login(ADMIN_TOKEN));
    const res = await get('/ui/pipeline', cookie);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.ok(body.indexOf('id="env-dev"') < body.indexOf('id="env-prod"'), 'promotion order');
    assert.match(body, /data-ready="0\/1">0\/1 Synced and Healthy/, 'dev-1 is Degraded');
    assert.match(body, /c0ffee012345/);
    assert.match(body, /needs approval by a second person/);
    assert.match(body, /soak 10m: 10m left/);
    assert.match(body, /dev cluster dev-1 is Degraded, not Healthy/);
    assert.match(body, /deployment\.yaml/);
  });
});
