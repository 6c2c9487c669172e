import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assessHealth } from '@flotilla/agent/reconcile';
import type { KubeObject } from '@flotilla/shared';
import { eventually } from '../harness/eventually.js';
import { createMemoryCluster } from './memory-cluster.js';

const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } };
const cm = (value: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'cfg', namespace: 'shop' },
  data: { k: value },
});
const deploy = (image: string): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { replicas: 2, template: { spec: { containers: [{ name: 'web', image }] } } },
});
const fm = { fieldManager: 'test' };

test('a namespaced object in a missing namespace is refused with 404, as by a server', async () => {
  const c = createMemoryCluster();
  await assert.rejects(c.apply(cm('a'), fm), (err: { code?: number }) => err.code === 404);
  await c.apply(ns, fm);
  assert.deepEqual((await c.apply(cm('a'), fm)).data, { k: 'a' });
});

test('apply bumps resourceVersion only on a change, and generation only for kinds that track it', async () => {
  const c = createMemoryCluster();
  await c.apply(ns, fm);
  const first = await c.apply(cm('a'), fm);
  const same = await c.apply(cm('a'), fm);
  assert.equal(same.metadata.resourceVersion, first.metadata.resourceVersion);
  const changed = await c.apply(cm('b'), fm);
  assert.notEqual(changed.metadata.resourceVersion, first.metadata.resourceVersion);
  assert.equal(changed.metadata.generation, 1, 'ConfigMaps do not track generation');
  const d1 = await c.apply(deploy('nginx:1'), fm);
  const d2 = await c.apply(deploy('nginx:2'), fm);
  assert.equal(d2.metadata.generation, (d1.metadata.generation as number) + 1);
});

test('a Deployment is Healthy at once by default, and only after readyDelayMs otherwise', async () => {
  const now = createMemoryCluster();
  await now.apply(ns, fm);
  assert.equal(assessHealth(await now.apply(deploy('nginx:1'), fm)).health, 'Healthy');

  const later = createMemoryCluster({ readyDelayMs: 50 });
  await later.apply(ns, fm);
  assert.equal(assessHealth(await later.apply(deploy('nginx:1'), fm)).health, 'Progressing');
  await eventually(async () => {
    const live = await later.get(deploy('nginx:1'));
    assert.equal(assessHealth(live).health, 'Healthy');
  });
  later.close();
});

test('a watch sees changes and deletions after its list, replays what happened in between, and a too old list gets 410', async () => {
  const c = createMemoryCluster({ eventLog: 2 });
  await c.apply(ns, fm);
  await c.apply(cm('a'), fm);
  const list = await c.list('v1', 'ConfigMap', 'shop');
  assert.equal(list.items.length, 1);
  await c.apply(cm('b'), fm); // between the list and the watch
  const seen: string[] = [];
  const stream = await c.watch(
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      resource: { name: 'configmaps', namespaced: true },
      namespace: 'shop',
      resourceVersion: list.resourceVersion,
    },
    (type, obj) => seen.push(`${type} ${(obj.data as { k: string }).k}`),
    () => seen.push('end'),
  );
  assert.ok(c.edit('v1', 'ConfigMap', 'shop', 'cfg', (o) => Object.assign(o, { data: { k: 'edited' } })));
  await c.delete(cm('any'));
  assert.deepEqual(seen, ['MODIFIED b', 'MODIFIED edited', 'DELETED edited']);
  stream.abort();
  assert.deepEqual(seen.at(-1), 'end');

  const stale: string[] = [];
  await c.watch(
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      resource: { name: 'configmaps', namespaced: true },
      namespace: 'shop',
      resourceVersion: '1',
    },
    (type) => stale.push(type),
    () => stale.push('end'),
  );
  await eventually(async () => assert.deepEqual(stale, ['ERROR', 'end']));
});
