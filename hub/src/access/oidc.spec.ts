import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import Provider from 'oidc-provider';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createAuditLog } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { openTestDatabase } from '../db/testing.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { createAccess } from './access.js';
import { createOidcBearer, type OidcOptions, oidcRoutes, parseOidcConfig } from './oidc.js';
import { tokenRoutes } from './routes.js';
import { createTokenStore } from './token-store.js';

const BOOTSTRAP = newSecret('flt_admin');
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

test('oidc config: cliClientId is parsed; a bad one is an error naming the file and field', () => {
  const base = `issuer: https://id.example.com
clientId: flotilla
redirectUri: https://hub.example.com/ui/oidc/callback
groups:
  - {group: ops, role: admin}
`;
  assert.equal(
    parseOidcConfig(`${base}cliClientId: flotilla-cli\n`, 'oidc.yaml').cliClientId,
    'flotilla-cli',
  );
  assert.equal(parseOidcConfig(base, 'oidc.yaml').cliClientId, undefined, 'optional');
  assert.throws(
    () => parseOidcConfig(`${base}cliClientId: 7\n`, 'oidc.yaml'),
    /^InvalidError: oidc\.yaml: cliClientId: must be a non-empty string/,
  );
  assert.throws(
    () => parseOidcConfig(`${base}cliClientID: x\n`, 'oidc.yaml'),
    /^InvalidError: oidc\.yaml: cliClientID: is not a known field/,
  );
});

/**
 * The API's OIDC bearer tokens against a real provider (oidc-provider): its discovery document
 * and JWKS are served by it; the tokens are signed here with the provider's own key, so every
 * refused kind (expired, another audience, another issuer, a forged signature) can be made.
 */
