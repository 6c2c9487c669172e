import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startKubeProcess } from './process.js';

function kubectl(
  kubeconfig: string,
  cache: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: cache }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
}

describe('flotilla-kube as a separate process', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kube-process-spec-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the CLI writes a kubeconfig, prints ready, keeps objects across a restart and saves them on SIGTERM', async () => {
    const kube = await startKubeProcess({ name: 'east', dir, readyDelayMs: 100 });
    try {
      assert.match(kube.process.log, /flotilla-kube east ready at http:\/\/127\.0\.0\.1:\d+/);
      const kubeconfig = readFileSync(kube.kubeconfigPath, 'utf8');
      assert.match(kubeconfig, /current-context: east/);
      assert.match(kubeconfig, new RegExp(`server: ${kube.url}`));
      const cache = join(dir, 'cache');
      const created = await kubectl(kube.kubeconfigPath, cache, [
        'create',
        'configmap',
        'kept',
        '--from-literal=a=1',
      ]);
      assert.equal(created.code, 0, created.stderr);
      const before = JSON.parse(
        (await kubectl(kube.kubeconfigPath, cache, ['get', 'cm', 'kept', '-o', 'json'])).stdout,
      );
      const oldUrl = kube.url;
      await kube.restart();
      assert.equal(kube.url, oldUrl, 'restart keeps the port, so the kubeconfig stays valid');
      assert.ok(existsSync(kube.statePath), 'state file written on SIGTERM');
      const got = await kubectl(kube.kubeconfigPath, cache, ['get', 'cm', 'kept', '-o', 'json']);
      assert.equal(got.code, 0, got.stderr);
      const afterRestart = JSON.parse(got.stdout);
      assert.equal(afterRestart.metadata.uid, before.metadata.uid);
      assert.equal(afterRestart.metadata.resourceVersion, before.metadata.resourceVersion);
      const next = await kubectl(kube.kubeconfigPath, cache, ['label', 'cm', 'kept', 'x=y']);
      assert.equal(next.code, 0, next.stderr);
      const labelled = JSON.parse(
        (await kubectl(kube.kubeconfigPath, cache, ['get', 'cm', 'kept', '-o', 'json'])).stdout,
      );
      assert.ok(
        Number(labelled.metadata.resourceVersion) > Number(before.metadata.resourceVersion),
        'resourceVersion keeps increasing after a restart',
      );
    } finally {
      await kube.stop();
    }
    assert.equal(await kube.process.exited, 0, `exit code 0 on SIGTERM:\n${kube.process.log}`);
  });

  test('two servers side by side are independent clusters', async () => {
    const [a, b] = await Promise.all([
      startKubeProcess({ name: 'one', dir: mkdtempSync(join(dir, 'a-')) }),
      startKubeProcess({ name: 'two', dir: mkdtempSync(join(dir, 'b-')) }),
    ]);
    try {
      assert.notEqual(a.url, b.url);
      const cache = join(dir, 'cache2');
      assert.equal((await kubectl(a.kubeconfigPath, cache, ['create', 'namespace', 'only-in-one'])).code, 0);
      const inB = await kubectl(b.kubeconfigPath, cache, ['get', 'namespace', 'only-in-one']);
      assert.notEqual(inB.code, 0);
      assert.match(inB.stderr, /namespaces "only-in-one" not found/);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('--default-label and --default-annotation are a mutating step: every created object gets them unless it sets them', async () => {
    const kube = await startKubeProcess({
      name: 'mutating',
      dir,
      defaultLabels: { 'policy.example.com/team': 'platform' },
      defaultAnnotations: { 'policy.example.com/owner': 'ops' },
    });
    try {
      const cache = join(dir, 'cache-mutating');
      const created = await kubectl(kube.kubeconfigPath, cache, [
        'create',
        'configmap',
        'stamped',
        '--from-literal=a=1',
      ]);
      assert.equal(created.code, 0, created.stderr);
      const applied = await new Promise<{ code: number; stderr: string }>((resolve) => {
        const child = execFile(
          'kubectl',
          ['apply', '--server-side', '-f', '-'],
          { env: { ...process.env, KUBECONFIG: kube.kubeconfigPath, KUBECACHEDIR: cache }, timeout: 60_000 },
          (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }),
        );
        child.stdin?.end(
          'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: own-team, labels: {policy.example.com/team: app}}\ndata: {a: "1"}\n',
        );
      });
      assert.equal(applied.code, 0, applied.stderr);
      const get = async (name: string) =>
        JSON.parse(
          (await kubectl(kube.kubeconfigPath, cache, ['get', 'configmap', name, '-o', 'json'])).stdout,
        );
      const stamped = await get('stamped');
      assert.equal(stamped.metadata.labels['policy.example.com/team'], 'platform');
      assert.equal(stamped.metadata.annotations['policy.example.com/owner'], 'ops');
      const kept = await get('own-team');
      assert.equal(kept.metadata.labels['policy.example.com/team'], 'app', 'a label the object sets is kept');
      assert.equal(kept.metadata.annotations['policy.example.com/owner'], 'ops');
      const system = JSON.parse(
        (await kubectl(kube.kubeconfigPath, cache, ['get', 'namespace', 'default', '-o', 'json'])).stdout,
      );
      assert.equal(
        system.metadata.labels['policy.example.com/team'],
        undefined,
        'the server’s own namespaces are not mutated',
      );
    } finally {
      await kube.stop();
    }
  });
});
