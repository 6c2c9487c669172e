import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import { createLogger } from '@flotilla/shared';
import { PermissionDeniedError } from '../access/roles.js';
import { createAuditLog } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { openTestDatabase } from '../db/testing.js';
import { createGitSource } from '../source/index.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { createPromotionLog } from './promotion-log.js';
import { createPromotionService, PromotionRefusedError } from './promotion-service.js';

const logger = createLogger({
  name: 'test',
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

/** A fleet-status row as the fleet view computes it from agent reports. */
function row(
  name: string,
  environment: string,
  revision: string | null,
  over: Partial<FleetClusterStatus> = {},
) {
  return {
    name,
    environment,
    labels: {},
    revision,
    generation: 1,
    phase: 'Synced',
    sync: 'Synced',
    health: 'Healthy',
    drifted: 0,
    error: null,
    connected: true,
    lastSeen: new Date().toISOString(),
    desiredGeneration: 1,
    desiredRevision: revision,
    renderedRevision: revision,
    reportedAt: null,
    reportedVia: 'stream',
    healthySince: new Date(Date.now() - 3_600_000).toISOString(),
    paused: null,
    hold: null,
    pendingGeneration: null,
    pendingUntil: null,
    ...over,
  } satisfies FleetClusterStatus;
}

const DIRS = `environments:
  - {name: dev, path: environments/dev}
  - {name: staging, path: environments/staging, keep: [values.yaml]}
  - name: prod
    path: environments/prod
    promotion: {soak: 10m, approve: true}
pipeline: [dev, staging, prod]
`;

describe('promotion service (real git over HTTP, PGlite)', () => {
  let server: GitServer;
  let database: Database;
  const cleanups: (() => void)[] = [];
  before(async () => {
    server = await startGitServer();
    database = await openTestDatabase('pglite');
  });
  after(async () => {
    await server.stop();
    await database.close();
    for (const c of cleanups) c();
  });

  async function setup(files: Record<string, string>, branches: string[] = []) {
    const name = `r${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, files);
    const work = await server.clone(name);
    for (const b of branches) await work.git('push', '-q', 'origin', `HEAD:refs/heads/${b}`);
    const cacheDir = mkdtempSync(join(tmpdir(), 'flotilla-promotion-'));
    cleanups.push(() => rmSync(cacheDir, { recursive: true, force: true }));
    const source = createGitSource({ url: `${server.url}/${name}.git`, cacheDir });
    let fleet: FleetClusterStatus[] = [];
    const triggers: string[] = [];
    const service = createPromotionService({
      source,
      fleet: { status: async () => fleet },
      log: createPromotionLog(database.db),
      audit: createAuditLog(database.db),
      sync: { trigger: async (reason) => triggers.push(reason) },
      logger,
    });
    const show = async (ref: string, path: string) => {
      await work.git('fetch', '-q', 'origin');
      return work.git('show', `${ref}:${path}`).catch(() => null);
    };
    return { service, work, show, triggers, setFleet: (rows: FleetClusterStatus[]) => (fleet = rows) };
  }

  test('a promotion is refused, naming every reason, unless each FROM cluster is Synced and Healthy at one revision', async () => {
    const { service, work, setFleet } = await setup({
      'flotilla.yaml': DIRS,
      'environments/dev/app.yaml': 'replicas: 2\n',
      'environments/staging/app.yaml': 'replicas: 1\n',
    });
    const head = await work.head();
    setFleet([
      row('dev-1', 'dev', head, { health: 'Degraded' }),
      row('dev-2', 'dev', head, { connected: false }),
      row('dev-3', 'dev', null, { sync: 'OutOfSync' }),
    ]);
    await assert.rejects(service.promote({ from: 'dev', to: 'staging', actor: 'admin:alice' }), (err) => {
      assert.ok(err instanceof PromotionRefusedError);
      assert.match(err.message, /dev cluster dev-1 is Degraded, not Healthy/);
      assert.match(err.message, /dev cluster dev-2 is disconnected/);
      assert.match(err.message, /dev cluster dev-3 has reported no revision yet/);
      return true;
    });
    assert.equal(
      await work.git('ls-remote', 'origin', 'main').then((l) => l.split('\t')[0]),
      head,
      'nothing pushed',
    );
    await assert.rejects(
      service.promote({ from: 'dev', to: 'prod', actor: 'a' }),
      /not a step of the pipeline dev → staging → prod/,
    );
  });

  test('directory mapping: one commit naming the revision, TO keeps its own files; history and rollback by git revert', async () => {
    const { service, work, show, triggers, setFleet } = await setup({
      'flotilla.yaml': DIRS,
      'environments/dev/app.yaml': 'replicas: 2\n',
      'environments/dev/values.yaml': 'level: debug\n',
      'environments/staging/app.yaml': 'replicas: 1\n',
      'environments/staging/values.yaml': 'level: info\n',
    });
    const rev = await work.commit({ 'environments/dev/app.yaml': 'replicas: 4\n' }, 'dev: 4 replicas');
    setFleet([row('dev-1', 'dev', rev)]);

    const diff = await service.diff('dev', 'staging');
    assert.equal(diff.fromRevision, rev);
    assert.deepEqual(
      diff.files.map((f) => [f.path, f.change]),
      [['app.yaml', 'modified']],
      'values.yaml is staging’s own',
    );
    assert.match(diff.files[0]!.patch, /^-replicas: 1$/m);
    assert.match(diff.files[0]!.patch, /^\+replicas: 4$/m);

    const p = await service.promote({ from: 'dev', to: 'staging', actor: 'admin:alice' });
    assert.equal(p.changed, true);
    assert.equal(p.fastForward, false);
    assert.equal(await show('origin/main', 'environments/staging/app.yaml'), 'replicas: 4');
    assert.equal(await show('origin/main', 'environments/staging/values.yaml'), 'level: info');
    const message = await work.git('log', '-1', '--format=%B', 'origin/main');
    assert.match(message, new RegExp(`Flotilla-Promoted-From: main@${rev}:environments/dev`));
    assert.match(message, /Promoted by admin:alice/);
    assert.deepEqual(triggers, ['promote dev → staging']);
    assert.equal((await service.diff('dev', 'staging')).files.length, 0);

    const again = await service.promote({ from: 'dev', to: 'staging', actor: 'admin:alice' });
    assert.equal(again.changed, false, 'staging already holds it: nothing pushed');

    const r = await service.rollback('staging', 'admin:bob');
    assert.equal(r.undid.commit, p.commit);
    assert.equal(await show('origin/main', 'environments/staging/app.yaml'), 'replicas: 1');
    assert.match(
      await work.git('log', '-1', '--format=%B', 'origin/main'),
      new RegExp(`This reverts commit ${p.commit}`),
    );
    const history = await service.history();
    assert.deepEqual(
      history.slice(0, 2).map((h) => [h.kind, h.to, h.actor]),
      [
        ['rollback', 'staging', 'admin:bob'],
        ['promote', 'staging', 'admin:alice'],
      ],
    );
    await assert.rejects(service.rollback('staging', 'a'), /no promotion into staging left to roll back/);
  });

  test("an app's per-environment directory is promoted with the environment's, in the same commit, and rolled back with it", async () => {
    const { service, work, show, setFleet } = await setup({
      'flotilla.yaml': `${DIRS}apps:
  - {name: monitoring, selector: {matchLabels: {tier: prod}}}
  - {name: dev-tools, selector: {}, environments: [dev]}
`,
      'environments/dev/app.yaml': 'replicas: 2\n',
      'environments/staging/app.yaml': 'replicas: 2\n',
      'apps/monitoring/dev/agent.yaml': 'version: 2\n',
      'apps/monitoring/dev/values.yaml': 'level: debug\n',
      'apps/monitoring/staging/agent.yaml': 'version: 1\n',
      'apps/monitoring/staging/values.yaml': 'level: info\n',
      'apps/dev-tools/dev/tool.yaml': 'x: 1\n',
    });
    const old = await work.head();
    const rev = await work.commit({ 'apps/monitoring/dev/agent.yaml': 'version: 3\n' }, 'dev: monitoring 3');
    // dev-2 does not run monitoring: the commit left its bundle (and its revision) as it was,
    // and the hub rendered it at the new commit to the same content.
    setFleet([row('dev-1', 'dev', rev), row('dev-2', 'dev', old, { renderedRevision: rev })]);
    const diff = await service.diff('dev', 'staging');
    assert.deepEqual(
      diff.files.map((f) => [f.source ?? 'env', f.path, f.change]),
      [['app/monitoring', 'agent.yaml', 'modified']],
      'the app’s files, without those staging keeps; dev-tools does not reach staging',
    );
    await assert.rejects(
      (async () => {
        setFleet([row('dev-1', 'dev', rev), row('dev-2', 'dev', old, { renderedRevision: old })]);
        await service.promote({ from: 'dev', to: 'staging', actor: 'a' });
      })(),
      /dev clusters run different revisions/,
      'a cluster not rendered at the new commit does not verify it',
    );
    setFleet([row('dev-1', 'dev', rev), row('dev-2', 'dev', old, { renderedRevision: rev })]);
    const p = await service.promote({ from: 'dev', to: 'staging', actor: 'a' });
    assert.equal(p.changed, true, 'the app alone changed: still a promotion');
    assert.equal(p.fromRevision, rev);
    assert.equal(await show('origin/main', 'apps/monitoring/staging/agent.yaml'), 'version: 3');
    assert.equal(await show('origin/main', 'apps/monitoring/staging/values.yaml'), 'level: info');
    assert.equal(await show('origin/main', 'apps/dev-tools/staging/tool.yaml'), null);
    assert.match(
      await work.git('log', '-1', '--format=%B', 'origin/main'),
      /App monitoring: apps\/monitoring\/staging now holds apps\/monitoring\/dev\./,
    );
    await service.rollback('staging', 'a');
    assert.equal(await show('origin/main', 'apps/monitoring/staging/agent.yaml'), 'version: 1');
  });

  test("branch mapping: an app's shared directory goes to TO's branch with the environment, other environments' own directories stay", async () => {
    const { service, work, show, setFleet } = await setup(
      {
        'flotilla.yaml': `environments:
  - {name: dev, path: app, branch: dev}
  - {name: staging, path: app, branch: staging}
apps:
  - {name: monitoring, selector: {}}
`,
        'app/app.yaml': 'replicas: 1\n',
        'apps/monitoring/agent.yaml': 'version: 1\n',
      },
      ['dev', 'staging'],
    );
    await work.git('checkout', '-q', '-b', 'staging', 'origin/staging');
    await work.commit(
      { 'apps/monitoring/staging/extra.yaml': 'staging: own\n' },
      'staging: its own app file',
    );
    await work.git('checkout', '-q', '-b', 'dev', 'origin/dev');
    const rev = await work.commit({ 'apps/monitoring/agent.yaml': 'version: 2\n' }, 'dev: monitoring 2');
    setFleet([row('dev-1', 'dev', rev)]);
    const p = await service.promote({ from: 'dev', to: 'staging', actor: 'a' });
    assert.equal(p.fastForward, false, 'staging has a commit of its own');
    assert.equal(await show('origin/staging', 'apps/monitoring/agent.yaml'), 'version: 2');
    assert.equal(await show('origin/staging', 'apps/monitoring/staging/extra.yaml'), 'staging: own');
  });

  test('protected environments: soak time is a gate; approval waits for another identity (four eyes), both named in the commit', async () => {
    const { service, work, setFleet } = await setup({
      'flotilla.yaml': DIRS,
      'environments/staging/app.yaml': 'replicas: 3\n',
      'environments/prod/app.yaml': 'replicas: 1\n',
    });
    const head = await work.head();
    setFleet([
      row('staging-1', 'staging', head, { healthySince: new Date(Date.now() - 60_000).toISOString() }),
    ]);
    await assert.rejects(
      service.promote({ from: 'staging', to: 'prod', actor: 'token:dora' }),
      /staging-1 has soaked (1m|6\ds) of the 10m prod requires/,
    );
    setFleet([row('staging-1', 'staging', head)]);
    await assert.rejects(
      service.approve({ from: 'staging', to: 'prod', actor: 'token:alice' }),
      /no promotion waits for approval/,
    );
    const asked = await service.promote({ from: 'staging', to: 'prod', actor: 'token:dora' });
    assert.equal(asked.changed, false, 'nothing moves before the approval');
    assert.equal(asked.pending?.requestedBy, 'token:dora');
    assert.equal(asked.pending?.revision, head);
    assert.deepEqual(
      (await service.pending()).map((p) => [p.from, p.to, p.requestedBy]),
      [['staging', 'prod', 'token:dora']],
    );
    assert.equal((await work.git('ls-remote', 'origin', 'main')).split('\t')[0], head, 'main did not move');
    const self = await service.approve({ from: 'staging', to: 'prod', actor: 'token:dora' }).then(
      () => assert.fail('the requester approved their own promotion'),
      (err: unknown) => err,
    );
    assert.ok(self instanceof PermissionDeniedError, String(self));
    assert.match(self.message, /token:dora asked for this promotion and cannot approve it too \(four eyes\)/);
    const p = await service.approve({ from: 'staging', to: 'prod', actor: 'token:alice' });
    assert.equal(p.changed, true);
    assert.equal(p.record?.actor, 'token:dora');
    assert.equal(p.record?.approvedBy, 'token:alice');
    await work.git('fetch', '-q', 'origin');
    const message = await work.git('log', '-1', '--format=%B', p.commit);
    assert.match(message, /Promoted by token:dora\.\nApproved by token:alice\./);
    assert.deepEqual(await service.pending(), [], 'approved: no longer waiting');
    assert.equal((await service.history())[0]?.approvedBy, 'token:alice');
  });

  test('branch mapping: a fast-forward, and its rollback restores the directory in one revert commit', async () => {
    const { service, work, show, setFleet } = await setup(
      {
        'flotilla.yaml': `environments:
  - {name: dev, path: app, branch: dev}
  - {name: staging, path: app, branch: staging}
`,
        'app/app.yaml': 'replicas: 1\n',
      },
      ['dev', 'staging'],
    );
    const before = (await work.git('ls-remote', 'origin', 'staging')).split('\t')[0]!;
    await work.git('checkout', '-q', '-b', 'dev', 'origin/dev');
    const rev = await work.commit({ 'app/app.yaml': 'replicas: 5\n' }, 'dev: 5');
    setFleet([row('dev-1', 'dev', rev)]);
    const p = await service.promote({ from: 'dev', to: 'staging', actor: 'a' });
    assert.equal(p.fastForward, true);
    assert.equal((await work.git('ls-remote', 'origin', 'staging')).split('\t')[0], rev);
    const r = await service.rollback('staging', 'a');
    assert.equal(await show('origin/staging', 'app/app.yaml'), 'replicas: 1');
    assert.match(
      await work.git('log', '-1', '--format=%B', 'origin/staging'),
      new RegExp(`${before}\\.\\.${rev}`),
    );
    assert.equal(r.record.undoes, p.record!.id);
  });

  test('env diff never shows a Secret value, only that it changed', async () => {
    const secret = (v: string) => `apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
stringData:
  password: ${v}
`;
    const { service, work, setFleet } = await setup({
      'flotilla.yaml': DIRS,
      'environments/dev/secret.yaml': secret('hunter2-dev'),
      'environments/staging/secret.yaml': secret('s3cret-staging'),
    });
    setFleet([row('dev-1', 'dev', await work.head())]);
    const diff = await service.diff('dev', 'staging');
    assert.equal(diff.files.length, 1);
    const patch = diff.files[0]!.patch;
    assert.doesNotMatch(patch, /hunter2|s3cret/);
    assert.match(patch, /^\+ {2}password: "?\[redacted [0-9a-f]{12}\]"?$/m);
  });
});
