import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import { createRenderer, RenderError } from './index.js';
import { cluster, env, fetchedSource } from './test-support.js';

/** A `${name}` reference as it appears in a manifest. */
const ref = (name: string) => `\${${name}}`;

const cm = (name: string, data: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: shop\ndata:\n  ${data}\n`;

describe('renderer', () => {
  let server: GitServer;
  const cleanups: (() => void)[] = [];
  before(async () => {
    server = await startGitServer();
  });
  after(async () => {
    await server.stop();
    for (const c of cleanups) c();
  });

  async function setup(files: Record<string, string>, limits = {}) {
    const name = `r${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, files);
    const { source, workDir, cleanup } = await fetchedSource(`${server.url}/${name}.git`);
    cleanups.push(cleanup);
    const commit = await source.resolveBranch('main');
    return { source, commit, renderer: createRenderer({ source, workDir, limits }), name, workDir };
  }

  it('renders plain YAML and JSON recursively, multi-document, skipping empty documents and other files', async () => {
    const { renderer, commit } = await setup({
      'envs/dev/a.yaml': `---\n${cm('a', 'k: v')}---\n\n---\n${cm('b', 'k: v')}`,
      'envs/dev/sub/c.json': JSON.stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'shop' },
      }),
      'envs/dev/README.md': '# not a manifest',
    });
    const out = await renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev'));
    assert.equal(out.renderer, 'plain');
    assert.equal(out.path, 'envs/dev');
    assert.equal(out.commit, commit);
    assert.deepEqual(
      out.objects.map((o) => `${o.kind}/${o.metadata.name}`),
      ['ConfigMap/a', 'ConfigMap/b', 'Namespace/shop'],
    );
  });

  it("prefers the cluster's own directory, and skips clusters/ when rendering the environment", async () => {
    const { renderer, commit } = await setup({
      'envs/dev/base.yaml': cm('shared', 'k: v'),
      'envs/dev/clusters/dev-1/own.yaml': cm('own', 'k: v'),
      'envs/dev/clusters/dev-2/other.yaml': cm('other', 'k: v'),
    });
    const one = await renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev'));
    assert.equal(one.path, 'envs/dev/clusters/dev-1');
    assert.deepEqual(
      one.objects.map((o) => o.metadata.name),
      ['own'],
    );
    const three = await renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-3', 'dev'));
    assert.equal(three.path, 'envs/dev');
    assert.deepEqual(
      three.objects.map((o) => o.metadata.name),
      ['shared'],
    );
  });

  it('substitutes cluster name, environment and labels', async () => {
    const { renderer, commit } = await setup({
      'envs/dev/cm.yaml': cm(
        `web-${ref('cluster.name')}`,
        `region: "${ref('cluster.labels.region')}-${ref(' cluster.environment ')}"`,
      ),
    });
    const out = await renderer.render(
      commit,
      env('dev', 'envs/dev'),
      cluster('dev-1', 'dev', { region: 'eu' }),
    );
    assert.equal(out.objects[0]?.metadata.name, 'web-dev-1');
    assert.deepEqual(out.objects[0]?.data, { region: 'eu-dev' });
  });

  it('fails on an unknown variable, naming it with file and line', async () => {
    const { renderer, commit } = await setup({
      'envs/dev/cm.yaml': cm('x', `zone: ${ref('cluster.labels.zone')}`),
    });
    await assert.rejects(
      renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev')),
      (err: Error) => {
        assert.ok(err instanceof RenderError);
        assert.equal(err.message, `envs/dev/cm.yaml:7: unknown variable ${ref('cluster.labels.zone')}`);
        return true;
      },
    );
  });

  it('names file, document index and line for a document without metadata.name, and never its content', async () => {
    const { renderer, commit } = await setup({
      'envs/dev/bad.yaml': `${cm('ok', 'k: v')}---\napiVersion: v1\nkind: Secret\nmetadata: {}\nstringData:\n  password: hunter2\n`,
    });
    await assert.rejects(
      renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev')),
      (err: Error) => {
        assert.equal(err.message, 'envs/dev/bad.yaml:9: document 1: metadata.name is required (Secret)');
        assert.ok(!err.message.includes('hunter2'));
        return true;
      },
    );
  });

  it('reports a missing environment directory as a render error naming it', async () => {
    const { renderer, commit } = await setup({ 'envs/dev/a.yaml': cm('a', 'k: v') });
    await assert.rejects(
      renderer.render(commit, env('prod', 'envs/prod'), cluster('p', 'prod')),
      /^RenderError: envs\/prod: environment prod: directory not found/,
    );
  });

  it('renders a kustomization with a base elsewhere in the repository via kubectl kustomize', async () => {
    const { renderer, commit } = await setup({
      'base/kustomization.yaml': 'resources: [cm.yaml]\n',
      'base/cm.yaml': cm('web-config', 'k: v'),
      'envs/dev/kustomization.yaml': 'resources: [../../base]\nnamePrefix: dev-\n',
    });
    const out = await renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev'));
    assert.equal(out.renderer, 'kustomize');
    assert.deepEqual(
      out.objects.map((o) => o.metadata.name),
      ['dev-web-config'],
    );
  });

  it('renders a Helm chart with values.yaml and values-<env>.yaml, substituting cluster variables', async () => {
    const { renderer, commit } = await setup({
      'envs/dev/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
      'envs/dev/values.yaml': 'replicas: 1\nregion: none\n',
      'envs/dev/values-dev.yaml': `replicas: 3\nregion: ${ref('cluster.labels.region')}\n`,
      'envs/dev/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  replicas: "{{ .Values.replicas }}"\n  region: {{ .Values.region }}\n',
    });
    const out = await renderer.render(
      commit,
      env('dev', 'envs/dev'),
      cluster('dev-1', 'dev', { region: 'eu' }),
    );
    assert.equal(out.renderer, 'helm');
    assert.equal(out.objects[0]?.metadata.name, 'web-config');
    assert.deepEqual(out.objects[0]?.data, { replicas: '3', region: 'eu' });
  });

  it('reports a kustomize failure naming the file, without the sandbox path', async () => {
    const { renderer, commit } = await setup({
      'envs/dev/kustomization.yaml': 'resources: [cm.yaml]\n',
      'envs/dev/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n  bad: [\n',
    });
    await assert.rejects(
      renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev')),
      (err: Error) => {
        assert.match(err.message, /^envs\/dev: kustomize failed: .*cm\.yaml/);
        assert.ok(!err.message.includes('/tmp/'), err.message);
        return true;
      },
    );
  });

  it('refuses a cluster name that is not a DNS-1123 label (it becomes a path segment)', async () => {
    const { renderer, commit } = await setup({ 'envs/dev/a.yaml': cm('a', 'k: v') });
    await assert.rejects(
      renderer.render(commit, env('dev', 'envs/dev'), cluster('../../x', 'dev')),
      /cluster name/,
    );
  });

  it('fails a Helm render clearly when no helm binary can be had', async () => {
    const { source, commit, workDir } = await setup({
      'envs/dev/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
      'envs/dev/templates/cm.yaml': cm('a', 'k: v'),
    });
    const renderer = createRenderer({ source, workDir: `${workDir}-nohelm`, helmBin: '/nonexistent/helm' });
    await assert.rejects(
      renderer.render(commit, env('dev', 'envs/dev'), cluster('dev-1', 'dev')),
      /^RenderError: envs\/dev: helm is not available on this hub/,
    );
  });

  it('serves the same inputs from the cache, and re-renders when cluster variables or files change', async () => {
    const { renderer, commit, name, source } = await setup({
      'envs/dev/kustomization.yaml': 'resources: [cm.yaml]\n',
      'envs/dev/cm.yaml': cm('web', 'k: v'),
      'envs/staging/cm.yaml': cm('s', 'k: v'),
    });
    const dev = env('dev', 'envs/dev');
    const first = await renderer.render(commit, dev, cluster('dev-1', 'dev'));
    assert.equal(first.cacheHit, false);
    const again = await renderer.render(commit, dev, cluster('dev-1', 'dev'));
    assert.equal(again.cacheHit, true);
    assert.deepEqual(again.objects, first.objects);
    assert.equal((await renderer.render(commit, dev, cluster('dev-2', 'dev'))).cacheHit, false);

    // A commit touching only staging leaves dev's inputs, and so its cache entry, as they were.
    const work = await server.clone(name);
    await work.commit({ 'envs/staging/cm.yaml': cm('s', 'k: w') }, 'staging only');
    await source.fetch();
    const second = await source.resolveBranch('main');
    const afterStaging = await renderer.render(second, dev, cluster('dev-1', 'dev'));
    assert.equal(afterStaging.cacheHit, true);
    assert.equal(afterStaging.commit, second);

    await work.commit({ 'envs/dev/cm.yaml': cm('web', 'k: changed') }, 'dev change');
    await source.fetch();
    const third = await renderer.render(await source.resolveBranch('main'), dev, cluster('dev-1', 'dev'));
    assert.equal(third.cacheHit, false);
    assert.deepEqual(third.objects[0]?.data, { k: 'changed' });
  });
});
