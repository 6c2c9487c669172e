import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - {name: edge, path: environments/edge, policy: {selfHeal: true, prune: true, sync: auto}}
`;

const EXTRA = {
  'environments/edge/extra.yaml': `apiVersion: v1
kind: ConfigMap
metadata: {name: extra, namespace: shop}
data: {a: b}
`,
};

interface Row extends FleetStatusRow {
  desiredGeneration: number | null;
  hold: string | null;
}

/**
 * The empty-render guard generalized: a render that would prune most of a cluster's objects
 * (a moved directory, a bad merge) is held with the reason until someone approves it.
 */
describe('journey: blast radius', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  const row = async () =>
    (await fleet.flotillaJson<{ clusters: Row[] }>('fleet', 'status')).clusters.find(
      (r) => r.name === 'edge-1',
    )!;
  const has = async (kind: string, name: string) =>
    (
      await kubectl(fleet.clusters.get('edge-1')!.kubeconfig, ['-n', 'shop', 'get', kind, '-o', 'name'])
    ).includes(`/${name}\n`);

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('edge'), ...EXTRA },
      clusters: [{ name: 'edge-1', environment: 'edge' }],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('a render that would prune 80 % of a cluster’s objects is held with the reason until approved', async () => {
    const before = await row();
    // Five objects; keep only the namespace: four of five (80 %) would be pruned.
    await fleet.work.commit(
      {
        'environments/edge/deployment.yaml': null,
        'environments/edge/service.yaml': null,
        'environments/edge/config.yaml': null,
        'environments/edge/extra.yaml': null,
      },
      'edge: most of the app removed',
    );
    await fleet.poke();
    const held = await eventually(
      async () => {
        const r = await row();
        assert.match(r.hold ?? '', /blast radius/, 'edge-1 is held');
        return r;
      },
      { timeoutMs: 30_000, message: 'the render is held' },
    );
    assert.match(
      held.hold!,
      /this render would prune 4 of the 5 objects of cluster edge-1 \(80%\), more than rollout.maxPrune 50% allows/,
    );
    assert.equal(held.desiredGeneration, before.desiredGeneration, 'no new bundle was published');
    assert.ok(await has('deployment', 'web'), 'the Deployment is still there');
    const shown = await fleet.flotilla('cluster', 'show', 'edge-1');
    assert.match(shown.stdout, /held: +blast radius/);

    const approved = await fleet.flotilla('bundle', 'approve', 'edge-1');
    assert.equal(approved.code, 0, approved.stderr);
    await eventually(async () => assert.ok(!(await has('deployment', 'web')), 'the Deployment is pruned'), {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: 'the approved bundle is applied',
    });
    const after = await row();
    assert.equal(after.desiredGeneration, (before.desiredGeneration ?? 0) + 1);
    assert.equal(after.hold, null);
    const again = await fleet.flotilla('bundle', 'approve', 'edge-1');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /cluster edge-1: no bundle held for its blast radius/);
  });
});
