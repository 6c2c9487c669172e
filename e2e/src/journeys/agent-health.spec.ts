import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { freePort } from '../harness/free-port.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import type { ManagedProcess } from '../harness/process.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { describeRuns, seqRuns, storedReports } from '../security/support.js';
import { kubectl } from './kubectl.js';

const FLOTILLA_YAML = `environments:
  - name: dev
    path: environments/dev
    policy: {selfHeal: true, prune: true, sync: auto}
`;

/** The least stall timeout the agent takes; the watch's streams then end every 22–45 s. */
const STALL_TIMEOUT_S = 90;

/** One sample of a Prometheus text exposition: the value of `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** The outbox log (agent/src/outbox.ts) replayed: the seqs not acknowledged yet, and the last one handed out. */
function readOutbox(stateDir: string): { pending: bigint[]; last: bigint } {
  let pending: bigint[] = [];
  let last = 0n;
  for (const line of readFileSync(join(stateDir, 'outbox.jsonl'), 'utf8').split('\n')) {
    let entry: { h?: { nextSeq: string }; r?: { seq?: string }; a?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // blank, or a torn last line (never handed out)
    }
    const seen = (seq: bigint) => {
      if (seq > last) last = seq;
    };
    if (entry.h) seen(BigInt(entry.h.nextSeq) - 1n);
    if (entry.r) {
      pending.push(BigInt(entry.r.seq ?? 0));
      seen(BigInt(entry.r.seq ?? 0));
    }
    if (entry.a !== undefined) {
      const acked = BigInt(entry.a);
      pending = pending.filter((s) => s > acked);
      seen(acked);
    }
  }
  return { pending, last };
}
const pendingSeqs = (stateDir: string) => readOutbox(stateDir).pending;

/**
 * The agent as a cluster citizen, on real processes: its /healthz, /readyz and /metrics read
 * with a real HTTP client, the hub on its own PostgreSQL (so the test reads what the hub
 * stored), and the agent's API server behind a TCP proxy the test can cut or freeze.
 */