describe('access: OIDC bearer tokens of the configured issuer, checked and mapped to a role', () => {
  let database: Database;
  let provider: Server;
  let issuer: string;
  let api: ApiServer;
  let signingKey: PrivateKey;
  let forgedKey: PrivateKey;
  let oidc: OidcOptions;
  const audit = () => createAuditLog(database.db);
  const KID = 'provider-key';
  let jwksFault: 'none' | 'http-500' | 'reset' = 'none';

  before(async () => {
    database = await openTestDatabase('pglite');
    const pair = await generateKeyPair('RS256', { extractable: true });
    signingKey = pair.privateKey;
    forgedKey = (await generateKeyPair('RS256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.privateKey)), kid: KID, alg: 'RS256', use: 'sig' };
    provider = createServer();
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
    const op = new Provider(issuer, {
      jwks: { keys: [jwk] },
      clients: [
        {
          client_id: 'flotilla-cli',
          token_endpoint_auth_method: 'none',
          grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
          response_types: [],
          redirect_uris: [],
        },
      ],
      features: { deviceFlow: { enabled: true } },
    });
    // A fault switched on by a test: the provider's JWKS answering an error, or dropping the connection.
    op.use(async (ctx, next) => {
      if (ctx.path === '/jwks' && jwksFault === 'http-500') ctx.status = 500;
      else if (ctx.path === '/jwks' && jwksFault === 'reset') {
        ctx.respond = false;
        ctx.req.socket.destroy();
      } else await next();
    });
    provider.on('request', op.callback());
    oidc = parseOidcConfig(`issuer: ${issuer}
clientId: flotilla
cliClientId: flotilla-cli
redirectUri: http://127.0.0.1:1/ui/oidc/callback
scope: openid groups
allowHttp: true
groups:
  - {group: shop-deployers, role: deployer, environments: [staging]}
  - {group: readers, role: viewer}
`);
    const tokens = createTokenStore({ db: database.db, audit: audit() });
    api = await startApiServer({
      listen: '127.0.0.1:0',
      access: createAccess({
        bootstrapTokenHash: hashSecret(BOOTSTRAP),
        tokens,
        audit: audit(),
        oidc: createOidcBearer(oidc),
      }),
      routes: [
        ...tokenRoutes(tokens),
        ...oidcRoutes(oidc),
        {
          method: 'POST',
          path: '/api/v1/promotions',
          permission: 'promote',
          environments: async (req) => [String((await req.json()).to)],
          handle: async (req) => ({ status: 201, json: { by: req.actor } }),
        },
      ],
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
  });
  after(async () => {
    await api?.close();
    await new Promise<void>((resolve) => (provider ? provider.close(() => resolve()) : resolve()));
    provider?.closeAllConnections();
    await database?.close();
  });

  /** An ID token as the provider signs them: for the CLI client, an hour long, unless `claims` say otherwise. */
  const idToken = (claims: JWTPayload & { groups?: string[] }, key = signingKey) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: issuer, aud: 'flotilla-cli', iat: now, exp: now + 3600, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: KID })
      .sign(key);
  };
  const call = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  test('an ID token of a user in a group mapped to deployer of staging: whoami names oidc:SUB, staging promotes, prod is a 403 audited under oidc:SUB', async () => {
    const token = await idToken({ sub: 'dora', groups: ['staff', 'shop-deployers'] });
    const me = await call(token, 'GET', '/api/v1/whoami');
    assert.equal(me.status, 200, await me.clone().text());
    const body = (await me.json()) as {
      actor: string;
      role: string;
      environments: string[];
      expiresAt: string;
    };
    assert.deepEqual([body.actor, body.role, body.environments], ['oidc:dora', 'deployer', ['staging']]);
    assert.ok(body.expiresAt, 'the identity ends with the token');
    const staging = await call(token, 'POST', '/api/v1/promotions', { from: 'dev', to: 'staging' });
    assert.deepEqual(await staging.json(), { by: 'oidc:dora' });
    const prod = await call(token, 'POST', '/api/v1/promotions', { from: 'staging', to: 'prod' });
    assert.equal(prod.status, 403);
    assert.match(
      ((await prod.json()) as { error: string }).error,
      /oidc:dora \(deployer of staging\) lacks promote on environment prod/,
    );
    const refused = (await audit().list()).find(
      (a) => a.action === 'access.refused' && a.actor === 'oidc:dora',
    );
    assert.match(refused?.detail ?? '', /^POST \/api\/v1\/promotions: permission denied/);
  });

  test('the dashboard client’s audience is accepted too; API tokens and the bootstrap token keep working', async () => {
    const dashboardToken = await idToken({ sub: 'vera', aud: 'flotilla', groups: ['readers'] });
    const me = (await (await call(dashboardToken, 'GET', '/api/v1/whoami')).json()) as {
      actor: string;
      role: string;
    };
    assert.deepEqual([me.actor, me.role], ['oidc:vera', 'viewer']);
    const created = await call(BOOTSTRAP, 'POST', '/api/v1/tokens', { name: 'ci', role: 'viewer' });
    assert.equal(created.status, 201);
    const { token } = (await created.json()) as { token: string };
    const ci = (await (await call(token, 'GET', '/api/v1/whoami')).json()) as { actor: string };
    assert.equal(ci.actor, 'token:ci');
  });

  test('refused with a 401 saying why, each audited: expired, wrong audience, unknown issuer, forged signature, group without a role', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, RegExp, string][] = [
      [
        'expired',
        await idToken({ sub: 'dora', groups: ['shop-deployers'], iat: now - 7200, exp: now - 3600 }),
        /^OIDC token refused: the token has expired/,
        'oidc:dora',
      ],
      [
        'wrong audience',
        await idToken({ sub: 'dora', aud: 'grafana', groups: ['shop-deployers'] }),
        /^OIDC token refused: the ID token is for grafana, not for flotilla or flotilla-cli \(wrong audience\)/,
        'oidc:dora',
      ],
      [
        'unknown issuer',
        await idToken({ sub: 'dora', iss: 'https://evil.example.com', groups: ['shop-deployers'] }),
        /^OIDC token refused: issued by https:\/\/evil\.example\.com, not by http:\/\/127\.0\.0\.1:\d+ \(unknown issuer\)/,
        'anonymous',
      ],
      [
        'forged signature',
        await idToken({ sub: 'dora', groups: ['shop-deployers'] }, forgedKey),
        /^OIDC token refused: its signature does not verify against the issuer's keys/,
        'oidc:dora',
      ],
      [
        'group without a role',
        await idToken({ sub: 'mallory', groups: ['staff'] }),
        /^OIDC token refused: oidc:mallory is in no group that has a role here \(groups: staff\)/,
        'oidc:mallory',
      ],
    ];
    for (const [what, token, reason, actor] of cases) {
      const res = await call(token, 'GET', '/api/v1/whoami');
      assert.equal(res.status, 401, what);
      const body = (await res.json()) as { error: string; code: string };
      assert.equal(body.code, 'unauthenticated', what);
      assert.match(body.error, reason, what);
      const [last] = (await audit().list()).filter((a) => a.action === 'access.refused');
      assert.equal(last?.actor, actor, what);
      assert.match(last?.detail ?? '', /^GET \/api\/v1\/whoami: OIDC token refused: /, what);
      assert.ok(!JSON.stringify(last).includes(token), `${what}: no token in the audit log`);
    }
  });

  test('the clock skew of the config applies: a token with ten minutes left is expired to a hub an hour ahead', async () => {
    const token = await idToken({
      sub: 'dora',
      groups: ['shop-deployers'],
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    assert.equal((await createOidcBearer(oidc).verify(token)).identity.actor, 'oidc:dora');
    await assert.rejects(createOidcBearer({ ...oidc, clockSkewS: 3600 }).verify(token), {
      name: 'OidcTokenRefusedError',
      message: /the token has expired/,
    });
  });

  test('keys that cannot be fetched (JWKS answering 500, connection reset, provider gone) are a 503 naming the provider, not a 401, and nothing is audited as refused', async () => {
    /** A hub (API) with a fresh verifier: no discovery document or keys cached yet. */
    const hubWith = (options: OidcOptions) =>
      startApiServer({
        listen: '127.0.0.1:0',
        access: createAccess({
          bootstrapTokenHash: hashSecret(BOOTSTRAP),
          audit: audit(),
          oidc: createOidcBearer(options),
        }),
        routes: tokenRoutes(createTokenStore({ db: database.db, audit: audit() })),
        metrics: createMetrics(),
        logger: createLogger({ name: 'test', level: 'silent' }),
      });
    const refusedBefore = (await audit().list()).filter((a) => a.action === 'access.refused').length;
    const whoami = async (hub: ApiServer, token: string) => {
      const res = await fetch(`${hub.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, ...((await res.json()) as { error: string; code: string }) };
    };
    const token = await idToken({ sub: 'dora', groups: ['shop-deployers'] });
    const jwksUri = `${issuer}/jwks`.replace(/[.]/g, '\\.');
    try {
      for (const [fault, why] of [
        ['http-500', 'HTTP 500'],
        ['reset', 'ECONNRESET|UND_ERR_SOCKET|other side closed'],
      ] as const) {
        jwksFault = fault;
        const hub = await hubWith(oidc);
        try {
          const res = await whoami(hub, token);
          assert.equal(res.status, 503, `${fault}: ${res.error}`);
          assert.equal(res.code, 'unavailable', fault);
          assert.match(
            res.error,
            new RegExp(
              `^single sign-on: the keys of provider ${issuer.replace(/[.]/g, '\\.')} cannot be fetched from ${jwksUri} \\((${why})[^)]*\\): tokens cannot be verified now; try again shortly$`,
            ),
            fault,
          );
          assert.ok(!res.error.includes(token), `${fault}: no token in the answer`);
          jwksFault = 'none';
          assert.equal(
            (await whoami(hub, token)).status,
            200,
            `${fault}: the keys are fetched once the provider is back`,
          );
        } finally {
          await hub.close();
        }
      }
    } finally {
      jwksFault = 'none';
    }
    const gone = 'http://127.0.0.1:1';
    const hub = await hubWith({ ...oidc, issuer: gone });
    try {
      const res = await whoami(hub, await idToken({ sub: 'dora', iss: gone, groups: ['shop-deployers'] }));
      assert.equal(res.status, 503, res.error);
      assert.match(res.error, /^single sign-on: provider http:\/\/127\.0\.0\.1:1 unreachable: /);
    } finally {
      await hub.close();
    }
    const refusedAfter = (await audit().list()).filter((a) => a.action === 'access.refused').length;
    assert.equal(refusedAfter, refusedBefore, 'an unavailable provider is no refusal of the caller');
  });

  test('GET /api/v1/auth/oidc announces the issuer, the CLI client and its scopes without a token, and nothing secret', async () => {
    const res = await fetch(`${api.url}/api/v1/auth/oidc`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      issuer,
      clientId: 'flotilla-cli',
      scope: 'openid groups offline_access',
      allowHttp: true,
    });
    const none = oidcRoutes({ ...oidc, cliClientId: undefined })[0]!;
    await assert.rejects(none.handle({} as never), { code: 'not-found', message: /has no cliClientId/ });
  });
});
