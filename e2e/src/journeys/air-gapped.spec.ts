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
    const file = await exportBundle(join(fleet.baseDir, 'edge-1.bundle'));
    const r = await fleet.agent('edge-1', 'import', file);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const d = await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web']);
    assert.equal(d.spec.replicas, 2);
  });

  test('status exported by the agent and imported on the hub appears in the fleet view, marked as imported', async () => {
    // Someone on site scales by hand; with no agent running nothing heals it, and the export says so.
    await kubectl(kubeconfig, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=6']);
    const file = join(fleet.baseDir, 'edge-1.status');
    const r = await fleet.agent('edge-1', 'status', 'export', '-o', file);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const imp = await fleet.flotilla('status', 'import', file);
    assert.equal(imp.code, 0, imp.stderr);
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
    // Re-applying on site (the import of the same bundle) heals it.
    await kubectl(kubeconfig, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=2']);
    // Importing the same file twice stores nothing twice.
    const again = await fleet.flotilla('status', 'import', file);
    assert.equal(again.code, 0, again.stderr);
  });

  test('a tampered bundle file is refused and nothing is applied', async () => {
    const file = await exportBundle(join(fleet.baseDir, 'edge-1.tampered'));
    const env = JSON.parse(readFileSync(file, 'utf8'));
    const bundle = JSON.parse(Buffer.from(env.payload, 'base64').toString());
    bundle.generation += 10;
    env.payload = Buffer.from(JSON.stringify(bundle)).toString('base64');
    writeFileSync(file, JSON.stringify(env));
    const r = await fleet.agent('edge-1', 'import', file);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /signature/i);
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
