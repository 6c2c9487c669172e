import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlEdit, kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - name: staging
    path: environments/staging
    policy: {selfHeal: false, prune: true}
  - name: prod
    path: environments/prod
    targets:
      - name: gpu
        selector: {matchLabels: {gpu: "true"}}
        path: targets/gpu
apps:
  - name: monitoring
    selector:
      matchExpressions:
        - {key: tier, operator: In, values: [prod]}
pipeline: [staging, prod]
`;

const configMap = (name: string, namespace: string, data: Record<string, string>) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\ndata:\n${Object.entries(
    data,
  )
    .map(([k, v]) => `  ${k}: "${v}"\n`)
    .join('')}`;

/** The monitoring app of one environment: its namespace and an agent's settings. */
const monitoring = (env: string, version: string) => ({
  [`apps/monitoring/${env}/namespace.yaml`]:
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: monitoring\n',
  [`apps/monitoring/${env}/agent.yaml`]: configMap('agent', 'monitoring', { version }),
});

/** prod builds with Kustomize on a base that its gpu group builds on too. */
const prodFiles = () => {
  const files: Record<string, string> = {
    'environments/prod/kustomization.yaml': 'resources: [base]\n',
    'environments/prod/base/kustomization.yaml':
      'resources: [namespace.yaml, deployment.yaml, service.yaml, web-config.yaml]\n',
    'environments/prod/base/web-config.yaml': configMap('web-config', 'shop', { LOG_LEVEL: 'warn' }),
    'environments/prod/targets/gpu/kustomization.yaml': 'resources: [../../base, gpu.yaml]\n',
    'environments/prod/targets/gpu/gpu.yaml': configMap('gpu-settings', 'shop', { driver: '550' }),
  };
  for (const [path, text] of Object.entries(appFiles('prod')))
    if (!path.endsWith('config.yaml'))
      files[path.replace('environments/prod/', 'environments/prod/base/')] = text;
  return files;
};

/**
 * Journey: targeting. Groups by label within an environment, a fleet-wide app selected by
 * label across environments and promoted with them, labels that change (and what leaves is
 * pruned), the source of every object, two sources of one object refused, and a plain
 * directory with a kustomization inside it.
 */
