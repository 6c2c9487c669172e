import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from './kubectl.js';

/** The rollout's progressDeadlineSeconds: long enough that the hub shows Progressing before Degraded. */
const DEADLINE = 20;

const FLOTILLA_YAML = `environments:
  - name: dev
    path: environments/dev
    policy: {selfHeal: true, prune: true, sync: auto}
  - name: staging
    path: environments/staging
    policy: {selfHeal: true, prune: true, sync: auto}
pipeline: [dev, staging]
`;

/** The app of the demo, with a Deployment whose rollout may not stall for more than `deadline` seconds. */
function app(env: string, image: string, deadline: number): Record<string, string> {
  const files = appFiles(env, { image, replicas: 2 });
  const path = `environments/${env}/deployment.yaml`;
  files[path] = files[path]!.replace(/^spec:\n/m, `spec:\n  progressDeadlineSeconds: ${deadline}\n`);
  return files;
}

/**
 * A broken image against a test API server whose Deployment controller behaves as a real one: the
 * new ReplicaSet never becomes ready, the old one keeps serving, and only progressDeadlineSeconds
 * turns "still rolling out" into a failure. The hub must show that as Progressing, then Degraded,
 * never Healthy, and refuse to promote it.
 */
describe('journey: a broken rollout is never Healthy and is not promoted', { timeout: 600_000 }, () => {
  let fleet: Fleet;

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': FLOTILLA_YAML,
        ...app('dev', 'nginx:1.27', DEADLINE),
        ...app('staging', 'nginx:1.27', DEADLINE),
      },
      clusters: [
        { name: 'dev', environment: 'dev' },
        { name: 'staging', environment: 'staging' },
      ],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('a Deployment with a broken image makes its cluster Progressing, then Degraded at the hub, never Healthy', async () => {
    // Every state the hub shows for dev, read from its API from before the commit on, so that a
    // short Progressing phase cannot slip between two reads of a slow CLI.
    const seen: { revision: string | null; health: string | null }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const res = await fetch(`${fleet.hub.http}/api/v1/fleet/status`, {
            headers: { authorization: `Bearer ${fleet.adminToken}` },
          });
          const body = (await res.json()) as { clusters: FleetStatusRow[] };
          const dev = body.clusters.find((r) => r.name === 'dev');
          if (dev) seen.push({ revision: dev.revision, health: dev.health });
        } catch {
          // the next read tells
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    let rev = '';
    try {
      rev = await fleet.work.commit(app('dev', 'nginx:fail', DEADLINE), 'dev: broken image');
      await fleet.poke();
      await eventually(
        () =>
          assert.ok(
            seen.some((s) => s.revision === rev && s.health === 'Degraded'),
            'dev not Degraded yet',
          ),
        { timeoutMs: 180_000, intervalMs: 250, message: 'dev Degraded at the broken revision' },
      );
    } finally {
      polling = false;
      await poller;
    }
    const states = seen.filter((s) => s.revision === rev).map((s) => s.health);
    const path = [...new Set(states)].join(' → ');
    assert.ok(states.includes('Progressing'), `dev was Progressing before Degraded: ${path}`);
    assert.ok(!states.includes('Healthy'), `dev was reported Healthy at the broken revision: ${path}`);
    assert.ok(
      states.indexOf('Progressing') < states.indexOf('Degraded'),
      `Progressing came before Degraded: ${path}`,
    );
    const row = (await fleet.fleetStatus()).find((r) => r.name === 'dev')!;
    assert.equal(row.health, 'Degraded', 'the CLI shows what the API showed');
    assert.equal(row.sync, 'Synced', 'the manifests were applied; only the rollout failed');

    // what the hub says is what the cluster says: the old pods still serve, the rollout is stuck
    const kubeconfig = fleet.clusters.get('dev')!.kubeconfig;
    const deploy = await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deployment', 'web']);
    assert.ok(deploy.status.updatedReplicas < 2, `updatedReplicas ${deploy.status.updatedReplicas} of 2`);
    assert.ok(deploy.status.availableReplicas >= 1, 'the old ReplicaSet keeps serving');
    await assert.rejects(
      kubectl(kubeconfig, ['-n', 'shop', 'rollout', 'status', 'deployment/web', '--timeout=5s']),
      (err: Error & { stderr?: string }) => /exceeded its progress deadline/.test(err.stderr ?? ''),
    );
  });

  test('a promotion out of the Degraded environment is refused, naming the cluster, and the next environment is untouched', async () => {
    const p = await fleet.flotilla('promote', 'dev', 'staging');
    assert.notEqual(p.code, 0, `promote succeeded:\n${p.stdout}`);
    assert.match(p.stderr, /dev cluster dev is Degraded, not Healthy/);
    const staging = await kubectlJson(fleet.clusters.get('staging')!.kubeconfig, [
      '-n',
      'shop',
      'get',
      'deployment',
      'web',
    ]);
    assert.equal(staging.spec.template.spec.containers[0].image, 'nginx:1.27');
    const row = (await fleet.fleetStatus()).find((r) => r.name === 'staging')!;
    assert.equal(row.health, 'Healthy');
  });
});
