import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type KubeObject, redactSecretValue, secretHashKey } from '@flotilla/shared';
import { createSecretValues } from '../secrets/secret-values.js';
import { objectDiff, parsePath } from './object-diff.js';

const HUB_KEY = secretHashKey('hub key');
const values = createSecretValues(HUB_KEY);

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
    const diff = objectDiff(
      deployment,
      [
        { field: 'spec.replicas', desired: '2', live: '7' },
        { field: 'spec.template.spec.containers[name=web].image', desired: '"web:1"', live: '"web:hacked"' },
      ],
      values,
    );
    assert.match(diff.patch, /^-\s+replicas: 2$/m);
    assert.match(diff.patch, /^\+\s+replicas: 7$/m);
    assert.match(diff.patch, /^\+\s+image: web:hacked$/m);
    assert.deepEqual(diff.unplaced, []);
  });

  test('a Secret’s values never appear: the manifest’s as HMACs under the hub key, drift as the agent’s hashes', () => {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop' },
      data: { password: 'aHVudGVyMg==' },
      stringData: { user: 'admin-user' },
    };
    const diff = objectDiff(
      secret,
      [{ field: 'data.password', desired: '[redacted 0123456789ab]', live: '[redacted ba9876543210]' }],
      values,
    );
    const all = `${diff.desired}${diff.live}${diff.patch}`;
    assert.ok(!all.includes('aHVudGVyMg==') && !all.includes('admin-user'), all);
    const userHash = redactSecretValue('admin-user', HUB_KEY);
    assert.ok(diff.desired?.includes(`user: "${userHash}"`), diff.desired ?? '');
    assert.ok(diff.live?.includes(`user: "${userHash}"`), 'an undrifted value shows the same on both sides');
    assert.ok(
      !all.includes(redactSecretValue('admin-user')),
      'keyed: a plain hash of a guess does not match',
    );
    assert.match(diff.patch, /\+\s+password: "?\[redacted ba9876543210\]/);
  });

  test('a deleted object has no live side, and an unknown path is listed, not guessed', () => {
    const gone = objectDiff(
      deployment,
      [{ field: '(object)', desired: '<present>', live: '<missing>' }],
      values,
    );
    assert.equal(gone.live, null);
    assert.match(gone.patch, /\+\+\+ \/dev\/null/);
    const odd = objectDiff(deployment, [{ field: 'spec.replicas[', desired: '1', live: '2' }], values);
    assert.deepEqual(odd.unplaced, ['spec.replicas[']);
  });
});
