import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectlJson } from './kubectl.js';

const replicasOf = async (kubeconfig: string) =>
  (await kubectlJson(kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas;

describe('promotion has one rule for every mapping', { timeout: 600_000 }, () => {
  test('directory pipeline: dev → staging on one branch, staging keeps its own files', async (t) => {
    const fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': `environments:
  - {name: dev, path: environments/dev}
  - {name: staging, path: environments/staging, keep: [config.yaml]}
pipeline: [dev, staging]
`,
        ...appFiles('dev'),
        ...appFiles('staging', { logLevel: 'info' }),
      },
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
      ],
    });
    t.after(() => fleet.stop());
    await fleet.waitSynced();
    const rev = await fleet.work.commit(
      { ...appFiles('dev', { replicas: 4, logLevel: 'trace' }) },
      'dev: 4 replicas',
    );
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
    const p = await fleet.flotilla('promote', 'dev', 'staging');
    assert.equal(p.code, 0, p.stderr);
    const staging = fleet.clusters.get('staging-1')!.kubeconfig;
    await eventually(async () => assert.equal(await replicasOf(staging), 4), { timeoutMs: 60_000 });
    const cm = await kubectlJson(staging, ['-n', 'shop', 'get', 'cm', 'web-config']);
    assert.equal(cm.data.LOG_LEVEL, 'info', "config.yaml is staging's own");
    await fleet.work.git('pull', '-q');
    assert.match(await fleet.work.git('log', '-1', '--format=%B'), new RegExp(rev.slice(0, 12)));
  });

  test('branch pipeline: the same directory on branches dev → staging is a fast-forward', async (t) => {
    const fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': `environments:
  - {name: dev, path: app, branch: dev}
  - {name: staging, path: app, branch: staging}
pipeline: [dev, staging]
`,
        ...Object.fromEntries(
          Object.entries(appFiles('x')).map(([k, v]) => [k.replace('environments/x', 'app'), v]),
        ),
      },
      branches: ['dev', 'staging'],
      clusters: [
        { name: 'dev-1', environment: 'dev' },
        { name: 'staging-1', environment: 'staging' },
      ],
    });
    t.after(() => fleet.stop());
    await fleet.waitSynced();
    await fleet.work.git('checkout', '-q', '-b', 'dev', 'origin/dev');
    const files = Object.fromEntries(
      Object.entries(appFiles('x', { replicas: 5 })).map(([k, v]) => [k.replace('environments/x', 'app'), v]),
    );
    const rev = await fleet.work.commit(files, 'dev: 5 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
    assert.equal(
      (await fleet.fleetStatus()).find((r) => r.name === 'staging-1')!.generation,
      1,
      'staging untouched',
    );
    const p = await fleet.flotilla('promote', 'dev', 'staging');
    assert.equal(p.code, 0, p.stderr);
    await fleet.work.git('fetch', '-q', 'origin');
    assert.equal(
      await fleet.work.git('rev-parse', 'origin/staging'),
      rev,
      'staging fast-forwarded to the revision dev runs',
    );
    await eventually(
      async () => assert.equal(await replicasOf(fleet.clusters.get('staging-1')!.kubeconfig), 5),
      { timeoutMs: 60_000 },
    );
    const history = await fleet.flotillaJson<{ to: string; fromRevision: string; fastForward: boolean }[]>(
      'promote',
      '--history',
    );
    assert.equal(history[0]!.fromRevision, rev);
  });
});
