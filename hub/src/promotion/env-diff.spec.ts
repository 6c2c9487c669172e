import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactSecretValue, secretHashKey } from '@flotilla/shared';
import { createSecretValues } from '../secrets/secret-values.js';
import { redactSecrets } from './env-diff.js';

const values = createSecretValues(secretHashKey('test key'));

const VALUE = 'hunter2-not-for-diffs';

test('Secret values are hashed in YAML, in JSON and inside a List; other manifests are left as they are', () => {
  const yaml = `apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData:\n  password: ${VALUE}\n---\nkind: ConfigMap\ndata: {k: v}\n`;
  const json = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'b' },
    data: { token: Buffer.from(VALUE).toString('base64') },
  });
  const list = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [{ kind: 'Secret', metadata: { name: 'c' }, stringData: { p: VALUE } }],
  });
  for (const text of [yaml, json, list]) {
    const out = redactSecrets(text, values);
    assert.ok(!out.includes(VALUE) && !out.includes(Buffer.from(VALUE).toString('base64')), out);
    assert.match(out, /\[redacted [0-9a-f]{12}\]/);
  }
  assert.match(redactSecrets(yaml, values), /kind: ConfigMap/);
  const cm = 'kind: ConfigMap\ndata: {k: v}\n';
  assert.equal(redactSecrets(cm, values), cm);
  assert.equal(
    redactSecrets(`kind: Secret\nstringData: {p: ${VALUE}\n`, values).includes(VALUE),
    false,
    'unparsable: not shown',
  );
});

test('with the hub key, Secret values show as an HMAC under it, not as a plain hash of the value', () => {
  const yaml = `kind: Secret\nstringData:\n  password: ${VALUE}\n`;
  const key = secretHashKey('hub key');
  const keyed = redactSecrets(yaml, createSecretValues(key));
  assert.ok(keyed.includes(redactSecretValue(VALUE, key)), keyed);
  assert.ok(!keyed.includes(redactSecretValue(VALUE)), 'a plain sha256 of a guess does not match');
});
