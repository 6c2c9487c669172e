import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  makeInformer,
  PatchStrategy,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import { eventually } from '../harness/eventually.js';
import type { Json } from './json.js';
import { type KubeServer, startKubeServer } from './server.js';

type Obj = KubernetesObject & Record<string, Json>;

/** The Status body of a failed call, whatever shape client-node gives it. */
function statusOf(err: unknown): { code: number; reason: string; message: string; details?: Json } {
  assert.ok(err instanceof ApiException, `expected an ApiException, got ${err}`);
  const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
  assert.equal(body.kind, 'Status');
  assert.equal(body.status, 'Failure');
  assert.equal(body.code, err.code);
  return body;
}

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

describe('@kubernetes/client-node against the test API server', () => {
  let server: KubeServer;
  let kc: KubeConfig;
  let objects: KubernetesObjectApi;
  let core: CoreV1Api;

  before(async () => {
    server = await startKubeServer({ readyDelayMs: 100, bookmarkIntervalMs: 200 });
    kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig);
    objects = KubernetesObjectApi.makeApiClient(kc);
    core = kc.makeApiClient(CoreV1Api);
  });

  after(async () => {
    await server.stop();
  });

  const configMap = (
    name: string,
    data: Record<string, string>,
    labels: Record<string, string> = {},
  ): Obj => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'default', labels },
    data,
  });

  const apply = (obj: Obj, manager = 'flotilla', dryRun?: string) =>
    objects.patch<Obj>(obj, undefined, dryRun, manager, true, PatchStrategy.ServerSideApply);

  test('server-side apply creates, a repeated apply is a no-op, and fields the manager stops applying are removed', async () => {
    const created = await apply(configMap('ssa', { a: '1', b: '2' }, { app: 'x' }));
    assert.equal(created.metadata?.resourceVersion !== undefined, true);
    assert.match(created.metadata!.uid!, /^[0-9a-f-]{36}$/);
    const mf = created.metadata!.managedFields!;
    assert.equal(mf.length, 1);
    assert.equal(mf[0]!.manager, 'flotilla');
    assert.equal(mf[0]!.operation, 'Apply');
    const again = await apply(configMap('ssa', { a: '1', b: '2' }, { app: 'x' }));
    assert.equal(
      again.metadata!.resourceVersion,
      created.metadata!.resourceVersion,
      'no-op apply keeps resourceVersion',
    );
    const pruned = await apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ssa', namespace: 'default' },
      data: { a: '1' },
    });
    assert.deepEqual(pruned.data, { a: '1' });
    assert.equal(pruned.metadata!.labels, undefined, 'labels no manager owns Json more are removed');
    assert.ok(
      Number(pruned.metadata!.resourceVersion) > Number(created.metadata!.resourceVersion),
      'a real change bumps resourceVersion',
    );
  });

  test('a field another manager set stays when the applier drops it, and conflicting apply is refused without force', async () => {
    await apply(configMap('shared', { a: '1' }));
    await objects.patch<Obj>(
      { ...configMap('shared', {}), data: { mine: 'x' } },
      undefined,
      undefined,
      'other-tool',
      undefined,
      PatchStrategy.MergePatch,
    );
    const after = await apply(configMap('shared', { a: '1' }));
    assert.deepEqual(after.data, { a: '1', mine: 'x' });
    const err = await rejects(
      objects.patch<Obj>(
        configMap('shared', { mine: 'y' }),
        undefined,
        undefined,
        'flotilla',
        false,
        PatchStrategy.ServerSideApply,
      ),
    );
    const st = statusOf(err);
    assert.equal(st.code, 409);
    assert.equal(st.reason, 'Conflict');
    assert.match(st.message, /conflict with "other-tool" using v1: \.data\.mine/);
    assert.equal(st.details.causes[0].type, 'FieldManagerConflict');
  });

  test('dry run returns the would-be object without storing it', async () => {
    const dry = await apply(configMap('dry', { a: '1' }), 'flotilla', 'All');
    assert.deepEqual(dry.data, { a: '1' });
    const err = await rejects(
      objects.read({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dry', namespace: 'default' } }),
    );
    assert.equal(statusOf(err).reason, 'NotFound');
    await apply(configMap('dry', { a: '1' }));
    const dry2 = await apply(configMap('dry', { a: '2' }), 'flotilla', 'All');
    assert.equal(dry2.data.a, '2');
    const live = await objects.read<Obj>({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'dry', namespace: 'default' },
    });
    assert.equal(live.data.a, '1');
  });

  test('errors are Status bodies like the real server: 404, 409 AlreadyExists, 409 stale resourceVersion, 422 Invalid', async () => {
    const nf = statusOf(await rejects(core.readNamespacedConfigMap({ name: 'nope', namespace: 'default' })));
    assert.deepEqual([nf.code, nf.reason, nf.message], [404, 'NotFound', 'configmaps "nope" not found']);
    assert.deepEqual(nf.details, { name: 'nope', kind: 'configmaps' });
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: configMap('dup', { a: '1' }) as V1ConfigMap,
    });
    const ae = statusOf(
      await rejects(
        core.createNamespacedConfigMap({ namespace: 'default', body: configMap('dup', {}) as V1ConfigMap }),
      ),
    );
    assert.deepEqual(
      [ae.code, ae.reason, ae.message],
      [409, 'AlreadyExists', 'configmaps "dup" already exists'],
    );
    const live = await core.readNamespacedConfigMap({ name: 'dup', namespace: 'default' });
    await core.replaceNamespacedConfigMap({
      name: 'dup',
      namespace: 'default',
      body: { ...live, data: { a: '2' } },
    });
    const stale = statusOf(
      await rejects(
        core.replaceNamespacedConfigMap({
          name: 'dup',
          namespace: 'default',
          body: { ...live, data: { a: '3' } },
        }),
      ),
    );
    assert.equal(stale.code, 409);
    assert.equal(stale.reason, 'Conflict');
    assert.match(
      stale.message,
      /the object has been modified; please apply your changes to the latest version/,
    );
    const inv = statusOf(
      await rejects(
        objects.create({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'bad', namespace: 'default' },
          spec: {
            selector: { matchLabels: { a: 'b' } },
            template: { metadata: { labels: { a: 'c' } }, spec: { containers: [] } },
          },
        } as Obj),
      ),
    );
    assert.equal(inv.code, 422);
    assert.equal(inv.reason, 'Invalid');
    assert.match(inv.message, /^Deployment\.apps "bad" is invalid: \[/);
    assert.ok(
      inv.details.causes.some((c: Json) => c.field === 'spec.template.spec.containers'),
      'the cause names the field',
    );
    const ns = statusOf(
      await rejects(apply({ ...configMap('x', {}), metadata: { name: 'x', namespace: 'missing' } })),
    );
    assert.deepEqual([ns.code, ns.message], [404, 'namespaces "missing" not found']);
  });

  test('list with a label selector, then watch from its resourceVersion sees ADDED, MODIFIED and DELETED in order', async () => {
    await apply(configMap('w-a', { v: '1' }, { watch: 'yes' }));
    await apply(configMap('w-other', { v: '1' }, { watch: 'no' }));
    const list = await objects.list<Obj>(
      'v1',
      'ConfigMap',
      'default',
      undefined,
      undefined,
      undefined,
      undefined,
      'watch=yes',
    );
    assert.deepEqual(
      list.items.map((i) => i.metadata!.name),
      ['w-a'],
    );
    const events: string[] = [];
    const controller = await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { labelSelector: 'watch in (yes)', resourceVersion: list.metadata!.resourceVersion },
      (type, obj) => events.push(`${type} ${obj.metadata.name} ${obj.data?.v ?? ''}`.trim()),
      () => {},
    );
    try {
      await apply(configMap('w-b', { v: '1' }, { watch: 'yes' }));
      await apply(configMap('w-a', { v: '2' }, { watch: 'yes' }));
      await apply(configMap('w-other', { v: '2' }, { watch: 'no' }));
      await core.deleteNamespacedConfigMap({ name: 'w-b', namespace: 'default' });
      await eventually(() => assert.deepEqual(events, ['ADDED w-b 1', 'MODIFIED w-a 2', 'DELETED w-b 1']));
    } finally {
      controller.abort();
    }
  });

  test('a watch from a compacted resourceVersion gets 410 Expired; bookmarks arrive when allowed', async () => {
    const list = await objects.list<Obj>('v1', 'ConfigMap', 'default');
    const old = list.metadata!.resourceVersion!;
    await apply(configMap('after-compact', { a: '1' }));
    server.api.store.compact();
    const got: { type: string; obj: Json }[] = [];
    let ended = false;
    await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { resourceVersion: old },
      (type, obj) => got.push({ type, obj }),
      () => {
        ended = true;
      },
    );
    await eventually(() => assert.ok(ended, 'the watch ended'));
    assert.equal(got.length, 1);
    assert.equal(got[0]!.type, 'ERROR');
    assert.equal(got[0]!.obj.code, 410);
    assert.equal(got[0]!.obj.reason, 'Expired');
    assert.match(got[0]!.obj.message, /too old resource version/);

    const marks: string[] = [];
    const c = await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { resourceVersion: String(server.api.store.resourceVersion), allowWatchBookmarks: true },
      (type, obj) => {
        if (type === 'BOOKMARK') marks.push(obj.metadata.resourceVersion);
      },
      () => {},
    );
    try {
      await eventually(() => assert.ok(marks.length >= 1, 'a bookmark arrived'));
    } finally {
      c.abort();
    }
  });

  test('an informer sees add, update and delete, and relists after its watch gets 410 Gone', async () => {
    const informer = makeInformer<V1ConfigMap>(
      kc,
      '/api/v1/namespaces/default/configmaps',
      () => core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'inf=yes' }),
      'inf=yes',
    );
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata!.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata!.name} ${o.data?.v}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata!.name}`));
    informer.on('error', () => {});
    await apply(configMap('inf-1', { v: '1' }, { inf: 'yes' }));
    await informer.start();
    try {
      await eventually(() => assert.ok(seen.includes('add inf-1'), `seen: ${seen}`));
      await apply(configMap('inf-2', { v: '1' }, { inf: 'yes' }));
      await apply(configMap('inf-1', { v: '2' }, { inf: 'yes' }));
      await core.deleteNamespacedConfigMap({ name: 'inf-2', namespace: 'default' });
      await eventually(() => {
        assert.ok(seen.includes('add inf-2'), `seen: ${seen}`);
        assert.ok(seen.includes('update inf-1 2'), `seen: ${seen}`);
        assert.ok(seen.includes('delete inf-2'), `seen: ${seen}`);
      });
      assert.deepEqual(
        informer.list().map((o) => o.metadata!.name),
        ['inf-1'],
      );
      // history compacted while the informer is away: its re-watch from the old version gets 410, so it relists
      await informer.stop();
      await apply(configMap('inf-3', { v: '1' }, { inf: 'yes' }));
      server.api.store.compact();
      assert.ok(!seen.includes('add inf-3'), 'not seen while stopped');
      await informer.start();
      await eventually(() => assert.ok(seen.includes('add inf-3'), `seen: ${seen}`), { timeoutMs: 30_000 });
      assert.deepEqual(
        informer
          .list()
          .map((o) => o.metadata!.name)
          .sort(),
        ['inf-1', 'inf-3'],
      );
    } finally {
      await informer.stop();
    }
  });

  test('simulated controllers: Deployments become available, Jobs complete, PVCs bind, Pods run', async () => {
    const podSpec = { containers: [{ name: 'c', image: 'busybox:1.36' }] };
    await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'ctl', namespace: 'default' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'ctl' } },
        template: { metadata: { labels: { app: 'ctl' } }, spec: podSpec },
      },
    });
    await apply({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'once', namespace: 'default' },
      spec: { template: { spec: { ...podSpec, restartPolicy: 'Never' } } },
    });
    await apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: 'default' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
    await apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'solo', namespace: 'default' },
      spec: podSpec,
    });
    const read = (apiVersion: string, kind: string, name: string) =>
      objects.read<Obj>({ apiVersion, kind, metadata: { name, namespace: 'default' } });
    await eventually(async () => {
      const d = await read('apps/v1', 'Deployment', 'ctl');
      assert.equal(d.status?.availableReplicas, 3);
      assert.equal(d.status?.observedGeneration, d.metadata!.generation);
      assert.ok(
        d.status.conditions.some((c: Json) => c.type === 'Available' && c.status === 'True'),
        'Available',
      );
      const j = await read('batch/v1', 'Job', 'once');
      assert.equal(j.status?.succeeded, 1);
      assert.ok(
        j.status.conditions.some((c: Json) => c.type === 'Complete' && c.status === 'True'),
        'Complete',
      );
      const pvc = await read('v1', 'PersistentVolumeClaim', 'data');
      assert.equal(pvc.status?.phase, 'Bound');
      const pod = await read('v1', 'Pod', 'solo');
      assert.equal(pod.status?.phase, 'Running');
      assert.ok(
        pod.status.conditions.some((c: Json) => c.type === 'Ready' && c.status === 'True'),
        'Ready',
      );
    });
  });

  test('the status subresource: main-resource writes keep status, status writes keep spec', async () => {
    await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'st', namespace: 'default' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'st' } },
        template: {
          metadata: { labels: { app: 'st' } },
          spec: { containers: [{ name: 'c', image: 'x:1' }] },
        },
      },
    });
    await eventually(async () => {
      const d = await objects.read<Obj>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'st', namespace: 'default' },
      });
      assert.equal(d.status?.readyReplicas, 1);
    });
    const written = await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'st', namespace: 'default' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'st' } },
        template: {
          metadata: { labels: { app: 'st' } },
          spec: { containers: [{ name: 'c', image: 'x:1' }] },
        },
      },
      status: { readyReplicas: 99 },
    });
    assert.equal(written.status.readyReplicas, 1, 'status in a main-resource apply is ignored');
  });
});
