import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import { ErrorCode } from '@flotilla/shared';
import { createGitSource, SourceError } from './index.js';

const created: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-source-'));
  created.push(dir);
  return dir;
};
after(() => {
  for (const d of created) rmSync(d, { recursive: true, force: true });
});

describe('git source over HTTP', () => {
  let server: GitServer;
  let url: string;
  before(async () => {
    server = await startGitServer();
    url = await server.createRepo('app', {
      'flotilla.yaml': 'environments: []\n',
      'envs/dev/cm.yaml': 'a: 1\n',
    });
  });
  after(async () => {
    await server.stop();
  });

  it('clones, then reads files, trees, branches, ancestry and log from git objects', async () => {
    const cacheDir = tmp();
    const source = createGitSource({ url, cacheDir });
    await source.fetch();
    assert.equal(await source.defaultBranch(), 'main');
    const first = await source.resolveBranch('main');
    assert.equal(Buffer.from((await source.readFile(first, 'envs/dev/cm.yaml')) ?? []).toString(), 'a: 1\n');
    assert.equal(await source.readFile(first, 'envs/dev/missing.yaml'), null);
    assert.match((await source.treeId(first, 'envs/dev')) ?? '', /^[0-9a-f]{40}$/);
    assert.equal(await source.treeId(first, 'envs/prod'), null);
    assert.equal(await source.treeId(first, 'flotilla.yaml'), null, 'a file is not a tree');

    const work = await server.clone('app');
    await work.git('checkout', '-q', '-b', 'release');
    await work.git('push', '-q', 'origin', 'release');
    await work.git('checkout', '-q', 'main');
    const second = await work.commit({ 'envs/dev/cm.yaml': 'a: 2\n' }, 'bump dev');
    await source.fetch();
    assert.equal(await source.resolveBranch('main'), second);
    assert.equal(await source.resolveBranch('release'), first);
    assert.equal(await source.isAncestor(first, second), true);
    assert.equal(await source.isAncestor(second, first), false);
    const log = await source.log('main');
    assert.deepEqual(
      log.map((e) => e.message.trim()),
      ['bump dev', 'initial'],
    );
    await assert.rejects(source.resolveBranch('nope'), (err: SourceError) => err.code === ErrorCode.NotFound);
  });

  it('keeps a bare cache only: no worktree files are checked out', async () => {
    const cacheDir = tmp();
    const source = createGitSource({ url, cacheDir });
    await source.fetch();
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(cacheDir), ['repo.git']);
    assert.ok(!readdirSync(join(cacheDir, 'repo.git')).includes('flotilla.yaml'));
  });

  it('fails with a source error for an unreachable repository', async () => {
    const source = createGitSource({ url: `${server.url}/missing.git`, cacheDir: tmp() });
    await assert.rejects(source.fetch(), (err: SourceError) => {
      assert.ok(err instanceof SourceError);
      assert.match(err.message, /missing\.git: fetch failed/);
      return true;
    });
  });
});

describe('git source with basic auth', () => {
  let server: GitServer;
  let url: string;
  const auth = { username: 'flotilla', password: 's3cret-pass-word' };
  before(async () => {
    server = await startGitServer({ auth });
    url = await server.createRepo('private', { 'flotilla.yaml': 'environments: []\n' });
  });
  after(() => server.stop());

  it('fetches with basic auth credentials', async () => {
    const source = createGitSource({ url, cacheDir: tmp(), auth });
    await source.fetch();
    assert.match(await source.resolveBranch('main'), /^[0-9a-f]{40}$/);
  });

  it('fetches with a token sent as the password', async () => {
    const source = createGitSource({
      url,
      cacheDir: tmp(),
      auth: { username: 'flotilla', token: auth.password },
    });
    await source.fetch();
    assert.match(await source.resolveBranch('main'), /^[0-9a-f]{40}$/);
  });

  it('takes credentials from the URL but never shows them in its url or errors', async () => {
    const withUser = url.replace('http://', `http://${auth.username}:${auth.password}@`);
    const source = createGitSource({ url: withUser, cacheDir: tmp() });
    assert.equal(source.url, url);
    await source.fetch();
    const wrong = createGitSource({
      url: url.replace('http://', 'http://flotilla:wrong-password@'),
      cacheDir: tmp(),
    });
    await assert.rejects(wrong.fetch(), (err: SourceError) => {
      assert.equal(err.code, ErrorCode.Unauthenticated);
      assert.ok(!err.message.includes('wrong-password'), err.message);
      assert.ok(!JSON.stringify(err).includes('wrong-password'));
      return true;
    });
  });

  it('refuses to fetch without credentials, as unauthenticated', async () => {
    const source = createGitSource({ url, cacheDir: tmp() });
    await assert.rejects(source.fetch(), (err: SourceError) => err.code === ErrorCode.Unauthenticated);
  });
});

describe('git source writes', () => {
  let server: GitServer;
  before(async () => {
    server = await startGitServer();
  });
  after(() => server.stop());

  it('writes a commit from blobs and trees and pushes it; a push over a branch that moved is a conflict', async () => {
    const url = await server.createRepo('w', { 'a.txt': 'a' });
    const source = createGitSource({
      url,
      cacheDir: tmp(),
      author: { name: 'Hub', email: 'hub@example.com' },
    });
    await source.fetch();
    const head = await source.resolveBranch('main');
    const blob = await source.writeBlob(Buffer.from('b'));
    const root = await source.commitTree(head);
    const tree = await source.writeTree([
      ...(await source.readTree(root)),
      { path: 'b.txt', mode: '100644', oid: blob, type: 'blob' },
    ]);
    const commit = await source.commit({ tree, parents: [head], message: 'add b' });
    await source.push('main', commit);
    assert.equal(await source.resolveBranch('main'), commit);

    const work = await server.clone('w');
    assert.equal(await work.git('log', '-1', '--format=%s %an', 'origin/main'), 'add b Hub');
    await work.commit({ 'c.txt': 'c' }, 'someone else');
    const stale = await source.commit({ tree, parents: [commit], message: 'stale' });
    await assert.rejects(source.push('main', stale), (err: SourceError) => {
      assert.equal(err.code, ErrorCode.Conflict);
      assert.match(err.message, /: push to main: /);
      return true;
    });
  });
});

describe('git source against a hung server', () => {
  it('gives up after the request time limit with an unavailable source error', async () => {
    const { createServer } = await import('node:http');
    const hung = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const port = (hung.address() as { port: number }).port;
    try {
      const source = createGitSource({
        url: `http://127.0.0.1:${port}/r.git`,
        cacheDir: tmp(),
        requestTimeoutMs: 500,
      });
      await assert.rejects(source.fetch(), (err: SourceError) => {
        assert.equal(err.code, ErrorCode.Unavailable);
        assert.match(err.message, /r\.git: fetch failed/);
        return true;
      });
    } finally {
      hung.closeAllConnections();
      hung.close();
    }
  });
});
