import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - name: ops
    path: environments/ops
    policy: {selfHeal: true, prune: true, sync: auto}
    rollout:
      windows: [{hours: "02:00-03:00", timeZone: UTC}]
`;

interface Row extends FleetStatusRow {
  hold: string | null;
  pendingGeneration: number | null;
  pendingUntil: string | null;
}

/**
 * A maintenance window: outside it the agent holds a new bundle (and says until when), drift
 * is healed regardless, and the held bundle is applied when the window opens. The agent reads
 * the time from a clock file the test moves (FLOTILLA_AGENT_CLOCK_FILE).
 */
describe('journey: a maintenance window', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  let clock: string;
  const setClock = (iso: string) => writeFileSync(clock, iso);
  const row = async () =>
    (await fleet.flotillaJson<{ clusters: Row[] }>('fleet', 'status')).clusters.find(
      (r) => r.name === 'ops-1',
    )!;
  const logLevel = async () =>
    (
      await kubectlJson(fleet.clusters.get('ops-1')!.kubeconfig, [
        '-n',
        'shop',
        'get',
        'configmap',
        'web-config',
      ])
    ).data.LOG_LEVEL as string;

  before(async () => {
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('ops') },
      clusters: [{ name: 'ops-1', environment: 'ops' }],
      startAgents: false,
    });
    clock = join(fleet.baseDir, 'clock');
    setClock('2026-03-07T02:30:00Z');
    await fleet.joinAgent('ops-1');
    await fleet.startAgent('ops-1', ['--window-check', '1'], { FLOTILLA_AGENT_CLOCK_FILE: clock });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('a cluster outside its window holds the new bundle, says until when, heals drift, and applies it when the window opens', async () => {
    setClock('2026-03-07T05:00:00Z');
    const before = await row();
    await fleet.work.commit(appFiles('ops', { logLevel: 'info' }), 'ops: log level info');
    await fleet.poke();
    const held = await eventually(
      async () => {
        const r = await row();
        assert.equal(r.pendingGeneration, (before.generation ?? 0) + 1, 'the agent holds the new generation');
        return r;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'the new bundle is held' },
    );
    assert.equal(held.generation, before.generation, 'the cluster stays on its generation');
    assert.equal(held.pendingUntil, '2026-03-08T02:00:00.000Z');
    assert.match(held.hold!, /outside its maintenance window \(until 2026-03-08T02:00:00.000Z\)/);
    assert.equal(await logLevel(), 'debug');
    const table = await fleet.flotilla('fleet', 'status');
    assert.match(table.stdout, /ops-1 .*until 2026-03-08T02:00:00.000Z/);

    // Drift healing follows the policy regardless of the window.
    await kubectl(fleet.clusters.get('ops-1')!.kubeconfig, [
      '-n',
      'shop',
      'patch',
      'configmap',
      'web-config',
      '-p',
      '{"data":{"LOG_LEVEL":"trace"}}',
    ]);
    await eventually(async () => assert.equal(await logLevel(), 'debug', 'healed to the applied bundle'), {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: 'drift healed outside the window',
    });

    setClock('2026-03-08T02:00:30Z');
    await eventually(async () => assert.equal(await logLevel(), 'info', 'the held bundle is applied'), {
      timeoutMs: 60_000,
      intervalMs: 500,
      message: 'the window opens',
    });
    await eventually(
      async () => {
        const r = await row();
        assert.equal(r.generation, held.pendingGeneration);
        assert.equal(r.pendingGeneration, null);
        assert.equal(r.hold, null);
      },
      { timeoutMs: 30_000, intervalMs: 500, message: 'the fleet view shows it applied' },
    );
  });
});
