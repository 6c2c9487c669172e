import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - {name: dev, path: environments/dev, policy: {selfHeal: true, prune: true, sync: auto}}
  - {name: staging, path: environments/staging, policy: {selfHeal: true, prune: true, sync: auto}}
pipeline: [dev, staging]
`;

interface Row extends FleetStatusRow {
  paused: { scope: string; name: string; reason: string | null; by: string } | null;
  hold: string | null;
  desiredGeneration: number | null;
}

/**
 * A cluster gone for a while (a site being rebuilt) is paused: it keeps enforcing and healing
 * what it has, is given nothing new, shows as paused rather than failing, and no longer holds
 * every promotion out of its environment. Every part is a real process.
 */
describe('journey: a paused cluster', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  const rows = async () => (await fleet.flotillaJson<{ clusters: Row[] }>('fleet', 'status')).clusters;
  const row = async (name: string) => (await rows()).find((r) => r.name === name)!;
  const logLevel = async (cluster: string) =>
    (
      await kubectlJson(fleet.clusters.get(cluster)!.kubeconfig, [
        '-n',
        'shop',
        'get',
        'configmap',
        'web-config',
      ])
    ).data.LOG_LEVEL as string;

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('dev'), ...appFiles('staging') },
      clusters: [
        { name: 'dev-a', environment: 'dev' },
        { name: 'dev-b', environment: 'dev' },
        { name: 'staging-a', environment: 'staging' },
      ],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('a paused cluster gets no new bundle, is shown as paused, keeps healing drift, and does not block a promotion', async () => {
    const paused = await fleet.flotilla('cluster', 'pause', 'dev-b', '--reason', 'site rebuild');
    assert.equal(paused.code, 0, paused.stderr);
    const before = await row('dev-b');
    assert.deepEqual(
      { scope: before.paused?.scope, reason: before.paused?.reason },
      { scope: 'cluster', reason: 'site rebuild' },
    );
    const table = await fleet.flotilla('fleet', 'status');
    assert.match(table.stdout, /dev-b .* paused/);

    const rev = await fleet.work.commit(appFiles('dev', { logLevel: 'info' }), 'dev: log level info');
    await fleet.poke();
    await fleet.waitSynced(['dev-a'], { revision: { 'dev-a': rev } });
    assert.equal(await logLevel('dev-a'), 'info');
    // One more pass after dev-a took the change: still nothing for dev-b.
    await fleet.poke();
    await eventually(
      async () => {
        const b = await row('dev-b');
        assert.ok(b.hold === null || b.paused, 'dev-b is shown as paused');
        assert.equal(b.desiredGeneration, before.desiredGeneration, 'no new bundle was published for dev-b');
        assert.equal(b.sync, 'Synced', 'paused is not failing: dev-b is Synced to the bundle it has');
        assert.equal(b.health, 'Healthy');
      },
      { timeoutMs: 10_000, message: 'dev-b stays on its bundle' },
    );
    assert.equal(await logLevel('dev-b'), 'debug', 'dev-b still runs the old content');

    // Drift on the paused cluster is healed back to the bundle it keeps.
    const kc = fleet.clusters.get('dev-b')!.kubeconfig;
    await kubectl(kc, [
      '-n',
      'shop',
      'patch',
      'configmap',
      'web-config',
      '-p',
      '{"data":{"LOG_LEVEL":"trace"}}',
    ]);
    await eventually(async () => assert.equal(await logLevel('dev-b'), 'debug', 'LOG_LEVEL healed'), {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: 'the paused cluster heals drift',
    });

    // dev-b runs another revision: unpaused it would refuse the promotion. Paused, it is left out, and said so.
    const promoted = await fleet.flotilla('promote', 'dev', 'staging');
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(
      promoted.stdout,
      /note: dev cluster dev-b is paused by .* \(site rebuild\): left out of the gates/,
    );
    const json = await fleet.flotillaJson<{ notes: string[] }>('promote', 'dev', 'staging');
    assert.equal(json.notes.length, 1);

    const resumed = await fleet.flotilla('cluster', 'resume', 'dev-b');
    assert.equal(resumed.code, 0, resumed.stderr);
    // Its bundle is rendered from the newest commit (the promotion's), which holds dev's change.
    await eventually(async () => assert.equal(await logLevel('dev-b'), 'info', 'dev-b has the change'), {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: 'resumed, dev-b catches up',
    });
    await fleet.waitSynced(['dev-b']);
    assert.equal((await row('dev-b')).paused, null);
  });

  test('env pause pauses every cluster of the environment; resume lifts it', async () => {
    assert.equal((await fleet.flotilla('env', 'pause', 'dev')).code, 0);
    const paused = (await rows()).filter((r) => r.environment === 'dev');
    assert.deepEqual(
      paused.map((r) => [r.name, r.paused?.scope, r.paused?.name]),
      [
        ['dev-a', 'environment', 'dev'],
        ['dev-b', 'environment', 'dev'],
      ],
    );
    const refused = await fleet.flotilla('promote', 'dev', 'staging');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /dev has no cluster that is not paused/);
    assert.equal((await fleet.flotilla('env', 'resume', 'dev')).code, 0);
    assert.ok((await rows()).every((r) => r.paused === null));
    const unknown = await fleet.flotilla('cluster', 'pause', 'nope');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /cluster nope: no such cluster/);
  });
});
