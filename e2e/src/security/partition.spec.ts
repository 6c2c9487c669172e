import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { kubectlJson } from '../journeys/kubectl.js';

/** Three ConfigMaps of ~900 KB of incompressible data: a bundle of several transport chunks. */
function bigFiles(seed: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const i of [1, 2, 3]) {
    files[`environments/dev/big-${i}.yaml`] = `apiVersion: v1
kind: ConfigMap
metadata: {name: big-${i}, namespace: shop}
data:
  seed: "${seed}"
  blob: "${randomBytes(660 * 1024).toString('base64')}"
`;
  }
  return files;
}

/**
 * Faults row: a partition in the middle of a chunked bundle. The agent reaches NATS through a
 * TCP proxy that cuts every connection once part of the new bundle has crossed, and refuses
 * connections for a while: nothing half-read is applied, and the bundle arrives once the
 * network heals.
 */
describe('fault: a partition in the middle of a chunked bundle', { timeout: 300_000 }, () => {
  let fleet: Fleet;
  let proxy: TcpProxy;

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': 'environments:\n  - {name: dev, path: environments/dev}\n',
        ...appFiles('dev'),
      },
      clusters: [{ name: 'dev-1', environment: 'dev' }],
      startAgents: false,
    });
    await fleet.joinAgent('dev-1');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: fleet.nats.port });
    await fleet.startAgent('dev-1', ['--nats-url', `nats://${proxy.address}`]);
    await fleet.waitSynced();
  });
  after(async () => {
    await fleet?.stop();
    await proxy?.close();
  });

  test('cut after the first chunk: nothing half-read is applied, and the bundle arrives once the network heals', async () => {
    const kube = fleet.clusters.get('dev-1')!.kubeconfig;
    const before = (await fleet.fleetStatus()).find((r) => r.name === 'dev-1')!;
    const partitioned = proxy.partitionAfter(1024 * 1024);
    const rev = await fleet.work.commit(bigFiles('v1'), 'dev: three big ConfigMaps');
    await fleet.poke();
    await partitioned;
    // While partitioned: still the old generation, and none of the new objects.
    await new Promise((r) => setTimeout(r, 3000));
    const during = (await fleet.fleetStatus()).find((r) => r.name === 'dev-1')!;
    assert.equal(during.generation, before.generation, 'nothing of the cut bundle was applied');
    await assert.rejects(kubectlJson(kube, ['-n', 'shop', 'get', 'cm', 'big-1']), /NotFound|not found/);

    proxy.up();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev }, timeoutMs: 90_000 });
    for (const i of [1, 2, 3]) {
      const cm = await kubectlJson(kube, ['-n', 'shop', 'get', 'cm', `big-${i}`]);
      assert.equal(cm.data.seed, 'v1');
    }
    const after = (await fleet.fleetStatus()).find((r) => r.name === 'dev-1')!;
    assert.equal(after.error, null, 'no refusal left behind');
  });
});
