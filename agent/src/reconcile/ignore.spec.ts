import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidError, type KubeObject } from '@flotilla/shared';
import { IGNORE_ANNOTATION, ignoredPointers, withIgnored } from './ignore.js';

const id = { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' };

const deployment = (replicas: number, annotations?: Record<string, string>): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', ...(annotations ? { annotations } : {}) },
  spec: {
    replicas,
    template: { spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } },
  },
});

describe('ignored fields', () => {
  test('environment rules match group and kind, and namespace and name when given', () => {
    const rules = [
      { group: 'apps', kind: 'Deployment', jsonPointers: ['/spec/replicas'] },
      { group: 'apps', kind: 'Deployment', name: 'other', jsonPointers: ['/spec/paused'] },
      { group: 'apps', kind: 'Deployment', namespace: 'shop', jsonPointers: ['/metadata/labels/a~1b'] },
      { kind: 'Deployment', jsonPointers: ['/core/group/only'] },
    ];
    assert.deepEqual(ignoredPointers(id, deployment(2), rules), [
      ['spec', 'replicas'],
      ['metadata', 'labels', 'a/b'],
    ]);
  });

  test('the object annotation adds comma-separated pointers; a malformed one is an error naming the annotation', () => {
    const annotated = deployment(2, {
      [IGNORE_ANNOTATION]: '/spec/replicas, /spec/template/spec/containers/0/image',
    });
    assert.deepEqual(ignoredPointers(id, annotated, []), [
      ['spec', 'replicas'],
      ['spec', 'template', 'spec', 'containers', '0', 'image'],
    ]);
    assert.throws(
      () => ignoredPointers(id, deployment(2, { [IGNORE_ANNOTATION]: 'spec/replicas' }), []),
      (err: unknown) =>
        err instanceof InvalidError &&
        err.field === `metadata.annotations["${IGNORE_ANNOTATION}"]` &&
        err.message.includes(`metadata.annotations["${IGNORE_ANNOTATION}"]`) &&
        err.message.includes('"spec/replicas" is not a JSON pointer'),
    );
  });

  test('over an existing object an ignored field takes its live value, or is dropped where live has none', () => {
    const live = deployment(5);
    const effective = withIgnored(deployment(2), live, [['spec', 'replicas']]);
    assert.equal((effective.spec as { replicas: number }).replicas, 5);
    const noLive = {
      ...deployment(2),
      spec: { template: (deployment(2).spec as { template: unknown }).template },
    };
    const dropped = withIgnored(deployment(2), noLive, [['spec', 'replicas']]);
    assert.ok(!('replicas' in (dropped.spec as object)));
    const image = withIgnored(
      deployment(2),
      {
        ...deployment(2),
        spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:live' }] } } },
      },
      [['spec', 'template', 'spec', 'containers', '0', 'image']],
    );
    assert.deepEqual(image.spec, {
      replicas: 2,
      template: { spec: { containers: [{ name: 'web', image: 'nginx:live' }] } },
    });
  });

  test('a missing object is created from the manifest as written', () => {
    const desired = deployment(2);
    assert.equal(withIgnored(desired, undefined, [['spec', 'replicas']]), desired);
  });
});
