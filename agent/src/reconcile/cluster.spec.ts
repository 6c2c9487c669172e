import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startKubeServer } from '@flotilla/e2e/kube';
import type { KubeObject } from '@flotilla/shared';
import { testKubeConfig } from '../test-support.js';
import { type Cluster, createCluster, statusOf } from './cluster.js';

// biome-ignore lint/suspicious/noExplicitAny: API objects are read field by field in assertions.
type Loose = any;

let kube: Awaited<ReturnType<typeof startKubeServer>>;
let cluster: Cluster;

before(async () => {
  kube = await startKubeServer({ readyDelayMs: 0 });
  cluster = createCluster(testKubeConfig(kube.kubeconfig));
});
after(() => kube?.stop());

test('a field newer than the client survives apply, get and list (client-node object API dropped it)', async () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'newer', namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: 'newer' } },
      template: {
        metadata: { labels: { app: 'newer' } },
        spec: { containers: [{ name: 'app', image: 'nginx:1.27' }], fieldNewerThanTheClient: 'kept' },
      },
    },
  } as unknown as KubeObject;
  const applied = (await cluster.apply(deployment, { fieldManager: 'test' })) as Loose;
  assert.equal(applied.spec.template.spec.fieldNewerThanTheClient, 'kept', 'apply response');
  const got = (await cluster.get(deployment)) as Loose;
  assert.equal(got.spec.template.spec.fieldNewerThanTheClient, 'kept', 'get');
  const list = await cluster.list('apps/v1', 'Deployment', 'default');
  const listed = list.items.find((o) => o.metadata.name === 'newer') as Loose | undefined;
  assert.equal(listed?.kind, 'Deployment', 'list items carry their kind');
  assert.equal(listed?.spec.template.spec.fieldNewerThanTheClient, 'kept', 'list');
});

test('a missing object is undefined, an unserved kind is undefined, a refusal keeps its HTTP status', async () => {
  const missing = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nope', namespace: 'default' } };
  assert.equal(await cluster.get(missing as KubeObject), undefined);
  assert.equal(await cluster.resource('example.com/v1', 'Widget'), undefined);
  const bad = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Not_A_Name', namespace: 'default' } };
  const err = await cluster.apply(bad as KubeObject, { fieldManager: 'test' }).then(
    () => assert.fail('an invalid name must be refused'),
    (e: unknown) => e,
  );
  assert.equal(statusOf(err), 422, String(err));
});
