import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { kubectl, kubectlJson } from '../journeys/kubectl.js';

interface Drift {
  cluster: string;
  field: string;
  live: string;
}

/**
 * Faults row: the hub's PostgreSQL stopped and started again. The hub runs on a PostgreSQL
 * server of this test's own (never the machine's shared one), so stopping it disturbs nothing else.
 */
describe('fault: the hub’s PostgreSQL stopped and restarted', { timeout: 300_000 }, () => {
  let pg: PostgresServer;
  let fleet: Fleet;

  before(async () => {
    pg = await startPostgresServer();
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': 'environments:\n  - {name: dev, path: environments/dev}\n',
        ...appFiles('dev'),
      },
      clusters: [{ name: 'dev-1', environment: 'dev' }],
      database: pg.url,
    });
    await fleet.waitSynced();
  });
  after(async () => {
    await fleet?.stop();
    await pg?.destroy();
  });

  test('with PostgreSQL down the hub stays up and says so, the agent keeps healing, and no report is lost once it is back', async () => {
    const kube = fleet.clusters.get('dev-1')!.kubeconfig;
    await pg.stop();

    // The agent heals on its own; its reports cannot be stored, so they stay in its outbox.
    await kubectl(kube, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=8']);
    await eventually(
      async () =>
        assert.equal((await kubectlJson(kube, ['-n', 'shop', 'get', 'deploy', 'web'])).spec.replicas, 2),
      { timeoutMs: 30_000, message: 'healed with the hub’s database down' },
    );
    const status = await fleet.flotilla('fleet', 'status');
    assert.notEqual(status.code, 0, 'fleet status cannot answer without its database');
    assert.match(status.stderr, /database is unavailable/, 'and it says why, without the query');
    assert.ok(fleet.hub.process.alive, 'the hub process stays up');

    await pg.start();
    await eventually(
      async () => {
        const all = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift', '--history');
        assert.ok(
          all.drift.some(
            (d) => d.cluster === 'dev-1' && d.field === 'spec.replicas' && JSON.parse(d.live) === 8,
          ),
          JSON.stringify(all.drift),
        );
      },
      { timeoutMs: 60_000, message: 'the drift reported while PostgreSQL was down reaches the history' },
    );
    // And the hub goes on working: a new commit converges.
    const rev = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
  });
});
