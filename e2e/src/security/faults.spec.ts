import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { notifySubject } from '@flotilla/shared';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { kubectlJson } from '../journeys/kubectl.js';
import { connectAsHub, describeRuns, seqRuns, storedReports, within } from './support.js';

const FLOTILLA_YAML = `environments:
  - name: dev
    path: environments/dev
`;

type Row = FleetStatusRow & { desiredGeneration: number | null };

/**
 * The agent's outbox log (agent/src/outbox.ts), replayed: the reports still unacknowledged,
 * every seq seen in it, and the next seq the agent will hand out.
 */
function readOutbox(stateDir: string): { pending: bigint[]; seen: bigint[]; nextSeq: bigint } {
  let pending: bigint[] = [];
  const seen: bigint[] = [];
  let nextSeq = 1n;
  for (const line of readFileSync(join(stateDir, 'outbox.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let entry: { h?: { nextSeq: string }; r?: { seq?: string }; a?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a torn last line is never handed out
    }
    if (entry.h && BigInt(entry.h.nextSeq) > nextSeq) nextSeq = BigInt(entry.h.nextSeq);
    if (entry.r) {
      const seq = BigInt(entry.r.seq ?? 0);
      seen.push(seq);
      pending.push(seq);
      if (seq >= nextSeq) nextSeq = seq + 1n;
    }
    if (entry.a !== undefined) {
      const acked = BigInt(entry.a);
      pending = pending.filter((s) => s > acked);
      if (acked >= nextSeq) nextSeq = acked + 1n;
    }
  }
  return { pending, seen, nextSeq };
}

/** Row 6 of the security matrix: NATS and agent processes fail, the fleet still converges. */
describe('faults: nats-server restarts and agent kills, on real processes', { timeout: 300_000 }, () => {
  // The hub runs on a PostgreSQL of the test's own, so the test can read the rows it stored.
  let pg: PostgresServer;
  let fleet: Fleet;
  let replicas = 2;
  const rows = async () => (await fleet.fleetStatus()) as Row[];
  const row = async (name: string) => (await rows()).find((r) => r.name === name)!;
  const liveReplicas = async (cluster: string) =>
    (await kubectlJson(fleet.clusters.get(cluster)!.kubeconfig, ['-n', 'shop', 'get', 'deploy', 'web'])).spec
      .replicas as number;
  /** Commits a new replica count for dev and returns the revision. */
  const bump = async (message: string) => {
    replicas++;
    const rev = await fleet.work.commit(appFiles('dev', { replicas }), message);
    await fleet.poke();
    return rev;
  };
  const converged = async (rev: string) => {
    await fleet.waitSynced(['f1', 'f2'], { revision: { f1: rev, f2: rev } });
    for (const name of ['f1', 'f2']) {
      const r = await row(name);
      assert.equal(r.generation, r.desiredGeneration, `${name}: ${JSON.stringify(r)}`);
      assert.equal(await liveReplicas(name), replicas, `${name} runs the commit`);
    }
  };

  before(async () => {
    pg = await startPostgresServer();
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('dev') },
      clusters: [
        { name: 'f1', environment: 'dev' },
        { name: 'f2', environment: 'dev' },
      ],
      database: pg.url,
    });
    await fleet.waitSynced();
  });
  after(async () => {
    await fleet?.stop();
    await pg?.destroy();
  });

  test('nats-server restarted while agents run: a commit afterwards still converges on every cluster', async () => {
    await fleet.nats.restart();
    const rev = await bump('dev: after a NATS restart');
    await converged(rev);
    for (const name of ['f1', 'f2']) assert.ok(fleet.clusters.get(name)!.agent!.alive);
  });

  test('a commit made while nats-server is down is published once it is back, and converges', async () => {
    const before = await row('f1');
    await fleet.nats.process.stop();
    const rev = await bump('dev: while NATS is down');
    // The hub stores the new generation (it is the desired state) but cannot deliver it.
    await eventually(
      async () => assert.equal((await row('f1')).desiredGeneration, (before.desiredGeneration ?? 0) + 1),
      { timeoutMs: 60_000, message: 'the hub records the new generation while NATS is down' },
    );
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await row('f1')).generation, before.generation, 'nothing reached the agent without NATS');
    await fleet.nats.restart();
    await converged(rev);
  });

  test('an agent killed with SIGKILL right after a commit is published converges after restart, no status lost or doubled', async () => {
    const before = await row('f1');
    const killed = fleet.clusters.get('f1')!.agent!;
    // The hub's notify is the moment of publication: the agent gets the same message and is killed as it pulls.
    const hub = await connectAsHub(fleet);
    let rev = '';
    try {
      const published = new Promise<void>((resolve) => {
        hub.subscribe(notifySubject('f1'), {
          max: 1,
          callback: () => {
            killed.kill('SIGKILL');
            resolve();
          },
        });
      });
      await hub.flush();
      rev = await bump('dev: agent killed');
      await within(published, 60_000, 'the hub publishing the commit');
    } finally {
      await hub.close();
    }
    assert.equal(await killed.exited, null, 'killed by a signal, not exited');
    assert.equal((await row('f1')).desiredGeneration, (before.desiredGeneration ?? 0) + 1);
    const stateDir = fleet.clusters.get('f1')!.stateDir;
    const beforeRestart = readOutbox(stateDir);

    await fleet.startAgent('f1');
    await converged(rev);
    const r = await row('f1');
    assert.equal(r.generation, (before.desiredGeneration ?? 0) + 1, 'exactly one new generation');

    // Seqs go on from where the killed process stopped (none is handed out twice), and
    // everything the agent wrote, before and after the kill, is acknowledged by the hub.
    const drained = await eventually(
      () => {
        const now = readOutbox(stateDir);
        assert.deepEqual(now.seen, [...new Set(now.seen)], 'no seq twice in the log');
        assert.ok(
          now.nextSeq > beforeRestart.nextSeq,
          `next seq ${now.nextSeq} after ${beforeRestart.nextSeq}`,
        );
        assert.deepEqual(now.pending, [], 'every report acknowledged');
        return now;
      },
      { timeoutMs: 30_000, message: 'the outbox drains with seqs that keep increasing' },
    );

    // And the hub's own rows say the same: each report stored once, none missing.
    const seqs = (await storedReports(pg.url, 'f1')).map((r) => r.seq);
    assert.deepEqual(seqs, [...new Set(seqs)], 'no report stored twice');
    for (const seq of beforeRestart.seen)
      assert.ok(seqs.includes(seq), `report ${seq}, written by the killed agent, is stored`);
    const runs = seqRuns(seqs);
    // Two agent processes ran (the one killed, the one restarted): one unbroken run each.
    assert.equal(runs.length, 2, `seq runs ${describeRuns(runs)}: a gap is a lost report`);
    assert.ok(
      runs[1]!.at(-1)! >= drained.nextSeq - 1n,
      `the restarted agent's reports up to ${drained.nextSeq - 1n} are stored: ${describeRuns(runs)}`,
    );
    const metrics = await (await fetch(`${fleet.hub.http}/metrics`)).text();
    assert.doesNotMatch(metrics, /flotilla_status_reports_total\{outcome="failed"\}/, metrics);
  });
});
