import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Bundle,
  createLogger,
  DEFAULT_SYNC_POLICY,
  identityKey,
  identityOf,
  type KubeObject,
  type SyncPolicy,
} from '@flotilla/shared';
import { KubeConfig } from '@kubernetes/client-node';
import type { Cluster, ResourceInfo } from './cluster.js';
import { createReconcilerWith, parseReconcilerOptions } from './reconciler.js';

/** Status error like client-node's ApiException: carries `code`. */
class FakeApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const BUILTIN: Record<string, ResourceInfo> = {
  'v1/Namespace': { name: 'namespaces', namespaced: false },
  'v1/ConfigMap': { name: 'configmaps', namespaced: true },
  'v1/Service': { name: 'services', namespaced: true },
  'apps/v1/Deployment': { name: 'deployments', namespaced: true },
  'rbac.authorization.k8s.io/v1/ClusterRole': { name: 'clusterroles', namespaced: false },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': {
    name: 'customresourcedefinitions',
    namespaced: false,
  },
};

/** The FieldsV1 of what a manifest sets, lists atomic (as the server has them for custom resources). */
function fieldsOf(obj: unknown, top = true): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (top && (k === 'apiVersion' || k === 'kind')) continue;
    if (top && k === 'metadata') {
      const { name: _n, namespace: _ns, ...rest } = v as Record<string, unknown>;
      if (Object.keys(rest).length > 0) out['f:metadata'] = fieldsOf(rest, false);
      continue;
    }
    const nested = typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0;
    out[`f:${k}`] = nested ? fieldsOf(v, false) : {};
  }
  return out;
}

/** An in-memory API server, just enough to test ordering, no-op applies, pruning and isolation. */
function fakeCluster() {
  const objects = new Map<string, KubeObject>();
  const calls: string[] = [];
  let rv = 1;
  const key = (o: KubeObject) => identityKey(identityOf(o));
  const cluster: Cluster = {
    async resource(apiVersion, kind) {
      const builtin = BUILTIN[`${apiVersion}/${kind}`];
      if (builtin) return builtin;
      for (const o of objects.values()) {
        const spec = o.spec as
          | { group: string; names: { kind: string; plural: string }; scope: string }
          | undefined;
        if (
          o.kind === 'CustomResourceDefinition' &&
          spec &&
          apiVersion.startsWith(`${spec.group}/`) &&
          spec.names.kind === kind
        ) {
          return { name: spec.names.plural, namespaced: spec.scope === 'Namespaced' };
        }
      }
      return undefined;
    },
    async get(o) {
      return structuredClone(objects.get(key(o)));
    },
    async apply(o, { fieldManager, dryRun }) {
      calls.push(`${dryRun ? 'dry-run' : 'apply'} ${o.kind} ${o.metadata.name}`);
      const info = await cluster.resource(o.apiVersion, o.kind);
      if (!info) throw new FakeApiError(404, `no ${o.kind}`);
      if (info.namespaced && !objects.has(`/Namespace//${o.metadata.namespace}`)) {
        throw new FakeApiError(404, `namespaces "${o.metadata.namespace}" not found`);
      }
      if (o.metadata.name?.startsWith('boom')) throw new FakeApiError(422, 'invalid');
      const before = objects.get(key(o));
      const next = { ...structuredClone(o), metadata: { ...o.metadata } } as KubeObject;
      if (o.kind === 'CustomResourceDefinition')
        next.status = { conditions: [{ type: 'Established', status: 'True' }] };
      const changed =
        !before ||
        JSON.stringify({ ...before, metadata: undefined }) !==
          JSON.stringify({ ...next, metadata: undefined });
      next.metadata.resourceVersion = changed ? String(++rv) : before?.metadata.resourceVersion;
      next.metadata.managedFields = [
        { manager: fieldManager, operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: fieldsOf(o) },
      ];
      if (!dryRun) objects.set(key(o), next);
      return structuredClone(next);
    },
    async delete(o) {
      calls.push(`delete ${o.kind} ${o.metadata.name}`);
      objects.delete(key(o));
    },
    async list() {
      return { items: [...objects.values()], resourceVersion: String(rv) };
    },
    // No test here watches: a stream that ends at once (the watch loop would relist).
    async watch(_target, _onEvent, onEnd) {
      queueMicrotask(() => onEnd(undefined));
      return { abort() {} };
    },
  };
  return { cluster, objects, calls };
}

