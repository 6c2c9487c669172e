import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type KubeObject, redactSecretValue, secretHashKey } from '@flotilla/shared';
import type { Identity } from '../access/roles.js';
import {
  createSecretValues,
  encryptedValueShown,
  REDACTED,
  secretValuesShownTo,
  seesSecretHashes,
  withSecretValuesShown,
} from './secret-values.js';

const KEY = secretHashKey('hub key');
const values = createSecretValues(KEY);
const admin: Identity = { actor: 'token:ada', role: 'admin', environments: [] };
const viewer: Identity = { actor: 'token:val', role: 'viewer', environments: [] };

test('a Secret value shows as an HMAC under the hub key: equal values equal, a guess’s plain hash no match', () => {
  const shown = values.shown('hunter2');
  assert.match(shown, /^\[redacted [0-9a-f]{12}\]$/);
  assert.equal(shown, redactSecretValue('hunter2', KEY), 'the same format as the hashes agents report');
  assert.equal(values.shown('hunter2'), shown);
  assert.notEqual(values.shown('hunter3'), shown);
  assert.notEqual(shown, redactSecretValue('hunter2'), 'not the unkeyed sha256');
  assert.notEqual(createSecretValues(secretHashKey('other hub')).shown('hunter2'), shown);
  const ciphertext = 'ENC[AES256_GCM,data:abc=,iv:def=,tag:ghi=,type:str]';
  assert.equal(values.shown(ciphertext), encryptedValueShown(ciphertext), 'SOPS ciphertext: its hash');
});

test('read-secrets sees the hashes; a viewer sees [redacted] for each, agents’ and SOPS ones included', () => {
  assert.equal(seesSecretHashes(admin), true);
  assert.equal(seesSecretHashes(viewer), false);
  assert.equal(seesSecretHashes(undefined), true, 'the hub itself');
  const text = `password: ${values.shown('a')} agent: [redacted 0123456789ab] sops: ${encryptedValueShown('ENC[x]')}`;
  assert.equal(secretValuesShownTo(admin, text), text);
  assert.equal(
    secretValuesShownTo(viewer, text),
    `password: ${REDACTED} agent: ${REDACTED} sops: ${REDACTED}`,
  );
});

test('a v1 Secret manifest shows its data and stringData hashed and its SOPS metadata redacted; other kinds as they are', () => {
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db' },
    data: { password: 'aHVudGVyMg==' },
    stringData: { user: 'admin-user' },
    sops: { age: [{ recipient: 'age1x', enc: '-----BEGIN AGE ENCRYPTED FILE-----' }] },
  } as KubeObject;
  const shown = withSecretValuesShown(secret, values) as KubeObject & Record<string, unknown>;
  assert.deepEqual(shown.data, { password: values.shown('aHVudGVyMg==') });
  assert.deepEqual(shown.stringData, { user: values.shown('admin-user') });
  assert.equal(shown.sops, REDACTED);
  assert.deepEqual((secret as unknown as { data: unknown }).data, { password: 'aHVudGVyMg==' }, 'a copy');
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { k: 'v' } } as KubeObject;
  assert.deepEqual(withSecretValuesShown(cm, values), cm);
});
