import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidError } from './errors.js';
import { formatIdentity, identityKey, identityOf } from './identity.js';
import { agentDirectGetSubjects, assertClusterName, bundleSubject } from './subjects.js';

test('identity of namespaced and cluster-scoped objects, and messages that start with it', () => {
  const id = identityOf({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
  });
  assert.deepEqual(id, { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' });
  assert.equal(formatIdentity(id), 'apps/v1 Deployment shop/web');
  assert.equal(identityKey(id), 'apps/Deployment/shop/web');
  assert.equal(
    formatIdentity(identityOf({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } })),
    'v1 Namespace shop',
  );
});

test('a manifest without a name is refused naming the field', () => {
  assert.throws(
    () => identityOf({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} }, 'app.yaml#2'),
    (err: unknown) => err instanceof InvalidError && /app.yaml#2: metadata.name/.test(err.message),
  );
});

test('cluster names that could reach another subject are refused', () => {
  for (const bad of ['a.b', 'a*', '>', 'a b', 'A', '', 'x'.repeat(64)])
    assert.throws(() => assertClusterName(bad), InvalidError, bad);
  assert.equal(bundleSubject('prod-eu-1'), 'bundles.prod-eu-1');
  assert.deepEqual(agentDirectGetSubjects('dev'), [
    '$JS.API.DIRECT.GET.BUNDLES.bundles.dev',
    '$JS.API.DIRECT.GET.BUNDLES.bundles.dev.>',
    '$JS.*.API.DIRECT.GET.BUNDLES.bundles.dev',
    '$JS.*.API.DIRECT.GET.BUNDLES.bundles.dev.>',
  ]);
});
