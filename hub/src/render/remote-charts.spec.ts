import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ChartFiles,
  type ChartRepository,
  type GitServer,
  type OciRegistry,
  startChartRepository,
  startGitServer,
  startOciRegistry,
} from '@flotilla/e2e/harness';
import { createChartStore } from '../charts/chart-store.js';
import { parseFleetConfig, selectApps, selectTarget } from '../config/index.js';
import type { Database } from '../db/database.js';
import { openTestDatabase } from '../db/testing.js';
import { createRenderer, SOURCE_ANNOTATION } from './index.js';
import { cluster, fetchedSource } from './test-support.js';

const settings = (name: string): ChartFiles => ({
  name,
  version: '1.0.0',
  values: 'region: none\nreplicas: 1\n',
  templates: {
    'cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}-{{ .Release.Name }}\n  namespace: shop\ndata:\n  region: "{{ .Values.region }}"\n  replicas: "{{ .Values.replicas }}"\n`,
  },
});

const FLOTILLA = `environments:
  - name: prod
    path: envs/prod
    targets:
      - name: eu
        selector: "region=eu"
        values: [values-eu.yaml]
apps:
  - name: web
    selector: {}
pipeline: [prod]
`;

const NO_APPS = FLOTILLA.replace(/apps:\n(?: {2}.*\n)+/, '');

describe('charts from Helm repositories and OCI registries, rendered on the hub', {
  timeout: 180_000,
}, () => {
  let git: GitServer;
  let repo: ChartRepository;
  let registry: OciRegistry;
  let database: Database;
  const cleanups: (() => void)[] = [];

  before(async () => {
    [git, repo, registry, database] = await Promise.all([
      startGitServer(),
      startChartRepository(),
      startOciRegistry(),
      openTestDatabase('pglite'),
    ]);
    await repo.publish(settings('settings'));
    await registry.push(settings('web'));
    await registry.push({
      name: 'spy',
      version: '1.0.0',
      templates: { 'cm.yaml': '{{ $s := lookup "v1" "Secret" "kube-system" "x" }}\n' },
    });
  });
  after(async () => {
    await Promise.all([git?.stop(), repo?.stop(), registry?.stop(), database?.close()]);
    for (const c of cleanups) c();
  });

  async function setup(files: Record<string, string>, config = FLOTILLA) {
    const name = `c${Math.random().toString(36).slice(2, 10)}`;
    await git.createRepo(name, { 'flotilla.yaml': config, ...files });
    const { source, workDir, cleanup } = await fetchedSource(`${git.url}/${name}.git`);
    cleanups.push(cleanup);
    const cacheDir = mkdtempSync(join(tmpdir(), 'flotilla-chart-cache-'));
    cleanups.push(() => rmSync(cacheDir, { recursive: true, force: true }));
    const charts = createChartStore({ db: database.db, cacheDir });
    const renderer = createRenderer({ source, workDir, charts });
    const commit = await source.resolveBranch('main');
    const fleet = parseFleetConfig(config);
    const env = fleet.environments[0]!;
    return (name: string, labels: Record<string, string> = {}) => {
      const c = cluster(name, env.name, labels);
      return renderer.render(commit, env, c, {
        target: selectTarget(env.targets, c),
        apps: selectApps(fleet.apps, c),
        environments: ['prod'],
      });
    };
  }

  const data = (objects: { metadata: { name?: string }; data?: unknown }[]) =>
    Object.fromEntries(objects.map((o) => [o.metadata.name, o.data]));

  it("renders a repository's chart with the directory's values, values-<env>.yaml and the target's, and an app's chart from a registry", async () => {
    const render = await setup({
      'envs/prod/flotilla-chart.yaml': `repository: ${repo.url}\nchart: settings\nversion: 1.0.0\nreleaseName: shop\n`,
      'envs/prod/values.yaml': 'replicas: 2\n',
      'envs/prod/values-prod.yaml': 'replicas: 3\n',
      'envs/prod/values-eu.yaml': 'region: eu\n',
      'apps/web/flotilla-chart.yaml': `repository: ${registry.url}\nchart: web\nversion: 1.0.0\n`,
      'apps/web/values-prod.yaml': `region: ${'$'}{cluster.labels.region}\n`,
    });
    const eu = await render('prod-eu', { region: 'eu' });
    assert.equal(eu.renderer, 'helm');
    assert.deepEqual(data(eu.objects), {
      'settings-shop': { region: 'eu', replicas: '3' },
      'web-web': { region: 'eu', replicas: '1' },
    });
    assert.equal(
      eu.objects.find((o) => o.metadata.name === 'web-web')?.metadata.annotations?.[SOURCE_ANNOTATION],
      'app/web',
    );
    const us = await render('prod-us', { region: 'us' });
    assert.deepEqual(data(us.objects)['settings-shop'], { region: 'none', replicas: '3' });
    assert.deepEqual(data(us.objects)['web-web'], { region: 'us', replicas: '1' });
  });

  it('renders an umbrella chart in git whose Chart.lock pins a dependency from a repository', async () => {
    const render = await setup(
      {
        'envs/prod/Chart.yaml': `apiVersion: v2\nname: umbrella\nversion: 0.1.0\ndependencies:\n  - name: settings\n    version: ">=1.0.0"\n    repository: ${repo.url}\n`,
        'envs/prod/Chart.lock': `dependencies:\n  - name: settings\n    repository: ${repo.url}\n    version: 1.0.0\ndigest: sha256:0000000000000000000000000000000000000000000000000000000000000000\ngenerated: "2026-01-01T00:00:00Z"\n`,
        'envs/prod/values.yaml': 'settings:\n  region: umbrella\n',
        'envs/prod/templates/own.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\n  namespace: shop\ndata: {}\n',
      },
      NO_APPS,
    );
    const out = await render('prod-1');
    assert.deepEqual(Object.keys(data(out.objects)).sort(), ['own', 'settings-umbrella']);
    assert.deepEqual(data(out.objects)['settings-umbrella'], { region: 'umbrella', replicas: '1' });
  });

  it("renders a chart reference nested in a plain directory, and refuses a fetched chart's lookup", async () => {
    const render = await setup(
      {
        'envs/prod/plain.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n  namespace: shop\ndata: {}\n',
        'envs/prod/settings/flotilla-chart.yaml': `repository: ${repo.url}\nchart: settings\nversion: 1.0.0\n`,
      },
      NO_APPS,
    );
    assert.deepEqual(Object.keys(data((await render('prod-1')).objects)).sort(), [
      'plain',
      'settings-settings',
    ]);
    const spy = await setup(
      { 'envs/prod/flotilla-chart.yaml': `repository: ${registry.url}\nchart: spy\nversion: 1.0.0\n` },
      NO_APPS,
    );
    await assert.rejects(spy('prod-1'), /spy\/templates\/cm\.yaml:1: the helm lookup function is refused/);
  });

  it('names file, line and field of a bad chart reference', async () => {
    const render = await setup(
      { 'envs/prod/flotilla-chart.yaml': `repository: ${repo.url}\nchart: settings\nversion: ^1.0.0\n` },
      NO_APPS,
    );
    await assert.rejects(
      render('prod-1'),
      /^RenderError: envs\/prod\/flotilla-chart\.yaml:3: version: must be an exact version/,
    );
  });
});
