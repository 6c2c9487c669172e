import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type KubeObject, redactSecretValue, secretHashKey } from '@flotilla/shared';
import { createDriftClock, diffObject, parseQuantity, scalarEqual } from './diff.js';

// biome-ignore lint/suspicious/noExplicitAny: fixtures reach deep into manifests to mutate one field.
type Loose = any;

const deployment: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [
          {
            name: 'web',
            image: 'nginx:1.27',
            ports: [{ containerPort: 80 }],
            env: [{ name: 'MODE', value: 'prod' }],
            resources: { limits: { memory: '1Gi', cpu: '500m' } },
          },
        ],
      },
    },
  },
};

/** What a real API server returns for `deployment`: defaults, status and server metadata added. */
function liveOf(obj: KubeObject): KubeObject {
  const live = structuredClone(obj) as KubeObject & { spec: Loose; status?: unknown };
  live.metadata = {
    ...live.metadata,
    uid: 'u-1',
    resourceVersion: '42',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
    managedFields: [{ manager: 'flotilla-agent' }],
    annotations: { 'deployment.kubernetes.io/revision': '1' },
  };
  live.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
  live.spec.revisionHistoryLimit = 10;
  live.spec.progressDeadlineSeconds = 600;
  const c = live.spec.template.spec.containers[0];
  c.imagePullPolicy = 'IfNotPresent';
  c.terminationMessagePath = '/dev/termination-log';
  c.ports[0].protocol = 'TCP';
  c.resources.limits = { memory: '1073741824', cpu: '0.5' };
  live.spec.template.spec.restartPolicy = 'Always';
  live.spec.template.spec.dnsPolicy = 'ClusterFirst';
  live.status = { replicas: 2, observedGeneration: 1 };
  return live;
}

