import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import git from 'isomorphic-git';
import { createRenderer, type RenderLimits } from './index.js';
import { networkIsolationAvailable } from './sandbox-exec.js';
import { cluster, env, fetchedSource } from './test-support.js';

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  k: v\n`;
const SECRET_TEXT = 'TOP-SECRET-CONTENT-42';

describe('rendering sandbox', () => {
  let server: GitServer;
  const cleanups: (() => void)[] = [];
  before(async () => {
    server = await startGitServer();
  });
  after(async () => {
    await server.stop();
    for (const c of cleanups) c();
  });

  /** A repository with `files`, plus symlinks made with the real git CLI. */
  async function setup(
    files: Record<string, string>,
    options: {
      symlinks?: Record<string, string>;
      limits?: Partial<RenderLimits>;
      kubectlBin?: string;
      helmBin?: string;
    } = {},
  ) {
    const name = `s${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, files);
    if (options.symlinks) {
      const work = await server.clone(name);
      for (const [path, target] of Object.entries(options.symlinks)) {
        fs.mkdirSync(join(work.dir, path, '..'), { recursive: true });
        symlinkSync(target, join(work.dir, path));
      }
      await work.commit({}, 'symlinks');
    }
    const { source, workDir, cleanup } = await fetchedSource(`${server.url}/${name}.git`);
    cleanups.push(cleanup);
    const commit = await source.resolveBranch('main');
    const renderer = createRenderer({
      source,
      workDir,
      limits: options.limits,
      kubectlBin: options.kubectlBin,
      ...(options.helmBin ? { helmBin: options.helmBin } : {}),
    });
    return { commit, renderer, name, source, workDir };
  }

  const renderDev = (r: Awaited<ReturnType<typeof setup>>) =>
    r.renderer.render(r.commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev'));

  /** Asserts a RenderError whose message matches and never carries SECRET_TEXT. */
  const refused = (pattern: RegExp) => (err: Error) => {
    assert.equal(err.name, 'RenderError', err.message);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(SECRET_TEXT), 'the error must not quote file content');
    return true;
  };

  it('refuses a symlink that leaves the repository', async () => {
    const r = await setup(
      { 'envs/dev/cm.yaml': cm('a') },
      { symlinks: { 'envs/dev/passwd.yaml': '../../../../etc/passwd' } },
    );
    await assert.rejects(renderDev(r), refused(/^envs\/dev\/passwd\.yaml: symlink leaves the repository/));
  });

  it('refuses an absolute symlink and a symlink into .git', async () => {
    const abs = await setup(
      { 'envs/dev/cm.yaml': cm('a') },
      { symlinks: { 'envs/dev/x.yaml': '/etc/hostname' } },
    );
    await assert.rejects(renderDev(abs), refused(/^envs\/dev\/x\.yaml: symlink points to an absolute path/));
    const dotgit = await setup(
      { 'envs/dev/cm.yaml': cm('a') },
      { symlinks: { 'envs/dev/x.yaml': '../../.git/config' } },
    );
    await assert.rejects(renderDev(dotgit), refused(/^envs\/dev\/x\.yaml: symlink touches \.git/));
  });

  it('follows a symlink to a file inside the repository, as a copy', async () => {
    const r = await setup(
      { 'shared/cm.yaml': cm('shared'), 'envs/dev/own.yaml': cm('own') },
      { symlinks: { 'envs/dev/shared.yaml': '../../shared/cm.yaml' } },
    );
    const out = await renderDev(r);
    assert.deepEqual(out.objects.map((o) => o.metadata.name).sort(), ['own', 'shared']);
  });

  it('refuses a ../ values file (a symlink out of the repository) before running helm', async () => {
    const r = await setup(
      {
        'envs/dev/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
        'envs/dev/templates/cm.yaml': cm('web'),
      },
      { symlinks: { 'envs/dev/values-dev.yaml': '../../../secrets/values.yaml' } },
    );
    await assert.rejects(
      renderDev(r),
      refused(/^envs\/dev\/values-dev\.yaml: symlink leaves the repository/),
    );
  });

  it('refuses file://, remote and escaping kustomize references before running kustomize', async () => {
    // A kubectl that does not exist proves the refusal happens before anything runs.
    const cases: [string, RegExp][] = [
      [
        'resources: [file:///etc/kubernetes]',
        /resources\[0\]: remote or file:\/\/ reference "file:\/\/\/etc\/kubernetes" is refused/,
      ],
      ['resources: [https://example.com/app.yaml]', /resources\[0\]: remote or file:\/\/ reference/],
      ['resources: ["github.com/acme/app//deploy?ref=v1"]', /resources\[0\]: remote or file:\/\/ reference/],
      ['bases: ["git@github.com:acme/app.git"]', /bases\[0\]: remote or file:\/\/ reference/],
      [
        'components: [../../../../outside]',
        /components\[0\]: "..\/..\/..\/..\/outside" leaves the repository/,
      ],
      ['resources: [/etc/kubernetes]', /resources\[0\]: absolute path "\/etc\/kubernetes" is refused/],
      [
        'patches:\n  - path: ../../.git/config',
        /patches\[0\]\.path: "..\/..\/.git\/config" leaves the repository/,
      ],
    ];
    for (const [kustomization, pattern] of cases) {
      const r = await setup(
        { 'envs/dev/kustomization.yaml': `${kustomization}\n` },
        { kubectlBin: '/nonexistent/kubectl' },
      );
      await assert.rejects(
        renderDev(r),
        refused(new RegExp(`^envs/dev/kustomization\\.yaml: ${pattern.source}`)),
      );
    }
  });

  it('refuses Helm lookup and file:// chart dependencies', async () => {
    const chart = 'apiVersion: v2\nname: web\nversion: 0.1.0\n';
    const lookup = await setup({
      'envs/dev/Chart.yaml': chart,
      'envs/dev/templates/cm.yaml': `${cm('web')}  x: {{ (lookup "v1" "Secret" "kube-system" "token").data }}\n`,
    });
    await assert.rejects(
      renderDev(lookup),
      refused(/^envs\/dev\/templates\/cm\.yaml:7: the helm lookup function is refused/),
    );
    const dep = await setup({
      'envs/dev/Chart.yaml': `${chart}dependencies:\n  - name: lib\n    version: 0.1.0\n    repository: file://../../lib\n`,
      'envs/dev/templates/cm.yaml': cm('web'),
    });
    await assert.rejects(
      renderDev(dep),
      refused(/^envs\/dev\/Chart\.yaml: dependencies\[0\]: file:\/\/ repositories are refused/),
    );
  });

  it('refuses a YAML bomb (alias expansion) naming the file, not its content', async () => {
    const bomb = [
      `a: &a ["${SECRET_TEXT}","lol","lol","lol","lol","lol","lol","lol","lol"]`,
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
      'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: bomb}',
    ].join('\n');
    const r = await setup({ 'envs/dev/bomb.yaml': bomb });
    await assert.rejects(
      renderDev(r),
      refused(/^envs\/dev\/bomb\.yaml:1: document 0: (more than \d+ YAML aliases|YAML alias expansion)/),
    );
  });

  it('refuses a file larger than the byte cap, naming the path', async () => {
    const big = `${cm('big')}  blob: "${SECRET_TEXT}${'x'.repeat(200_000)}"\n`;
    const r = await setup(
      { 'envs/dev/ok.yaml': cm('ok'), 'envs/dev/big.yaml': big },
      { limits: { maxBytes: 100_000 } },
    );
    await assert.rejects(
      renderDev(r),
      refused(/^envs\/dev\/big\.yaml: file is larger than the limit \(100000 bytes\)/),
    );
  });

  it('refuses more documents, files or nesting than the caps allow', async () => {
    const docs = await setup(
      { 'envs/dev/many.yaml': [1, 2, 3, 4, 5, 6].map((i) => cm(`c${i}`)).join('---\n') },
      {
        limits: { maxDocuments: 5 },
      },
    );
    await assert.rejects(
      renderDev(docs),
      refused(/^envs\/dev\/many\.yaml:\d+: more than 5 documents in one render/),
    );

    const files = await setup(
      Object.fromEntries([1, 2, 3, 4].map((i) => [`envs/dev/f${i}.yaml`, cm(`f${i}`)])),
      {
        limits: { maxFiles: 3 },
      },
    );
    await assert.rejects(renderDev(files), refused(/more than 3 files in one render/));

    let deep = 'leaf';
    for (let i = 0; i < 20; i++) deep = `[${deep}]`;
    const nested = await setup(
      { 'envs/dev/deep.yaml': `${cm('deep')}  nested: "x"\nspec: ${deep}\n` },
      {
        limits: { maxDepth: 10 },
      },
    );
    await assert.rejects(
      renderDev(nested),
      refused(/^envs\/dev\/deep\.yaml:1: document 0: nesting deeper than 10/),
    );
  });

  it('fails only the breaching render: another environment of the same commit still renders', async () => {
    const r = await setup(
      { 'envs/dev/big.yaml': `${cm('big')}  blob: "${'x'.repeat(5000)}"\n`, 'envs/prod/ok.yaml': cm('ok') },
      { limits: { maxBytes: 1000 } },
    );
    await assert.rejects(renderDev(r), refused(/^envs\/dev\/big\.yaml/));
    const prod = await r.renderer.render(r.commit, env('prod', 'envs/prod'), cluster('p-1', 'prod'));
    assert.equal(prod.objects[0]?.metadata.name, 'ok');
  });

  it('refuses tree entries named .. or .git crafted into git objects', async () => {
    for (const bad of ['..', '.git']) {
      const r = await setup({ 'envs/dev/cm.yaml': cm('a') });
      // Write the hostile tree straight into the served bare repository (git's CLI would refuse to make it).
      const gitdir = join(server.root, `${r.name}.git`);
      const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from(cm('evil')) });
      const evil = await git.writeTree({
        fs,
        gitdir,
        tree: [{ path: 'x.yaml', mode: '100644', oid: blob, type: 'blob' }],
      });
      const dev = await git.writeTree({
        fs,
        gitdir,
        tree: [
          { path: 'cm.yaml', mode: '100644', oid: blob, type: 'blob' },
          { path: bad, mode: '040000', oid: evil, type: 'tree' },
        ],
      });
      const envs = await git.writeTree({
        fs,
        gitdir,
        tree: [{ path: 'dev', mode: '040000', oid: dev, type: 'tree' }],
      });
      const root = await git.writeTree({
        fs,
        gitdir,
        tree: [{ path: 'envs', mode: '040000', oid: envs, type: 'tree' }],
      });
      const who = { name: 'x', email: 'x@x', timestamp: 0, timezoneOffset: 0 };
      const commit = await git.writeCommit({
        fs,
        gitdir,
        commit: { tree: root, parent: [r.commit], author: who, committer: who, message: 'evil\n' },
      });
      await git.writeRef({ fs, gitdir, ref: 'refs/heads/main', value: commit, force: true });
      await r.source.fetch();
      const head = await r.source.resolveBranch('main');
      await assert.rejects(
        r.renderer.render(head, env('dev', 'envs/dev'), cluster('dev-1', 'dev')),
        refused(/^envs\/dev: repository content refused: .*"\.(\.|git)" contains unsafe character sequences/),
      );
    }
  });

  /**
   * A fake renderer binary (kubectl or helm) that prints, as a ConfigMap, the names of its
   * environment variables and the network interfaces it sees; and one that never finishes.
   */
  function fakeRenderer(name: 'kubectl' | 'helm'): { probe: string; slow: string } {
    const bin = mkdtempSync(join(tmpdir(), `flotilla-fake-${name}-`));
    cleanups.push(() => rmSync(bin, { recursive: true, force: true }));
    const probe = join(bin, name);
    writeFileSync(
      probe,
      [
        '#!/bin/sh',
        'keys=$(env | cut -d= -f1 | sort | tr "\\n" " ")',
        'ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\\n" " ")',
        'printf "apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: probe\\ndata:\\n  env: \\"%s\\"\\n  ifaces: \\"%s\\"\\n" "$keys" "$ifaces"',
      ].join('\n'),
    );
    chmodSync(probe, 0o755);
    const slow = join(bin, `slow-${name}`);
    writeFileSync(slow, '#!/bin/sh\nsleep 30\n');
    chmodSync(slow, 0o755);
    return { probe, slow };
  }

  /** What the probe saw inside the sandbox: environment variable names and network interfaces. */
  async function probeSandbox(
    r: Awaited<ReturnType<typeof setup>>,
  ): Promise<{ env: string[]; ifaces: string }> {
    process.env.FLOTILLA_TEST_GIT_TOKEN = 'should-not-leak';
    try {
      const out = await renderDev(r);
      const data = out.objects[0]?.data as { env: string; ifaces: string };
      return { env: data.env.trim().split(' '), ifaces: data.ifaces.trim() };
    } finally {
      delete process.env.FLOTILLA_TEST_GIT_TOKEN;
    }
  }

  /** Where user namespaces are missing the sandbox cannot drop the network: the test says so as a skip. */
  const NO_ISOLATION =
    'no network isolation on this machine (`unshare -rn` fails: no user namespaces), so the renderer keeps the host network';

  const kustomization = { 'envs/dev/kustomization.yaml': 'resources: []\n' };
  const chart = {
    'envs/dev/Chart.yaml': 'apiVersion: v2\nname: probe\nversion: 0.1.0\n',
    'envs/dev/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n',
  };

  it('runs kustomize with a time limit and no credentials in its environment', async () => {
    const { probe, slow } = fakeRenderer('kubectl');
    const seen = await probeSandbox(await setup(kustomization, { kubectlBin: probe }));
    assert.ok(!seen.env.includes('FLOTILLA_TEST_GIT_TOKEN'), `renderer env: ${seen.env}`);
    assert.ok(seen.env.includes('PATH') && seen.env.includes('HOME'));

    const t = await setup(kustomization, { kubectlBin: slow, limits: { timeoutMs: 1000 } });
    await assert.rejects(renderDev(t), refused(/^envs\/dev: kustomize failed: timed out after 1000 ms/));
  });

  it('runs kustomize with no network: only loopback inside the sandbox', async (t) => {
    if (!networkIsolationAvailable()) return t.skip(NO_ISOLATION);
    const { probe } = fakeRenderer('kubectl');
    const seen = await probeSandbox(await setup(kustomization, { kubectlBin: probe }));
    assert.equal(seen.ifaces, 'lo', 'only loopback in the sandbox');
  });

  it('runs helm with a time limit and no credentials in its environment', async () => {
    const { probe, slow } = fakeRenderer('helm');
    const seen = await probeSandbox(await setup(chart, { helmBin: probe }));
    assert.ok(!seen.env.includes('FLOTILLA_TEST_GIT_TOKEN'), `renderer env: ${seen.env}`);
    assert.ok(seen.env.includes('PATH') && seen.env.includes('HOME'));

    const t = await setup(chart, { helmBin: slow, limits: { timeoutMs: 1000 } });
    await assert.rejects(renderDev(t), refused(/^envs\/dev: helm failed: timed out after 1000 ms/));
  });

  it('runs helm with no network: only loopback inside the sandbox', async (t) => {
    if (!networkIsolationAvailable()) return t.skip(NO_ISOLATION);
    const { probe } = fakeRenderer('helm');
    const seen = await probeSandbox(await setup(chart, { helmBin: probe }));
    assert.equal(seen.ifaces, 'lo', 'only loopback in the sandbox');
  });
});