describe('agent health: /readyz, /metrics and a watchdog that restarts a wedged agent', {
  timeout: 420_000,
}, () => {
  let pg: PostgresServer;
  let fleet: Fleet;
  let proxy: TcpProxy;
  let agent: ManagedProcess;
  let base = '';
  let proxiedKubeconfig = '';
  let metricsPort = 0;
  const stateDir = () => fleet.clusters.get('w1')!.stateDir;
  const directKubeconfig = () => fleet.clusters.get('w1')!.kubeconfig;
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
  };
  const hubRow = async (): Promise<FleetStatusRow> =>
    (await fleet.fleetStatus()).find((r) => r.name === 'w1')!;
  const startAgent = async () => {
    agent = await fleet.startAgent('w1', [
      '--kubeconfig',
      proxiedKubeconfig,
      '--metrics-addr',
      `127.0.0.1:${metricsPort}`,
      '--stall-timeout',
      String(STALL_TIMEOUT_S),
      '--heartbeat',
      '1',
    ]);
    await agent.waitFor(/health and metrics endpoints listening/, 60_000);
  };

  before(async () => {
    pg = await startPostgresServer();
    fleet = await startFleet({
      repoFiles: { 'flotilla.yaml': FLOTILLA_YAML, ...appFiles('dev') },
      clusters: [{ name: 'w1', environment: 'dev' }],
      database: pg.url,
      startAgents: false,
    });
    await fleet.joinAgent('w1');
    const kubeUrl = new URL(/server: (\S+)/.exec(readFileSync(directKubeconfig(), 'utf8'))![1]!);
    proxy = await startTcpProxy({ host: kubeUrl.hostname, port: Number(kubeUrl.port) });
    proxiedKubeconfig = join(fleet.baseDir, 'w1-proxied.kubeconfig');
    writeFileSync(
      proxiedKubeconfig,
      readFileSync(directKubeconfig(), 'utf8').replaceAll(kubeUrl.origin, `http://${proxy.address}`),
    );
    metricsPort = await freePort();
    base = `http://127.0.0.1:${metricsPort}`;
  });
  after(async () => {
    await fleet?.stop();
    await proxy?.close();
    await pg?.destroy();
  });

  test('/readyz turns ready only after the first successful reconcile, and /healthz stays ok meanwhile', async () => {
    // The API server is unreachable at first: the bundle arrives and its apply fails.
    proxy.down();
    await startAgent();
    await eventually(
      async () => {
        const r = await get('/readyz');
        assert.equal(r.status, 503, r.body);
        assert.match(r.body, /not ready: the apply failed: .*inventory/, r.body);
      },
      { timeoutMs: 60_000, message: 'not ready after a failed apply' },
    );
    const metrics = (await get('/metrics')).body;
    assert.equal(sample(metrics, 'flotilla_agent_ready'), 0, 'not ready in /metrics either');
    assert.ok((sample(metrics, 'flotilla_agent_reconciles_total', { phase: 'Failed' }) ?? 0) >= 1, metrics);
    // An unreachable API server is not a wedged agent: restarting would not help.
    const health = await get('/healthz');
    assert.equal(health.status, 200, health.body);

    proxy.up();
    await eventually(
      async () => {
        const r = await get('/readyz');
        assert.equal(r.status, 200, r.body);
      },
      { timeoutMs: 90_000, message: 'ready once the self-heal re-apply succeeds' },
    );
    await fleet.waitSynced(['w1']);
  });

  test('/metrics reports the applied generation and an outbox depth that match the hub’s view', async () => {
    const row = await hubRow();
    // The hub up: nothing queued, and the hub has stored the last report the agent handed out.
    const m = await eventually(
      async () => {
        const r = await get('/metrics');
        assert.match(r.type, /^text\/plain; version=0\.0\.4/, r.type);
        assert.equal(sample(r.body, 'flotilla_agent_outbox_reports'), 0, 'every report acknowledged');
        const { last } = readOutbox(stateDir());
        const stored = (await storedReports(pg.url, 'w1')).map((s) => s.seq);
        assert.equal(stored.at(-1), last, 'the hub stored the last report handed out');
        return r.body;
      },
      { timeoutMs: 30_000, message: 'the outbox drains into the hub' },
    );
    assert.equal(
      sample(m, 'flotilla_agent_applied_generation'),
      row.generation,
      'generation as the hub has it',
    );
    assert.equal(sample(m, 'flotilla_agent_info', { cluster: 'w1' }), 1);
    assert.equal(sample(m, 'flotilla_agent_objects', { sync: 'Synced', health: 'Healthy' }), 4, m);
    assert.equal(sample(m, 'flotilla_agent_connected', { link: 'nats' }), 1, m);
    assert.equal(sample(m, 'flotilla_agent_connected', { link: 'hub' }), 1, m);
    assert.ok((sample(m, 'flotilla_agent_bundle_age_seconds') ?? -1) >= 0, m);
    const expiry = sample(m, 'flotilla_agent_credential_expiry_timestamp_seconds') ?? 0;
    assert.ok(expiry > Date.now() / 1000, `credential expiry ${expiry} is in the future`);
    assert.ok((sample(m, 'flotilla_agent_applied_objects_total', { action: 'created' }) ?? 0) >= 4, m);
    assert.ok((sample(m, 'flotilla_agent_apply_duration_seconds_count') ?? 0) >= 1, m);
    assert.ok((sample(m, 'process_resident_memory_bytes') ?? 0) > 0, m);

    // Drift made by hand is healed, and counted as healed.
    await kubectl(directKubeconfig(), [
      '-n',
      'shop',
      'patch',
      'configmap',
      'web-config',
      '--type',
      'merge',
      '-p',
      '{"data":{"LOG_LEVEL":"tampered"}}',
    ]);
    await eventually(
      async () => {
        const body = (await get('/metrics')).body;
        assert.ok((sample(body, 'flotilla_agent_drift_healed_total') ?? 0) >= 1, 'drift healed counted');
        assert.ok((sample(body, 'flotilla_agent_heals_total') ?? 0) >= 1, 're-apply counted');
        assert.equal(sample(body, 'flotilla_agent_drift_open_objects'), 0, 'no drift left open');
      },
      { timeoutMs: 30_000, message: 'the hand change is healed and counted' },
    );

    // With the hub away, reports queue: the depth is what the hub has not acknowledged, and it
    // holds every report the hub has not stored.
    await fleet.stopHub();
    try {
      const { depth, pending, last } = await eventually(
        async () => {
          const before = readOutbox(stateDir());
          const body = (await get('/metrics')).body;
          const after = readOutbox(stateDir());
          assert.equal(after.last, before.last, 'no report appended while scraping');
          const depth = sample(body, 'flotilla_agent_outbox_reports') ?? -1;
          assert.ok(depth >= 3, `depth ${depth}`);
          assert.equal(depth, after.pending.length, 'depth as in the outbox log');
          assert.equal(sample(body, 'flotilla_agent_connected', { link: 'hub' }), 0);
          assert.ok((sample(body, 'flotilla_agent_outbox_oldest_report_age_seconds') ?? 0) > 0, body);
          return { depth, ...after };
        },
        { timeoutMs: 30_000, intervalMs: 300, message: 'reports queue while the hub is away' },
      );
      const stored = (await storedReports(pg.url, 'w1')).map((r) => r.seq);
      const storedSet = new Set(stored);
      const missing: bigint[] = [];
      for (let seq = stored[0]!; seq <= last; seq++) if (!storedSet.has(seq)) missing.push(seq);
      assert.ok(missing.length > 0, 'some reports did not reach the hub');
      for (const seq of missing)
        assert.ok(pending.includes(seq), `report ${seq}, not stored, is in the outbox`);
      // At most the reports in flight when the hub went away were stored without their ack.
      assert.ok(depth - missing.length <= 3, `${depth - missing.length} stored but unacknowledged`);
      // A hub that cannot be reached is not a wedged agent either.
      const health = await get('/healthz');
      assert.equal(health.status, 200, health.body);
    } finally {
      await fleet.startHub();
    }
    const queued = pendingSeqs(stateDir());
    await eventually(
      async () => {
        const body = (await get('/metrics')).body;
        assert.equal(sample(body, 'flotilla_agent_outbox_reports'), 0, 'the outbox drains');
        assert.equal(sample(body, 'flotilla_agent_connected', { link: 'hub' }), 1);
        assert.ok((sample(body, 'flotilla_agent_reconnects_total', { link: 'hub' }) ?? 0) >= 1, body);
      },
      { timeoutMs: 60_000, message: 'the agent is back with the hub' },
    );
    const stored = new Set((await storedReports(pg.url, 'w1')).map((r) => r.seq));
    for (const seq of queued)
      assert.ok(stored.has(seq), `report ${seq}, queued while the hub was away, is stored`);
  });

  test('a stalled watch loop fails /healthz within its bound; a restarted agent resumes with no report lost', async () => {
    const healthy = await get('/healthz');
    assert.equal(healthy.status, 200, healthy.body);
    const generation = (await hubRow()).generation;

    // The link to the API server dies without a word: the watch's streams hang.
    proxy.freeze();
    const frozenAt = Date.now();
    const stalled = await eventually(
      async () => {
        const r = await get('/healthz');
        assert.equal(r.status, 503, r.body);
        return r.body;
      },
      { timeoutMs: (STALL_TIMEOUT_S + 20) * 1000, intervalMs: 500, message: '/healthz fails' },
    );
    const waitedS = (Date.now() - frozenAt) / 1000;
    // The test server sends a bookmark every 5 s: the last sign of life came at most that long before.
    assert.ok(waitedS >= STALL_TIMEOUT_S - 10, `not before the watch was silent that long (${waitedS} s)`);
    assert.match(stalled, /^stalled\n/, stalled);
    assert.match(stalled, /^watch: stalled \(/m, stalled);
    for (const loop of ['pull', 'reconcile', 'status'])
      assert.doesNotMatch(stalled, new RegExp(`^${loop}: stalled`, 'm'), stalled);
    const m = (await get('/metrics')).body;
    assert.equal(sample(m, 'flotilla_agent_loop_stalled', { loop: 'watch' }), 1, m);
    assert.match(agent.log, /loop stalled/, 'the stall is logged');

    // The kubelet's restart, the hard way, with reports still unacknowledged: the hub is away.
    await fleet.stopHub();
    let atKill: bigint[] = [];
    try {
      atKill = await eventually(
        () => {
          const p = pendingSeqs(stateDir());
          assert.ok(p.length >= 2, `${p.length} reports queued`);
          return p;
        },
        { timeoutMs: 30_000, message: 'reports queue' },
      );
      agent.kill('SIGKILL');
      assert.equal(await agent.exited, null, 'killed by a signal');
      atKill = pendingSeqs(stateDir());
      proxy.up();
    } finally {
      await fleet.startHub();
    }
    await startAgent();

    // From its state dir, the new agent enforces the last bundle and is ready and healthy.
    await eventually(
      async () => {
        const ready = await get('/readyz');
        assert.equal(ready.status, 200, ready.body);
        const live = await get('/healthz');
        assert.equal(live.status, 200, live.body);
        const body = (await get('/metrics')).body;
        assert.equal(sample(body, 'flotilla_agent_applied_generation'), generation);
        assert.equal(sample(body, 'flotilla_agent_outbox_reports'), 0, 'the outbox drains');
      },
      { timeoutMs: 90_000, message: 'the restarted agent is ready, healthy and drained' },
    );
    await fleet.waitSynced(['w1']);
    const seqs = (await storedReports(pg.url, 'w1')).map((r) => r.seq);
    for (const seq of atKill) assert.ok(seqs.includes(seq), `report ${seq}, queued at the kill, is stored`);
    assert.deepEqual(seqs, [...new Set(seqs)], 'no report stored twice');
    // Two agent processes ran (the one killed, the one restarted): one unbroken run of seqs each.
    const runs = seqRuns(seqs);
    assert.equal(runs.length, 2, `seq runs ${describeRuns(runs)}: a gap is a lost report`);
  });
});
