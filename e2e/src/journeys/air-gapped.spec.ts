import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - name: edge
    path: environments/edge
pipeline: [edge]
`;

/** Journey 4: a cluster with no network path to the hub or NATS, served by files carried by hand. */
describe('air-gapped cluster: bundle carried in, status carried out', { timeout: 300_000 }, () => {
  let fleet: Fleet;
  let kubeconfig: string;
  /** The bundle file the first test imports: the one applied on site until a newer arrives. */
  let appliedFile: string;
  const web = () => kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web']);

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('edge') },
      clusters: [{ name: 'edge-1', environment: 'edge', labels: { site: 'ship' } }],
      startAgents: false,
    });
    // Joined once while connected (at install); from then on the agent never reaches the hub.
    await fleet.joinAgent('edge-1');
    kubeconfig = fleet.clusters.get('edge-1')!.kubeconfig;
  });
  after(() => fleet?.stop());

  const exportBundle = async (file: string) => {
    await eventually(
      async () => {
        const r = await fleet.flotilla('bundle', 'export', '--cluster', 'edge-1', '-o', file);
        assert.equal(r.code, 0, r.stderr);
      },
      { timeoutMs: 30_000 },
    );
    return file;
  };

  test('an exported bundle imported by hand is verified and applied', async () => {
    appliedFile = await exportBundle(join(fleet.baseDir, 'edge-1.bundle'));
    const r = await fleet.agent('edge-1', 'import', appliedFile);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal((await web()).spec.replicas, 2);
  });

  test('status exported by the agent and imported on the hub appears in the fleet view, marked as imported', async () => {
    // Someone on site scales by hand; with no agent running nothing heals it, and the export says so.
    await kubectl(kubeconfig, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=6']);
    const file = join(fleet.baseDir, 'edge-1.status');
    const r = await fleet.agent('edge-1', 'status', 'export', '-o', file);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    type Imported = { cluster: string; stored: number; duplicates: number };
    const imp = await fleet.flotillaJson<Imported>('status', 'import', file);
    assert.equal(imp.cluster, 'edge-1');
    assert.ok(imp.stored > 0, JSON.stringify(imp));
    assert.equal(imp.duplicates, 0, JSON.stringify(imp));
    const row = (await fleet.fleetStatus()).find((c) => c.name === 'edge-1')!;
    assert.equal(row.generation, 1);
    assert.equal(row.reportedVia, 'import');
    assert.ok(row.reportedAt, 'marked with when it was reported');
    const drift = await fleet.flotillaJson<{ drift: { cluster: string; field: string; live: string }[] }>(
      'fleet',
      'drift',
    );
    assert.ok(
      drift.drift.some(
        (d) => d.cluster === 'edge-1' && d.field === 'spec.replicas' && JSON.parse(d.live) === 6,
      ),
      JSON.stringify(drift.drift),
    );
    // Importing the same file twice stores nothing twice.
    const again = await fleet.flotillaJson<Imported>('status', 'import', file);
    assert.deepEqual(again, { ...imp, stored: 0, duplicates: imp.stored });
  });

  test('importing the applied bundle file again heals drift made on site', async () => {
    // The scale of the previous test is still there: no agent runs, nothing healed it.
    assert.equal((await web()).spec.replicas, 6);
    const r = await fleet.agent('edge-1', 'import', appliedFile);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /imported: generation 1 /);
    assert.equal((await web()).spec.replicas, 2, 'the re-import put the bundle back');
  });

  test('a tampered bundle file is refused and nothing is applied', async () => {
    const file = await exportBundle(join(fleet.baseDir, 'edge-1.tampered'));
    const env = JSON.parse(readFileSync(file, 'utf8'));
    const bundle = JSON.parse(Buffer.from(env.payload, 'base64').toString());
    bundle.generation += 10;
    // Content an apply would show: more replicas, other config.
    for (const o of bundle.objects) {
      if (o.kind === 'Deployment') o.spec.replicas = 9;
      if (o.kind === 'ConfigMap') o.data.LOG_LEVEL = 'tampered';
    }
    env.payload = Buffer.from(JSON.stringify(bundle)).toString('base64');
    writeFileSync(file, JSON.stringify(env));
    // Spec writes bump a Deployment's generation (status writes of the test server's
    // controller do not); nothing but an apply writes the ConfigMap.
    const configMap = () => kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'cm', 'web-config']);
    const before = { deployment: await web(), configMap: await configMap() };
    const r = await fleet.agent('edge-1', 'import', file);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /bundle refused \(bad-signature\)/);
    const after = { deployment: await web(), configMap: await configMap() };
    assert.equal(after.deployment.metadata.generation, before.deployment.metadata.generation);
    assert.equal(after.deployment.spec.replicas, 2);
    assert.equal(after.configMap.metadata.resourceVersion, before.configMap.metadata.resourceVersion);
    assert.equal(after.configMap.data.LOG_LEVEL, before.configMap.data.LOG_LEVEL);
  });

  test('an older bundle file is refused once a newer one is applied', async () => {
    const old = await exportBundle(join(fleet.baseDir, 'edge-1.gen1'));
    await fleet.work.commit(appFiles('edge', { replicas: 4 }), 'edge: 4 replicas');
    await fleet.poke();
    const newer = join(fleet.baseDir, 'edge-1.gen2');
    await eventually(
      async () => {
        const r = await fleet.flotilla('bundle', 'export', '--cluster', 'edge-1', '-o', newer);
        assert.equal(r.code, 0, r.stderr);
        const env = JSON.parse(readFileSync(newer, 'utf8'));
        assert.equal(JSON.parse(Buffer.from(env.payload, 'base64').toString()).generation, 2);
      },
      { timeoutMs: 30_000 },
    );
    const r1 = await fleet.agent('edge-1', 'import', newer);
    assert.equal(r1.code, 0, r1.stderr + r1.stdout);
    assert.equal((await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 4);
    const r2 = await fleet.agent('edge-1', 'import', old);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr + r2.stdout, /not newer|stale/i);
    assert.equal((await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 4);
  });
});
