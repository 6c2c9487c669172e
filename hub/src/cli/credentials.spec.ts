import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import { createAccess } from '../access/access.js';
import { oidcRoutes } from '../access/oidc.js';
import { tokenRoutes } from '../access/routes.js';
import { createTokenStore } from '../access/token-store.js';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createAuditLog } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { openTestDatabase } from '../db/testing.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { CliError } from './client.js';
import { createCredentials, type StoredLogin } from './credentials.js';
import { storedLoginToken } from './login.js';
import { runCli } from './run.js';

const BOOTSTRAP = newSecret('flt_admin');
const login = (idToken: string, expiresAt: Date, refreshToken?: string): StoredLogin => ({
  issuer: 'https://id.example.com',
  clientId: 'flotilla-cli',
  allowHttp: false,
  idToken,
  ...(refreshToken ? { refreshToken } : {}),
  expiresAt: expiresAt.toISOString(),
  actor: 'oidc:dora',
});

describe('the credentials file of `flotilla login`', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-credentials-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('logins are kept per hub URL in a 0600 file in a 0700 directory; removing the last one removes the file', () => {
    const configDir = join(dir, 'a', 'flotilla');
    const credentials = createCredentials(configDir);
    const later = new Date(Date.now() + 3600_000);
    credentials.put('https://hub-1.example.com/', login('id-1', later));
    credentials.put('https://hub-2.example.com', login('id-2', later));
    assert.equal(statSync(credentials.file).mode & 0o777, 0o600);
    assert.equal(statSync(configDir).mode & 0o777, 0o700);
    assert.equal(
      credentials.get('https://hub-1.example.com')?.idToken,
      'id-1',
      'a trailing slash is the same hub',
    );
    assert.equal(credentials.get('https://hub-2.example.com/')?.idToken, 'id-2');
    assert.equal(credentials.get('https://hub-3.example.com'), undefined);
    assert.equal(credentials.remove('https://hub-1.example.com')?.actor, 'oidc:dora');
    assert.equal(credentials.remove('https://hub-1.example.com'), undefined);
    assert.equal(statSync(credentials.file).mode & 0o777, 0o600, 'written again, still 0600');
    credentials.remove('https://hub-2.example.com');
    assert.equal(existsSync(credentials.file), false);
  });

  test('a broken file is an error naming it', () => {
    const credentials = createCredentials(join(dir, 'broken'));
    credentials.put('https://hub.example.com', login('x', new Date()));
    writeFileSync(credentials.file, '{"hubs": 3}');
    assert.throws(
      () => credentials.get('https://hub.example.com'),
      (err: unknown) =>
        err instanceof CliError &&
        err.message.startsWith(`${credentials.file}: not a Flotilla credentials file (no "hubs" object)`),
    );
  });

  test('an expired login without a refresh token tells the user to log in again; a valid one is used as it is', async () => {
    const credentials = createCredentials(join(dir, 'expiry'));
    const hub = 'https://hub.example.com';
    credentials.put(hub, login('valid-id-token', new Date(Date.now() + 3600_000)));
    assert.equal(await storedLoginToken(credentials, hub)?.token(), 'valid-id-token');
    credentials.put(hub, login('old-id-token', new Date(Date.now() - 1000)));
    await assert.rejects(storedLoginToken(credentials, hub)!.token(), {
      name: 'CliError',
      message: /^your login to https:\/\/hub\.example\.com expired at .*: run `flotilla login` again$/,
    });
    assert.equal(storedLoginToken(credentials, 'https://other.example.com'), undefined);
  });
});

describe('the CLI with a stored login', () => {
  let database: Database;
  let api: ApiServer;
  let dir: string;
  let ciToken: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-credentials-'));
    database = await openTestDatabase('pglite');
    const audit = createAuditLog(database.db);
    const tokens = createTokenStore({ db: database.db, audit });
    api = await startApiServer({
      listen: '127.0.0.1:0',
      access: createAccess({ bootstrapTokenHash: hashSecret(BOOTSTRAP), tokens, audit }),
      routes: [...tokenRoutes(tokens), ...oidcRoutes(undefined)],
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    ciToken = (await tokens.create({ name: 'ci', role: 'viewer' }, 'admin')).token;
  });
  after(async () => {
    await api?.close();
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], env: { token?: string }) => {
    let out = '';
    let err = '';
    const code = await runCli(
      args,
      { hubUrl: api.url, configDir: dir, ...env },
      { out: (t) => (out += t), err: (t) => (err += t) },
    );
    return { code, out, err };
  };

  test('whoami uses the hub’s stored login when FLOTILLA_TOKEN is unset; FLOTILLA_TOKEN wins; logout removes it', async () => {
    const none = await run(['whoami'], {});
    assert.equal(none.code, 1);
    assert.match(none.err, /needs a token: set FLOTILLA_TOKEN or run `flotilla login`/);
    // A stored login's bearer token is sent as it is: here the bootstrap token stands in for an ID token.
    createCredentials(dir).put(api.url, login(BOOTSTRAP, new Date(Date.now() + 3600_000)));
    const stored = await run(['whoami', '-o', 'json'], {});
    assert.equal(stored.code, 0, stored.err);
    assert.equal((JSON.parse(stored.out) as { actor: string }).actor, 'admin');
    const env = await run(['whoami'], { token: ciToken });
    assert.match(env.out, /^identity: +token:ci\nrole: +viewer\nenvironments: +every environment\n/);
    const out = await run(['logout'], {});
    assert.equal(out.code, 0, out.err);
    assert.equal(
      out.out,
      `logged out of ${api.url}: oidc:dora's tokens removed from ${join(dir, 'credentials.json')}\n`,
    );
    assert.equal(existsSync(join(dir, 'credentials.json')), false);
    assert.equal((await run(['logout'], {})).out, `not logged in to ${api.url}\n`);
  });

  test('login against a hub without single sign-on says so', async () => {
    const r = await run(['login'], {});
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      'flotilla: single sign-on is not configured on this hub (hub start --oidc-config FILE)\n',
    );
  });
});