function bundleOf(objects: KubeObject[], policy: Partial<SyncPolicy> = {}, generation = 1): Bundle {
  return {
    cluster: 'c1',
    environment: 'dev',
    generation,
    revision: 'r',
    source: { url: 'http://git/x', branch: 'main', path: 'env/dev' },
    createdAt: new Date(0).toISOString(),
    policy: { ...DEFAULT_SYNC_POLICY, ...policy },
    contentDigest: '',
    objects,
  };
}

const ns = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const cm = (name: string, namespace = 'shop', data: Record<string, string> = { k: 'v' }): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data,
});
const crd: KubeObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: { group: 'example.com', names: { kind: 'Widget', plural: 'widgets' }, scope: 'Namespaced' },
};
const widget: KubeObject = {
  apiVersion: 'example.com/v1',
  kind: 'Widget',
  metadata: { name: 'w', namespace: 'shop' },
  spec: { size: 1 },
};
const role: KubeObject = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: 'r' },
  rules: [],
};

function setup() {
  const fake = fakeCluster();
  const settings = parseReconcilerOptions({
    kubeConfig: new KubeConfig(),
    cluster: 'c1',
    logger: createLogger({ name: 'test', level: 'silent' }),
    crdWaitMs: 2000,
  });
  return { ...fake, reconciler: createReconcilerWith(fake.cluster, settings) };
}

