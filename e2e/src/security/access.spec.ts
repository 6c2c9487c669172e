import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bin, type CliResult, runCli } from '../fleet/cli.js';
import { appFiles, threeDirectoryRepoFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';

interface AuditRow {
  action: string;
  actor: string;
  outcome: string;
  detail: string | null;
}
interface HistoryRow {
  kind: string;
  from: string;
  to: string;
  actor: string;
  approvedBy: string | null;
  commit: string | null;
}

/**
 * Who may do what, end to end: a real hub, git over HTTP, NATS, three clusters with agents,
 * and the `flotilla` CLI holding API tokens of each role.
 */
describe('access: roles scoped to environments, four eyes, the audit names who', { timeout: 900_000 }, () => {
  let fleet: Fleet;
  const tokens = new Map<string, string>();
  const as = (name: string, ...args: string[]): Promise<CliResult> =>
    runCli(bin('flotilla'), args, { ...fleet.env, FLOTILLA_TOKEN: tokens.get(name)! });
  const json = async <T>(name: string, ...args: string[]): Promise<T> => {
    const r = await as(name, ...args, '-o', 'json');
    assert.equal(r.code, 0, `${args.join(' ')} as ${name}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const audit = () => fleet.flotillaJson<{ audit: AuditRow[] }>('audit').then((a) => a.audit);
  const headOf = async (branch: string) =>
    (await fleet.work.git('ls-remote', 'origin', branch)).split('\t')[0]!;

  before(async () => {
    fleet = await startFleet({
      repoFiles: threeDirectoryRepoFiles({ approveProd: true }),
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
        { name: 'prod-1', environment: 'prod' },
      ],
    });
    for (const [name, role, envs] of [
      ['vera', 'viewer', []],
      ['dora', 'deployer', ['staging']],
      ['pat', 'deployer', ['prod']],
      ['alice', 'approver', ['prod']],
      ['ada', 'admin', []],
    ] as const) {
      const created = await fleet.flotillaJson<{
        name: string;
        role: string;
        environments: string[];
        token: string;
      }>('token', 'create', name, '--role', role, ...envs.flatMap((e) => ['--env', e]), '--ttl', '1d');
      assert.deepEqual([created.name, created.role, created.environments], [name, role, [...envs]]);
      tokens.set(name, created.token);
    }
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('a viewer token reads the fleet and is refused every change, each refusal naming the permission and audited', async () => {
    const status = await json<{ clusters: { name: string }[] }>('vera', 'fleet', 'status');
    assert.deepEqual(status.clusters.map((c) => c.name).sort(), ['dev-1', 'prod-1', 'staging-1']);
    for (const read of [
      ['cluster', 'list'],
      ['cluster', 'show', 'dev-1'],
      ['fleet', 'drift'],
      ['promote', '--history'],
      ['env', 'diff', 'dev', 'staging'],
      ['audit'],
      ['rollout', 'status', 'dev'],
    ])
      assert.equal(
        (await as('vera', ...read)).code,
        0,
        `${read.join(' ')}: ${(await as('vera', ...read)).stderr}`,
      );
    const changes: [string[], string][] = [
      [['promote', 'dev', 'staging'], 'promote'],
      [['promote', 'staging', 'prod', '--approve'], 'approve'],
      [['rollback', 'staging'], 'rollback'],
      [['sync', 'dev-1'], 'sync'],
      [['sync', '--env', 'dev'], 'sync'],
      [['cluster', 'add', 'edge-1', '--env', 'dev'], 'clusters'],
      [['cluster', 'remove', 'dev-1'], 'clusters'],
      [['cluster', 'label', 'dev-1', 'tier=gold'], 'clusters'],
      [['cluster', 'move', 'dev-1', '--env', 'staging'], 'clusters'],
      [['cluster', 'token', 'dev-1'], 'clusters'],
      [['cluster', 'pause', 'dev-1'], 'pause'],
      [['env', 'pause', 'dev'], 'pause'],
      [['rollout', 'resume', 'dev'], 'pause'],
      [['bundle', 'approve', 'dev-1'], 'approve'],
      [['hub', 'rotate-key'], 'keys'],
      [['token', 'create', 'mine', '--role', 'admin'], 'tokens'],
      [['token', 'list'], 'tokens'],
      [['token', 'revoke', 'dora'], 'tokens'],
    ];
    for (const [args, permission] of changes) {
      const r = await as('vera', ...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} went through for a viewer`);
      assert.match(
        r.stderr,
        new RegExp(`permission denied: token:vera \\(viewer\\) lacks ${permission}`),
        args.join(' '),
      );
    }
    const exported = await as('vera', 'bundle', 'export', '--cluster', 'dev-1', '-o', '/dev/null');
    assert.match(exported.stderr, /lacks read-secrets on environment dev/, 'a bundle holds Secret values');
    const clusters = await fleet.flotillaJson<{
      clusters: { name: string; environment: string; labels: object }[];
    }>('cluster', 'list');
    assert.deepEqual(clusters.clusters.map((c) => [c.name, c.environment]).sort(), [
      ['dev-1', 'dev'],
      ['prod-1', 'prod'],
      ['staging-1', 'staging'],
    ]);
    const refused = (await audit()).filter((e) => e.action === 'access.refused' && e.actor === 'token:vera');
    assert.equal(refused.length, changes.length + 1, 'every refusal is audited under the viewer');
  });

  test('a deployer of staging promotes dev → staging and is refused staging → prod', async () => {
    const rev = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
    const promoted = await as('dora', 'promote', 'dev', 'staging');
    assert.equal(promoted.code, 0, promoted.stderr);
    const history = await json<HistoryRow[]>('dora', 'promote', '--history');
    assert.deepEqual(
      [history[0]!.kind, history[0]!.to, history[0]!.actor],
      ['promote', 'staging', 'token:dora'],
    );
    await fleet.poke();
    await fleet.waitSynced(['staging-1'], { revision: { 'staging-1': history[0]!.commit! } });
    const refused = await as('dora', 'promote', 'staging', 'prod');
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /permission denied: token:dora \(deployer of staging\) lacks promote on environment prod/,
    );
    const rollback = await as('dora', 'rollback', 'prod');
    assert.match(rollback.stderr, /lacks rollback on environment prod/);
  });

  test('a promotion into an approve: true environment waits until an approver who is not the requester approves', async () => {
    const prodBefore = await headOf('main');
    const asked = await as('ada', 'promote', 'staging', 'prod');
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stdout, /waits for approval by an identity other than token:ada/);
    assert.equal(await headOf('main'), prodBefore, 'nothing moved before the approval');
    const pending = (await json<HistoryRow[]>('vera', 'promote', '--history'))[0]!;
    assert.deepEqual(
      [pending.kind, pending.from, pending.to, pending.actor],
      ['pending', 'staging', 'prod', 'token:ada'],
    );
    const self = await as('ada', 'promote', 'staging', 'prod', '--approve');
    assert.notEqual(self.code, 0, 'the requester approved their own promotion');
    assert.match(
      self.stderr,
      /permission denied: .*token:ada asked for this promotion and cannot approve it too \(four eyes\)/,
    );
    const deployer = await as('pat', 'promote', 'staging', 'prod', '--approve');
    assert.match(deployer.stderr, /token:pat \(deployer of prod\) lacks approve on environment prod/);
    assert.equal(await headOf('main'), prodBefore, 'still nothing moved');
    const approved = await as('alice', 'promote', 'staging', 'prod', '--approve');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /asked for by token:ada, approved by token:alice/);
    const done = (await json<HistoryRow[]>('vera', 'promote', '--history'))[0]!;
    assert.deepEqual(
      [done.kind, done.to, done.actor, done.approvedBy],
      ['promote', 'prod', 'token:ada', 'token:alice'],
    );
    await fleet.work.git('fetch', '-q', 'origin');
    assert.match(
      await fleet.work.git('log', '-1', '--format=%B', done.commit!),
      /Promoted by token:ada\.\nApproved by token:alice\./,
    );
    await fleet.poke();
    await fleet.waitSynced(['prod-1'], { revision: { 'prod-1': done.commit! } });
  });

  test('the audit log names the authenticated identities, never a client-supplied name', async () => {
    const res = await fetch(`${fleet.hub.http}/api/v1/sync`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens.get('dora')}`,
        'content-type': 'application/json',
        'x-flotilla-actor': 'mallory',
      },
      body: JSON.stringify({ environment: 'staging' }),
    });
    assert.equal(res.status, 200, await res.text());
    const entries = await audit();
    const by = (action: string, outcome = 'ok') =>
      entries.filter((e) => e.action === action && e.outcome === outcome).map((e) => e.actor);
    assert.ok(by('token.create').includes('admin'), 'the bootstrap admin created the tokens');
    assert.ok(by('promote').includes('token:dora'));
    assert.ok(by('promote.request').includes('token:ada'));
    assert.ok(by('promote.approve').includes('token:alice'));
    assert.ok(by('promote.approve', 'refused').includes('token:ada'), 'the self-approval is audited');
    assert.ok(by('sync').includes('token:dora'), JSON.stringify(entries.filter((e) => e.action === 'sync')));
    assert.ok(!JSON.stringify(entries).includes('mallory'), 'x-flotilla-actor names nobody');
    for (const token of tokens.values())
      assert.ok(!JSON.stringify(entries).includes(token), 'no token in the audit');
  });
});
