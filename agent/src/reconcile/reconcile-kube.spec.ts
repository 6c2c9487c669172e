import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from '@flotilla/e2e/harness';
import { startKubeServer } from '@flotilla/e2e/kube';
import {
  type Bundle,
  createLogger,
  DEFAULT_SYNC_POLICY,
  type KubeObject,
  type SyncPolicy,
} from '@flotilla/shared';
import { KubeConfig } from '@kubernetes/client-node';
import { createReconciler, type Reconciler, type ResourceReport } from './index.js';

const run = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: kubectl output is read field by field in assertions.
type Loose = any;

/** Integration tests against the Kubernetes API test server, checked with real kubectl. */
describe('reconcile engine against the Kubernetes API test server', () => {
  let kube: Awaited<ReturnType<typeof startKubeServer>>;
  let dir: string;
  let kubeconfigFile: string;
  let kubeConfig: KubeConfig;
  let cluster = 0;

  before(async () => {
    kube = await startKubeServer({ readyDelayMs: 1500 });
    dir = await mkdtemp(join(tmpdir(), 'flotilla-reconcile-'));
    kubeconfigFile = join(dir, 'kubeconfig');
    await writeFile(kubeconfigFile, kube.kubeconfig);
    // The test server speaks plain HTTP, which client-node refuses unless TLS verification is
    // marked skipped; its kubeconfig does not say so, kubectl does not need it.
    const loaded = new KubeConfig();
    loaded.loadFromString(kube.kubeconfig);
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: loaded.clusters.map((c) => ({ ...c, skipTLSVerify: true })),
      users: loaded.users,
      contexts: loaded.contexts,
      currentContext: loaded.currentContext,
    });
  });

  after(async () => {
    await kube?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function kubectl(...args: string[]): Promise<string> {
    const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfigFile, ...args], { timeout: 60_000 });
    return stdout;
  }

  async function kubectlJson<T = Loose>(...args: string[]): Promise<T> {
    return JSON.parse(await kubectl(...args, '-o', 'json')) as T;
  }

  /** A reconciler with an inventory of its own, so tests do not prune each other's objects. */
  function reconciler(): Reconciler {
    return createReconciler({
      kubeConfig,
      cluster: `test-${++cluster}`,
      logger: createLogger({ name: 'test', level: 'silent' }),
      crdWaitMs: 20_000,
    });
  }

  function bundleOf(objects: KubeObject[], policy: Partial<SyncPolicy> = {}): Bundle {
    return {
      cluster: 'test',
      environment: 'dev',
      generation: 1,
      revision: 'abc',
      source: { url: 'http://git.example/repo', branch: 'main', path: 'envs/dev' },
      createdAt: new Date().toISOString(),
      policy: { ...DEFAULT_SYNC_POLICY, ...policy },
      contentDigest: '',
      objects,
    };
  }

  const namespace = (name: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  });
  const configMap = (ns: string, name: string, data: Record<string, string>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: ns },
    data,
  });
  const deployment = (ns: string, name: string, image = 'nginx:1.27', replicas = 2): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image, ports: [{ containerPort: 80 }] }] },
      },
    },
  });
  const service = (ns: string, name: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 80 }] },
  });

  const report = (resources: ResourceReport[], kind: string, name: string) => {
    const r = resources.find((x) => x.id.kind === kind && x.id.name === name);
    assert.ok(r, `no report for ${kind} ${name}`);
    return r;
  };

  test('first apply creates namespace, deployment, service and configmap; a second apply changes nothing', async () => {
    const r = reconciler();
    const bundle = bundleOf([
      deployment('shop', 'web'),
      service('shop', 'web'),
      configMap('shop', 'web-config', { LOG_LEVEL: 'info' }),
      namespace('shop'),
    ]);
    const first = await r.apply(bundle);
    assert.deepEqual(first.changes.failed, []);
    assert.equal(first.changes.created.length, 4);
    assert.notEqual(first.phase, 'Failed');

    const live = await kubectlJson('get', 'deploy', '-n', 'shop', 'web', '--show-managed-fields');
    assert.equal(live.spec.replicas, 2);
    assert.equal(live.spec.template.spec.containers[0].image, 'nginx:1.27');
    const managers = (live.metadata.managedFields as { manager: string; operation: string }[]).map(
      (m) => m.manager,
    );
    assert.ok(managers.includes('flotilla-agent'), `managers: ${managers.join(', ')}`);
    assert.equal((await kubectlJson('get', 'configmap', '-n', 'shop', 'web-config')).data.LOG_LEVEL, 'info');
    assert.equal((await kubectlJson('get', 'service', '-n', 'shop', 'web')).spec.ports[0].port, 80);

    // The simulated Deployment controller writes status (and so resourceVersion) on its own
    // schedule; the ConfigMap has no controller, so its resourceVersion shows a no-op apply.
    const cmVersion = (await kubectlJson('get', 'configmap', '-n', 'shop', 'web-config')).metadata
      .resourceVersion;
    const second = await r.apply(bundle);
    assert.equal(second.changes.unchanged.length, 4, JSON.stringify(second.changes));
    const after = await kubectlJson('get', 'deploy', '-n', 'shop', 'web');
    assert.equal(
      after.metadata.generation,
      live.metadata.generation,
      'the Deployment spec was not rewritten',
    );
    assert.equal(
      (await kubectlJson('get', 'configmap', '-n', 'shop', 'web-config')).metadata.resourceVersion,
      cmVersion,
    );
  });

  test('an agent without an inventory re-applies an identical bundle without bumping resourceVersion', async () => {
    const bundle = bundleOf([
      namespace('noop'),
      deployment('noop', 'web'),
      configMap('noop', 'cfg', { a: '1' }),
    ]);
    await reconciler().apply(bundle);
    // the Deployment controller writes status until the rollout is done; after that only a write moves the version
    await kubectl('rollout', 'status', '-n', 'noop', 'deployment/web', '--timeout=60s');
    const rv = (await kubectlJson('get', 'deploy', '-n', 'noop', 'web')).metadata.resourceVersion;
    const fresh = await reconciler().apply(bundle);
    assert.equal(fresh.changes.unchanged.length, 3, JSON.stringify(fresh.changes));
    assert.equal((await kubectlJson('get', 'deploy', '-n', 'noop', 'web')).metadata.resourceVersion, rv);
  });

  test('server-defaulted fields are not drift: assess right after apply reports every object Synced', async () => {
    const r = reconciler();
    const bundle = bundleOf([
      namespace('defaults'),
      deployment('defaults', 'web'),
      service('defaults', 'web'),
    ]);
    await r.apply(bundle);
    const assessed = await r.assess(bundle);
    for (const res of assessed.resources) {
      assert.deepEqual(res.drift, [], `${res.id.kind} ${res.id.name} drift: ${JSON.stringify(res.drift)}`);
      assert.equal(res.sync, 'Synced');
    }
  });

  test('a CRD and its custom resources apply in one bundle, the CRD Established first', async () => {
    const r = reconciler();
    const crd: KubeObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    };
    const widget = (name: string): KubeObject => ({
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name, namespace: 'crs' },
      spec: { size: 3 },
    });
    // Custom resources first in the bundle: the engine must still order the CRD before them.
    const result = await r.apply(bundleOf([widget('a'), widget('b'), namespace('crs'), crd]));
    assert.deepEqual(result.changes.failed, []);
    assert.equal(result.changes.created.length, 4);
    const list = await kubectlJson<{ items: KubeObject[] }>('get', 'widgets', '-n', 'crs');
    assert.deepEqual(list.items.map((w) => w.metadata.name).sort(), ['a', 'b']);
    assert.equal(
      report(result.resources, 'CustomResourceDefinition', 'widgets.example.com').health,
      'Healthy',
    );
  });

  test('prune deletes an object dropped from the bundle and leaves an unmanaged object alone', async () => {
    const r = reconciler();
    const keep = configMap('prune', 'keep', { a: '1' });
    const drop = configMap('prune', 'drop', { b: '2' });
    await r.apply(bundleOf([namespace('prune'), keep, drop]));
    // `kubectl create configmap` sends protobuf, which the test server does not read: apply a manifest.
    const manifest = join(dir, 'unmanaged.json');
    await writeFile(manifest, JSON.stringify(configMap('prune', 'unmanaged', { c: '3' })));
    await kubectl('apply', '-f', manifest);

    const result = await r.apply(bundleOf([namespace('prune'), keep]));
    assert.deepEqual(
      result.changes.deleted.map((d) => d.name),
      ['drop'],
    );
    assert.equal(report(result.resources, 'ConfigMap', 'drop').sync, 'Pruned');
    const names = (await kubectlJson<{ items: KubeObject[] }>('get', 'configmaps', '-n', 'prune')).items.map(
      (c) => c.metadata.name,
    );
    assert.ok(!names.includes('drop'), `still there: ${names.join(', ')}`);
    assert.ok(names.includes('unmanaged'));
    assert.ok(names.includes('keep'));
  });

  test('a Deployment goes Progressing then Healthy; an image with :fail ends Degraded', async () => {
    const r = reconciler();
    // the test server, as a real controller, reports ProgressDeadlineExceeded only after progressDeadlineSeconds
    const broken = deployment('health', 'bad', 'nginx:fail');
    (broken.spec as { progressDeadlineSeconds?: number }).progressDeadlineSeconds = 2;
    const bundle = bundleOf([namespace('health'), deployment('health', 'good'), broken]);
    const applied = await r.apply(bundle);
    assert.equal(report(applied.resources, 'Deployment', 'good').health, 'Progressing');
    await eventually(
      async () => {
        const res = await r.assess(bundle);
        assert.equal(report(res.resources, 'Deployment', 'good').health, 'Healthy');
        const bad = report(res.resources, 'Deployment', 'bad');
        assert.equal(bad.health, 'Degraded');
        assert.match(bad.healthReason, /ProgressDeadlineExceeded/);
        assert.equal(res.health, 'Degraded');
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });

  test('a health change between the apply and the start of the watch is reported, not taken as the baseline', async () => {
    const r = reconciler();
    const bundle = bundleOf([namespace('late'), deployment('late', 'web')]);
    const applied = await r.apply(bundle);
    assert.equal(report(applied.resources, 'Deployment', 'web').health, 'Progressing');
    // The Deployment becomes available before anyone watches it.
    await eventually(
      async () =>
        assert.equal((await kubectlJson('get', 'deploy', '-n', 'late', 'web')).status?.availableReplicas, 2),
      { timeoutMs: 10_000, message: 'Deployment available' },
    );
    let latest: ResourceReport[] = [];
    const watch = r.watch(bundle, (resources) => (latest = resources), applied.resources);
    try {
      await eventually(() => assert.equal(report(latest, 'Deployment', 'web').health, 'Healthy'), {
        timeoutMs: 5000,
        message: 'the first list reported Healthy against the apply’s Progressing',
      });
    } finally {
      await watch.stop();
    }
  });

  test('the watch reports drift after kubectl scale and kubectl patch, with path, desired and live values', async () => {
    const r = reconciler();
    const bundle = bundleOf([
      namespace('drift'),
      deployment('drift', 'web'),
      configMap('drift', 'settings', { LOG_LEVEL: 'info' }),
    ]);
    await r.apply(bundle);
    let latest: ResourceReport[] = [];
    const watch = r.watch(bundle, (resources) => {
      latest = resources;
    });
    try {
      // Let the watch take its baseline before changing anything.
      await new Promise((ok) => setTimeout(ok, 1000));
      await kubectl('scale', 'deploy', 'web', '-n', 'drift', '--replicas=5');
      await eventually(
        () => {
          const d = report(latest, 'Deployment', 'web');
          assert.equal(d.sync, 'OutOfSync');
          const replicas = d.drift.find((f) => f.path === 'spec.replicas');
          assert.ok(replicas, JSON.stringify(d.drift));
          assert.equal(replicas.desired, '2');
          assert.equal(replicas.live, '5');
          assert.ok(replicas.since instanceof Date);
        },
        { timeoutMs: 5000, message: 'drift of spec.replicas reported by the watch' },
      );
      await kubectl(
        'patch',
        'configmap',
        'settings',
        '-n',
        'drift',
        '--type=merge',
        '-p',
        '{"data":{"LOG_LEVEL":"debug"}}',
      );
      await eventually(
        () => {
          const c = report(latest, 'ConfigMap', 'settings');
          assert.deepEqual(
            c.drift.map(({ path, desired, live }) => ({ path, desired, live })),
            [{ path: 'data.LOG_LEVEL', desired: '"info"', live: '"debug"' }],
          );
        },
        { timeoutMs: 5000, message: 'drift of data.LOG_LEVEL reported by the watch' },
      );
      // Re-applying heals, and the watch reports the drift cleared.
      const healed = await r.apply(bundle);
      assert.equal(healed.changes.configured.length, 2, JSON.stringify(healed.changes));
      await eventually(
        () => {
          assert.equal(report(latest, 'Deployment', 'web').sync, 'Synced');
          assert.equal(report(latest, 'ConfigMap', 'settings').sync, 'Synced');
        },
        { timeoutMs: 5000, message: 'drift cleared' },
      );
    } finally {
      await watch.stop();
    }
  });

  test('the watch reports a Deployment turning Healthy and a deleted object turning Missing', async () => {
    const r = reconciler();
    const bundle = bundleOf([
      namespace('watch-health'),
      deployment('watch-health', 'api'),
      configMap('watch-health', 'doomed', { a: '1' }),
    ]);
    let latest: ResourceReport[] = [];
    const watch = r.watch(bundle, (resources) => {
      latest = resources;
    });
    try {
      await r.apply(bundle);
      await eventually(() => assert.equal(report(latest, 'Deployment', 'api').health, 'Healthy'), {
        timeoutMs: 20_000,
        message: 'Deployment reported Healthy by the watch',
      });
      await kubectl('delete', 'configmap', 'doomed', '-n', 'watch-health');
      await eventually(() => assert.equal(report(latest, 'ConfigMap', 'doomed').sync, 'Missing'), {
        timeoutMs: 5000,
        message: 'deleted ConfigMap reported Missing by the watch',
      });
    } finally {
      await watch.stop();
    }
  });

  test('the watch reconnects after the API server restarts and reports drift made while it was away', async () => {
    const statePath = join(dir, 'restart-state.json');
    let server = await startKubeServer({ readyDelayMs: 100, statePath, name: 'restarting' });
    const port = server.port;
    const file = join(dir, 'restart-kubeconfig');
    await writeFile(file, server.kubeconfig);
    const loaded = new KubeConfig();
    loaded.loadFromString(server.kubeconfig);
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: loaded.clusters.map((c) => ({ ...c, skipTLSVerify: true })),
      users: loaded.users,
      contexts: loaded.contexts,
      currentContext: loaded.currentContext,
    });
    const r = createReconciler({
      kubeConfig: config,
      cluster: 'restarting',
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    const bundle = bundleOf([namespace('away'), configMap('away', 'cfg', { MODE: 'on' })]);
    await r.apply(bundle);
    let latest: ResourceReport[] = [];
    const watch = r.watch(bundle, (resources) => {
      latest = resources;
    });
    try {
      await new Promise((ok) => setTimeout(ok, 500));
      await server.stop();
      server = await startKubeServer({ readyDelayMs: 100, statePath, name: 'restarting', port });
      await run('kubectl', [
        '--kubeconfig',
        file,
        'patch',
        'configmap',
        'cfg',
        '-n',
        'away',
        '--type=merge',
        '-p',
        '{"data":{"MODE":"off"}}',
      ]);
      await eventually(
        () =>
          assert.deepEqual(
            report(latest, 'ConfigMap', 'cfg').drift.map((d) => d.path),
            ['data.MODE'],
          ),
        { timeoutMs: 15_000, message: 'drift reported after the watch reconnected' },
      );
    } finally {
      await watch.stop();
      await server.stop();
    }
  });

  test('a deleted object is reported Missing by assess', async () => {
    const r = reconciler();
    const bundle = bundleOf([namespace('missing'), configMap('missing', 'gone', { a: '1' })]);
    await r.apply(bundle);
    await kubectl('delete', 'configmap', 'gone', '-n', 'missing');
    const res = await r.assess(bundle);
    assert.equal(report(res.resources, 'ConfigMap', 'gone').sync, 'Missing');
  });

  test('Secret drift is reported per key, redacted, never with its value', async () => {
    const r = reconciler();
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'secrets' },
      type: 'Opaque',
      stringData: { password: 'hunter2' },
    };
    const bundle = bundleOf([namespace('secrets'), secret]);
    await r.apply(bundle);
    assert.deepEqual(report((await r.assess(bundle)).resources, 'Secret', 'db').drift, []);
    const changed = Buffer.from('changed-value').toString('base64');
    await kubectl(
      'patch',
      'secret',
      'db',
      '-n',
      'secrets',
      '--type=merge',
      '-p',
      JSON.stringify({ data: { password: changed } }),
    );
    const drift = report((await r.assess(bundle)).resources, 'Secret', 'db').drift;
    assert.deepEqual(
      drift.map((d) => d.path),
      ['data.password'],
    );
    const text = JSON.stringify(drift);
    for (const plain of ['hunter2', 'changed-value', changed, Buffer.from('hunter2').toString('base64')]) {
      assert.ok(!text.includes(plain), `drift leaks ${plain}: ${text}`);
    }
    assert.match(drift[0]?.desired ?? '', /^\[redacted [0-9a-f]{12}\]$/);
  });

  test('a namespaced object in a namespace nobody declares fails alone while the rest applies', async () => {
    const r = reconciler();
    const result = await r.apply(
      bundleOf([
        namespace('partial'),
        configMap('partial', 'fine', { a: '1' }),
        configMap('ghost', 'lost', { a: '1' }),
      ]),
    );
    assert.equal(result.phase, 'Failed');
    assert.equal(result.changes.failed.length, 1);
    assert.match(result.changes.failed[0]?.error ?? '', /^v1 ConfigMap ghost\/lost: apply failed: /);
    assert.match(result.error ?? '', /^v1 ConfigMap ghost\/lost: apply failed: /);
    assert.equal(result.changes.created.length, 2);
    assert.equal((await kubectlJson('get', 'configmap', '-n', 'partial', 'fine')).data.a, '1');
    assert.equal(report(result.resources, 'ConfigMap', 'lost').sync, 'Missing');
  });
});
