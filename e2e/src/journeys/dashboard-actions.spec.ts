import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';

interface AuditRow {
  action: string;
  actor: string;
  outcome: string;
  detail: string | null;
}

/**
 * The dashboard that acts, end to end: a real hub, git over HTTP, NATS and three clusters with
 * agents; a browser's requests (session cookie, forms, Origin) made with fetch.
 */
describe('dashboard: pipeline counts, a deployer’s promote button, a viewer without it, cross-site refused', {
  timeout: 600_000,
}, () => {
  let fleet: Fleet;
  const tokens = new Map<string, string>();
  const url = (path: string) => `${fleet.hub.http}${path}`;
  const login = async (name: string): Promise<string> => {
    const res = await fetch(url('/ui/login'), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: fleet.hub.http },
      body: new URLSearchParams({ token: tokens.get(name)! }).toString(),
    });
    assert.equal(res.status, 303, `login as ${name}`);
    return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  };
  const get = (path: string, cookie: string) => fetch(url(path), { redirect: 'manual', headers: { cookie } });
  const post = (path: string, cookie: string, form: Record<string, string>, origin = fleet.hub.http) =>
    fetch(url(path), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  const audit = () => fleet.flotillaJson<{ audit: AuditRow[] }>('audit').then((a) => a.audit);
  const headOf = async (branch: string) =>
    (await fleet.work.git('ls-remote', 'origin', branch)).split('\t')[0]!;

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': `environments:
  - {name: dev, path: environments/dev}
  - {name: staging, path: environments/staging}
pipeline: [dev, staging]
`,
        ...appFiles('dev'),
        ...appFiles('staging'),
      },
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'dev-2', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
      ],
    });
    for (const [name, role] of [
      ['vera', 'viewer'],
      ['dora', 'deployer'],
    ] as const) {
      const created = await fleet.flotillaJson<{ token: string }>(
        'token',
        'create',
        name,
        '--role',
        role,
        ...(role === 'deployer' ? ['--env', 'staging'] : []),
        '--ttl',
        '1d',
      );
      tokens.set(name, created.token);
    }
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('the pipeline shows each environment’s revision and how many clusters are Synced and Healthy at it', async () => {
    const rev = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1', 'dev-2'], { revision: { 'dev-1': rev, 'dev-2': rev } });
    const cookie = await login('vera');
    const body = await eventually(
      async () => {
        const text = await (await get('/ui/pipeline', cookie)).text();
        assert.match(text, /data-ready="2\/2"/);
        return text;
      },
      { timeoutMs: 60_000, message: 'dev shows 2/2 Synced and Healthy' },
    );
    const dev = body.slice(body.indexOf('id="env-dev"'), body.indexOf('id="env-staging"'));
    assert.match(dev, /data-ready="2\/2">2\/2 Synced and Healthy/);
    assert.ok(dev.includes(rev.slice(0, 12)), `dev runs ${rev.slice(0, 12)}`);
    assert.match(body.slice(body.indexOf('id="env-staging"')), /data-ready="1\/1">1\/1 Synced and Healthy/);
    assert.match(body, /1 file, 1 commit|1 file</, 'promoting would move deployment.yaml');
    assert.match(body, /deployment\.yaml/);
  });

  test('a viewer sees no button and is refused the confirmation page', async () => {
    const cookie = await login('vera');
    const body = await (await get('/ui/pipeline', cookie)).text();
    assert.doesNotMatch(body, /data-action=/, 'no action button for a viewer');
    const confirm = await get('/ui/act?action=promote&from=dev&to=staging', cookie);
    assert.equal(confirm.status, 403);
    assert.match(await confirm.text(), /lacks promote on environment staging/);
  });

  test('a deployer of staging promotes dev → staging with the button: confirmed, a real commit, audited as the token', async () => {
    const cookie = await login('dora');
    const body = await (await get('/ui/pipeline', cookie)).text();
    assert.match(body, /data-action="promote">Promote dev → staging</);
    const confirm = await get('/ui/act?action=promote&from=dev&to=staging', cookie);
    assert.equal(confirm.status, 200);
    const page = await confirm.text();
    assert.match(page, /Promote dev → staging: staging gets what every dev cluster runs now/);
    const before = await headOf('main');
    const done = await post('/ui/act', cookie, {
      action: 'promote',
      from: 'dev',
      to: 'staging',
      csrf: csrfOf(page)!,
    });
    const result = await done.text();
    assert.equal(done.status, 200, result);
    assert.match(result, /Promoted dev → staging: staging now holds/);
    assert.notEqual(await headOf('main'), before, 'the promotion is a commit on the branch');
    const history = await fleet.flotillaJson<{ actor: string; to: string }[]>('promote', '--history');
    assert.deepEqual([history[0]!.to, history[0]!.actor], ['staging', 'token:dora']);
    assert.ok(
      (await audit()).some((a) => a.action === 'promote' && a.actor === 'token:dora' && a.outcome === 'ok'),
      'audited under the session identity',
    );
  });

  test('a cross-site POST is refused: a foreign Origin, or a CSRF token missing or from another session', async () => {
    const cookie = await login('dora');
    const page = await (await get('/ui/act?action=sync&environment=staging', cookie)).text();
    const csrf = csrfOf(page)!;
    const form = { action: 'sync', environment: 'staging', csrf };
    const foreign = await post('/ui/act', cookie, form, 'https://evil.example');
    assert.equal(foreign.status, 403);
    assert.match(await foreign.text(), /does not come from this dashboard/);
    const noToken = await post('/ui/act', cookie, { action: 'sync', environment: 'staging' });
    assert.equal(noToken.status, 403);
    const other = await login('dora');
    const stolen = await post('/ui/act', other, form);
    assert.equal(stolen.status, 403, 'a token is bound to its session');
    const refusals = (await audit()).filter((a) => a.action === 'dashboard.refused');
    assert.ok(refusals.length >= 3, `three refusals audited, got ${refusals.length}`);
    const ok = await post('/ui/act', cookie, form);
    assert.equal(ok.status, 200, 'the same form from the dashboard itself works');
    assert.match(await ok.text(), /Sync asked of 1 cluster/);
  });
});
