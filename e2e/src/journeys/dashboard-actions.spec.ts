import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles, threeDirectoryRepoFiles } from '../fleet/demo-repo.js';
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
describe('dashboard: pipeline counts, a deployer’s promote button, a viewer without it, cross-site refused, four eyes', {
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
      repoFiles: threeDirectoryRepoFiles({ approveProd: true }),
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'dev-2', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
      ],
    });
    for (const [name, role, env] of [
      ['vera', 'viewer', undefined],
      ['dora', 'deployer', 'staging'],
      ['ada', 'admin', undefined],
      ['pat', 'deployer', 'prod'],
      ['alice', 'approver', 'prod'],
    ] as const) {
      const created = await fleet.flotillaJson<{ token: string }>(
        'token',
        'create',
        name,
        '--role',
        role,
        ...(env ? ['--env', env] : []),
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
  test('four eyes with the buttons: a promotion into prod (approve: true) asked for in the dashboard waits; its requester gets no Approve button and is refused; an approver approves with the button and the promotion runs', async () => {
    // staging runs what dora promoted above; prod does not have it yet.
    const intoStaging = (
      await fleet.flotillaJson<{ to: string; commit: string }[]>('promote', '--history')
    ).find((r) => r.to === 'staging')!;
    await fleet.poke();
    await fleet.waitSynced(['staging-1'], { revision: { 'staging-1': intoStaging.commit } });
    const approveButton = /data-action="approve">Approve staging → prod</;
    const act = async (cookie: string, form: Record<string, string>) => {
      const confirm = await get(`/ui/act?${new URLSearchParams(form)}`, cookie);
      const page = await confirm.text();
      assert.equal(confirm.status, 200, page);
      const done = await post('/ui/act', cookie, { ...form, csrf: csrfOf(page)! });
      return { status: done.status, text: await done.text() };
    };
    const prodBefore = await headOf('main');

    const ada = await login('ada');
    assert.match(
      await (await get('/ui/pipeline', ada)).text(),
      /data-action="promote">Promote staging → prod</,
    );
    const asked = await act(ada, { action: 'promote', from: 'staging', to: 'prod' });
    assert.equal(asked.status, 200, asked.text);
    assert.match(asked.text, /Promotion staging → prod asked for: it waits for approval by someone else\./);
    assert.equal(await headOf('main'), prodBefore, 'nothing moved before the approval');

    const adaPage = await (await get('/ui/pipeline', ada)).text();
    assert.match(adaPage, /approval pending: asked by token:ada at /);
    assert.doesNotMatch(adaPage, approveButton, 'the requester gets no Approve button, admin though she is');
    const self = await act(ada, { action: 'approve', from: 'staging', to: 'prod' });
    assert.equal(self.status, 403, self.text);
    assert.match(self.text, /token:ada asked for this promotion and cannot approve it too \(four eyes\)/);
    assert.doesNotMatch(
      await (await get('/ui/pipeline', await login('pat'))).text(),
      approveButton,
      'nor a deployer',
    );
    assert.equal(await headOf('main'), prodBefore, 'still nothing moved');

    const alice = await login('alice');
    assert.match(await (await get('/ui/pipeline', alice)).text(), approveButton);
    const approved = await act(alice, { action: 'approve', from: 'staging', to: 'prod' });
    assert.equal(approved.status, 200, approved.text);
    assert.match(
      approved.text,
      /Promoted staging → prod: prod now holds [0-9a-f]{12} as commit [0-9a-f]{12}\./,
    );
    assert.notEqual(await headOf('main'), prodBefore, 'the promotion ran: a commit on the branch');
    const done = (
      await fleet.flotillaJson<{ kind: string; to: string; actor: string; approvedBy: string | null }[]>(
        'promote',
        '--history',
      )
    )[0]!;
    assert.deepEqual(
      [done.kind, done.to, done.actor, done.approvedBy],
      ['promote', 'prod', 'token:ada', 'token:alice'],
    );
    const entries = await audit();
    assert.ok(
      entries.some((a) => a.action === 'promote.approve' && a.actor === 'token:alice' && a.outcome === 'ok'),
    );
    assert.ok(
      entries.some(
        (a) => a.action === 'promote.approve' && a.actor === 'token:ada' && a.outcome === 'refused',
      ),
    );
  });
});