describe('reconciler over an in-memory cluster', () => {
  test('applies CRDs, then Namespaces, then cluster-scoped, then namespaced objects, whatever the bundle order', async () => {
    const { reconciler, calls } = setup();
    const result = await reconciler.apply(bundleOf([widget, cm('a'), role, ns('shop'), crd]));
    assert.deepEqual(calls.slice(0, 5), [
      'apply CustomResourceDefinition widgets.example.com',
      'apply Namespace shop',
      'apply ClusterRole r',
      'apply Widget w',
      'apply ConfigMap a',
    ]);
    assert.equal(result.phase, 'Synced');
    assert.equal(result.changes.created.length, 5);
    assert.deepEqual(
      result.resources.map((r) => r.id.kind),
      ['Widget', 'ConfigMap', 'ClusterRole', 'Namespace', 'CustomResourceDefinition'],
    );
  });

  test('an unchanged bundle is not re-applied: every object unchanged, no writes', async () => {
    const { reconciler, calls } = setup();
    const bundle = bundleOf([ns('shop'), cm('a')]);
    await reconciler.apply(bundle);
    calls.length = 0;
    const again = await reconciler.apply(bundle);
    assert.deepEqual(calls, []);
    assert.equal(again.changes.unchanged.length, 2);
  });

  test('a changed object is configured, and live drift makes an unchanged manifest re-apply', async () => {
    const { reconciler, objects } = setup();
    await reconciler.apply(bundleOf([ns('shop'), cm('a')]));
    const changed = await reconciler.apply(bundleOf([ns('shop'), cm('a', 'shop', { k: 'w' })]));
    assert.equal(changed.changes.configured.length, 1);
    const live = objects.get('/ConfigMap/shop/a');
    assert.ok(live);
    live.data = { k: 'edited' };
    const drifted = await reconciler.assess(bundleOf([ns('shop'), cm('a', 'shop', { k: 'w' })]));
    assert.deepEqual(
      drifted.resources[1]?.drift.map(({ path, desired, live }) => ({ path, desired, live })),
      [{ path: 'data.k', desired: '"w"', live: '"edited"' }],
    );
    assert.equal(drifted.resources[1]?.sync, 'OutOfSync');
    const healed = await reconciler.apply(bundleOf([ns('shop'), cm('a', 'shop', { k: 'w' })]));
    assert.equal(healed.changes.configured.length, 1);
    assert.deepEqual(objects.get('/ConfigMap/shop/a')?.data, { k: 'w' });
  });

  test('one failing object is recorded with its subject and the others still apply', async () => {
    const { reconciler, objects } = setup();
    const result = await reconciler.apply(
      bundleOf([ns('shop'), cm('boom'), cm('orphan', 'nowhere'), cm('ok')]),
    );
    assert.equal(result.phase, 'Failed');
    assert.deepEqual(
      result.changes.failed.map((f) => f.error),
      [
        'v1 ConfigMap shop/boom: apply failed: invalid',
        'v1 ConfigMap nowhere/orphan: apply failed: namespaces "nowhere" not found',
      ],
    );
    assert.equal(result.error, 'v1 ConfigMap shop/boom: apply failed: invalid');
    assert.ok(objects.has('/ConfigMap/shop/ok'));
    assert.equal(result.resources.find((r) => r.id.name === 'orphan')?.sync, 'Missing');
  });

  test('prunes what it applied and the bundle dropped, Namespaces last, never objects it did not apply', async () => {
    const { reconciler, objects, calls, cluster } = setup();
    await reconciler.apply(bundleOf([ns('old'), cm('x', 'old'), ns('shop'), cm('a'), cm('b')]));
    await cluster.apply(cm('unmanaged'), { fieldManager: 'kubectl' });
    calls.length = 0;
    const result = await reconciler.apply(bundleOf([ns('shop'), cm('a')]));
    const deletes = calls.filter((c) => c.startsWith('delete'));
    assert.deepEqual(deletes.slice(0, 2).sort(), ['delete ConfigMap b', 'delete ConfigMap x']);
    assert.equal(deletes[2], 'delete Namespace old');
    assert.equal(deletes.length, 3);
    assert.deepEqual(result.changes.deleted.map((d) => d.name).sort(), ['b', 'old', 'x']);
    assert.deepEqual(
      result.resources
        .filter((r) => r.sync === 'Pruned')
        .map((r) => r.id.name)
        .sort(),
      ['b', 'old', 'x'],
    );
    assert.ok(objects.has('/ConfigMap/shop/unmanaged'));
    assert.equal(result.phase, 'Synced');
  });

  test('prune off leaves dropped objects in place, and an empty bundle prunes nothing unless allowEmpty', async () => {
    const { reconciler, objects } = setup();
    await reconciler.apply(bundleOf([ns('shop'), cm('a'), cm('b')]));
    await reconciler.apply(bundleOf([ns('shop'), cm('a')], { prune: false }));
    assert.ok(objects.has('/ConfigMap/shop/b'));
    const empty = await reconciler.apply(bundleOf([]));
    assert.deepEqual(empty.changes.deleted, []);
    assert.ok(objects.has('/ConfigMap/shop/a'));
    const allowed = await reconciler.apply(bundleOf([], { allowEmpty: true }));
    assert.equal(allowed.changes.deleted.length, 3);
    assert.ok(!objects.has('/Namespace//shop'));
  });

  test('an object another manager took over is skipped, not pruned', async () => {
    const { reconciler, objects } = setup();
    await reconciler.apply(bundleOf([ns('shop'), cm('a'), cm('b')]));
    const b = objects.get('/ConfigMap/shop/b');
    assert.ok(b);
    b.metadata.managedFields = [{ manager: 'helm' }];
    const result = await reconciler.apply(bundleOf([ns('shop'), cm('a')]));
    assert.deepEqual(
      result.changes.skipped.map((s) => s.name),
      ['b'],
    );
    assert.ok(objects.has('/ConfigMap/shop/b'));
  });

  test('a malformed ignore annotation fails its object with the annotation named; the rest applies', async () => {
    const { reconciler } = setup();
    const bad = cm('bad');
    await reconciler.apply(bundleOf([ns('shop'), bad]));
    bad.metadata.annotations = { 'flotilla.dev/ignore-differences': 'data/k' };
    const result = await reconciler.apply(bundleOf([ns('shop'), bad, cm('fine')]));
    assert.deepEqual(
      result.changes.failed.map((f) => f.error),
      [
        'v1 ConfigMap shop/bad: metadata.annotations["flotilla.dev/ignore-differences"]: "data/k" is not a JSON pointer (it must start with /)',
      ],
    );
    assert.deepEqual(
      result.changes.created.map((id) => id.name),
      ['fine'],
    );
  });

  test('a transient API failure is retried within the call', async () => {
    const { reconciler, cluster, objects } = setup();
    const apply = cluster.apply;
    let failures = 0;
    cluster.apply = async (o, opts) => {
      if (o.metadata.name === 'flaky' && failures++ < 2) throw new FakeApiError(503, 'try later');
      return apply(o, opts);
    };
    const result = await reconciler.apply(bundleOf([ns('shop'), cm('flaky')]));
    assert.deepEqual(result.changes.failed, []);
    assert.ok(objects.has('/ConfigMap/shop/flaky'));
    assert.equal(failures, 3);
  });

  test('an unreachable API server fails the apply once, touching nothing', async () => {
    const { reconciler, cluster, calls } = setup();
    cluster.get = async () => {
      throw new FakeApiError(503, 'unavailable');
    };
    const result = await reconciler.apply(bundleOf([ns('shop'), cm('a')]));
    assert.equal(result.phase, 'Failed');
    assert.match(result.error ?? '', /^inventory flotilla-system\/flotilla-inventory-c1: read failed: /);
    assert.equal(result.changes.skipped.length, 2);
    assert.deepEqual(calls, []);
  });

  test('custom resources of a CRD that failed to apply fail with that reason, other objects still apply', async () => {
    const { reconciler, objects } = setup();
    const badCrd: KubeObject = {
      ...crd,
      metadata: { name: 'boom.example.com' },
      spec: { group: 'boom.example.com', names: { kind: 'Boom', plural: 'booms' }, scope: 'Namespaced' },
    };
    const boom: KubeObject = {
      apiVersion: 'boom.example.com/v1',
      kind: 'Boom',
      metadata: { name: 'b', namespace: 'shop' },
    };
    const result = await reconciler.apply(bundleOf([ns('shop'), badCrd, boom, cm('a')]));
    assert.deepEqual(
      result.changes.failed.map((f) => f.error),
      [
        'apiextensions.k8s.io/v1 CustomResourceDefinition boom.example.com: apply failed: invalid',
        'boom.example.com/v1 Boom shop/b: apply failed: its CustomResourceDefinition boom.example.com failed to apply',
      ],
    );
    assert.ok(objects.has('/ConfigMap/shop/a'));
  });

  test('an object without a name fails alone, named by its position in the bundle', async () => {
    const { reconciler, objects } = setup();
    const nameless = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'shop' } } as KubeObject;
    const result = await reconciler.apply(bundleOf([ns('shop'), nameless, cm('a')]));
    assert.equal(result.changes.failed.length, 1);
    assert.match(result.changes.failed[0]?.error ?? '', /^object 1: metadata\.name: is required/);
    assert.ok(objects.has('/ConfigMap/shop/a'));
  });

  test('an aborted apply rejects with the abort reason and applies nothing more', async () => {
    const { reconciler, calls } = setup();
    const controller = new AbortController();
    const reason = new Error('shutting down');
    await assert.rejects(
      reconciler.apply(bundleOf([ns('shop'), cm('a'), cm('b')]), {
        onProgress: (done) => {
          if (done === 1) controller.abort(reason);
        },
        signal: controller.signal,
      }),
      (err) => err === reason,
    );
    assert.deepEqual(
      calls.filter((c) => c.startsWith('apply') && !c.includes('inventory')),
      ['apply Namespace shop'],
    );
  });

  test('onProgress counts every object', async () => {
    const { reconciler } = setup();
    const seen: string[] = [];
    await reconciler.apply(bundleOf([ns('shop'), cm('a'), cm('b')]), {
      onProgress: (done, total) => seen.push(`${done}/${total}`),
    });
    assert.deepEqual(seen, ['1/3', '2/3', '3/3']);
  });

  test('options are validated in one place', () => {
    assert.throws(
      () => parseReconcilerOptions({ kubeConfig: new KubeConfig(), cluster: 'Bad_Name' }),
      /cluster: must be a DNS label/,
    );
    const s = parseReconcilerOptions({ kubeConfig: new KubeConfig(), cluster: 'c1' });
    assert.equal(s.fieldManager, 'flotilla-agent');
    assert.equal(s.inventoryNamespace, 'flotilla-system');
  });
});
