import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import { parseFleetConfig, selectApps, selectTarget } from '../config/index.js';
import { createRenderer, SOURCE_ANNOTATION } from './index.js';
import { cluster, fetchedSource } from './test-support.js';

const cm = (name: string, data = 'k: v', ns = 'shop') =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata:\n  ${data}\n`;

const FLOTILLA = `environments:
  - name: staging
    path: envs/staging
  - name: prod
    path: envs/prod
    targets:
      - name: gpu
        selector: {matchLabels: {gpu: "true"}}
        path: targets/gpu
      - name: eu
        selector: "region in (eu)"
        values: [values-eu.yaml]
apps:
  - name: monitoring
    selector: {matchLabels: {tier: prod}}
  - name: policies
    selector: {}
    environments: [prod]
pipeline: [staging, prod]
`;

/** The same file without its apps. */
const NO_APPS = FLOTILLA.replace(/apps:\n(?: {2}.*\n)+/, '');

const CHART = {
  'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
  'charts/web/values.yaml': 'region: none\nreplicas: 1\n',
  'charts/web/templates/cm.yaml':
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chart-{{ .Values.region }}\n  namespace: shop\ndata:\n  replicas: "{{ .Values.replicas }}"\n',
};

describe('rendering with targets and fleet-wide apps', () => {
  let server: GitServer;
  const cleanups: (() => void)[] = [];
  before(async () => {
    server = await startGitServer();
  });
  after(async () => {
    await server.stop();
    for (const c of cleanups) c();
  });

  async function setup(files: Record<string, string>, config = FLOTILLA) {
    const name = `t${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, { 'flotilla.yaml': config, ...files });
    const { source, workDir, cleanup } = await fetchedSource(`${server.url}/${name}.git`);
    cleanups.push(cleanup);
    const commit = await source.resolveBranch('main');
    const fleet = parseFleetConfig(config);
    const renderer = createRenderer({ source, workDir });
    /** Renders `name` in `envName` with `labels`, choosing target and apps as the publish loop does. */
    const renderFor = (envName: string, name: string, labels: Record<string, string> = {}) => {
      const env = fleet.environments.find((e) => e.name === envName)!;
      const c = cluster(name, envName, labels);
      const targeting = {
        target: selectTarget(env.targets, c),
        apps: selectApps(fleet.apps, c),
        environments: fleet.environments.map((e) => e.name),
      };
      return { env, c, targeting, render: () => renderer.render(commit, env, c, targeting) };
    };
    return { renderFor, renderer, commit };
  }

  const names = (objects: { metadata: { name?: string } }[]) => objects.map((o) => o.metadata.name).sort();

  it("renders the first matching target's directory; the environment's own render leaves targets/ and clusters/ out", async () => {
    const { renderFor } = await setup(
      {
        'envs/prod/base/kustomization.yaml': 'resources: [base.yaml]\n',
        'envs/prod/base/base.yaml': cm('base'),
        'envs/prod/targets/gpu/kustomization.yaml': 'resources: [../../base, gpu.yaml]\n',
        'envs/prod/targets/gpu/gpu.yaml': cm('gpu-settings'),
        'envs/prod/clusters/prod-own/own.yaml': cm('own'),
      },
      NO_APPS,
    );
    const gpu = await renderFor('prod', 'prod-1', { gpu: 'true', region: 'eu' }).render();
    assert.equal(gpu.path, 'envs/prod/targets/gpu');
    assert.equal(gpu.renderer, 'kustomize');
    assert.deepEqual(names(gpu.objects), ['base', 'gpu-settings']);
    const plain = await renderFor('prod', 'prod-2', { gpu: 'false' }).render();
    assert.equal(plain.path, 'envs/prod');
    assert.deepEqual(
      names(plain.objects),
      ['base'],
      'targets/ and clusters/ are not the environment’s content',
    );
    const own = await renderFor('prod', 'prod-own', { gpu: 'true' }).render();
    assert.equal(own.path, 'envs/prod/clusters/prod-own', "a cluster's own directory beats its target");
  });

  it("adds a target's Helm values files after values-<env>.yaml", async () => {
    const { renderFor } = await setup(
      {
        'envs/prod/Chart.yaml': CHART['charts/web/Chart.yaml'],
        'envs/prod/values.yaml': 'region: none\nreplicas: 1\n',
        'envs/prod/values-prod.yaml': 'replicas: 3\n',
        'envs/prod/values-eu.yaml': 'region: eu\n',
        'envs/prod/templates/cm.yaml': CHART['charts/web/templates/cm.yaml'],
      },
      NO_APPS.replace(/ {6}- name: gpu\n.*\n.*\n/, ''),
    );
    const eu = await renderFor('prod', 'prod-eu', { region: 'eu' }).render();
    assert.deepEqual(
      eu.objects.map((o) => [o.metadata.name, (o.data as Record<string, string>).replicas]),
      [['chart-eu', '3']],
    );
    const other = await renderFor('prod', 'prod-us', { region: 'us' }).render();
    assert.deepEqual(names(other.objects), ['chart-none']);
  });

  it('refuses target values where nothing renders a chart, and a missing target directory, naming them', async () => {
    const { renderFor } = await setup({ 'envs/prod/base.yaml': cm('base') }, NO_APPS);
    await assert.rejects(
      renderFor('prod', 'prod-eu', { region: 'eu' }).render(),
      /^RenderError: envs\/prod: target eu of environment prod: values \(values-eu\.yaml\) apply to a Helm chart, and this directory renders none/,
    );
    await assert.rejects(
      renderFor('prod', 'prod-gpu', { gpu: 'true' }).render(),
      /^RenderError: envs\/prod\/targets\/gpu: target gpu of environment prod: directory not found at [0-9a-f]{12}/,
    );
  });

  it("renders an app's per-environment directory when it has one, else its shared one without the other environments' directories", async () => {
    const { renderFor } = await setup({
      'envs/staging/app.yaml': cm('web'),
      'envs/prod/app.yaml': cm('web'),
      'apps/monitoring/agent.yaml': cm('agent', 'k: shared', 'monitoring'),
      'apps/monitoring/prod/agent.yaml': cm('agent', 'k: prod', 'monitoring'),
      'apps/policies/policy.yaml': cm('policy', 'k: v', 'kube-system'),
    });
    const staging = await renderFor('staging', 'stg-1', { tier: 'prod' }).render();
    assert.deepEqual(
      staging.units.map((u) => [u.source, u.path, u.objects]),
      [
        ['env/staging', 'envs/staging', 1],
        ['app/monitoring', 'apps/monitoring', 1],
      ],
    );
    const agent = staging.objects.find((o) => o.metadata.name === 'agent')!;
    assert.equal(
      (agent.data as Record<string, string>).k,
      'shared',
      'apps/monitoring/prod is not staging content',
    );
    assert.equal(agent.metadata.annotations?.[SOURCE_ANNOTATION], 'app/monitoring');
    assert.deepEqual(staging.sources, { '/ConfigMap/monitoring/agent': 'app/monitoring' });
    const web = staging.objects.find((o) => o.metadata.name === 'web')!;
    assert.equal(web.metadata.annotations, undefined, "the environment's objects are left as written");

    const prod = await renderFor('prod', 'prod-1', { tier: 'prod' }).render();
    assert.equal(
      (prod.objects.find((o) => o.metadata.name === 'agent')!.data as Record<string, string>).k,
      'prod',
    );
    assert.deepEqual(prod.sources, {
      '/ConfigMap/monitoring/agent': 'app/monitoring',
      '/ConfigMap/kube-system/policy': 'app/policies',
    });
    const unlabelled = await renderFor('prod', 'prod-2').render();
    assert.deepEqual(names(unlabelled.objects), ['policy', 'web']);
    assert.notEqual(unlabelled.inputKey, prod.inputKey, 'the apps chosen are part of the input key');
  });

  it('refuses one object rendered by two sources, naming both', async () => {
    const { renderFor } = await setup({
      'envs/prod/app.yaml': cm('agent', 'k: env', 'monitoring'),
      'apps/monitoring/agent.yaml': cm('agent', 'k: app', 'monitoring'),
      'apps/policies/policy.yaml': cm('policy', 'k: v', 'kube-system'),
    });
    await assert.rejects(
      renderFor('prod', 'prod-1', { tier: 'prod' }).render(),
      /^RenderError: apps\/monitoring: v1 ConfigMap monitoring\/agent: rendered by both environment prod \(envs\/prod\) and app monitoring \(apps\/monitoring\); an object must come from one source$/,
    );
    // Without the app, the same repository renders.
    assert.equal((await renderFor('prod', 'prod-2').render()).objects.length, 2);
  });

  it("refuses the environment's own object claiming an app as its source", async () => {
    const { renderFor } = await setup({
      'envs/staging/app.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  annotations: {${SOURCE_ANNOTATION}: app/monitoring}\n`,
    });
    await assert.rejects(
      renderFor('staging', 'stg-1').render(),
      /^RenderError: envs\/staging: v1 ConfigMap sneaky: metadata\.annotations\.flotilla\.dev\/source is set by Flotilla/,
    );
  });

  it("refuses an app whose directory is missing at the environment's revision", async () => {
    const { renderFor } = await setup({ 'envs/staging/app.yaml': cm('web') });
    await assert.rejects(
      renderFor('staging', 'stg-1', { tier: 'prod' }).render(),
      /^RenderError: apps\/monitoring: app monitoring: directory not found at [0-9a-f]{12} \(the revision environment staging renders\)/,
    );
  });

  it('renders a kustomization and a chart nested in a plain directory with their own tools', async () => {
    const { renderFor } = await setup({
      'envs/staging/plain.yaml': cm('plain'),
      'envs/staging/kustomization.yaml/README.md': 'a directory named like a file is just a directory\n',
      'envs/staging/ingress/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: k-\nresources: [cm.yaml]\n',
      'envs/staging/ingress/cm.yaml': cm('ingress'),
      'envs/staging/deep/er/web/Chart.yaml': CHART['charts/web/Chart.yaml'],
      'envs/staging/deep/er/web/values.yaml': 'region: nested\nreplicas: 1\n',
      'envs/staging/deep/er/web/values-staging.yaml': 'replicas: 2\n',
      'envs/staging/deep/er/web/templates/cm.yaml': CHART['charts/web/templates/cm.yaml'],
    });
    const out = await renderFor('staging', 'stg-1').render();
    assert.equal(out.renderer, 'plain');
    assert.deepEqual(names(out.objects), ['chart-nested', 'k-ingress', 'plain']);
    assert.equal(
      (out.objects.find((o) => o.metadata.name === 'chart-nested')!.data as Record<string, string>).replicas,
      '2',
      'values-<env>.yaml of the nested chart applies',
    );
  });
});
