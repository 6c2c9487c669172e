import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import Provider from 'oidc-provider';
import { type Browser, chromium } from 'playwright-core';
import { createAccess } from '../access/access.js';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createAuditLog } from '../audit/audit.js';
import { parseFleetConfig } from '../config/index.js';
import type { Database } from '../db/database.js';
import { clusters } from '../db/schema.js';
import { openTestDatabase } from '../db/testing.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { createPromotionLog } from '../promotion/promotion-log.js';
import { createFleetView } from '../status/fleet-view.js';
import type { ActionServices } from './actions.js';
import { createOidcLogin, type OidcOptions, parseOidcConfig } from './oidc.js';
import { createPipelineView } from './pipeline.js';
import { dashboardRoutes } from './routes.js';
import { createSessions } from './sessions.js';

/** Debian's chromium (apt-get install chromium; .ci/run installs it). */
const CHROMIUM = process.env.FLOTILLA_CHROMIUM ?? '/usr/bin/chromium';

/** The users of the provider, and the groups its groups claim gives each. */
const GROUPS: Record<string, string[]> = {
  dora: ['staff', 'shop-deployers'],
  vera: ['staff', 'readers'],
  mallory: ['staff'],
  late: ['shop-deployers'],
};
/** The hub's clock is taken to be an hour ahead: an ID token that lives less than that arrives expired. */
const HUB_CLOCK_AHEAD_S = 3600;

