import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { bin, type CliResult, runCli } from '../fleet/cli.js';
import { appFiles, threeDirectoryRepoFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import {
  completeDeviceLogin,
  launchChromium,
  type OidcProvider,
  startOidcProvider,
} from '../harness/oidc-provider.js';
import { startProcess } from '../harness/process.js';
import { captureOutput } from './support.js';

interface StoredLogin {
  issuer: string;
  clientId: string;
  idToken: string;
  refreshToken?: string;
  expiresAt: string;
  actor: string;
}
interface AuditRow {
  action: string;
  actor: string;
  outcome: string;
  detail: string | null;
}

/**
 * An ID token lives this long; the CLI renews one with less than 30 s left
 * (hub/src/cli/login.ts), so a login is due for renewal ten seconds after it was issued.
 */
const ID_TOKEN_TTL_S = 40;
/** A JWT (an ID token), wherever it might be printed. */
const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/;

/**
 * `flotilla login` end to end: a real OpenID provider (oidc-provider, device flow, groups
 * claim), a real hub whose oidc config maps the group staging-deployers to deployer of staging,
 * the `flotilla` CLI spawned as a user runs it, and the provider's pages driven in headless
 * Chromium. Everything after the login runs on the stored login alone, without FLOTILLA_TOKEN.
 */
describe('flotilla login: single sign-on for the CLI through the device flow', { timeout: 600_000 }, () => {
  let provider: OidcProvider;
  let fleet: Fleet;
  let browser: Browser;
  let dir: string;
  let hubLog: () => string;
  let viewerToken: string;
  /** Every CLI output of this test, to look for tokens in. */
  const printed: string[] = [];
  /** Every token the provider gave dora's logins, as they were stored. */
  const issued = new Set<string>();

  /** The environment of a user's shell: the hub, a config dir, and no FLOTILLA_TOKEN unless given. */
  const userEnv = (configHome: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const { FLOTILLA_TOKEN: _ignored, ...env } = process.env;
    return { ...env, FLOTILLA_HUB: fleet.hub.http, XDG_CONFIG_HOME: configHome, ...extra };
  };
  const doraHome = () => join(dir, 'dora');
  const credentialsFile = (home: string) => join(home, 'flotilla', 'credentials.json');
  const stored = (home = doraHome()): StoredLogin | undefined => {
    if (!existsSync(credentialsFile(home))) return undefined;
    const file = JSON.parse(readFileSync(credentialsFile(home), 'utf8')) as {
      hubs: Record<string, StoredLogin>;
    };
    const login = file.hubs[fleet.hub.http.replace(/\/+$/, '')];
    if (login) for (const t of [login.idToken, login.refreshToken]) if (t) issued.add(t);
    return login;
  };
  /** `flotilla ARGS` as dora runs it: her stored login, no FLOTILLA_TOKEN. */
  const dora = async (...args: string[]): Promise<CliResult> => {
    const r = await runCli(bin('flotilla'), args, userEnv(doraHome()));
    printed.push(r.stdout, r.stderr);
    stored();
    return r;
  };
  const audit = () => fleet.flotillaJson<{ audit: AuditRow[] }>('audit').then((a) => a.audit);

  /**
   * Runs `flotilla login` as a user would, reads the verification URL and user code it prints,
   * and completes the login at the provider in Chromium as `user`; resolves to how the CLI ended.
   */
  const loginAs = async (user: string, env: NodeJS.ProcessEnv): Promise<CliResult> => {
    const cli = await startProcess(bin('flotilla'), ['login'], {
      name: `flotilla login (${user})`,
      env,
      ready: /open (\S+) and enter the code (\S+)/,
      timeoutMs: 60_000,
    });
    let stdout = '';
    let stderr = cli.log;
    cli.child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    cli.child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const [, url, code] = /open (\S+) and enter the code (\S+)/.exec(cli.log)!;
      await completeDeviceLogin(browser, url!, code!, user);
      const exit = await cli.exited;
      printed.push(stdout, stderr);
      return { code: exit ?? 1, stdout, stderr };
    } finally {
      await cli.stop();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-login-'));
    provider = await startOidcProvider({
      users: { dora: ['staff', 'staging-deployers'], mallory: ['staff'] },
      idTokenTtlS: ID_TOKEN_TTL_S,
    });
    const oidcConfig = join(dir, 'oidc.yaml');
    writeFileSync(
      oidcConfig,
      `issuer: ${provider.issuer}
clientId: flotilla
cliClientId: ${provider.cliClientId}
redirectUri: http://127.0.0.1/ui/oidc/callback
scope: openid groups
allowHttp: true
groups:
  - {group: staging-deployers, role: deployer, environments: [staging]}
`,
    );
    fleet = await startFleet({
      repoFiles: threeDirectoryRepoFiles(),
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
      ],
      hubArgs: ['--oidc-config', oidcConfig],
    });
    hubLog = captureOutput(fleet.hub.process);
    viewerToken = (
      await fleet.flotillaJson<{ token: string }>('token', 'create', 'ci', '--role', 'viewer', '--ttl', '1d')
    ).token;
    browser = await launchChromium();
    await fleet.waitSynced();
    // Something for dora to promote: dev moves ahead of staging.
    const rev = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
  });
  after(async () => {
    await browser?.close();
    await fleet?.stop();
    await provider?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('dora logs in: the CLI prints where to enter which code, the device flow is completed in Chromium, the login is kept 0600, and FLOTILLA_TOKEN is said to win', async () => {
    const r = await loginAs('dora', userEnv(doraHome(), { FLOTILLA_TOKEN: viewerToken }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`To log in to ${fleet.hub.http}, open ${provider.issuer}/device and enter the code`),
    );
    const login = stored();
    assert.ok(login, `nothing stored:\n${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stdout,
      new RegExp(
        `^logged in to ${fleet.hub.http} as oidc:dora \\(deployer of staging\\) until ${login.expiresAt.replace(/[.]/g, '\\.')} \\(renewed on use after that\\); kept in ${credentialsFile(doraHome())}\\n$`,
      ),
    );
    assert.match(r.stderr, /note: FLOTILLA_TOKEN is set and wins over this login/);
    assert.equal(statSync(credentialsFile(doraHome())).mode & 0o777, 0o600);
    assert.equal(statSync(join(doraHome(), 'flotilla')).mode & 0o777, 0o700);
    assert.deepEqual(
      [login.issuer, login.clientId, login.actor],
      [provider.issuer, provider.cliClientId, 'oidc:dora'],
    );
    assert.ok(login.refreshToken, 'offline_access gave a refresh token');
    const envWins = await runCli(
      bin('flotilla'),
      ['whoami'],
      userEnv(doraHome(), { FLOTILLA_TOKEN: viewerToken }),
    );
    printed.push(envWins.stdout, envWins.stderr);
    assert.match(envWins.stdout, /^identity: +token:ci\n/, 'FLOTILLA_TOKEN wins over the stored login');
  });

  test('with the stored login and no FLOTILLA_TOKEN: whoami is oidc:dora deployer of staging, cluster list works, dev → staging promotes, staging → prod is a 403 naming the permission, audited under oidc:dora', async () => {
    const me = await dora('whoami');
    assert.equal(me.code, 0, me.stderr);
    assert.match(
      me.stdout,
      /^identity: +oidc:dora\nrole: +deployer\nenvironments: +staging\nexpires: +\S+\n$/,
    );
    const list = await dora('cluster', 'list', '-o', 'json');
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { clusters: { name: string }[] }).clusters.map((c) => c.name).sort(),
      ['dev-1', 'staging-1'],
    );
    const promoted = await dora('promote', 'dev', 'staging');
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /^promoted dev@[0-9a-f]{12} → staging as [0-9a-f]{12}/);
    const history = JSON.parse((await dora('promote', '--history', '-o', 'json')).stdout) as {
      kind: string;
      to: string;
      actor: string;
    }[];
    assert.deepEqual(
      [history[0]!.kind, history[0]!.to, history[0]!.actor],
      ['promote', 'staging', 'oidc:dora'],
    );
    const refused = await dora('promote', 'staging', 'prod');
    assert.notEqual(refused.code, 0, 'a deployer of staging promoted into prod');
    assert.match(
      refused.stderr,
      /permission denied: oidc:dora \(deployer of staging\) lacks promote on environment prod/,
    );
    // A name the client supplies is not who the audit names.
    const login = stored()!;
    const sync = await fetch(`${fleet.hub.http}/api/v1/sync`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${login.idToken}`,
        'content-type': 'application/json',
        'x-flotilla-actor': 'somebody-else',
      },
      body: JSON.stringify({ environment: 'staging' }),
    });
    assert.equal(sync.status, 200, await sync.text());
    const entries = await audit();
    const by = (action: string, outcome = 'ok') =>
      entries.filter((e) => e.action === action && e.outcome === outcome).map((e) => e.actor);
    assert.ok(
      by('promote').includes('oidc:dora'),
      JSON.stringify(entries.filter((e) => e.action === 'promote')),
    );
    assert.ok(by('sync').includes('oidc:dora'));
    const refusal = entries.find((e) => e.action === 'access.refused' && e.actor === 'oidc:dora');
    assert.match(
      refusal?.detail ?? '',
      /^POST \/api\/v1\/promotions: permission denied: .*lacks promote on environment prod/,
    );
    assert.ok(!JSON.stringify(entries).includes('somebody-else'), 'x-flotilla-actor names nobody');
  });

  test('an expired ID token is renewed through the refresh token on the next command, and the renewed one is kept', async () => {
    const before = stored()!;
    // Due for renewal once less than the CLI's 30 s margin is left (ten seconds after issue).
    await eventually(() => assert.ok(Date.now() >= Date.parse(before.expiresAt) - 30_000, 'not due yet'), {
      timeoutMs: (ID_TOKEN_TTL_S + 5) * 1000,
      intervalMs: 250,
      message: 'the ID token is due for renewal',
    });
    const me = await dora('whoami', '-o', 'json');
    assert.equal(me.code, 0, me.stderr);
    const after = stored()!;
    assert.notEqual(after.idToken, before.idToken, 'a new ID token');
    assert.ok(Date.parse(after.expiresAt) > Date.parse(before.expiresAt), 'that lives longer');
    assert.notEqual(after.refreshToken, before.refreshToken, 'the provider rotated the refresh token');
    const identity = JSON.parse(me.stdout) as { actor: string; role: string; expiresAt: string };
    assert.deepEqual([identity.actor, identity.role], ['oidc:dora', 'deployer']);
    assert.equal(
      Date.parse(identity.expiresAt),
      Date.parse(after.expiresAt),
      'the hub took the renewed token',
    );
  });

  test('logout removes the login from the credentials file and revokes its refresh token at the provider', async () => {
    const login = stored()!;
    const revokedBefore = provider.grantsRevoked();
    const out = await dora('logout');
    assert.equal(out.code, 0, out.stderr);
    assert.equal(
      out.stdout,
      `logged out of ${fleet.hub.http}: oidc:dora's tokens removed from ${credentialsFile(doraHome())}\n`,
    );
    assert.equal(out.stderr, '', 'revoked without a note');
    assert.equal(stored(), undefined);
    assert.equal(provider.grantsRevoked(), revokedBefore + 1, 'the provider revoked the login’s grant');
    const refresh = await provider.refresh(login.refreshToken!);
    assert.equal(refresh.status, 400, JSON.stringify(refresh.body));
    assert.equal(refresh.body.error, 'invalid_grant');
    const me = await dora('whoami');
    assert.match(me.stderr, /needs a token: set FLOTILLA_TOKEN or run `flotilla login`/);
  });

  test('mallory, whose only group has no role here, is refused at login with the hub’s reason, and nothing is stored', async () => {
    const home = join(dir, 'mallory');
    const r = await loginAs('mallory', userEnv(home));
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(
        `the hub at ${fleet.hub.http} refused your login: OIDC token refused: oidc:mallory is in no group that has a role here \\(groups: staff\\)`,
      ),
    );
    assert.equal(r.stdout, '');
    assert.equal(existsSync(credentialsFile(home)), false, 'nothing stored');
    const refused = (await audit()).find((e) => e.action === 'access.refused' && e.actor === 'oidc:mallory');
    assert.match(refused?.detail ?? '', /^GET \/api\/v1\/whoami: OIDC token refused: /);
  });

  test('no token appears in any CLI output or in the hub’s log', () => {
    assert.ok(issued.size >= 4, `tokens seen: ${issued.size}`);
    const texts: [string, string][] = [
      ...printed.map((t, i): [string, string] => [`CLI output ${i}`, t]),
      ['hub log', hubLog()],
    ];
    for (const [what, text] of texts) {
      assert.doesNotMatch(text, JWT, `${what} shows a JWT`);
      for (const token of [...issued, viewerToken]) assert.ok(!text.includes(token), `${what} shows a token`);
    }
  });
});
