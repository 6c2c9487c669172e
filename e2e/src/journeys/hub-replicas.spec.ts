import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bin } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { type ManagedProcess, startProcess } from '../harness/process.js';
import { kubectlJson } from './kubectl.js';

/**
 * The architecture's shape at scale: hub replicas on one PostgreSQL and one NATS, one of them
 * elected to render and publish, all of them serving the API. Replica A is the fleet's own hub;
 * replica B shares its data dir (the same keys, CA and NATS identity, as the chart's
 * ReadWriteMany volume gives it) with a git cache of its own. The PostgreSQL server is this
 * test's own.
 */
describe('two hub replicas on one PostgreSQL: one leads, the other follows and takes over', {
  timeout: 300_000,
}, () => {
  let pg: PostgresServer;
  let fleet: Fleet;
  let b: { process: ManagedProcess; http: string };

  const api = async <T>(base: string, path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${fleet.adminToken}` },
    });
    assert.ok(res.ok, `${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };
  const leads = async (base: string) => (await api<{ leader: boolean }>(base, '/healthz')).leader;
  const devRow = async (base: string) =>
    (
      await api<{ clusters: (FleetStatusRow & { desiredGeneration: number; desiredRevision: string })[] }>(
        base,
        '/api/v1/fleet/status',
      )
    ).clusters.find((c) => c.name === 'dev-1')!;
  const replicas = async () =>
    (await kubectlJson(fleet.clusters.get('dev-1')!.kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec
      .replicas as number;

  before(async () => {
    pg = await startPostgresServer();
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': 'environments:\n  - {name: dev, path: environments/dev}\n',
        ...appFiles('dev'),
      },
      clusters: [{ name: 'dev-1', environment: 'dev' }],
      database: pg.url,
      // Only webhooks move the fleet here, so every pass is one the test asked for.
      poll: '1h',
    });
    await fleet.waitSynced();
    const readyFile = join(fleet.baseDir, 'hub-b-ready.json');
    const process = await startProcess(
      bin('flotilla'),
      [
        'hub',
        'start',
        // One data dir for both, as a ReadWriteMany volume gives them; a git cache of its own.
        '--data-dir',
        fleet.hubDataDir,
        '--cache-dir',
        join(fleet.baseDir, 'hub-b-cache'),
        '--nats',
        fleet.nats.url,
        '--repo',
        fleet.repoUrl,
        '--database',
        pg.url,
        '--http',
        '127.0.0.1:0',
        '--grpc',
        '127.0.0.1:0',
        '--poll',
        '1h',
        '--heartbeat-window',
        '10s',
        '--ready-file',
        readyFile,
      ],
      { name: 'hub-b', ready: /hub ready/, timeoutMs: 60_000 },
    );
    b = { process, http: JSON.parse(readFileSync(readyFile, 'utf8')).http };
  });
  after(async () => {
    await b?.process.stop();
    await fleet?.stop();
    await pg?.destroy();
  });

  test('exactly one replica leads, and both serve the same fleet', async () => {
    assert.equal(await leads(fleet.hub.http), true, 'the first hub holds the lock');
    assert.equal(await leads(b.http), false, 'the second follows');
    const metrics = await (await fetch(`${b.http}/metrics`)).text();
    assert.match(metrics, /^flotilla_hub_leader 0$/m);
    const [fromA, fromB] = [await devRow(fleet.hub.http), await devRow(b.http)];
    assert.equal(fromB.revision, fromA.revision);
    assert.equal(fromB.sync, 'Synced');
  });

  test('a webhook at the follower is run by the leader: one new generation, and the cluster converges', async () => {
    const before = await devRow(b.http);
    const revision = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    const res = await fetch(`${b.http}/api/v1/webhooks/git`, { method: 'POST' });
    assert.equal(res.status, 202);
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': revision } });
    assert.equal(await replicas(), 3);
    const after = await devRow(b.http);
    assert.equal(after.desiredGeneration, before.desiredGeneration + 1, 'published once, not by both');
  });

  test('the leader stops: the follower takes over, publishes the next commit, and the fleet converges', async () => {
    await fleet.stopHub();
    await eventually(async () => assert.equal(await leads(b.http), true), {
      timeoutMs: 30_000,
      message: 'the follower is elected once the leader is gone',
    });
    const revision = await fleet.work.commit(appFiles('dev', { replicas: 4 }), 'dev: 4 replicas');
    await fetch(`${b.http}/api/v1/webhooks/git`, { method: 'POST' });
    // The bundle reaches the cluster over NATS with only replica B up.
    await eventually(async () => assert.equal(await replicas(), 4), {
      timeoutMs: 60_000,
      message: 'the cluster applies what the new leader published',
    });
    assert.equal((await devRow(b.http)).desiredRevision, revision);
    // The first hub comes back as a follower; the agent reports through it again.
    await fleet.startHub();
    assert.equal(await leads(fleet.hub.http), false, 'the lock stays with the new leader');
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': revision } });
  });
});
