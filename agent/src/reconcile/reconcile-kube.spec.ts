import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
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
import { createWatchdog } from '../health/progress.js';
import { testKubeConfig } from '../test-support.js';
import { createReconciler, type Reconciler, type ReconcilerOptions, type ResourceReport } from './index.js';

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
    kubeConfig = testKubeConfig(kube.kubeconfig);
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
  function reconciler(extra: Partial<ReconcilerOptions> = {}): Reconciler {
    return createReconciler({
      kubeConfig,
      cluster: `test-${++cluster}`,
      logger: createLogger({ name: 'test', level: 'silent' }),
      crdWaitMs: 20_000,
      ...extra,
    });
  }

  /** Applies a manifest with kubectl (client-side apply), as someone other than Flotilla would. */
  async function kubectlApply(obj: KubeObject, ...args: string[]): Promise<void> {
    const file = join(dir, `manual-${obj.kind}-${obj.metadata.name}-${Date.now()}.json`);
    await writeFile(file, JSON.stringify(obj));
    await kubectl('apply', '-f', file, ...args);
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
      // The watch has taken its baseline and is connected before anything changes.
      await watch.ready;
      await kubectl('scale', 'deploy', 'web', '-n', 'drift', '--replicas=5');
      await eventually(
        () => {
          const d = report(latest, 'Deployment', 'web');
          assert.equal(d.sync, 'OutOfSync');
          const replicas = d.drift.find((f) => f.path === 'spec.replicas');
          assert.ok(replicas, JSON.stringify(d.drift));
          assert.equal(replicas.desired, '2');
          assert.equal(replicas.live, '5');
          assert.ok(replicas.since instanceof Date, 'not yet: replicas.since instanceof Date');
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
      await watch.ready;
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

  test('each watch stream ends on the server timeout it asks for, is watched again, and tells the watchdog per stream', async () => {
    const r = reconciler({ watchTimeoutMs: 1000 });
    const bundle = bundleOf([namespace('relist'), configMap('relist', 'cfg', { MODE: 'on' })]);
    const applied = await r.apply(bundle);
    const watchdog = createWatchdog({ boundMs: 10_000 });
    const loop = watchdog.loop('watch');
    /** Per stream: how often it went idle, which it does only after a stream ended. */
    const ends = new Map<string, number>();
    const progress = {
      beat: (part?: string) => loop.beat(part),
      idle: (part?: string) => {
        ends.set(part ?? '', (ends.get(part ?? '') ?? 0) + 1);
        loop.idle(part);
      },
    };
    let latest: ResourceReport[] = [];
    const watch = r.watch(bundle, (resources) => (latest = resources), applied.resources, { progress });
    try {
      await watch.ready;
      assert.equal(
        watchdog.check().find((l) => l.loop === 'watch')!.state,
        'busy',
        'a running watch is busy',
      );
      await eventually(
        () => {
          assert.deepEqual([...ends.keys()].sort(), ['v1|ConfigMap|relist', 'v1|Namespace|']);
          for (const [part, n] of ends) assert.ok(n >= 2, `${part}: ${n} streams ended`);
        },
        { timeoutMs: 20_000, message: 'every stream ends on its timeout, more than once' },
      );
      await kubectl(
        'patch',
        'configmap',
        'cfg',
        '-n',
        'relist',
        '--type=merge',
        '-p',
        '{"data":{"MODE":"off"}}',
      );
      await eventually(
        () =>
          assert.deepEqual(
            report(latest, 'ConfigMap', 'cfg').drift.map((d) => d.path),
            ['data.MODE'],
          ),
        { timeoutMs: 15_000, message: 'drift seen by a stream that was watched again' },
      );
    } finally {
      await watch.stop();
    }
    assert.equal(
      watchdog.check().find((l) => l.loop === 'watch')!.state,
      'idle',
      'a stopped watch owes nothing',
    );
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

  test('cpu 1000m, memory 1024Mi, hostNetwork false and ports 53/TCP + 53/UDP apply, then show no drift and cause no writes while resyncs check them', async () => {
    // A server of its own, whose request log shows every call the agent makes.
    const requests: { method: string; url: string }[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) {
          if (!line.trim()) continue;
          const rec = JSON.parse(line) as { msg?: string; method?: string; url?: string };
          if (rec.msg === 'request' && rec.method && rec.url)
            requests.push({ method: rec.method, url: rec.url });
        }
        done();
      },
    });
    const server = await startKubeServer({
      readyDelayMs: 200,
      name: 'quiet',
      logger: createLogger({ name: 'quiet-kube', level: 'debug', destination }),
    });
    // How long the object must stay untouched; FLOTILLA_NOOP_PERIOD_MS=30000 gives the 30 s.
    const periodMs = Number(process.env.FLOTILLA_NOOP_PERIOD_MS ?? 3000);
    const resyncs = 4;
    const r = createReconciler({
      kubeConfig: testKubeConfig(server.kubeconfig),
      cluster: 'quiet',
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    const dns: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'dns', namespace: 'quiet', labels: { app: 'dns' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'dns' } },
        template: {
          metadata: { labels: { app: 'dns' } },
          spec: {
            hostNetwork: false,
            containers: [
              {
                name: 'dns',
                image: 'coredns:1.11',
                resources: {
                  requests: { cpu: '1000m', memory: '1024Mi' },
                  limits: { cpu: '1000m', memory: '1024Mi' },
                },
                ports: [
                  { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                  { name: 'dns-udp', containerPort: 53, protocol: 'UDP' },
                ],
              },
            ],
          },
        },
      },
    };
    const bundle = bundleOf([namespace('quiet'), dns]);
    let latest: ResourceReport[] = [];
    let watch: ReturnType<Reconciler['watch']> | undefined;
    try {
      const applied = await r.apply(bundle);
      assert.deepEqual(applied.changes.failed, []);
      assert.equal(applied.changes.created.length, 2);
      const get = () =>
        run('kubectl', [
          '--kubeconfig',
          join(dir, 'quiet-kubeconfig'),
          'get',
          'deploy',
          'dns',
          '-n',
          'quiet',
          '-o',
          'json',
        ]).then(({ stdout }) => JSON.parse(stdout) as Loose);
      await writeFile(join(dir, 'quiet-kubeconfig'), server.kubeconfig);
      // The simulated controller writes status until the rollout is done; wait for that.
      await eventually(async () => assert.equal((await get()).status?.availableReplicas, 2), {
        timeoutMs: 20_000,
        message: 'Deployment available',
      });
      watch = r.watch(bundle, (resources) => (latest = resources), applied.resources);
      await watch.ready;
      const before = await get();
      const mark = requests.length;

      const dryRunsOf = (from: number) =>
        requests
          .slice(from)
          .filter(
            (q) =>
              q.method === 'PATCH' &&
              q.url.includes('/namespaces/quiet/deployments/dns') &&
              q.url.includes('dryRun=All'),
          ).length;
      for (let i = 0; i < resyncs; i++) {
        const at = requests.length;
        await watch.resync();
        assert.ok(dryRunsOf(at) >= 1, `resync ${i + 1} asked the server (dry run)`);
        const again = await r.apply(bundle);
        assert.deepEqual(
          again.changes.unchanged.map((id) => id.name).sort(),
          ['dns', 'quiet'],
          JSON.stringify(again.changes),
        );
        await new Promise((ok) => setTimeout(ok, periodMs / resyncs));
      }

      const after = await get();
      assert.equal(
        after.metadata.resourceVersion,
        before.metadata.resourceVersion,
        'no write moved resourceVersion',
      );
      assert.equal(after.metadata.generation, before.metadata.generation);
      const writes = requests
        .slice(mark)
        .filter(
          (q) =>
            ['PATCH', 'PUT', 'POST', 'DELETE'].includes(q.method) &&
            q.url.includes('/deployments/dns') &&
            !q.url.includes('dryRun=All'),
        );
      assert.deepEqual(writes, [], 'no write to the Deployment during the period');
      assert.ok(dryRunsOf(mark) >= resyncs, `${dryRunsOf(mark)} dry runs of the Deployment in the period`);
      const d = report(latest, 'Deployment', 'dns');
      assert.equal(d.sync, 'Synced');
      assert.deepEqual(d.drift, []);
      const assessed = report((await r.assess(bundle)).resources, 'Deployment', 'dns');
      assert.deepEqual(assessed.drift, []);
    } finally {
      await watch?.stop();
      await server.stop();
    }
  });

  test('a deleted object is drift on the whole object, live <missing>, until an apply heals it', async () => {
    const r = reconciler();
    const bundle = bundleOf([namespace('deleted'), configMap('deleted', 'settings', { a: '1' })]);
    await r.apply(bundle);
    let latest: ResourceReport[] = [];
    const watch = r.watch(bundle, (resources) => (latest = resources));
    try {
      await watch.ready;
      await kubectl('delete', 'configmap', 'settings', '-n', 'deleted');
      await eventually(
        () => {
          const c = report(latest, 'ConfigMap', 'settings');
          assert.equal(c.sync, 'Missing');
          assert.deepEqual(
            c.drift.map(({ path, desired, live }) => ({ path, desired, live })),
            [{ path: '(object)', desired: '<present>', live: '<missing>' }],
          );
          assert.ok(c.drift[0]?.since instanceof Date, 'not yet: c.drift[0]?.since instanceof Date');
        },
        { timeoutMs: 5000, message: 'the deletion reported as drift' },
      );
      const healed = await r.apply(bundle);
      assert.deepEqual(
        healed.changes.created.map((id) => id.name),
        ['settings'],
      );
      await eventually(
        () => {
          const c = report(latest, 'ConfigMap', 'settings');
          assert.equal(c.sync, 'Synced');
          assert.deepEqual(c.drift, []);
        },
        { timeoutMs: 5000, message: 'the drift cleared once the object is back' },
      );
    } finally {
      await watch.stop();
    }
  });

  test('an existing object Flotilla did not create is a conflict naming its managers and left alone, then adopted once annotated', async () => {
    const r = reconciler();
    await r.apply(bundleOf([namespace('owned')]));
    await kubectlApply(configMap('owned', 'theirs', { who: 'them' }));
    const ours = configMap('owned', 'theirs', { who: 'us' });
    const bundle = bundleOf([namespace('owned'), ours]);

    const refused = await r.apply(bundle);
    const c = report(refused.resources, 'ConfigMap', 'theirs');
    assert.equal(c.sync, 'OutOfSync');
    assert.match(
      c.error ?? '',
      /^v1 ConfigMap owned\/theirs: conflict: exists, managed by kubectl[^,]*, and was not created by Flotilla; left alone until its manifest is annotated flotilla\.dev\/adopt: "true"/,
    );
    assert.deepEqual(
      refused.changes.skipped.map((id) => id.name),
      ['theirs'],
    );
    assert.equal(refused.phase, 'Failed');
    let live = await kubectlJson('get', 'configmap', '-n', 'owned', 'theirs', '--show-managed-fields');
    assert.equal(live.data.who, 'them', 'not written over');
    assert.ok(
      !(live.metadata.managedFields as { manager: string }[]).some((m) => m.manager === 'flotilla-agent'),
    );
    // The watch reports the same conflict, and never as drift to heal.
    const assessed = report((await r.assess(bundle)).resources, 'ConfigMap', 'theirs');
    assert.match(assessed.error ?? '', /conflict/);
    assert.deepEqual(assessed.drift, []);
    // Not in the inventory, so a bundle without it never prunes it.
    await r.apply(bundleOf([namespace('owned')]));
    assert.equal((await kubectlJson('get', 'configmap', '-n', 'owned', 'theirs')).data.who, 'them');

    const annotated = {
      ...ours,
      metadata: { ...ours.metadata, annotations: { 'flotilla.dev/adopt': 'true' } },
    };
    const adopted = await r.apply(bundleOf([namespace('owned'), annotated]));
    assert.deepEqual(adopted.changes.failed, []);
    assert.deepEqual(
      adopted.changes.configured.map((id) => id.name),
      ['theirs'],
    );
    assert.equal(report(adopted.resources, 'ConfigMap', 'theirs').error, undefined);
    live = await kubectlJson('get', 'configmap', '-n', 'owned', 'theirs', '--show-managed-fields');
    assert.equal(live.data.who, 'us');
    assert.ok(
      (live.metadata.managedFields as { manager: string }[]).some((m) => m.manager === 'flotilla-agent'),
    );
    // Adopted means owned: dropping it from the bundle now prunes it.
    const pruned = await r.apply(bundleOf([namespace('owned')]));
    assert.deepEqual(
      pruned.changes.deleted.map((id) => id.name),
      ['theirs'],
    );
  });

  test('the environment policy adopt: true takes an existing object over without an annotation', async () => {
    const r = reconciler();
    await r.apply(bundleOf([namespace('adopt-policy')]));
    await kubectlApply(configMap('adopt-policy', 'cfg', { who: 'them' }));
    const result = await r.apply(
      bundleOf([namespace('adopt-policy'), configMap('adopt-policy', 'cfg', { who: 'us' })], { adopt: true }),
    );
    assert.deepEqual(result.changes.failed, []);
    assert.equal(report(result.resources, 'ConfigMap', 'cfg').error, undefined);
    assert.equal((await kubectlJson('get', 'configmap', '-n', 'adopt-policy', 'cfg')).data.who, 'us');
  });

  test('an HPA-owned replica count is not fought: ignored by policy or annotation, neither applied over nor drift', async () => {
    const r = reconciler();
    const byAnnotation = deployment('hpa', 'annotated');
    byAnnotation.metadata.annotations = { 'flotilla.dev/ignore-differences': '/spec/replicas' };
    const bundle = bundleOf([namespace('hpa'), deployment('hpa', 'web'), byAnnotation], {
      ignoreDifferences: [
        { group: 'apps', kind: 'Deployment', name: 'web', jsonPointers: ['/spec/replicas'] },
      ],
    });
    const first = await r.apply(bundle);
    assert.deepEqual(first.changes.failed, []);
    assert.equal(
      (await kubectlJson('get', 'deploy', '-n', 'hpa', 'web')).spec.replicas,
      2,
      'created as written',
    );
    // What the watch last reported, starting from what the apply said: the watch reports changes.
    let latest: ResourceReport[] = first.resources;
    const watch = r.watch(bundle, (resources) => (latest = resources), first.resources);
    try {
      await watch.ready;
      // The simulated HPA: a second field manager that writes spec.replicas.
      for (const name of ['web', 'annotated']) {
        await kubectl(
          'patch',
          'deploy',
          name,
          '-n',
          'hpa',
          '--type=merge',
          '--field-manager=horizontal-pod-autoscaler',
          '-p',
          '{"spec":{"replicas":5}}',
        );
      }
      await watch.resync();
      const assessed = await r.assess(bundle);
      for (const name of ['web', 'annotated']) {
        for (const d of [
          report(latest, 'Deployment', name),
          report(assessed.resources, 'Deployment', name),
        ]) {
          assert.deepEqual(d.drift, [], `${name}: ${JSON.stringify(d.drift)}`);
          assert.equal(d.sync, 'Synced');
        }
      }
      const again = await r.apply(bundle);
      assert.deepEqual(again.changes.configured, [], JSON.stringify(again.changes));
      for (const name of ['web', 'annotated']) {
        const live = await kubectlJson('get', 'deploy', '-n', 'hpa', name, '--show-managed-fields');
        assert.equal(live.spec.replicas, 5, `${name}: the HPA's replica count stays`);
      }
      // Other fields are still Flotilla's: an image change is drift as ever.
      await kubectl('set', 'image', 'deploy/web', 'web=nginx:edited', '-n', 'hpa');
      await eventually(
        () =>
          assert.deepEqual(
            report(latest, 'Deployment', 'web').drift.map((f) => f.path),
            ['spec.template.spec.containers[name=web].image'],
          ),
        { timeoutMs: 5000, message: 'image drift reported beside the ignored replicas' },
      );
      const healed = await r.apply(bundle);
      assert.deepEqual(
        healed.changes.configured.map((id) => id.name),
        ['web'],
      );
      const live = await kubectlJson('get', 'deploy', '-n', 'hpa', 'web');
      assert.equal(live.spec.template.spec.containers[0].image, 'nginx:1.27');
      assert.equal(live.spec.replicas, 5, 'healing the image left the replicas alone');
    } finally {
      await watch.stop();
    }
  });

  test('a pruned object held by a finalizer is reported Terminating, not pruned, until it is gone', async () => {
    const r = reconciler({ pruneWaitMs: 300 });
    const held = configMap('finalizers', 'held', { a: '1' });
    held.metadata.finalizers = ['example.com/hold'];
    await r.apply(bundleOf([namespace('finalizers'), held]));

    const waiting = await r.apply(bundleOf([namespace('finalizers')]));
    assert.deepEqual(waiting.changes.deleted, []);
    assert.deepEqual(
      waiting.changes.terminating.map((id) => id.name),
      ['held'],
    );
    const t = report(waiting.resources, 'ConfigMap', 'held');
    assert.notEqual(t.sync, 'Pruned');
    assert.equal(t.health, 'Progressing');
    assert.match(t.healthReason, /^Terminating: waiting for finalizers example\.com\/hold$/);
    assert.equal(waiting.phase, 'Progressing');
    const live = await kubectlJson('get', 'configmap', '-n', 'finalizers', 'held');
    assert.ok(live.metadata.deletionTimestamp, 'deleted, held by its finalizer');

    // Still there on the next apply: still Terminating, and not deleted twice.
    const still = await r.apply(bundleOf([namespace('finalizers')]));
    assert.deepEqual(
      still.changes.terminating.map((id) => id.name),
      ['held'],
    );

    await kubectl(
      'patch',
      'configmap',
      'held',
      '-n',
      'finalizers',
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    );
    const gone = await r.apply(bundleOf([namespace('finalizers')]));
    assert.deepEqual(
      gone.changes.deleted.map((id) => id.name),
      ['held'],
    );
    assert.equal(report(gone.resources, 'ConfigMap', 'held').sync, 'Pruned');
    assert.equal(gone.phase, 'Synced');
  });
});
