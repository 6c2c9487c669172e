import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - name: prod
    path: environments/prod
    policy: {selfHeal: true, prune: true, sync: auto}
    rollout:
      waves: [{name: canary, selector: ring=canary}, {name: half, percent: 50}]
      soak: 3s
pipeline: [prod]
`;

const CLUSTERS = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];

/** The app with its image and a short progress deadline, so that a broken image turns Degraded soon. */
function app(image: string): Record<string, string> {
  const files = appFiles('prod', { image });
  const path = 'environments/prod/deployment.yaml';
  files[path] = files[path]!.replace(/^spec:\n/m, 'spec:\n  progressDeadlineSeconds: 8\n');
  return files;
}

interface Row extends FleetStatusRow {
  desiredGeneration: number | null;
  hold: string | null;
}

interface RolloutStatus {
  state: string;
  halted: { cluster: string; reason: string } | null;
  waves: Array<{ name: string; state: string; clusters: Array<{ name: string; released: boolean }> }>;
}

/**
 * Three waves over six clusters (canary by label, then up to half, then the rest), each gated
 * on the previous one being Synced and Healthy for the soak time. A change that works on the
 * canary and breaks the second wave's clusters halts the rollout there; the third wave keeps
 * its old generation until `flotilla rollout resume`. Every part is a real process.
 */
describe('journey: a rollout in waves halts on a Degraded wave', { timeout: 900_000 }, () => {
  let fleet: Fleet;
  const rows = async () => (await fleet.flotillaJson<{ clusters: Row[] }>('fleet', 'status')).clusters;
  const image = async (cluster: string) =>
    (await kubectlJson(fleet.clusters.get(cluster)!.kubeconfig, ['-n', 'shop', 'get', 'deployment', 'web']))
      .spec.template.spec.containers[0].image as string;

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...app('nginx:1.27') },
      clusters: CLUSTERS.map((name) => ({
        name,
        environment: 'prod',
        // the new version works where tag=1.28 and fails where tag=fail
        labels: (name === 'p1' ? { ring: 'canary', tag: '1.28' } : { tag: 'fail' }) as Record<string, string>,
      })),
    });
    await fleet.waitSynced(undefined, { timeoutMs: 180_000 });
  });
  after(() => fleet?.stop());

  test('a three-wave rollout over six clusters stops after a wave turns Degraded and leaves the later waves on their old generation', async () => {
    const initial = new Map((await rows()).map((r) => [r.name, r.generation]));
    // Flotilla's own substitution, not a template string: each cluster renders its own tag.
    await fleet.work.commit(app(`nginx:\${cluster.labels.tag}`), 'prod: new image');
    await fleet.poke();

    const status = await eventually(
      async () => {
        const s = await fleet.flotillaJson<RolloutStatus>('rollout', 'status', 'prod');
        assert.equal(s.state, 'halted', `rollout is ${s.state}`);
        return s;
      },
      { timeoutMs: 240_000, intervalMs: 1000, message: 'the rollout halts' },
    );
    assert.deepEqual(
      status.waves.map((w) => [w.name, w.state, w.clusters.map((c) => c.name)]),
      [
        ['canary', 'done', ['p1']],
        ['half', 'halted', ['p2', 'p3']],
        ['rest', 'waiting', ['p4', 'p5', 'p6']],
      ],
    );
    assert.ok(['p2', 'p3'].includes(status.halted!.cluster), `halted by ${status.halted!.cluster}`);
    assert.match(status.halted!.reason, /cluster p[23] is Degraded at generation 2/);

    const after = new Map((await rows()).map((r) => [r.name, r]));
    assert.equal(after.get('p1')!.health, 'Healthy', 'the canary runs the new version');
    assert.equal(await image('p1'), 'nginx:1.28');
    for (const name of ['p4', 'p5', 'p6']) {
      const r = after.get(name)!;
      assert.equal(r.desiredGeneration, initial.get(name), `${name}: no new bundle published`);
      assert.equal(r.generation, initial.get(name), `${name}: still on its old generation`);
      assert.match(r.hold ?? '', /halted at wave 2 \(half\)/, `${name} says why it waits`);
      assert.equal(await image(name), 'nginx:1.27', `${name} still runs the old image`);
    }
    const text = await fleet.flotilla('rollout', 'status', 'prod');
    assert.match(text.stdout, /rollout: +halted/);
    assert.match(text.stdout, /halted: +at .* by cluster p[23]: cluster p[23] is Degraded/);

    // The dashboard shows each wave too.
    const login = await fetch(`${fleet.hub.http}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: fleet.adminToken }).toString(),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const page = await fetch(`${fleet.hub.http}/ui/rollouts/prod`, {
      redirect: 'manual',
      headers: { cookie },
    });
    assert.equal(page.status, 200);
    const html = await page.text();
    for (const wave of ['canary', 'half', 'rest']) assert.match(html, new RegExp(`wave [123] ${wave}`));
    assert.match(html, /halted/);

    const resumed = await fleet.flotilla('rollout', 'resume', 'prod');
    assert.equal(resumed.code, 0, resumed.stderr);
    await eventually(
      async () => {
        const now = new Map((await rows()).map((r) => [r.name, r]));
        for (const name of ['p4', 'p5', 'p6'])
          assert.equal(
            now.get(name)!.generation,
            (initial.get(name) ?? 0) + 1,
            `${name} took the next generation`,
          );
      },
      { timeoutMs: 120_000, intervalMs: 1000, message: 'resume releases the last wave' },
    );
    assert.equal(await image('p4'), 'nginx:fail');
  });
});
