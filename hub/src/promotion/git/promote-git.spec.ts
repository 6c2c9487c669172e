import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import { ErrorCode } from '@flotilla/shared';
import { createGitSource, type SourceError } from '../../source/index.js';
import { promoteTree, revertCommit } from './index.js';
import { matchesKeep } from './tree-edit.js';

const author = { name: 'Ada Admin', email: 'ada@example.com' };

describe('promotion git operations', () => {
  let server: GitServer;
  const cleanups: (() => void)[] = [];
  before(async () => {
    server = await startGitServer();
  });
  after(async () => {
    await server.stop();
    for (const c of cleanups) c();
  });

  async function setup(files: Record<string, string>) {
    const name = `p${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, files);
    const cacheDir = mkdtempSync(join(tmpdir(), 'flotilla-promote-'));
    cleanups.push(() => rmSync(cacheDir, { recursive: true, force: true }));
    const source = createGitSource({ url: `${server.url}/${name}.git`, cacheDir, author });
    await source.fetch();
    const work = await server.clone(name);
    /** Files of `dir` on `branch` as the real git CLI sees them after the push. */
    const filesOn = async (branch: string, dir: string) => {
      await work.git('fetch', '-q', 'origin');
      const list = await work.git('ls-tree', '-r', '--name-only', `origin/${branch}`, '--', `${dir}/`);
      const out: Record<string, string> = {};
      for (const path of list.split('\n').filter(Boolean))
        out[path.slice(dir.length + 1)] = await work.git('show', `origin/${branch}:${path}`);
      return out;
    };
    return { source, work, filesOn };
  }

  it('directory mapping: one commit on the same branch copies dev into staging, keeping staging-owned files', async () => {
    const { source, work, filesOn } = await setup({
      'environments/dev/app.yaml': 'image: web:1',
      'environments/dev/values-staging.yaml': 'from-dev',
      'environments/staging/app.yaml': 'image: web:0',
      'environments/staging/old.yaml': 'removed in dev',
      'environments/staging/values-staging.yaml': 'replicas: 3',
      'environments/staging/patches/p.yaml': 'staging patch',
      'environments/prod/app.yaml': 'image: web:0',
    });
    const devCommit = await work.commit({ 'environments/dev/new.yaml': 'added' }, 'dev change');
    await source.fetch();
    const before = await source.resolveBranch('main');
    const result = await promoteTree(source, {
      from: { branch: 'main', path: 'environments/dev', commit: devCommit },
      to: { branch: 'main', path: 'environments/staging', keep: ['values-staging.yaml', 'patches/**'] },
      message: `promote dev@${devCommit.slice(0, 12)} to staging`,
      author,
    });
    assert.equal(result.changed, true);
    assert.equal(result.fastForward, false);
    assert.deepEqual(await source.commitParents(result.commit), [before]);
    assert.deepEqual(await filesOn('main', 'environments/staging'), {
      'app.yaml': 'image: web:1',
      'new.yaml': 'added',
      'patches/p.yaml': 'staging patch',
      'values-staging.yaml': 'replicas: 3',
    });
    assert.deepEqual(
      await filesOn('main', 'environments/prod'),
      { 'app.yaml': 'image: web:0' },
      'prod untouched',
    );
    const message = await work.git('log', '-1', '--format=%B%n%an <%ae>', 'origin/main');
    assert.match(message, new RegExp(`promote dev@${devCommit.slice(0, 12)} to staging`));
    assert.match(message, new RegExp(`Flotilla-Promoted-From: main@${devCommit}:environments/dev`));
    assert.match(message, /Ada Admin <ada@example\.com>/);

    const again = await promoteTree(source, {
      from: { branch: 'main', path: 'environments/dev', commit: devCommit },
      to: { branch: 'main', path: 'environments/staging', keep: ['values-staging.yaml', 'patches/**'] },
      message: 'promote again',
      author,
    });
    assert.deepEqual(again, { commit: result.commit, fastForward: false, changed: false });
  });

  it('branch mapping: same directory on another branch is a fast-forward when that branch is an ancestor', async () => {
    const { source, work, filesOn } = await setup({ 'environments/prod/app.yaml': 'image: web:0' });
    await work.git('push', '-q', 'origin', 'HEAD:release');
    const next = await work.commit({ 'environments/prod/app.yaml': 'image: web:1' }, 'prod change on main');
    await source.fetch();
    const result = await promoteTree(source, {
      from: { branch: 'main', path: 'environments/prod', commit: next },
      to: { branch: 'release', path: 'environments/prod', keep: ['values-prod.yaml'] },
      message: `promote main@${next}`,
      author,
    });
    assert.deepEqual(result, { commit: next, fastForward: true, changed: true });
    await work.git('fetch', '-q', 'origin');
    assert.equal(await work.git('rev-parse', 'origin/release'), next);
    assert.deepEqual(await filesOn('release', 'environments/prod'), { 'app.yaml': 'image: web:1' });
  });

  it("branch mapping keeps the target branch's own files: no fast-forward, one commit instead", async () => {
    const { source, work, filesOn } = await setup({
      'environments/prod/app.yaml': 'image: web:0',
      'environments/prod/values-prod.yaml': 'replicas: 5',
    });
    await work.git('push', '-q', 'origin', 'HEAD:release');
    const next = await work.commit(
      { 'environments/prod/app.yaml': 'image: web:2', 'environments/prod/values-prod.yaml': 'replicas: 1' },
      'main changes app and prod values',
    );
    await source.fetch();
    const release = await source.resolveBranch('release');
    const result = await promoteTree(source, {
      from: { branch: 'main', path: 'environments/prod', commit: next },
      to: { branch: 'release', path: 'environments/prod', keep: ['values-prod.yaml'] },
      message: `promote main@${next}`,
      author,
    });
    assert.equal(result.fastForward, false);
    assert.equal(result.changed, true);
    assert.deepEqual(await source.commitParents(result.commit), [release]);
    assert.deepEqual(await filesOn('release', 'environments/prod'), {
      'app.yaml': 'image: web:2',
      'values-prod.yaml': 'replicas: 5',
    });
  });

  it('mixed mapping: a directory on main into another directory on another branch', async () => {
    const { source, work, filesOn } = await setup({
      'environments/staging/app.yaml': 'image: web:3',
      'environments/prod/app.yaml': 'image: web:0',
    });
    await work.git('push', '-q', 'origin', 'HEAD:release');
    const staging = await source.resolveBranch('main');
    const result = await promoteTree(source, {
      from: { branch: 'main', path: 'environments/staging', commit: staging },
      to: { branch: 'release', path: 'environments/prod', keep: [] },
      message: `promote staging@${staging}`,
      author,
    });
    assert.equal(result.changed, true);
    assert.deepEqual(await filesOn('release', 'environments/prod'), { 'app.yaml': 'image: web:3' });
    assert.deepEqual(await filesOn('main', 'environments/prod'), { 'app.yaml': 'image: web:0' });
  });

  it('revertCommit undoes a promotion with a real revert commit, and refuses when files changed since', async () => {
    const { source, work, filesOn } = await setup({
      'environments/dev/app.yaml': 'image: web:1',
      'environments/staging/app.yaml': 'image: web:0',
      'environments/staging/cm.yaml': 'color: blue',
    });
    const dev = await source.resolveBranch('main');
    const promoted = await promoteTree(source, {
      from: { branch: 'main', path: 'environments/dev', commit: dev },
      to: { branch: 'main', path: 'environments/staging', keep: [] },
      message: `promote dev@${dev}`,
      author,
    });
    await work.git('pull', '-q', 'origin', 'main');
    await work.commit({ 'environments/dev/other.yaml': 'unrelated' }, 'unrelated change after the promotion');
    const reverted = await revertCommit(source, {
      branch: 'main',
      commit: promoted.commit,
      message: `rollback staging: revert ${promoted.commit.slice(0, 12)}`,
      author,
    });
    assert.deepEqual(await filesOn('main', 'environments/staging'), {
      'app.yaml': 'image: web:0',
      'cm.yaml': 'color: blue',
    });
    assert.deepEqual(await filesOn('main', 'environments/dev'), {
      'app.yaml': 'image: web:1',
      'other.yaml': 'unrelated',
    });
    const message = await work.git('log', '-1', '--format=%B', 'origin/main');
    assert.match(message, new RegExp(`This reverts commit ${promoted.commit}\\.`));
    assert.equal(await work.git('rev-parse', 'origin/main'), reverted.commit);

    await assert.rejects(
      revertCommit(source, { branch: 'main', commit: promoted.commit, message: 'revert twice', author }),
      (err: SourceError) => err.code === ErrorCode.Conflict && /nothing to revert/.test(err.message),
    );
    await work.git('pull', '-q', 'origin', 'main');
    const edit = await work.commit({ 'environments/staging/cm.yaml': 'color: red' }, 'edit staging');
    await work.commit({ 'environments/staging/cm.yaml': 'color: green' }, 'edit staging again');
    await assert.rejects(
      revertCommit(source, { branch: 'main', commit: edit, message: 'revert edit', author }),
      (err: SourceError) =>
        err.code === ErrorCode.Conflict && /environments\/staging\/cm\.yaml/.test(err.message),
    );
  });
});

describe('keep globs', () => {
  it('match within a segment with *, across segments with **, and whole directories by name', () => {
    assert.equal(matchesKeep('values-prod.yaml', ['values-*.yaml']), true);
    assert.equal(matchesKeep('sub/values-prod.yaml', ['values-*.yaml']), false);
    assert.equal(matchesKeep('patches/a/b.yaml', ['patches/**']), true);
    assert.equal(matchesKeep('patches/a/b.yaml', ['patches']), true);
    assert.equal(matchesKeep('x/patch.yaml', ['**/patch.yaml']), true);
    assert.equal(matchesKeep('patch.yaml', ['**/patch.yaml']), true);
    assert.equal(matchesKeep('app.yaml', ['values-prod.yaml', 'patches/**']), false);
  });
});
