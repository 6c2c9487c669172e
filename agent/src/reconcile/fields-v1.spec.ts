import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '@flotilla/shared';
import {
  appliedFieldsOf,
  type FieldsV1,
  formatPath,
  jsonEqual,
  managedDifferences,
  managersOf,
  valueAtPath,
} from './fields-v1.js';

/** A container with 53/TCP and 53/UDP, as a server stores it and as its managedFields key it. */
const pod = (udpName: string) => ({
  spec: {
    containers: [
      {
        name: 'dns',
        image: 'coredns:1.11',
        ports: [
          { containerPort: 53, protocol: 'TCP', name: 'dns-tcp' },
          { containerPort: 53, protocol: 'UDP', name: udpName },
        ],
        resources: { limits: { cpu: '1', memory: '1Gi' } },
      },
    ],
  },
});

const tree: FieldsV1 = {
  'f:spec': {
    'f:containers': {
      'k:{"name":"dns"}': {
        '.': {},
        'f:image': {},
        'f:ports': {
          'k:{"containerPort":53,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {}, 'f:name': {} },
          'k:{"containerPort":53,"protocol":"UDP"}': { '.': {}, 'f:containerPort': {}, 'f:name': {} },
        },
        'f:resources': { 'f:limits': { 'f:cpu': {}, 'f:memory': {} } },
      },
    },
  },
};

describe('FieldsV1', () => {
  test('list items are found by every key of their k: element, so 53/TCP and 53/UDP are two items', () => {
    const obj = pod('dns-udp');
    const udp = [
      'f:spec',
      'f:containers',
      'k:{"name":"dns"}',
      'f:ports',
      'k:{"containerPort":53,"protocol":"UDP"}',
    ];
    assert.deepEqual(valueAtPath(obj, [...udp, 'f:name']), 'dns-udp');
    assert.deepEqual(valueAtPath(obj, ['f:spec', 'f:containers', 'k:{"name":"web"}']), undefined);
  });

  test('equal objects have no managed differences; a changed item field is one difference at its keyed path', () => {
    assert.deepEqual(managedDifferences(tree, pod('dns-udp'), pod('dns-udp')), []);
    const diffs = managedDifferences(tree, pod('dns-udp'), pod('renamed'));
    assert.deepEqual(
      diffs.map((d) => ({ path: formatPath(d.path), a: d.a, b: d.b })),
      [
        {
          path: 'spec.containers[name=dns].ports[containerPort=53,protocol=UDP].name',
          a: 'dns-udp',
          b: 'renamed',
        },
      ],
    );
  });

  test('fields outside the tree are never compared', () => {
    const live = pod('dns-udp') as Record<string, unknown> & {
      spec: { containers: Record<string, unknown>[] };
    };
    (live.spec.containers[0] as Record<string, unknown>).imagePullPolicy = 'Always';
    (live.spec as Record<string, unknown>).dnsPolicy = 'ClusterFirst';
    assert.deepEqual(managedDifferences(tree, pod('dns-udp'), live), []);
  });

  test('an item missing live is one difference at the item, not one per field', () => {
    const live = pod('dns-udp');
    live.spec.containers[0]?.ports.pop();
    const diffs = managedDifferences(tree, pod('dns-udp'), live);
    assert.equal(diffs.length, 1);
    assert.equal(
      formatPath(diffs[0]?.path ?? []),
      'spec.containers[name=dns].ports[containerPort=53,protocol=UDP]',
    );
    assert.equal(diffs[0]?.b, undefined);
  });

  test('paths read as people write them: quoted odd keys, set values, indexes', () => {
    assert.equal(formatPath(['f:data', 'f:app.properties']), 'data["app.properties"]');
    assert.equal(
      formatPath(['f:metadata', 'f:finalizers', 'v:"example.com/x"']),
      'metadata.finalizers[="example.com/x"]',
    );
    assert.equal(formatPath(['f:spec', 'f:args', 'i:0']), 'spec.args[0]');
  });

  test('managers and the applied fields of one manager come from managedFields', () => {
    const obj: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'x',
        managedFields: [
          { manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:data': {} } },
          { manager: 'flotilla-agent', operation: 'Apply', fieldsV1: { 'f:data': { 'f:a': {} } } },
          {
            manager: 'flotilla-agent',
            operation: 'Apply',
            subresource: 'status',
            fieldsV1: { 'f:status': {} },
          },
        ],
      },
    };
    assert.deepEqual(managersOf(obj), ['kubectl', 'flotilla-agent']);
    assert.deepEqual(appliedFieldsOf(obj, 'flotilla-agent'), { 'f:data': { 'f:a': {} } });
    assert.equal(appliedFieldsOf(obj, 'kubectl'), undefined);
  });

  test('JSON equality ignores key order and undefined members', () => {
    assert.ok(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }));
    assert.ok(!jsonEqual([1, 2], [2, 1]));
    assert.ok(!jsonEqual('1', 1));
  });
});
