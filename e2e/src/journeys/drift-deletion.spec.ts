import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { kubectl, kubectlJson } from './kubectl.js';

/** One row of `flotilla fleet drift -o json` (`clearedAt` with --history). */
interface Drift {
  cluster: string;
  kind: string;
  namespace: string;
  name: string;
  field: string;
  desired: string;
  live: string;
  since: string;
  clearedAt?: string | null;
}

/**
 * A deleted managed object is the largest drift there is: it is listed fleet-wide as drift of the
 * whole object, stays listed while self-heal is off, and goes to the history once it is back.
 * Two clusters, every part a real process: `watch-1` (self-heal off) and `heal-1` (self-heal on).
 */
describe('a deleted object is drift, fleet-wide', { timeout: 300_000 }, () => {
  let fleet: Fleet;

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': `environments:
  - {name: watch, path: environments/watch, policy: {selfHeal: false}}
  - {name: heal, path: environments/heal, policy: {selfHeal: true}}
`,
        ...appFiles('watch'),
        ...appFiles('heal'),
      },
      clusters: [
        { name: 'watch-1', environment: 'watch' },
        { name: 'heal-1', environment: 'heal' },
      ],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  const deletion = (d: Drift, cluster: string) =>
    d.cluster === cluster && d.kind === 'ConfigMap' && d.namespace === 'shop' && d.name === 'web-config';

  test('kubectl delete is listed in fleet drift as (object) live <missing>: left listed with self-heal off until it returns, healed and kept in history with it on', async () => {
    const watchKube = fleet.clusters.get('watch-1')!.kubeconfig;
    const healKube = fleet.clusters.get('heal-1')!.kubeconfig;
    const before = await kubectlJson(watchKube, ['-n', 'shop', 'get', 'configmap', 'web-config']);
    for (const kc of [watchKube, healKube])
      await kubectl(kc, ['-n', 'shop', 'delete', 'configmap', 'web-config']);

    // Self-heal on: put back, and the deletion is in the history with when it was seen and healed.
    await eventually(
      async () => {
        await kubectlJson(healKube, ['-n', 'shop', 'get', 'configmap', 'web-config']);
        const all = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift', '--history');
        const row = all.drift.find((d) => deletion(d, 'heal-1'));
        assert.ok(row, JSON.stringify(all.drift));
        assert.deepEqual([row.field, row.desired, row.live], ['(object)', '<present>', '<missing>']);
        assert.ok(row.clearedAt && row.clearedAt >= row.since, JSON.stringify(row));
      },
      { timeoutMs: 60_000, message: 'heal-1: the deletion healed and kept in history' },
    );

    // Self-heal off: listed, and still listed (still missing) after the other cluster healed.
    const open = await eventually(
      async () => {
        const now = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift');
        const row = now.drift.find((d) => deletion(d, 'watch-1'));
        assert.ok(row, JSON.stringify(now.drift));
        assert.deepEqual([row.field, row.desired, row.live], ['(object)', '<present>', '<missing>']);
        return row;
      },
      { timeoutMs: 60_000, message: 'watch-1: the deletion listed in fleet drift' },
    );
    await assert.rejects(
      kubectl(watchKube, ['-n', 'shop', 'get', 'configmap', 'web-config']),
      (err: unknown) => err instanceof Error && /NotFound|not found/.test(err.message),
      'self-heal off: not put back',
    );
    const human = await fleet.flotilla('fleet', 'drift');
    assert.match(
      human.stdout,
      /watch-1\s+watch\s+env\/watch\s+ConfigMap shop\/web-config\s+\(object\)\s+<present>\s+<missing>/,
    );
    const status = (await fleet.fleetStatus()).find((r) => r.name === 'watch-1');
    assert.ok((status?.drifted ?? 0) >= 1, JSON.stringify(status));

    // It returns (someone applies it again by hand): the drift clears and stays in the history.
    const manifest = join(fleet.baseDir, 'web-config.json');
    await writeFile(
      manifest,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'web-config', namespace: 'shop' },
        data: before.data,
      }),
    );
    await kubectl(watchKube, ['apply', '-f', manifest]);
    await eventually(
      async () => {
        const now = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift');
        assert.ok(!now.drift.some((d) => deletion(d, 'watch-1')), JSON.stringify(now.drift));
        const all = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift', '--history');
        const row = all.drift.find((d) => deletion(d, 'watch-1'));
        assert.equal(row?.since, open.since);
        assert.ok(row?.clearedAt, JSON.stringify(row));
      },
      { timeoutMs: 60_000, message: 'watch-1: the drift cleared once the object is back' },
    );
  });
});
