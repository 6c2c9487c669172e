import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type KubeObject, redactSecretValue, secretHashKey } from '@flotilla/shared';
import type { Cluster } from './cluster.js';
import { createDriftCheck } from './drift-check.js';
import { createDriftClock } from './drift-clock.js';
import type { FieldsV1 } from './fields-v1.js';

const FM = 'flotilla-agent';

/**
 * A cluster whose dry run answers what a real server would store: `serve` turns the manifest
 * into the stored object (normalised, defaulted), with the agent's managedFields.
 */
function dryRunCluster(serve: (obj: KubeObject) => { stored: KubeObject; fields: FieldsV1 }) {
  let calls = 0;
  const cluster: Cluster = {
    async get() {
      return undefined;
    },
    async apply(obj, { fieldManager, dryRun }) {
      assert.equal(dryRun, true, 'a drift check never writes');
      calls++;
      const { stored, fields } = serve(structuredClone(obj));
      return {
        ...stored,
        metadata: {
          ...stored.metadata,
          managedFields: [
            { manager: fieldManager, operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: fields },
          ],
        },
      };
    },
    async delete() {},
    async list() {
      return { items: [], resourceVersion: '1' };
    },
    async watch() {
      throw new Error('a drift check never watches');
    },
    async resource() {
      return { name: 'x', namespaced: true };
    },
  };
  return {
    cluster,
    get calls() {
      return calls;
    },
  };
}

const retry = { attempts: 1, baseDelayMs: 1, timeoutMs: 1000 };
const facts = { policy: {}, inInventory: true };

const deployment = (cpu: string, replicas = 2): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    replicas,
    template: { spec: { containers: [{ name: 'web', image: 'nginx', resources: { limits: { cpu } } }] } },
  },
});
const deploymentFields: FieldsV1 = {
  'f:spec': {
    'f:replicas': {},
    'f:template': {
      'f:spec': {
        'f:containers': {
          'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:resources': { 'f:limits': { 'f:cpu': {} } } },
        },
      },
    },
  },
};
const id = { group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: 'web' };

