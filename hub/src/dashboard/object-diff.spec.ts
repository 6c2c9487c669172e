import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '@flotilla/shared';
import { HIDDEN, objectDiff, parsePath } from './object-diff.js';

const deployment: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    replicas: 2,
    template: { spec: { containers: [{ name: 'web', image: 'web:1' }] } },
  },
};

describe('object desired/live diff', () => {
  test('the agent’s field paths parse, quoted keys and list keys included', () => {
    assert.deepEqual(parsePath('spec.template.spec.containers[name=web].image'), [
      { field: 'spec' },
      { field: 'template' },
      { field: 'spec' },
      { field: 'containers' },
      { match: { name: 'web' } },
      { field: 'image' },
    ]);
    assert.deepEqual(parsePath('data["app.properties"]'), [{ field: 'data' }, { field: 'app.properties' }]);
    assert.deepEqual(parsePath('spec.args[0]'), [{ field: 'spec' }, { field: 'args' }, { index: 0 }]);
  });

  test('drifted fields show at their live values in a unified diff', () => {
    const diff = objectDiff(deployment, [
      { field: 'spec.replicas', desired: '2', live: '7' },
      { field: 'spec.template.spec.containers[name=web].image', desired: '"web:1"', live: '"web:hacked"' },
    ]);
    assert.match(diff.patch, /^-\s+replicas: 2$/m);
    assert.match(diff.patch, /^\+\s+replicas: 7$/m);
    assert.match(diff.patch, /^\+\s+image: web:hacked$/m);
    assert.deepEqual(diff.unplaced, []);
  });

  test('a Secret’s values never appear: hidden in the manifest, drift as the agent’s hashes', () => {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop' },
      data: { password: 'aHVudGVyMg==' },
      stringData: { user: 'admin-user' },
    };
    const diff = objectDiff(secret, [
      { field: 'data.password', desired: '[redacted 0123456789ab]', live: '[redacted ba9876543210]' },
    ]);
    const all = `${diff.desired}${diff.live}${diff.patch}`;
    assert.ok(!all.includes('aHVudGVyMg==') && !all.includes('admin-user'), all);
    assert.match(diff.desired ?? '', new RegExp(`user: "?\\${HIDDEN}`));
    assert.match(diff.patch, /\+\s+password: "?\[redacted ba9876543210\]/);
  });

  test('a deleted object has no live side, and an unknown path is listed, not guessed', () => {
    const gone = objectDiff(deployment, [{ field: '(object)', desired: '<present>', live: '<missing>' }]);
    assert.equal(gone.live, null);
    assert.match(gone.patch, /\+\+\+ \/dev\/null/);
    const odd = objectDiff(deployment, [{ field: 'spec.replicas[', desired: '1', live: '2' }]);
    assert.deepEqual(odd.unplaced, ['spec.replicas[']);
  });
});
