import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { redactSecretValue, secretHashKey } from '@flotilla/shared';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from '../journeys/kubectl.js';
import { captureOutput, readIdentity } from './support.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
/** `text` as a literal in a RegExp. */
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A plain sha256 of a value: what someone guessing weak secrets offline would compute. */
const unkeyed = (base64: string) =>
  `[redacted ${createHash('sha256').update(base64).digest('hex').slice(0, 12)}]`;
/** What a drifted Secret value is shown as: an HMAC of its base64 under the agent's own key. */
const redacted = (stateDir: string, base64: string) =>
  redactSecretValue(base64, secretHashKey(readIdentity(stateDir).agentKey));

const DEV_PASSWORD = 's3cr3t-VALUE-xyz';
const DEV_API_KEY = 'k3y-VALUE-qrs';
const STAGING_PASSWORD = 'st4ging-VALUE-uvw';
const LIVE_PASSWORD = 'l1ve-DRIFT-789';
/** Every secret value of this fleet: in clear, as base64 (without padding, so any alignment of `=` matches). */
const SECRET_VALUES = [DEV_PASSWORD, DEV_API_KEY, STAGING_PASSWORD, LIVE_PASSWORD];
const needles = SECRET_VALUES.flatMap((v) => [v, b64(v).replace(/=+$/, '')]);

const secretYaml = (password: string, apiKey?: string) => `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
type: Opaque
stringData:
  password: ${password}
${apiKey ? `data:\n  apiKey: ${b64(apiKey)}\n` : ''}`;

const FLOTILLA_YAML = `environments:
  - name: dev
    path: environments/dev
    policy: {selfHeal: false}
  - name: staging
    path: environments/staging
pipeline: [dev, staging]
`;

interface Drift {
  cluster: string;
  kind: string;
  name: string;
  field: string;
  desired: string;
  live: string;
}