describe('targeting: label groups, fleet-wide apps, labels that change', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  const kube = (name: string) => fleet.clusters.get(name)!.kubeconfig;
  const get = (cluster: string, args: string[]) => kubectlJson(kube(cluster), args);
  const absent = async (cluster: string, args: string[]) => {
    const r = await kubectl(kube(cluster), ['get', ...args, '--ignore-not-found', '-o', 'name']);
    assert.equal(r.trim(), '', `${cluster}: ${args.join(' ')} still exists`);
  };

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': FLOTILLA_YAML,
        ...appFiles('staging'),
        // A plain directory holding a kustomization of its own.
        'environments/staging/ingress/kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: edge-\nresources: [routes.yaml]\n',
        'environments/staging/ingress/routes.yaml': configMap('routes', 'shop', { host: 'shop.example' }),
        ...prodFiles(),
        ...monitoring('staging', '2'),
        ...monitoring('prod', '1'),
      },
      clusters: [
        { name: 'stg-1', environment: 'staging', labels: { tier: 'prod' } },
        { name: 'stg-2', environment: 'staging', labels: { tier: 'test' } },
        { name: 'prod-1', environment: 'prod', labels: { tier: 'prod' } },
      ],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('a plain directory holding a kustomization subdirectory renders it with Kustomize', async () => {
    const routes = await get('stg-2', ['-n', 'shop', 'get', 'cm', 'edge-routes']);
    assert.equal(routes.data.host, 'shop.example');
    assert.equal((await get('stg-2', ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 2);
  });

  test('an app selected by label reaches exactly the matching clusters, each environment its own content', async () => {
    assert.equal((await get('stg-1', ['-n', 'monitoring', 'get', 'cm', 'agent'])).data.version, '2');
    assert.equal((await get('prod-1', ['-n', 'monitoring', 'get', 'cm', 'agent'])).data.version, '1');
    await absent('stg-2', ['namespace', 'monitoring']);
    const agent = await get('stg-1', ['-n', 'monitoring', 'get', 'cm', 'agent']);
    assert.equal(agent.metadata.annotations['flotilla.dev/source'], 'app/monitoring');

    type Detail = { resources: { kind: string; name: string; source: string }[] };
    const shown = await fleet.flotillaJson<Detail>('cluster', 'show', 'stg-1');
    const sourceOf = (kind: string, name: string) =>
      shown.resources.find((r) => r.kind === kind && r.name === name)?.source;
    assert.equal(sourceOf('ConfigMap', 'agent'), 'app/monitoring');
    assert.equal(sourceOf('Deployment', 'web'), 'env/staging');
    const onlyApp = await fleet.flotillaJson<Detail>(
      'cluster',
      'show',
      'stg-1',
      '--source',
      'app/monitoring',
    );
    assert.deepEqual(onlyApp.resources.map((r) => `${r.kind}/${r.name}`).sort(), [
      'ConfigMap/agent',
      'Namespace/monitoring',
    ]);
    const human = await fleet.flotilla('cluster', 'show', 'stg-1');
    assert.match(human.stdout, /ConfigMap monitoring\/agent\s+app\/monitoring\s+Synced/);

    // staging does not heal: an edit by hand stays as drift, shown with its source.
    await kubectlEdit(kube('stg-1'), ['-n', 'monitoring', 'cm', 'agent'], 's/version: "2"/version: "hand"/');
    type Drift = { drift: { cluster: string; source: string; name: string }[] };
    await eventually(
      async () => {
        const d = await fleet.flotillaJson<Drift>('fleet', 'drift', '--source', 'app/monitoring');
        assert.deepEqual(
          d.drift.map((r) => [r.cluster, r.source, r.name]),
          [['stg-1', 'app/monitoring', 'agent']],
          JSON.stringify(d),
        );
      },
      { timeoutMs: 60_000, message: 'the drift of the app’s object, with its source' },
    );
    const envOnly = await fleet.flotillaJson<Drift>('fleet', 'drift', '--source', 'env/staging');
    assert.deepEqual(envOnly.drift, []);
    await kubectlEdit(kube('stg-1'), ['-n', 'monitoring', 'cm', 'agent'], 's/version: "hand"/version: "2"/');
  });

  test('a cluster labelled into a group gets its content at once, and unlabelled loses it (pruned)', async () => {
    await absent('prod-1', ['-n', 'shop', 'cm', 'gpu-settings']);
    const r = await fleet.flotilla('cluster', 'label', 'prod-1', 'gpu=true');
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      async () =>
        assert.equal((await get('prod-1', ['-n', 'shop', 'get', 'cm', 'gpu-settings'])).data.driver, '550'),
      { timeoutMs: 60_000, message: 'prod-1 gets the gpu group’s content' },
    );
    assert.equal(
      (await get('prod-1', ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas,
      2,
      'on the base',
    );
    const selected = await fleet.flotillaJson<{ clusters: { name: string }[] }>(
      'cluster',
      'list',
      '--selector',
      'tier in (prod),gpu=true',
    );
    assert.deepEqual(
      selected.clusters.map((c) => c.name),
      ['prod-1'],
    );
    assert.equal((await fleet.flotilla('cluster', 'label', 'prod-1', 'gpu-')).code, 0);
    await eventually(async () => absent('prod-1', ['-n', 'shop', 'cm', 'gpu-settings']), {
      timeoutMs: 60_000,
      message: 'the gpu group’s object is pruned once prod-1 leaves it',
    });
    type Audit = { audit: { action: string; detail: string }[] };
    const audit = await fleet.flotillaJson<Audit>('audit', '--cluster', 'prod-1');
    assert.deepEqual(
      audit.audit.filter((a) => a.action === 'cluster.label').map((a) => a.detail),
      ['-gpu (was true)', '+gpu=true'],
    );
  });

  test('the app is promoted with its environment', async () => {
    await fleet.work.commit(monitoring('staging', '3'), 'monitoring 3 on staging');
    await fleet.poke();
    const rev = (await fleet.work.git('rev-parse', 'HEAD')).trim();
    await eventually(
      async () =>
        assert.equal((await get('stg-1', ['-n', 'monitoring', 'get', 'cm', 'agent'])).data.version, '3'),
      { timeoutMs: 60_000, message: 'staging runs monitoring 3' },
    );
    // stg-2 does not run the app: its bundle stays at the earlier revision, and still the
    // hub knows its render at this commit is what it runs, so the promotion is not refused.
    await fleet.waitSynced(['stg-1', 'stg-2'], { revision: { 'stg-1': rev } });
    const p = await fleet.flotilla('promote', 'staging', 'prod');
    assert.equal(p.code, 0, p.stderr);
    await eventually(
      async () =>
        assert.equal((await get('prod-1', ['-n', 'monitoring', 'get', 'cm', 'agent'])).data.version, '3'),
      { timeoutMs: 60_000, message: 'prod runs monitoring 3 after the promotion' },
    );
  });

  test('a cluster whose label no longer matches loses the app: its objects are pruned', async () => {
    assert.equal((await fleet.flotilla('cluster', 'label', 'stg-1', 'tier-')).code, 0);
    await eventually(async () => absent('stg-1', ['-n', 'monitoring', 'cm', 'agent']), {
      timeoutMs: 60_000,
      message: 'stg-1 left the app',
    });
    assert.equal((await get('stg-1', ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 2);
    assert.equal((await fleet.flotilla('cluster', 'label', 'stg-1', 'tier=prod')).code, 0);
    await eventually(
      async () =>
        assert.equal((await get('stg-1', ['-n', 'monitoring', 'get', 'cm', 'agent'])).data.version, '3'),
      { timeoutMs: 60_000, message: 'stg-1 is back in the app' },
    );
  });

  test('one object from two sources is refused, naming both; the clusters keep their last good bundle', async () => {
    const [before] = await fleet.waitSynced(['stg-1']).then((rows) => rows.filter((c) => c.name === 'stg-1'));
    await fleet.work.commit(
      { 'environments/staging/agent.yaml': configMap('agent', 'monitoring', { version: 'env' }) },
      'staging: the agent settings as the environment’s too',
    );
    await fleet.poke();
    await eventually(
      async () => {
        const row = (await fleet.fleetStatus()).find((c) => c.name === 'stg-1')!;
        assert.match(
          row.error ?? '',
          /v1 ConfigMap monitoring\/agent: rendered by both environment staging \(environments\/staging\) and app monitoring \(apps\/monitoring\/staging\)/,
          JSON.stringify(row),
        );
      },
      { timeoutMs: 60_000, message: 'the render error names both sources' },
    );
    const rows = await fleet.fleetStatus();
    const row = rows.find((c) => c.name === 'stg-1')!;
    assert.equal(row.generation, before!.generation, 'stg-1 keeps its last good bundle');
    assert.equal((await get('stg-1', ['-n', 'monitoring', 'get', 'cm', 'agent'])).data.version, '3');
    // stg-2 does not run the app: for it the object has one source.
    assert.doesNotMatch(rows.find((c) => c.name === 'stg-2')!.error ?? '', /rendered by both/);
  });
});