describe('dashboard single sign-on: a real OIDC provider, logins in headless Chromium', {
  timeout: 300_000,
}, () => {
  let database: Database;
  let provider: Server;
  let issuer: string;
  let browser: Browser;
  const hubs: ApiServer[] = [];
  let hub: ApiServer;
  let otherAudience: ApiServer;
  const audit = () => createAuditLog(database.db);

  /** A dashboard wired as the hub wires it, with single sign-on as `oidc` says. */
  const startDashboard = async (oidc: (redirectUri: string) => OidcOptions, port: number) => {
    const db = database.db;
    const fleet = createFleetView({ db, heartbeatWindowMs: 30_000 });
    const refuse = async (): Promise<never> => {
      throw new Error('no action runs in this test');
    };
    const actions: ActionServices = {
      promotion: { promote: refuse, approve: refuse, rollback: refuse },
      applyRequests: { request: refuse },
      pauses: { pause: refuse, resume: refuse },
    };
    const adminTokenHash = hashSecret(newSecret('flt_admin'));
    const server = await startApiServer({
      listen: `127.0.0.1:${port}`,
      access: createAccess({ bootstrapTokenHash: adminTokenHash, audit: audit() }),
      routes: dashboardRoutes({
        fleet,
        promotions: { history: (limit) => createPromotionLog(db).list(limit ? { limit } : {}) },
        audit: audit(),
        access: createAccess({ bootstrapTokenHash: adminTokenHash, audit: audit() }),
        sessions: createSessions(),
        pipeline: createPipelineView({
          config: async () =>
            parseFleetConfig(`environments:
  - {name: dev, path: environments/dev}
  - {name: staging, path: environments/staging}
  - {name: prod, path: environments/prod}
pipeline: [dev, staging, prod]
`),
          fleet,
          promotions: {
            diff: async () => {
              throw new Error('not known in this test');
            },
            history: async () => [],
          },
          source: {
            commitParents: async () => [],
            treeId: async () => null,
            defaultBranch: async () => 'main',
          },
        }),
        actions,
        oidc: createOidcLogin(oidc(`http://127.0.0.1:${port}/ui/oidc/callback`)),
      }),
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    hubs.push(server);
    return server;
  };

  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: apt-get install -y chromium (or set FLOTILLA_CHROMIUM)`,
    );
    database = await openTestDatabase('pglite');
    await database.db.insert(clusters).values([
      { name: 'dev-1', environment: 'dev', labels: {} },
      { name: 'staging-1', environment: 'staging', labels: {} },
      { name: 'prod-1', environment: 'prod', labels: {} },
    ]);
    const [hubPort, otherPort, providerPort] = await Promise.all([freePort(), freePort(), freePort()]);
    issuer = `http://127.0.0.1:${providerPort}`;
    const redirect = (port: number) => `http://127.0.0.1:${port}/ui/oidc/callback`;
    const oidc = new Provider(issuer, {
      clients: [
        {
          client_id: 'flotilla',
          redirect_uris: [redirect(hubPort)],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
        {
          client_id: 'grafana',
          redirect_uris: [redirect(otherPort)],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
      ],
      async findAccount(_ctx, sub) {
        return { accountId: sub, claims: async () => ({ sub, groups: GROUPS[sub] ?? [] }) };
      },
      claims: { openid: ['sub'], groups: ['groups'] },
      // The groups claim in the ID token itself, where the hub reads it.
      conformIdTokenClaims: false,
      pkce: { required: () => true },
      features: { devInteractions: { enabled: true } },
      // `late`'s ID tokens live a minute: less than the hub's clock is ahead.
      ttl: {
        IdToken: (_ctx, token) =>
          (token as unknown as { available?: { sub?: string } }).available?.sub === 'late' ? 60 : 4 * 3600,
      },
      cookies: { keys: ['oidc-spec-cookie-key'] },
    });
    provider = createServer(oidc.callback());
    await new Promise<void>((resolve) => provider.listen(providerPort, '127.0.0.1', resolve));
    const grants = parseOidcConfig(`issuer: ${issuer}
clientId: flotilla
redirectUri: ${redirect(hubPort)}
scope: openid groups
allowHttp: true
clockSkew: ${HUB_CLOCK_AHEAD_S}
groups:
  - {group: shop-deployers, role: deployer, environments: [staging]}
  - {group: readers, role: viewer}
`).grants;
    hub = await startDashboard(
      (redirectUri) => ({
        issuer,
        clientId: 'flotilla',
        redirectUri,
        scope: 'openid groups',
        allowHttp: true,
        clockSkewS: HUB_CLOCK_AHEAD_S,
        grants,
      }),
      hubPort,
    );
    // A hub that accepts only ID tokens for `flotilla`, registered (wrongly) as the client `grafana`.
    otherAudience = await startDashboard(
      (redirectUri) => ({
        issuer,
        clientId: 'grafana',
        audience: 'flotilla',
        redirectUri,
        scope: 'openid groups',
        allowHttp: true,
        grants,
      }),
      otherPort,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    for (const h of hubs) await h.close();
    await new Promise<void>((resolve) => (provider ? provider.close(() => resolve()) : resolve()));
    provider?.closeAllConnections();
    await database?.close();
  });

  /** Logs in at `server`'s dashboard through the provider's login and consent pages; returns the page where it ends. */
  const ssoLogin = async (server: ApiServer, user: string) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/ui/login`);
    await page.click('#sso');
    await page.waitForURL((u) => u.toString().startsWith(issuer), { timeout: 30_000 });
    await page.fill('input[name=login]', user);
    await page.fill('input[name=password]', 'any');
    await page.click('button[type=submit]');
    // Consent, the first time this user meets this client.
    await page.waitForURL((u) => u.toString().startsWith(server.url) || /interaction/.test(u.toString()));
    if (page.url().startsWith(issuer)) await page.click('button[type=submit]');
    await page.waitForURL((u) => u.toString().startsWith(server.url), { timeout: 30_000 });
    await page.waitForLoadState('load');
    return { page, context };
  };
  const refusals = async () =>
    (await audit().list()).filter((a) => a.action === 'dashboard.login' && a.outcome === 'refused');

  test('a group mapped to deployer of staging logs in: the dashboard shows only what that role may do', async () => {
    const { page, context } = await ssoLogin(hub, 'dora');
    await page.waitForURL(`${hub.url}/ui`);
    await page.goto(`${hub.url}/ui/pipeline`);
    const buttons = await page.locator('button[data-action]').allTextContents();
    assert.ok(buttons.includes('Promote dev → staging'), `buttons: ${buttons.join(', ')}`);
    assert.ok(!buttons.some((b) => b.includes('→ prod')), 'no promotion into prod for a deployer of staging');
    assert.deepEqual(
      buttons.filter((b) => b === 'Sync' || b === 'Pause'),
      ['Sync', 'Pause'],
      'sync and pause of staging only',
    );
    const logins = (await audit().list()).filter((a) => a.action === 'dashboard.login' && a.outcome === 'ok');
    assert.ok(
      logins.some((a) => a.actor === 'oidc:dora' && /deployer of staging/.test(a.detail ?? '')),
      'the login is audited under the provider’s subject',
    );
    await context.close();
  });

  test('a group mapped to viewer sees the pipeline without a single button', async () => {
    const { page, context } = await ssoLogin(hub, 'vera');
    await page.waitForURL(`${hub.url}/ui`);
    await page.goto(`${hub.url}/ui/pipeline`);
    assert.equal(await page.locator('h1').first().textContent(), 'Pipeline');
    assert.equal(await page.locator('button[data-action]').count(), 0);
    await context.close();
  });

  test('refused: a user in no group that has a role, an expired ID token, an ID token for another audience', async () => {
    const cases: [ApiServer, string, RegExp][] = [
      [hub, 'mallory', /oidc:mallory is in no group that has a role here \(groups: staff\)/],
      [hub, 'late', /failed its checks: .*\(the ID token has expired\)/],
      [otherAudience, 'dora', /the ID token is for grafana, not for flotilla \(wrong audience\)/],
    ];
    for (const [server, user, reason] of cases) {
      const before = (await refusals()).length;
      const { page, context } = await ssoLogin(server, user);
      const text =
        (await page
          .locator('p.err')
          .textContent({ timeout: 10_000 })
          .catch(async () => `no refusal shown at ${page.url()}: ${(await page.content()).slice(0, 300)}`)) ??
        '';
      assert.match(text, reason, `${user}: ${text}`);
      assert.equal(
        await page.locator('input[name=token]').count(),
        1,
        `${user} is back at the login form, without a session`,
      );
      const res = await context.request.get(`${server.url}/ui`, { maxRedirects: 0 });
      assert.equal(res.status(), 303, `${user} has no session`);
      const after = await refusals();
      assert.equal(after.length, before + 1, `${user}'s refusal is audited`);
      assert.match(after[0]!.detail ?? '', reason);
      await context.close();
    }
  });
});