/** The server canonicalises `1000m` to `1` and defaults imagePullPolicy, as a real one does. */
function canonical(obj: KubeObject): { stored: KubeObject; fields: FieldsV1 } {
  const c = (obj.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec
    .containers[0] as { resources: { limits: { cpu: string } }; imagePullPolicy?: string };
  if (c.resources.limits.cpu === '1000m') c.resources.limits.cpu = '1';
  c.imagePullPolicy = 'Always';
  return { stored: obj, fields: deploymentFields };
}

function stored(cpu: string, replicas = 2, rv = '7'): KubeObject {
  const live = canonical(deployment(cpu, replicas)).stored;
  live.metadata = {
    ...live.metadata,
    resourceVersion: rv,
    managedFields: [{ manager: FM, operation: 'Apply' }],
  };
  return live;
}

describe('drift from the server dry run', () => {
  test('what the server normalises or defaults is not drift, and the apply is known to be a no-op', async () => {
    const fake = dryRunCluster(canonical);
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
    });
    const verdict = await check.verdict(id, deployment('1000m'), stored('1'));
    assert.deepEqual(verdict, { diffs: [], inSync: true });
  });

  test('a managed field changed live is drift at its keyed path, with desired and live values', async () => {
    const fake = dryRunCluster(canonical);
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
    });
    const report = await check.report(id, deployment('1000m'), stored('500m', 5), facts);
    assert.equal(report.sync, 'OutOfSync');
    assert.deepEqual(
      report.drift.map(({ path, desired, live }) => ({ path, desired, live })),
      [
        { path: 'spec.replicas', desired: '2', live: '5' },
        {
          path: 'spec.template.spec.containers[name=web].resources.limits.cpu',
          desired: '"1"',
          live: '"500m"',
        },
      ],
    );
  });

  test('a change outside the managed fields needs an apply but is not reported as drift', async () => {
    // The manifest dropped a label the agent applied before: the dry run no longer has it.
    const fake = dryRunCluster(canonical);
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
    });
    const live = stored('1');
    live.metadata.labels = { old: 'yes' };
    assert.deepEqual(await check.verdict(id, deployment('1000m'), live), { diffs: [], inSync: false });
  });

  test('a verdict is cached by manifest and live object without status; a fresh check asks again', async () => {
    const fake = dryRunCluster(canonical);
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
    });
    await check.verdict(id, deployment('1000m'), stored('1'));
    const statusOnly = { ...stored('1', 2, '8'), status: { readyReplicas: 2 } };
    await check.verdict(id, deployment('1000m'), statusOnly);
    assert.equal(fake.calls, 1, 'a status write costs no dry run');
    await check.verdict(id, deployment('1000m'), stored('1', 3));
    assert.equal(fake.calls, 2, 'a spec change does');
    await check.verdict(id, deployment('1000m'), stored('1', 3), true);
    assert.equal(fake.calls, 3, 'a fresh check does');
    check.remember(id, deployment('1000m', 4), stored('1', 4));
    assert.deepEqual(await check.verdict(id, deployment('1000m', 4), stored('1', 4)), {
      diffs: [],
      inSync: true,
    });
    assert.equal(fake.calls, 3, 'what an apply stored needs no dry run');
  });

  test('a missing object is drift of the whole object, live <missing>, since when it was first seen', async () => {
    const fake = dryRunCluster(canonical);
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
    });
    const first = await check.report(id, deployment('1'), undefined, facts);
    assert.equal(first.sync, 'Missing');
    assert.deepEqual(
      first.drift.map(({ path, desired, live }) => ({ path, desired, live })),
      [{ path: '(object)', desired: '<present>', live: '<missing>' }],
    );
    const again = await check.report(id, deployment('1'), undefined, facts);
    assert.equal(again.drift[0]?.since, first.drift[0]?.since);
    assert.equal(fake.calls, 0);
  });

  test('an object someone else created is reported as a conflict, with no dry run and no drift', async () => {
    const fake = dryRunCluster(canonical);
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
    });
    const theirs = stored('1', 9);
    theirs.metadata.managedFields = [{ manager: 'helm', operation: 'Update' }];
    const report = await check.report(id, deployment('1'), theirs, { policy: {}, inInventory: false });
    assert.match(report.error ?? '', /^apps\/v1 Deployment shop\/web: conflict: exists, managed by helm,/);
    assert.deepEqual(report.drift, []);
    assert.equal(fake.calls, 0);
  });

  test('Secret drift names the key under data, stringData included, and shows only keyed hashes', async () => {
    const key = secretHashKey('agent key');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    // The server folds stringData into data; the agent's managedFields still say stringData.
    const fake = dryRunCluster((obj) => {
      const data = { ...(obj.data as Record<string, string>) };
      for (const [k, v] of Object.entries((obj.stringData ?? {}) as Record<string, string>)) data[k] = b64(v);
      const { stringData: _s, ...rest } = obj;
      return {
        stored: { ...rest, data },
        fields: { 'f:data': { 'f:user': {} }, 'f:stringData': { 'f:password': {} } },
      };
    });
    const check = createDriftCheck({
      cluster: fake.cluster,
      fieldManager: FM,
      clock: createDriftClock(),
      retry,
      secretHashKey: key,
    });
    const secretId = { group: '', version: 'v1', kind: 'Secret', namespace: 'shop', name: 'db' };
    const desired: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop' },
      data: { user: b64('app') },
      stringData: { password: 'hunter2' },
    };
    const live: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'shop', managedFields: [{ manager: FM, operation: 'Apply' }] },
      data: { user: b64('app'), password: b64('changed') },
    };
    const report = await check.report(secretId, desired, live, facts);
    assert.deepEqual(
      report.drift.map(({ path, desired, live }) => ({ path, desired, live })),
      [
        {
          path: 'data.password',
          desired: redactSecretValue(b64('hunter2'), key),
          live: redactSecretValue(b64('changed'), key),
        },
      ],
    );
    const text = JSON.stringify(report);
    for (const plain of ['hunter2', 'changed', b64('hunter2'), b64('changed')]) {
      assert.ok(!text.includes(plain), `report leaks ${plain}`);
    }
  });
});
