import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFieldsV1, encodeFieldsV1, serverSideApply, toFieldSet } from './fields.js';
import { jsonMergePatch, jsonPatch, strategicMergePatch } from './patch.js';
import { decodeProtobufObject } from './protobuf.js';
import { matchLabelSelectorObject, parseFieldSelector, parseLabelSelector } from './selectors.js';

const own = (manager: string) => ({
  kind: 'Deployment',
  custom: false,
  apiVersion: 'apps/v1',
  statusSeparate: true,
  manager,
  now: '2026-01-01T00:00:00Z',
  force: false,
});

describe('patch formats', () => {
  test('strategic merge patch merges containers by name, ports by containerPort and env by name, and honours $patch: delete', () => {
    const live = {
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'a', image: 'a:1', ports: [{ containerPort: 80 }], env: [{ name: 'X', value: '1' }] },
              { name: 'b', image: 'b:1' },
            ],
          },
        },
      },
    };
    const out = strategicMergePatch(
      live,
      {
        spec: {
          template: {
            spec: {
              containers: [
                { name: 'a', ports: [{ containerPort: 81 }], env: [{ name: 'X', value: '2' }] },
                { name: 'b', $patch: 'delete' },
              ],
            },
          },
        },
      },
      'Deployment',
    );
    const [a, ...rest] = out.spec.template.spec.containers;
    assert.equal(rest.length, 0);
    assert.equal(a.image, 'a:1');
    assert.deepEqual(a.ports, [{ containerPort: 80 }, { containerPort: 81 }]);
    assert.deepEqual(a.env, [{ name: 'X', value: '2' }]);
  });

  test('strategic merge patch replaces lists without a merge key and deletes keys set to null', () => {
    const out = strategicMergePatch(
      { spec: { args: ['a', 'b'], x: 1 } },
      { spec: { args: ['c'], x: null } },
      'Pod',
    );
    assert.deepEqual(out, { spec: { args: ['c'] } });
  });

  test('JSON merge patch and JSON patch', () => {
    assert.deepEqual(jsonMergePatch({ a: { b: 1, c: 2 }, l: [1] }, { a: { b: null }, l: [2] }), {
      a: { c: 2 },
      l: [2],
    });
    assert.deepEqual(
      jsonPatch({ a: [1, 2] }, [
        { op: 'add', path: '/a/-', value: 3 },
        { op: 'replace', path: '/a/0', value: 0 },
        { op: 'add', path: '/b', value: 'x' },
      ]),
      { a: [0, 2, 3], b: 'x' },
    );
  });
});

describe('server-side apply', () => {
  const deploy = (replicas: number, image: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd' },
    spec: { replicas, template: { spec: { containers: [{ name: 'c', image, ...extra }] } } },
  });

  test('fieldsV1 round-trips, with "." for list items that have fields', () => {
    const set = toFieldSet(deploy(1, 'x'), { kind: 'Deployment', custom: false });
    const encoded = encodeFieldsV1(set);
    assert.deepEqual(
      Object.keys(encoded['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"c"}']).sort(),
      ['.', 'f:image', 'f:name'],
    );
    assert.deepEqual([...decodeFieldsV1(encoded)].sort(), [...set].sort());
  });

  test('a second manager changing an owned field conflicts; the same value is shared; force takes ownership', () => {
    const first = serverSideApply(undefined, deploy(2, 'x'), own('a'));
    const live = {
      ...first.object,
      metadata: { ...first.object.metadata, managedFields: first.managedFields },
    };
    assert.throws(
      () => serverSideApply(live, deploy(3, 'x'), own('b')),
      /Apply failed with 1 conflict: conflict with "a" using apps\/v1: \.spec\.replicas/,
    );
    const shared = serverSideApply(live, deploy(2, 'x'), own('b'));
    assert.deepEqual(
      shared.managedFields.map((m) => m.manager),
      ['a', 'b'],
    );
    const forced = serverSideApply(live, deploy(3, 'x'), { ...own('b'), force: true });
    assert.equal(forced.object.spec.replicas, 3);
    assert.equal(
      forced.managedFields.find((m) => m.manager === 'a')!.fieldsV1['f:spec']['f:replicas'],
      undefined,
    );
  });

  test('fields a manager stops applying are removed unless another manager owns them', () => {
    const first = serverSideApply(undefined, deploy(2, 'x', { args: ['--v'] }), own('a'));
    const live = {
      ...first.object,
      metadata: { ...first.object.metadata, managedFields: first.managedFields },
    };
    const second = serverSideApply(live, deploy(2, 'x'), own('a'));
    assert.equal(second.object.spec.template.spec.containers[0].args, undefined);
  });
});

describe('selectors and protobuf', () => {
  test('label selectors: equality, set-based, existence', () => {
    const sel = parseLabelSelector('app=web,tier in (a, b),!legacy,env');
    assert.equal(sel({ app: 'web', tier: 'a', env: 'x' }), true);
    assert.equal(sel({ app: 'web', tier: 'c', env: 'x' }), false);
    assert.equal(sel({ app: 'web', tier: 'a', env: 'x', legacy: '1' }), false);
    assert.equal(parseLabelSelector('tier notin (a)')({}), true);
    assert.equal(
      matchLabelSelectorObject({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }),
      true,
    );
    assert.equal(parseFieldSelector('metadata.name=x')({ metadata: { name: 'x' } }), true);
  });

  test('a protobuf ConfigMap from a typed client decodes to its JSON form', () => {
    const str = (no: number, s: string) => {
      const b = Buffer.from(s);
      return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
    };
    const msg = (no: number, ...parts: Buffer[]) => {
      const b = Buffer.concat(parts);
      return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
    };
    const raw = Buffer.concat([msg(1, str(1, 'cfg'), str(3, 'default')), msg(2, str(1, 'k'), str(2, 'v'))]);
    const body = Buffer.concat([
      Buffer.from('k8s\0', 'binary'),
      msg(1, str(1, 'v1'), str(2, 'ConfigMap')),
      msg(2, raw),
    ]);
    assert.deepEqual(decodeProtobufObject(body), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cfg', namespace: 'default' },
      data: { k: 'v' },
    });
  });

  test('a protobuf field the server does not know is refused with 415 naming the message and field, not dropped', () => {
    const msg = (no: number, ...parts: Buffer[]) => {
      const b = Buffer.concat(parts);
      return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
    };
    const str = (no: number, s: string) => msg(no, Buffer.from(s));
    const raw = Buffer.concat([msg(1, str(1, 'cfg')), str(15, 'surprise')]);
    const body = Buffer.concat([
      Buffer.from('k8s\0', 'binary'),
      msg(1, str(1, 'v1'), str(2, 'ConfigMap')),
      msg(2, raw),
    ]);
    assert.throws(
      () => decodeProtobufObject(body),
      (err: Error & { code?: number }) => err.code === 415 && /ConfigMap field 15/.test(err.message),
    );
  });
});
