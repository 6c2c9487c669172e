import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, ErrorCode } from 'nats';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { type LeafNatsServer, startLeafNatsServer } from '../harness/nats.js';
import { kubectl, kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - {name: edge, path: environments/edge}
  - {name: core, path: environments/core}
`;

/**
 * Journey 4, for sites that connect now and then: the site runs its own nats-server as a
 * leaf node of the hub's, connecting out with the agent's own NATS user; the agent talks
 * only to the local leaf server and reaches the bundle stream in the hub's JetStream domain.
 */
describe('a NATS leaf node site: bundles through the leaf, enforcing while the link is down', {
  timeout: 300_000,
}, () => {
  let fleet: Fleet;
  let leaf: LeafNatsServer;
  let kubeconfig: string;
  let inboxPrefix: string;

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('edge'), ...appFiles('core') },
      clusters: [
        { name: 'site-1', environment: 'edge' },
        { name: 'core-1', environment: 'core' },
      ],
      startAgents: false,
      nats: { jsDomain: 'hub', leafnodes: true },
    });
    await fleet.joinAgent('site-1');
    const site = fleet.clusters.get('site-1')!;
    kubeconfig = site.kubeconfig;
    // The leaf's credentials are the agent's own NATS user, from the identity stored at join.
    const identity = JSON.parse(readFileSync(join(site.stateDir, 'identity.json'), 'utf8'));
    inboxPrefix = identity.nats.inboxPrefix;
    const creds = join(fleet.baseDir, 'site-1.creds');
    writeFileSync(
      creds,
      `-----BEGIN NATS USER JWT-----\n${identity.nats.jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${identity.nats.seed}\n------END USER NKEY SEED------\n`,
      { mode: 0o600 },
    );
    leaf = await startLeafNatsServer({ remoteUrl: fleet.nats.leafUrl!, credentials: creds });
    await fleet.startAgent('site-1', ['--nats-url', leaf.url, '--nats-domain', 'hub']);
  });
  after(async () => {
    await leaf?.stop();
    await fleet?.stop();
  });

  test('the agent gets its bundle through the leaf server and converges', async () => {
    await fleet.waitSynced(['site-1']);
    assert.equal((await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 2);
  });

  test("through the leaf, another cluster's bundle is out of reach", async () => {
    // A local client of the leaf, with the agent's inbox prefix (replies cross the link only there).
    const nc = await connect({ servers: leaf.url, inboxPrefix });
    try {
      // No responders: the leaf never carries the request across, as the link's user may not
      // publish it; any other failure (a timeout, a closed connection) is not this promise.
      await assert.rejects(
        nc.request('$JS.hub.API.DIRECT.GET.BUNDLES.bundles.core-1', new Uint8Array(), { timeout: 2000 }),
        { code: ErrorCode.NoResponders },
        "core-1's bundle must not answer through site-1's leaf",
      );
      const own = await nc.request('$JS.hub.API.DIRECT.GET.BUNDLES.bundles.site-1', new Uint8Array(), {
        timeout: 5000,
      });
      assert.ok(own.data.length > 0, "site-1's own head answers");
    } finally {
      await nc.close();
    }
  });

  test('with the link down the agent keeps enforcing and healing; when it returns, a new commit arrives', async () => {
    await fleet.nats.process.stop();
    await kubectl(kubeconfig, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=9']);
    await eventually(
      async () =>
        assert.equal(
          (await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas,
          2,
          'healed from the stored bundle with the link down',
        ),
      { timeoutMs: 30_000 },
    );
    await fleet.nats.restart();
    const rev = await fleet.work.commit(appFiles('edge', { replicas: 4 }), 'edge: 4 replicas');
    await fleet.poke();
    await fleet.waitSynced(['site-1'], { revision: { 'site-1': rev }, timeoutMs: 90_000 });
    assert.equal((await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 4);
  });
});
