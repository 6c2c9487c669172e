import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appFiles, demoRepoFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { describeRuns, seqRuns, storedReports } from '../security/support.js';
import { kubectl, kubectlEdit, kubectlJson } from './kubectl.js';

/**
 * The demo's fleet — dev and staging as directories on main, prod as a directory on
 * branch release — with every part a real process, walked through the four journeys. The
 * hub runs on a PostgreSQL of the test's own, so the test can read the rows the hub stored.
 */
describe('journeys on the demo fleet (mixed directory + branch mapping)', { timeout: 600_000 }, () => {
  let pg: PostgresServer;
  let fleet: Fleet;
  const gen = async (name: string) => (await fleet.fleetStatus()).find((r) => r.name === name)!.generation;

  before(async () => {
    pg = await startPostgresServer();
    fleet = await startFleet({
      repoFiles: demoRepoFiles(),
      branches: ['release'],
      clusters: [
        { name: 'dev', environment: 'dev', labels: { region: 'eu-west' } },
        { name: 'staging', environment: 'staging', labels: { region: 'eu-west' } },
        { name: 'prod', environment: 'prod', labels: { region: 'eu-central' } },
      ],
      database: pg.url,
    });
    await fleet.waitSynced();
  });
  after(async () => {
    await fleet?.stop();
    await pg?.destroy();
  });

  test('1. registered clusters are listed connected with the labels the hub gave them', async () => {
    const list = await fleet.flotillaJson<{
      clusters: { name: string; environment: string; labels: Record<string, string>; connected: boolean }[];
    }>('cluster', 'list');
    const byName = new Map(list.clusters.map((c) => [c.name, c]));
    assert.deepEqual([...byName.keys()].sort(), ['dev', 'prod', 'staging']);
    for (const c of list.clusters) assert.equal(c.connected, true, `${c.name} connected`);
    assert.deepEqual(byName.get('prod')!.labels, { region: 'eu-central' });
    assert.equal(byName.get('staging')!.environment, 'staging');
  });

  test('1. a join token used a second time is refused and the refusal is audited', async () => {
    type Audit = {
      audit: { action: string; outcome: string; cluster: string | null; detail: string | null }[];
    };
    // The refusal of this cluster's token, and nothing else: another cluster's or an unknown token's do not count.
    const refusals = async () =>
      (await fleet.flotillaJson<Audit>('audit', '--cluster', 'dev')).audit.filter(
        (e) =>
          e.cluster === 'dev' &&
          e.action === 'agent.register' &&
          e.outcome === 'refused' &&
          e.detail === 'token already used',
      );
    assert.deepEqual(await refusals(), [], 'no refusal before the second join');
    const again = await fleet.agent('dev', ...fleet.clusters.get('dev')!.joinCommand.split(/\s+/).slice(2));
    assert.notEqual(again.code, 0, 'second join must fail');
    assert.match(again.stderr, /bootstrap token is invalid, already used or expired/);
    assert.equal((await refusals()).length, 1, 'exactly one refusal audited, naming the cluster');
  });

  test('2. a commit to environments/dev converges dev only: staging and prod get no new generation', async () => {
    const before = { dev: await gen('dev'), staging: await gen('staging'), prod: await gen('prod') };
    const rev = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev'], { revision: { dev: rev } });
    const deploy = await kubectlJson(fleet.clusters.get('dev')!.kubeconfig, [
      '-n',
      'shop',
      'get',
      'deploy',
      'web',
    ]);
    assert.equal(deploy.spec.replicas, 3);
    assert.equal(await gen('dev'), (before.dev ?? 0) + 1);
    assert.equal(await gen('staging'), before.staging);
    assert.equal(await gen('prod'), before.prod);
  });

  test('2. env diff shows what dev runs that staging does not yet', async () => {
    const diff = await fleet.flotilla('env', 'diff', 'dev', 'staging');
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /deployment\.yaml/);
    assert.match(diff.stdout, /replicas: 3/);
    assert.doesNotMatch(
      diff.stdout,
      /config\.yaml/,
      'files staging keeps as its own are not part of the diff',
    );
  });

  test("2. promote dev → staging → prod keeps each environment's own files, and history lists both", async () => {
    const p1 = await fleet.flotilla('promote', 'dev', 'staging');
    assert.equal(p1.code, 0, p1.stderr);
    await eventually(
      async () => {
        const d = await kubectlJson(fleet.clusters.get('staging')!.kubeconfig, [
          '-n',
          'shop',
          'get',
          'deploy',
          'web',
        ]);
        assert.equal(d.spec.replicas, 3);
      },
      { timeoutMs: 60_000 },
    );
    await fleet.waitSynced(['staging']);
    const cm = await kubectlJson(fleet.clusters.get('staging')!.kubeconfig, [
      '-n',
      'shop',
      'get',
      'cm',
      'web-config',
    ]);
    assert.equal(cm.data.ENVIRONMENT, 'staging');

    const p2 = await fleet.flotilla('promote', 'staging', 'prod');
    assert.equal(p2.code, 0, p2.stderr);
    await eventually(
      async () => {
        const d = await kubectlJson(fleet.clusters.get('prod')!.kubeconfig, [
          '-n',
          'shop',
          'get',
          'deploy',
          'web',
        ]);
        assert.equal(d.spec.replicas, 3);
      },
      { timeoutMs: 60_000 },
    );
    const prodCm = await kubectlJson(fleet.clusters.get('prod')!.kubeconfig, [
      '-n',
      'shop',
      'get',
      'cm',
      'web-config',
    ]);
    assert.equal(prodCm.data.LOG_LEVEL, 'warn', 'prod keeps its own config.yaml');
    // The promotion into prod is one commit on release whose message names the source revision.
    await fleet.work.git('fetch', '-q', 'origin');
    const msg = await fleet.work.git('log', '-1', '--format=%B', 'origin/release');
    const stagingRev = (await fleet.fleetStatus()).find((r) => r.name === 'staging')!.revision!;
    assert.ok(msg.includes(stagingRev.slice(0, 12)), msg);

    const history = await fleet.flotillaJson<
      { from: string; to: string; kind: string; fromRevision: string; commit: string; actor: string }[]
    >('promote', '--history');
    assert.ok(Array.isArray(history));
    assert.equal(history[0]!.to, 'prod');
    assert.equal(history[1]!.to, 'staging');
    assert.ok(history[0]!.actor);
  });

  test('2. rollback prod reverts the last promotion with a git revert and prod follows', async () => {
    const r = await fleet.flotilla('rollback', 'prod');
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      async () => {
        const d = await kubectlJson(fleet.clusters.get('prod')!.kubeconfig, [
          '-n',
          'shop',
          'get',
          'deploy',
          'web',
        ]);
        assert.equal(d.spec.replicas, 2);
      },
      { timeoutMs: 60_000 },
    );
    await fleet.work.git('fetch', '-q', 'origin');
    assert.match(await fleet.work.git('log', '-1', '--format=%s', 'origin/release'), /^Revert/);
    const history = await fleet.flotillaJson<{ kind: string; to: string }[]>('promote', '--history');
    assert.equal(history[0]!.kind, 'rollback');
  });

  test('2. a promotion is refused, naming the reason, while the source environment is not Healthy', async () => {
    const rev = await fleet.work.commit(
      appFiles('dev', { replicas: 3, image: 'nginx:fail' }),
      'dev: broken image',
    );
    await eventually(
      async () => {
        const row = (await fleet.fleetStatus()).find((c) => c.name === 'dev')!;
        assert.equal(row.revision, rev);
        assert.notEqual(row.health, 'Healthy');
      },
      { timeoutMs: 60_000 },
    );
    const p = await fleet.flotilla('promote', 'dev', 'staging');
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /dev.*(not Healthy|Degraded|Progressing)/);
    await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: fix image');
    await fleet.waitSynced(['dev']);
  });

  test('3. drift from kubectl scale and kubectl edit is visible fleet-wide, then healed and kept in history', async () => {
    const staging = fleet.clusters.get('staging')!.kubeconfig;
    await kubectl(staging, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=7']);
    await kubectlEdit(
      staging,
      ['-n', 'shop', 'configmap', 'web-config'],
      's/LOG_LEVEL: debug/LOG_LEVEL: trace/',
    );
    type Drift = {
      cluster: string;
      environment: string;
      group: string;
      kind: string;
      namespace: string;
      name: string;
      field: string;
      desired: string;
      live: string;
      since: string;
    };
    // Self-heal may win the race against the poll, so look at current and cleared drift together.
    const seen = await eventually(
      async () => {
        const all = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift', '--history');
        const replicas = all.drift.find(
          (d) => d.cluster === 'staging' && d.kind === 'Deployment' && d.field === 'spec.replicas',
        );
        const level = all.drift.find(
          (d) => d.cluster === 'staging' && d.kind === 'ConfigMap' && d.field === 'data.LOG_LEVEL',
        );
        assert.ok(replicas && level, JSON.stringify(all.drift));
        return { replicas, level };
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(seen.replicas.environment, 'staging');
    assert.equal(seen.replicas.namespace, 'shop');
    assert.equal(seen.replicas.name, 'web');
    assert.equal(JSON.parse(seen.replicas.desired), 3);
    assert.equal(JSON.parse(seen.replicas.live), 7);
    assert.equal(JSON.parse(seen.level.live), 'trace');
    assert.ok(!Number.isNaN(Date.parse(seen.replicas.since)));
    // Self-heal is on: the cluster goes back and the current drift list empties.
    await eventually(
      async () => {
        const d = await kubectlJson(staging, ['-n', 'shop', 'get', 'deploy', 'web']);
        assert.equal(d.spec.replicas, 3);
        const now = await fleet.flotillaJson<{ drift: Drift[] }>('fleet', 'drift');
        assert.equal(now.drift.filter((x) => x.cluster === 'staging').length, 0, JSON.stringify(now.drift));
      },
      { timeoutMs: 30_000 },
    );
  });

  test('3. with self-heal off, drift is reported and left in place', async () => {
    const yaml = demoRepoFiles()['flotilla.yaml']!.replace(
      'path: environments/dev\n    policy: {selfHeal: true',
      'path: environments/dev\n    policy: {selfHeal: false',
    );
    const beforeGen = await gen('dev');
    await fleet.work.commit({ 'flotilla.yaml': yaml }, 'dev: self-heal off');
    await eventually(
      async () =>
        assert.ok(
          ((await gen('dev')) ?? 0) > (beforeGen ?? 0),
          "not yet: ((await gen('dev')) ?? 0) > (beforeGen ?? 0)",
        ),
      {
        timeoutMs: 60_000,
      },
    );
    await fleet.waitSynced(['dev']);
    const dev = fleet.clusters.get('dev')!.kubeconfig;
    await kubectl(dev, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=5']);
    await eventually(
      async () => {
        const now = await fleet.flotillaJson<{ drift: { cluster: string; field: string; live: string }[] }>(
          'fleet',
          'drift',
        );
        assert.ok(
          now.drift.some(
            (d) => d.cluster === 'dev' && d.field === 'spec.replicas' && JSON.parse(d.live) === 5,
          ),
          JSON.stringify(now.drift),
        );
      },
      { timeoutMs: 30_000 },
    );
    await new Promise((r) => setTimeout(r, 3000));
    const d = await kubectlJson(dev, ['-n', 'shop', 'get', 'deploy', 'web']);
    assert.equal(d.spec.replicas, 5, 'left in place');
    const row = (await fleet.fleetStatus()).find((r) => r.name === 'dev')!;
    assert.equal(row.sync, 'OutOfSync');
    assert.ok(row.drifted >= 1);
    // `cluster show` names the object, its state and the drifted field, for one cluster.
    type Shown = {
      resources: {
        kind: string;
        name: string;
        sync: string;
        health: string;
        drift: { field: string; live: string }[];
      }[];
    };
    const shown = await fleet.flotillaJson<Shown>('cluster', 'show', 'dev');
    const web = shown.resources.find((r) => r.kind === 'Deployment' && r.name === 'web');
    assert.equal(web?.sync, 'OutOfSync');
    assert.deepEqual(
      web?.drift.map((x) => [x.field, JSON.parse(x.live)]),
      [['spec.replicas', 5]],
    );
    assert.ok(shown.resources.some((r) => r.kind === 'Service' && r.sync === 'Synced'));
    const human = await fleet.flotilla('cluster', 'show', 'dev');
    assert.match(human.stdout, /apps\/Deployment shop\/web\s+env\/dev\s+OutOfSync/);
    assert.match(human.stdout, /spec\.replicas/);
    // And to an alerting system: the hub's Prometheus metrics carry the drift per cluster.
    const metrics = await (await fetch(`${fleet.hub.http}/metrics`)).text();
    assert.match(metrics, /^flotilla_cluster_drifted_objects\{cluster="dev",environment="dev"\} [1-9]/m);
    assert.match(metrics, /^flotilla_cluster_info\{cluster="dev",environment="dev",sync="OutOfSync",/m);
  });

  test('hub killed while agents run: they keep enforcing and healing; after restart no report is lost', async () => {
    await fleet.stopHub();
    const down = new Date();
    const staging = fleet.clusters.get('staging')!.kubeconfig;
    await kubectl(staging, ['-n', 'shop', 'scale', 'deploy', 'web', '--replicas=9']);
    await eventually(
      async () => {
        const d = await kubectlJson(staging, ['-n', 'shop', 'get', 'deploy', 'web']);
        assert.equal(d.spec.replicas, 3, 'healed without the hub');
      },
      { timeoutMs: 30_000 },
    );
    const up = new Date();
    await fleet.startHub();
    // The drift that appeared and cleared while the hub was down reaches the history.
    await eventually(
      async () => {
        const all = await fleet.flotillaJson<{ drift: { cluster: string; field: string; live: string }[] }>(
          'fleet',
          'drift',
          '--history',
        );
        assert.ok(
          all.drift.some(
            (d) => d.cluster === 'staging' && d.field === 'spec.replicas' && JSON.parse(d.live) === 9,
          ),
          JSON.stringify(all.drift),
        );
      },
      { timeoutMs: 60_000 },
    );
    await fleet.waitSynced(['staging', 'prod']);
    // Every report of every agent is in the hub's rows: no agent restarted here, so each
    // cluster's seqs form one unbroken run (a gap is a lost report), stored once each, and
    // for staging the run goes through the reports it made while the hub was down and on
    // past the restart, so none of those is lost at the edge either.
    for (const cluster of ['dev', 'staging', 'prod']) {
      await eventually(
        async () => {
          const rows = await storedReports(pg.url, cluster);
          const seqs = rows.map((r) => r.seq);
          assert.deepEqual(seqs, [...new Set(seqs)], `${cluster}: no report stored twice`);
          const runs = seqRuns(seqs);
          assert.equal(runs.length, 1, `${cluster}: seq runs ${describeRuns(runs)}: a gap is a lost report`);
          if (cluster !== 'staging') return;
          const offline = rows.filter((r) => r.observedAt && r.observedAt > down && r.observedAt < up);
          assert.ok(offline.length > 0, 'staging reported the drift and its heal while the hub was down');
          assert.ok(
            rows.some((r) => r.observedAt && r.observedAt > up),
            'staging reported again after the hub came back',
          );
        },
        { timeoutMs: 30_000, message: `${cluster}: every report stored` },
      );
    }
  });
});