/** Row 3 of the security matrix: a Secret's value reaches the cluster and nowhere else. */
describe('security: Secret values never leave the cluster through Flotilla', { timeout: 300_000 }, () => {
  let fleet: Fleet;
  let hubOut: () => string;
  const agentOut = new Map<string, () => string>();
  let devKube: string;

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': FLOTILLA_YAML,
        ...appFiles('dev'),
        'environments/dev/secret.yaml': secretYaml(DEV_PASSWORD, DEV_API_KEY),
        ...appFiles('staging'),
        'environments/staging/secret.yaml': secretYaml(STAGING_PASSWORD),
      },
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
      ],
    });
    hubOut = captureOutput(fleet.hub.process);
    for (const [name, c] of fleet.clusters) agentOut.set(name, captureOutput(c.agent!));
    devKube = fleet.clusters.get('dev-1')!.kubeconfig;
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  /** Fails naming where a secret value (or its base64) showed up. */
  const assertNoSecret = (where: string, text: string) => {
    for (const needle of needles)
      assert.ok(!text.includes(needle), `${where} contains the secret value ${JSON.stringify(needle)}`);
  };

  test('the Secret reaches the cluster with its value (so the searches below look for the right bytes)', async () => {
    const s = await kubectlJson(devKube, ['-n', 'shop', 'get', 'secret', 'db']);
    assert.equal(s.data.password, b64(DEV_PASSWORD));
    assert.equal(s.data.apiKey, b64(DEV_API_KEY));
  });

  test('a Secret edited live is reported as drift of its key with a hash, never its value', async () => {
    await kubectl(devKube, [
      '-n',
      'shop',
      'patch',
      'secret',
      'db',
      '--type=merge',
      '-p',
      JSON.stringify({ data: { password: b64(LIVE_PASSWORD) } }),
    ]);
    const drift = await eventually(
      async () => {
        const all = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift');
        const d = all.drift.find((x) => x.cluster === 'dev-1' && x.kind === 'Secret' && x.name === 'db');
        assert.ok(d, JSON.stringify(all.drift));
        return d;
      },
      { timeoutMs: 60_000, message: 'the Secret drift reaches fleet drift' },
    );
    assert.equal(drift.field, 'data.password');
    const stateDir = fleet.clusters.get('dev-1')!.stateDir;
    assert.equal(drift.desired, redacted(stateDir, b64(DEV_PASSWORD)));
    assert.equal(drift.live, redacted(stateDir, b64(LIVE_PASSWORD)));
    // Keyed: a dictionary of plain hashes of guessed values does not match what the hub shows.
    assert.notEqual(drift.desired, unkeyed(b64(DEV_PASSWORD)));
    assert.notEqual(drift.live, unkeyed(b64(LIVE_PASSWORD)));
    const row = (await fleet.fleetStatus()).find((r) => r.name === 'dev-1')!;
    assert.equal(row.sync, 'OutOfSync');
    assert.ok(row.drifted >= 1);
    // Self-heal is off for dev: the live value stays, so every view below is taken while it drifts.
    const s = await kubectlJson(devKube, ['-n', 'shop', 'get', 'secret', 'db']);
    assert.equal(s.data.password, b64(LIVE_PASSWORD));
  });

  test('env diff shows that the Secret differs between environments, by hash only', async () => {
    const human = await fleet.flotilla('env', 'diff', 'dev', 'staging');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /secret\.yaml/);
    assert.match(human.stdout, /password: "?\[redacted [0-9a-f]{12}\]/);
    for (const value of [DEV_PASSWORD, STAGING_PASSWORD].flatMap((v) => [v, b64(v)]))
      assert.ok(!human.stdout.includes(unkeyed(value)), 'env diff hashes are keyed by the hub');
    assertNoSecret('flotilla env diff', human.stdout + human.stderr);
    const json = await fleet.flotilla('env', 'diff', 'dev', 'staging', '-o', 'json');
    assert.equal(json.code, 0, json.stderr);
    assert.ok(JSON.parse(json.stdout).files.some((f: { path: string }) => f.path === 'secret.yaml'));
    assertNoSecret('flotilla env diff -o json', json.stdout + json.stderr);
  });

  test('a Secret manifest that fails to render is named by file and line in fleet status, never quoted', async () => {
    const broken = `${secretYaml(STAGING_PASSWORD)}   oops: ${STAGING_PASSWORD}\n`;
    await fleet.work.commit({ 'environments/staging/secret.yaml': broken }, 'staging: broken secret');
    await fleet.poke();
    const row = await eventually(
      async () => {
        const r = (await fleet.fleetStatus()).find((c) => c.name === 'staging-1')!;
        assert.ok(r.error, JSON.stringify(r));
        return r;
      },
      { timeoutMs: 60_000, message: 'the render error reaches fleet status' },
    );
    assert.match(row.error!, /environments\/staging\/secret\.yaml:\d+: document 0: invalid YAML/);
    assertNoSecret('the render error in fleet status', row.error!);
    const d = await kubectlJson(fleet.clusters.get('staging-1')!.kubeconfig, [
      '-n',
      'shop',
      'get',
      'secret',
      'db',
    ]);
    assert.equal(d.data.password, b64(STAGING_PASSWORD), 'the last good bundle stays applied');
    await fleet.work.commit(
      { 'environments/staging/secret.yaml': secretYaml(STAGING_PASSWORD) },
      'staging: fix',
    );
    await fleet.poke();
    await eventually(
      async () => assert.equal((await fleet.fleetStatus()).find((c) => c.name === 'staging-1')!.error, null),
      { timeoutMs: 60_000, message: 'the render error clears' },
    );
  });

  test('no Secret value (nor its base64) appears in fleet drift, fleet status, audit, or any process output', async () => {
    const views: [string, string[]][] = [
      ['fleet drift -o json', ['fleet', 'drift', '-o', 'json']],
      ['fleet drift --history -o json', ['fleet', 'drift', '--history', '-o', 'json']],
      ['fleet drift', ['fleet', 'drift']],
      ['fleet status -o json', ['fleet', 'status', '-o', 'json']],
      ['fleet status', ['fleet', 'status']],
      ['cluster list -o json', ['cluster', 'list', '-o', 'json']],
      ['cluster show dev-1 -o json', ['cluster', 'show', 'dev-1', '-o', 'json']],
      ['cluster show dev-1', ['cluster', 'show', 'dev-1']],
      ['audit -o json', ['audit', '-o', 'json']],
    ];
    for (const [name, args] of views) {
      const r = await fleet.flotilla(...args);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assertNoSecret(`flotilla ${name}`, r.stdout + r.stderr);
    }
    assertNoSecret('the hub process output', hubOut());
    for (const [name, out] of agentOut) {
      assert.match(out(), /bundle applied/, `${name}'s output was captured`);
      assertNoSecret(`agent ${name}'s process output`, out());
    }
  });

  test('the dashboard shows the Secret drift by its hash and never the value, nor the admin token', async () => {
    const login = await fetch(`${fleet.hub.http}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: fleet.adminToken }).toString(),
    });
    assert.equal(login.status, 303);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const pages = ['/ui', '/ui/clusters/dev-1', '/ui/clusters/staging-1', '/ui/drift', '/ui/promotions'];
    let all = '';
    for (const path of pages) {
      const res = await fetch(`${fleet.hub.http}${path}`, { redirect: 'manual', headers: { cookie } });
      assert.equal(res.status, 200, path);
      const body = await res.text();
      assertNoSecret(`dashboard ${path}`, body);
      assert.ok(!body.includes(fleet.adminToken), `dashboard ${path} shows the admin token`);
      all += body;
    }
    assert.ok(all.includes('data.password'), 'the Secret drift is on the dashboard');
    assert.match(all, /\[redacted [0-9a-f]{12}\]/);
  });

  /** A dashboard session for `token` (its cookie). */
  const dashboardSession = async (token: string) => {
    const login = await fetch(`${fleet.hub.http}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    assert.equal(login.status, 303);
    return (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  };

  test('the dashboard’s object diff of the drifted Secret shows only hashes to an admin and nothing to a viewer', async () => {
    const path = '/ui/clusters/dev-1/object?ref=%2FSecret%2Fshop%2Fdb';
    const page = async (cookie: string) => {
      const res = await fetch(`${fleet.hub.http}${path}`, { redirect: 'manual', headers: { cookie } });
      assert.equal(res.status, 200, path);
      return res.text();
    };
    const admin = await page(await dashboardSession(fleet.adminToken));
    assertNoSecret('the object diff for an admin', admin);
    const stateDir = fleet.clusters.get('dev-1')!.stateDir;
    const desired = redacted(stateDir, b64(DEV_PASSWORD));
    const live = redacted(stateDir, b64(LIVE_PASSWORD));
    // The drifted key as the agent's keyed hashes, desired against live.
    assert.match(admin, new RegExp(`<span class="del">-\\s+password: (?:&quot;)?${escapeRegExp(desired)}`));
    assert.match(admin, new RegExp(`<span class="add">\\+\\s+password: (?:&quot;)?${escapeRegExp(live)}`));
    // The undrifted key: a hash under the hub's key, on both sides, never a plain sha256 of it.
    const apiKey = [...admin.matchAll(/apiKey: (?:&quot;)?(\[redacted [0-9a-f]{12}\])/g)].map((m) => m[1]);
    assert.ok(apiKey.length > 0, 'the apiKey value shows as a hash');
    assert.ok(!apiKey.includes(unkeyed(b64(DEV_API_KEY))), 'keyed by the hub');
    assert.ok(!admin.includes('[hidden]'));

    const viewer = await fleet.flotillaJson<{ token: string }>('token', 'create', 'vera', '--role', 'viewer');
    const shown = await page(await dashboardSession(viewer.token));
    assertNoSecret('the object diff for a viewer', shown);
    assert.match(shown, /password: (?:&quot;)?\[redacted\]/);
    assert.match(shown, /apiKey: (?:&quot;)?\[redacted\]/);
    assert.doesNotMatch(shown, /\[(redacted|encrypted) [0-9a-f]{12}\]/, 'not one hash for a viewer');
    assert.equal((await fleet.flotilla('token', 'revoke', 'vera')).code, 0);
  });

  test('the admin token, join tokens, agent credentials and NATS seeds never appear in any process output', async () => {
    const hub = hubOut();
    assert.match(hub, /hub ready/, 'the hub output was captured from its start');
    assert.ok(!hub.includes(fleet.adminToken), 'the admin token is in the hub output');
    for (const [name, c] of fleet.clusters) {
      const id = readIdentity(c.stateDir);
      const agentKeyBody = id.agentKey.split('\n')[1]!;
      const secrets: [string, string][] = [
        ['join token', c.token],
        ['agent credential', id.agentCredential],
        ['NATS seed', id.nats.seed],
        ['NATS user JWT', id.nats.jwt],
        ['agent private key', agentKeyBody],
      ];
      const out = agentOut.get(name)!();
      for (const [what, value] of secrets) {
        assert.ok(value.length > 16, `${name}'s ${what} is known to the test`);
        assert.ok(!hub.includes(value), `${name}'s ${what} is in the hub output`);
        assert.ok(!out.includes(value), `${name}'s ${what} is in its agent's output`);
      }
      assert.ok(!out.includes(fleet.adminToken), `the admin token is in ${name}'s agent output`);
    }
  });
});
