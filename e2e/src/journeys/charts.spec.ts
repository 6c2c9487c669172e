import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import {
  type ChartFiles,
  type ChartRepository,
  type OciRegistry,
  startChartRepository,
  startOciRegistry,
} from '../harness/charts.js';
import { eventually } from '../harness/eventually.js';
import { kubectlJson } from './kubectl.js';

/** A chart whose one ConfigMap shows the values it was rendered with. */
const chart = (name: string, version: string, marker = 'v1'): ChartFiles => ({
  name,
  version,
  values: 'region: none\nreplicas: 1\n',
  templates: {
    'namespace.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Release.Name }}\n',
    'cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: {{ .Release.Name }}\ndata:\n  region: "{{ .Values.region }}"\n  replicas: "{{ .Values.replicas }}"\n  marker: ${marker}\n`,
  },
});

/**
 * Journey: charts from a Helm repository and an OCI registry, pinned on the hub and rendered
 * there; agents (an air-gapped one too) get the rendered objects and never fetch a chart.
 */
describe('charts from a Helm repository and an OCI registry', { timeout: 600_000 }, () => {
  let repo: ChartRepository;
  let registry: OciRegistry;
  let fleet: Fleet;
  const data = async (cluster: string, ns: string, name: string) =>
    (await kubectlJson(fleet.clusters.get(cluster)!.kubeconfig, ['-n', ns, 'get', 'cm', name])).data;

  before(async () => {
    repo = await startChartRepository();
    registry = await startOciRegistry();
    await repo.publish(chart('settings', '1.0.0'));
    await registry.push(chart('web', '2.1.0'));
    const flotillaYaml = `environments:
  - name: edge
    path: environments/edge
  - name: prod
    path: environments/prod
    targets:
      - name: eu
        selector: {matchLabels: {region: eu}}
        values: [values-eu.yaml]
apps:
  - name: web
    selector: {}
pipeline: [edge, prod]
`;
    const settingsRef = `repository: ${repo.url}\nchart: settings\nversion: 1.0.0\nreleaseName: platform\n`;
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': flotillaYaml,
        'environments/edge/flotilla-chart.yaml': settingsRef,
        'environments/edge/values-edge.yaml': 'replicas: 1\nregion: ship\n',
        'environments/prod/flotilla-chart.yaml': settingsRef,
        'environments/prod/values-prod.yaml': 'replicas: 3\n',
        'environments/prod/values-eu.yaml': 'region: eu\n',
        'apps/web/flotilla-chart.yaml': `repository: ${registry.url}\nchart: web\nversion: 2.1.0\n`,
        'apps/web/values.yaml': 'replicas: 2\n',
        'apps/web/values-prod.yaml': `region: prod-${'$'}{cluster.labels.region}\n`,
      },
      clusters: [
        { name: 'prod-eu', environment: 'prod', labels: { region: 'eu' } },
        { name: 'prod-us', environment: 'prod', labels: { region: 'us' } },
        { name: 'edge-1', environment: 'edge' },
      ],
      startAgents: false,
    });
    for (const name of ['prod-eu', 'prod-us']) {
      await fleet.joinAgent(name);
      await fleet.startAgent(name);
    }
    // Joined once while connected; from then on edge-1 gets its bundles by hand only.
    await fleet.joinAgent('edge-1');
    await fleet.waitSynced(['prod-eu', 'prod-us']);
  });
  after(async () => {
    await fleet?.stop();
    await repo?.stop();
    await registry?.stop().catch(() => undefined);
  });

  test('a chart from the Helm repository and one from the OCI registry render with per-environment and per-target values', async () => {
    assert.deepEqual(await data('prod-eu', 'platform', 'settings'), {
      region: 'eu',
      replicas: '3',
      marker: 'v1',
    });
    assert.deepEqual(await data('prod-us', 'platform', 'settings'), {
      region: 'none',
      replicas: '3',
      marker: 'v1',
    });
    assert.deepEqual(await data('prod-eu', 'web', 'web'), { region: 'prod-eu', replicas: '2', marker: 'v1' });
    assert.deepEqual(await data('prod-us', 'web', 'web'), { region: 'prod-us', replicas: '2', marker: 'v1' });
    type Detail = { resources: { kind: string; name: string; source: string }[] };
    const shown = await fleet.flotillaJson<Detail>('cluster', 'show', 'prod-eu');
    assert.equal(shown.resources.find((r) => r.name === 'web' && r.kind === 'ConfigMap')?.source, 'app/web');
    assert.equal(shown.resources.find((r) => r.name === 'settings')?.source, 'env/prod');
  });

  test('a chart changed under the same version is refused; the clusters keep their last good bundle', async () => {
    type Row = FleetStatusRow & { desiredGeneration: number | null };
    const before = (await fleet.fleetStatus()).find((c) => c.name === 'prod-eu') as Row;
    await registry.push(chart('web', '2.1.0', 'tampered'));
    // A hub whose cache is gone (a new replica, a lost volume) fetches again and finds other bytes.
    await fleet.stopHub();
    rmSync(join(fleet.hubDataDir, 'charts'), { recursive: true, force: true });
    await fleet.startHub();
    await fleet.poke();
    await eventually(
      async () => {
        const row = (await fleet.fleetStatus()).find((c) => c.name === 'prod-eu')!;
        assert.match(
          row.error ?? '',
          /apps\/web\/flotilla-chart\.yaml: chart web 2\.1\.0 from oci:\/\/127\.0\.0\.1:\d+\/charts: changed under the same version \(pinned sha256:[0-9a-f]{64} at its first fetch, now sha256:[0-9a-f]{64}\); refused/,
          JSON.stringify(row),
        );
      },
      { timeoutMs: 60_000, message: 'the changed chart is refused' },
    );
    const row = (await fleet.fleetStatus()).find((c) => c.name === 'prod-eu') as Row;
    assert.equal(row.desiredGeneration, before.desiredGeneration, 'no new bundle');
    assert.equal((await data('prod-eu', 'web', 'web')).marker, 'v1');
  });

  test('an air-gapped agent receives the rendered result, with no access to the repository or the registry', async () => {
    // Neither is reachable any more; the bundle carried in holds what the hub rendered.
    await repo.stop();
    await registry.stop();
    const file = join(fleet.baseDir, 'edge-1.bundle');
    const exported = await fleet.flotilla('bundle', 'export', '--cluster', 'edge-1', '-o', file);
    assert.equal(exported.code, 0, exported.stderr);
    const imported = await fleet.agent('edge-1', 'import', file);
    assert.equal(imported.code, 0, imported.stderr + imported.stdout);
    assert.deepEqual(await data('edge-1', 'platform', 'settings'), {
      region: 'ship',
      replicas: '1',
      marker: 'v1',
    });
    assert.deepEqual(await data('edge-1', 'web', 'web'), { region: 'none', replicas: '2', marker: 'v1' });
  });
});
