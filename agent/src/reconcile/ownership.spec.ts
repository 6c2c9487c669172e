import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '@flotilla/shared';
import { ADOPT_ANNOTATION, ownershipConflict } from './ownership.js';

const id = { group: '', version: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'settings' };
const manifest = (annotations?: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'settings', namespace: 'shop', ...(annotations ? { annotations } : {}) },
  data: { a: '1' },
});
const live = (...managers: string[]): KubeObject => ({
  ...manifest(),
  metadata: {
    name: 'settings',
    namespace: 'shop',
    managedFields: managers.map((manager) => ({ manager, operation: 'Update', fieldsV1: { 'f:data': {} } })),
  },
});
const facts = { inInventory: false, fieldManager: 'flotilla-agent', policy: {} };

describe('ownership', () => {
  test('an object someone else created is a conflict naming the object and its managers', () => {
    const conflict = ownershipConflict(id, manifest(), live('kubectl-create', 'kubectl-edit'), facts);
    assert.equal(
      conflict,
      'v1 ConfigMap shop/settings: conflict: exists, managed by kubectl-create, kubectl-edit, and was not created by Flotilla; ' +
        `left alone until its manifest is annotated ${ADOPT_ANNOTATION}: "true" or the environment's policy sets adopt: true`,
    );
    assert.match(
      ownershipConflict(id, manifest(), live(), facts) ?? '',
      /exists, with no recorded managers,/,
    );
  });

  test('no conflict for a missing object, one in the inventory, or one the agent has written', () => {
    assert.equal(ownershipConflict(id, manifest(), undefined, facts), undefined);
    assert.equal(
      ownershipConflict(id, manifest(), live('kubectl'), { ...facts, inInventory: true }),
      undefined,
    );
    assert.equal(ownershipConflict(id, manifest(), live('kubectl', 'flotilla-agent'), facts), undefined);
  });

  test('adopted when the manifest is annotated or the policy allows it, and only with "true"', () => {
    assert.equal(
      ownershipConflict(id, manifest({ [ADOPT_ANNOTATION]: 'true' }), live('kubectl'), facts),
      undefined,
    );
    assert.equal(
      ownershipConflict(id, manifest(), live('kubectl'), { ...facts, policy: { adopt: true } }),
      undefined,
    );
    assert.ok(ownershipConflict(id, manifest({ [ADOPT_ANNOTATION]: 'yes' }), live('kubectl'), facts));
  });
});