describe('diff', () => {
  test('server defaults, status, server metadata and normalised quantities are not drift', () => {
    assert.deepEqual(diffObject(deployment, liveOf(deployment)), []);
  });

  test('a scaled Deployment drifts at spec.replicas with desired and live values', () => {
    const live = liveOf(deployment) as Loose;
    live.spec.replicas = 5;
    assert.deepEqual(diffObject(deployment, live), [{ path: 'spec.replicas', desired: '2', live: '5' }]);
  });

  test('containers are matched by name and a changed image is reported under its key', () => {
    const live = liveOf(deployment) as Loose;
    live.spec.template.spec.containers[0].image = 'nginx:1.26';
    // A sidecar another controller injected is not the bundle's field.
    live.spec.template.spec.containers.unshift({ name: 'sidecar', image: 'proxy' });
    assert.deepEqual(diffObject(deployment, live), [
      {
        path: 'spec.template.spec.containers[name=web].image',
        desired: '"nginx:1.27"',
        live: '"nginx:1.26"',
      },
    ]);
  });

  test('env is matched by name and ports by containerPort', () => {
    const live = liveOf(deployment) as Loose;
    live.spec.template.spec.containers[0].env = [{ name: 'MODE', value: 'dev' }];
    live.spec.template.spec.containers[0].ports = [{ containerPort: 8080, protocol: 'TCP' }];
    assert.deepEqual(
      diffObject(deployment, live).map((d) => d.path),
      [
        'spec.template.spec.containers[name=web].ports[containerPort=80]',
        'spec.template.spec.containers[name=web].env[name=MODE].value',
      ],
    );
  });

  test('a removed label is drift with a <missing> live value', () => {
    const live = liveOf(deployment);
    live.metadata.labels = {};
    assert.deepEqual(diffObject(deployment, live), [
      { path: 'metadata.labels.app', desired: '"web"', live: '<missing>' },
    ]);
  });

  test('a ConfigMap key patched live is drift at data.KEY; odd keys are quoted', () => {
    const cm: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cfg', namespace: 'shop' },
      data: { LOG_LEVEL: 'info', 'app.properties': 'a=1' },
    };
    const live = {
      ...structuredClone(cm),
      data: { LOG_LEVEL: 'debug', 'app.properties': 'a=2', EXTRA: 'x' },
    };
    assert.deepEqual(diffObject(cm, live), [
      { path: 'data.LOG_LEVEL', desired: '"info"', live: '"debug"' },
      { path: 'data["app.properties"]', desired: '"a=1"', live: '"a=2"' },
    ]);
  });

  test('lists without a merge key compare as a whole, each desired item contained in the live one', () => {
    const desired: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        tolerations: [{ key: 'a', operator: 'Exists' }],
        containers: [{ name: 'c', args: ['--x', '--y'] }],
      },
    };
    const same = structuredClone(desired) as Loose;
    same.spec.tolerations[0].effect = 'NoSchedule';
    assert.deepEqual(diffObject(desired, same), []);
    const reordered = structuredClone(desired) as Loose;
    reordered.spec.containers[0].args = ['--y', '--x'];
    assert.deepEqual(diffObject(desired, reordered), [
      { path: 'spec.containers[name=c].args', desired: '["--x","--y"]', live: '["--y","--x"]' },
    ]);
  });

  test('Service ports are matched by port and int-or-string values compare by value', () => {
    const svc: KubeObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's', namespace: 'shop' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: '8080' }] },
    };
    const live = structuredClone(svc) as Loose;
    live.spec.clusterIP = '10.0.0.1';
    live.spec.type = 'ClusterIP';
    live.spec.ports = [{ port: 80, targetPort: 8080, protocol: 'TCP' }];
    assert.deepEqual(diffObject(svc, live), []);
  });

  test('Secret drift names the key and shows only redacted values; stringData compares as base64', () => {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop' },
      type: 'Opaque',
      data: { user: Buffer.from('admin').toString('base64') },
      stringData: { password: 'hunter2' },
    };
    const live: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop' },
      type: 'Opaque',
      data: {
        user: Buffer.from('admin').toString('base64'),
        password: Buffer.from('hunter2').toString('base64'),
      },
    };
    assert.deepEqual(diffObject(secret, live), []);
    (live.data as Record<string, string>).password = Buffer.from('changed').toString('base64');
    const drift = diffObject(secret, live);
    assert.deepEqual(drift, [
      {
        path: 'data.password',
        desired: redactSecretValue(Buffer.from('hunter2').toString('base64')),
        live: redactSecretValue(Buffer.from('changed').toString('base64')),
      },
    ]);
    const text = JSON.stringify(drift);
    for (const plain of [
      'hunter2',
      'changed',
      Buffer.from('hunter2').toString('base64'),
      Buffer.from('changed').toString('base64'),
    ]) {
      assert.ok(!text.includes(plain), `drift must not contain ${plain}`);
    }
    // With the agent's key the values show as an HMAC under it, not as a guessable plain hash.
    const key = secretHashKey('agent key');
    const keyed = diffObject(secret, live, { secretHashKey: key });
    assert.equal(keyed[0]?.desired, redactSecretValue(Buffer.from('hunter2').toString('base64'), key));
    assert.notEqual(keyed[0]?.desired, drift[0]?.desired);
    assert.equal(createDriftClock({ secretHashKey: key }).diffOptions.secretHashKey, key);
  });

  test('empty desired maps and lists do not drift against an absent live field', () => {
    const desired: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', annotations: {} },
      data: {},
    };
    assert.deepEqual(
      diffObject(desired, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }),
      [],
    );
  });

  test('quantities and ints-as-strings compare by value', () => {
    assert.equal(parseQuantity('1Gi'), 1073741824);
    assert.equal(parseQuantity('500m'), 0.5);
    assert.equal(parseQuantity('1e3'), 1000);
    assert.equal(parseQuantity('web'), undefined);
    assert.ok(scalarEqual('1Gi', '1024Mi'));
    assert.ok(scalarEqual('1000m', 1));
    assert.ok(scalarEqual('3', 3));
    assert.ok(!scalarEqual('1Gi', '1G'));
    assert.ok(!scalarEqual('web', 'api'));
    assert.ok(!scalarEqual(true, 'false'));
  });

  test('since is when a field was first seen drifting, and resets once it is back in sync', () => {
    const clock = createDriftClock();
    const id = { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' };
    const d = { path: 'spec.replicas', desired: '2', live: '5' };
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:01:00Z');
    assert.equal(clock.stamp(id, [d], t1)[0]?.since, t1);
    assert.equal(clock.stamp(id, [{ ...d, live: '6' }], t2)[0]?.since, t1);
    assert.deepEqual(clock.stamp(id, [], t2), []);
    assert.equal(clock.stamp(id, [d], t2)[0]?.since, t2);
  });
});
