import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import { InvalidError } from '@flotilla/shared';
import { createGitSource } from '../source/index.js';
import { loadFleetConfig } from './index.js';

describe('loadFleetConfig from the git source', () => {
  let server: GitServer;
  const dirs: string[] = [];
  before(async () => {
    server = await startGitServer();
  });
  after(async () => {
    await server.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function head(files: Record<string, string>) {
    const name = `c${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, files);
    const cacheDir = mkdtempSync(join(tmpdir(), 'flotilla-config-'));
    dirs.push(cacheDir);
    const source = createGitSource({ url: `${server.url}/${name}.git`, cacheDir });
    await source.fetch();
    return { source, commit: await source.resolveBranch(await source.defaultBranch()) };
  }

  it('reads flotilla.yaml at the root of the commit', async () => {
    const { source, commit } = await head({
      'flotilla.yaml': 'environments:\n  - {name: dev, path: envs/dev}\n',
    });
    const config = await loadFleetConfig(source, commit);
    assert.equal(config.environments[0]?.path, 'envs/dev');
  });

  it('says clearly that flotilla.yaml is missing', async () => {
    const { source, commit } = await head({ 'README.md': 'no config' });
    await assert.rejects(loadFleetConfig(source, commit), (err: Error) => {
      assert.ok(err instanceof InvalidError);
      assert.match(
        err.message,
        /^flotilla\.yaml: not found at the root of http:\/\/127\.0\.0\.1:\d+\/c\w+\.git/,
      );
      return true;
    });
  });

  it('names the line and field of an invalid flotilla.yaml', async () => {
    const { source, commit } = await head({
      'flotilla.yaml': 'environments:\n  - name: dev\n    path: ../x\n',
    });
    await assert.rejects(
      loadFleetConfig(source, commit),
      /^InvalidError: flotilla\.yaml:3: environments\[0\]\.path: must not contain \.\./,
    );
  });
});
