import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bundleChunkSubject,
  bundleSubject,
  notifySubject,
  packForTransport,
  publishBundle,
} from '@flotilla/shared';
import type { NatsConnection } from 'nats';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from '../journeys/kubectl.js';
import { connectAsHub, peekBundle, readPublishedBundle, tamperEnvelope } from './support.js';

const flotillaYaml = (wipePolicy = '{}') => `environments:
  - name: trust
    path: environments/trust
  - name: wipe
    path: environments/wipe
    policy: ${wipePolicy}
`;

type Row = FleetStatusRow & { desiredGeneration: number | null };

/**
 * West renders a directory of its own with 5 replicas where east has 2: applying west's
 * bundle on east would show in east's Deployment, so the replay test can tell.
 */
const WEST_REPLICAS = 5;
const westFiles = Object.fromEntries(
  Object.entries(appFiles('trust', { replicas: WEST_REPLICAS })).map(([path, text]) => [
    path.replace('environments/trust/', 'environments/trust/clusters/west/'),
    text,
  ]),
);

/** Rows 4 and 5 of the security matrix: what an agent does with bundles it must not trust, and with an empty render. */
describe('security: bundle trust on the wire, and empty renders', { timeout: 300_000 }, () => {
  let fleet: Fleet;
  let hub: NatsConnection;
  let genuineEast: { generation: number; envelope: Uint8Array };
  const row = async (name: string) => (await fleet.fleetStatus()).find((r) => r.name === name) as Row;
  const replicas = async (cluster: string) =>
    (await kubectlJson(fleet.clusters.get(cluster)!.kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec
      .replicas as number;
  const errorShown = (cluster: string, pattern: RegExp, message: string) =>
    eventually(
      async () => {
        const r = await row(cluster);
        assert.match(r.error ?? '', pattern);
        return r;
      },
      { timeoutMs: 60_000, message },
    );

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': flotillaYaml(), ...appFiles('trust'), ...westFiles, ...appFiles('wipe') },
      clusters: [
        { name: 'east', environment: 'trust' },
        { name: 'west', environment: 'trust' },
        { name: 'wipe-1', environment: 'wipe' },
      ],
    });
    await fleet.waitSynced();
    hub = await connectAsHub(fleet);
    const { head, envelope } = await readPublishedBundle(hub, 'east');
    genuineEast = { generation: head.generation, envelope };
  });
  after(async () => {
    await hub?.close().catch(() => {});
    await fleet?.stop();
  });

  test('a bundle whose payload was changed on the wire is refused as bad-signature, never applied, and the hub shows it', async () => {
    const g = genuineEast.generation;
    const tampered = tamperEnvelope(genuineEast.envelope, (b) => {
      b.generation = g + 1;
      for (const o of b.objects) if (o.kind === 'Deployment' && o.spec) o.spec.replicas = 9;
    });
    await publishBundle(hub, 'east', g + 1, tampered);
    const r = await errorShown(
      'east',
      new RegExp(`bundle generation ${g + 1} refused \\(bad-signature\\)`),
      'the refusal reaches fleet status',
    );
    assert.equal(r.generation, g, 'the applied generation is still the genuine one');
    assert.equal(await replicas('east'), 2, 'the tampered Deployment was never applied');
    assert.ok(fleet.clusters.get('east')!.agent!.alive);
    assert.match(fleet.clusters.get('east')!.agent!.log, /"code":"bad-signature".*"msg":"bundle refused"/);
    assert.equal((await row('west')).error, null, 'another cluster is not affected');
  });

  test("another cluster's genuine signed bundle replayed on this cluster's subject is refused as wrong-cluster", async () => {
    const west = await readPublishedBundle(hub, 'west');
    const westBundle = peekBundle(west.envelope);
    assert.equal(westBundle.cluster, 'west');
    // The two bundles differ where the test looks: west's applied on east would be seen.
    const westDeployment = westBundle.objects.find((o) => o.kind === 'Deployment');
    assert.equal(westDeployment?.spec?.replicas, WEST_REPLICAS);
    assert.equal(await replicas('west'), WEST_REPLICAS);
    assert.equal(await replicas('east'), 2);
    await publishBundle(hub, 'east', genuineEast.generation + 1, west.envelope);
    await errorShown('east', /refused \(wrong-cluster\)/, 'the wrong-cluster refusal reaches fleet status');
    assert.equal(await replicas('east'), 2, "west's Deployment was never applied on east");
    assert.equal((await row('east')).generation, genuineEast.generation);
  });

  test('a head whose chunks do not match it is refused as digest-mismatch and nothing is applied', async () => {
    const tampered = tamperEnvelope(genuineEast.envelope, (b) => {
      b.generation = genuineEast.generation + 1;
      b.objects = [];
    });
    const { head } = packForTransport(tampered, { cluster: 'east', generation: genuineEast.generation + 1 });
    const genuine = packForTransport(genuineEast.envelope, { cluster: 'east', generation: head.generation });
    const js = hub.jetstream();
    // The head names the chunks of one envelope, the stream holds the chunks of another.
    for (const [i, chunk] of genuine.chunks.entries()) await js.publish(bundleChunkSubject('east', i), chunk);
    await js.publish(bundleSubject('east'), new TextEncoder().encode(JSON.stringify(head)));
    hub.publish(notifySubject('east'), new TextEncoder().encode('{}'));
    await errorShown(
      'east',
      /refused \(digest-mismatch\)/,
      'the digest-mismatch refusal reaches fleet status',
    );
    assert.equal(await replicas('east'), 2);
    assert.equal((await row('east')).generation, genuineEast.generation);
  });

  test('flotilla-agent import of a tampered bundle file while the agent runs is refused and changes nothing', async () => {
    const file = join(fleet.baseDir, 'east.tampered.bundle');
    const exp = await fleet.flotilla('bundle', 'export', '--cluster', 'east', '-o', file);
    assert.equal(exp.code, 0, exp.stderr);
    const exported = new Uint8Array(readFileSync(file));
    writeFileSync(
      file,
      tamperEnvelope(exported, (b) => {
        b.generation += 1;
        for (const o of b.objects) if (o.kind === 'Deployment' && o.spec) o.spec.replicas = 7;
      }),
    );
    const r = await fleet.agent('east', 'import', file);
    assert.notEqual(r.code, 0, 'the import must fail');
    assert.match(r.stderr, /bundle refused \(bad-signature\)/);
    assert.equal(await replicas('east'), 2);
    assert.equal((await row('east')).generation, genuineEast.generation);
    assert.ok(fleet.clusters.get('east')!.agent!.alive, 'the running agent is unaffected');
  });

  test('the next genuine bundle is applied over the refused ones and clears the error', async () => {
    const rev = await fleet.work.commit(appFiles('trust', { replicas: 3 }), 'trust: 3 replicas');
    await fleet.poke();
    // West renders its own directory, which this commit leaves alone.
    await fleet.waitSynced(['east'], { revision: { east: rev } });
    const r = await row('east');
    assert.equal(r.generation, genuineEast.generation + 1);
    assert.equal(r.generation, r.desiredGeneration);
    assert.equal(r.error, null, 'the refusal is cleared by a newer applied generation');
    assert.equal(await replicas('east'), 3);
  });

  test('a replay of the cluster’s own older genuine bundle is refused as stale-generation', async () => {
    await publishBundle(hub, 'east', genuineEast.generation, genuineEast.envelope);
    await errorShown('east', /refused \(stale-generation\)/, 'the stale refusal reaches fleet status');
    assert.equal(await replicas('east'), 3, 'the older generation was not applied');
  });

  test('a commit that deletes every manifest of an environment publishes nothing, shows an error and deletes nothing', async () => {
    const before = await row('wipe-1');
    const gone = Object.fromEntries(Object.keys(appFiles('wipe')).map((k) => [k, null]));
    await fleet.work.commit(gone, 'wipe: delete everything');
    await fleet.poke();
    const r = await errorShown(
      'wipe-1',
      /environment wipe: directory not found/,
      'the missing environment directory is reported',
    );
    assert.equal(r.desiredGeneration, before.desiredGeneration, 'no bundle was published');
    // A few poll passes later, still nothing is deleted.
    await new Promise((res) => setTimeout(res, 5000));
    assert.equal((await row('wipe-1')).desiredGeneration, before.desiredGeneration);
    const kube = fleet.clusters.get('wipe-1')!.kubeconfig;
    for (const what of [
      ['deploy', 'web'],
      ['svc', 'web'],
      ['cm', 'web-config'],
    ])
      await kubectl(kube, ['-n', 'shop', 'get', ...what]);
    await kubectl(kube, ['get', 'ns', 'shop']);
  });

  test('an environment directory left without manifests publishes nothing, says why, and deletes nothing', async () => {
    const before = await row('wipe-1');
    await fleet.work.commit({ 'environments/wipe/README.md': 'nothing here yet\n' }, 'wipe: empty directory');
    await fleet.poke();
    const r = await errorShown(
      'wipe-1',
      /environments\/wipe renders no objects; the last good bundle stays/,
      'the empty render is refused by the hub and named',
    );
    assert.equal(r.desiredGeneration, before.desiredGeneration, 'no bundle was published');
    await new Promise((res) => setTimeout(res, 3000));
    const kube = fleet.clusters.get('wipe-1')!.kubeconfig;
    for (const what of [
      ['deploy', 'web'],
      ['svc', 'web'],
      ['cm', 'web-config'],
    ])
      await kubectl(kube, ['-n', 'shop', 'get', ...what]);
    await kubectl(kube, ['get', 'ns', 'shop']);
  });

  test('with policy allowEmpty: true the same empty render prunes what the environment had applied', async () => {
    await fleet.work.commit({ 'flotilla.yaml': flotillaYaml('{allowEmpty: true}') }, 'wipe: allow empty');
    await fleet.poke();
    const kube = fleet.clusters.get('wipe-1')!.kubeconfig;
    await eventually(
      async () => {
        for (const what of [
          ['deploy', 'web'],
          ['svc', 'web'],
          ['cm', 'web-config'],
        ])
          await assert.rejects(kubectl(kube, ['-n', 'shop', 'get', ...what]), /NotFound|not found/);
      },
      { timeoutMs: 60_000, message: 'the objects of the environment are pruned' },
    );
    const r = await row('wipe-1');
    assert.equal(r.generation, r.desiredGeneration);
  });
});
