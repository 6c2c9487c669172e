import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eventually, type ManagedProcess, startNatsServer, startProcess } from '@flotilla/e2e/harness';
import { startKubeProcess } from '@flotilla/e2e/kube';
import { Phase } from '@flotilla/proto';
import {
  generateSigningKey,
  importSigningKey,
  type KubeObject,
  rawPublicKey,
  trustedKeys,
  verifyStatusExport,
} from '@flotilla/shared';
import { connect } from 'nats';
import { replayOutbox } from '../outbox.js';
import { createFileIdentityStore } from '../state.js';
import {
  configMap,
  createTestPki,
  ensureBundleStream,
  type FakeHub,
  makeBundle,
  publishEnvelope,
  signedBytes,
  startFakeHub,
  tempDir,
} from '../test-support.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../bin/flotilla-agent.js');
const hubKey = generateSigningKey();
const run = promisify(execFile);

/** A real agent process against real NATS, a fake-but-real-gRPC hub and the Kubernetes API test server. */
async function fleetOfOne(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const pki = createTestPki(dir);
  const nats = await startNatsServer();
  t.after(() => nats.stop());
  // The API server in its own process, as a cluster would be: the test process only hosts the hub.
  const kube = await startKubeProcess({ dir });
  t.after(() => kube.stop());
  const kubeconfig = kube.kubeconfigPath;
  const registration = {
    token: 'tok',
    response: {
      cluster: 'dev-1',
      environment: 'dev',
      agentCredential: 'cred',
      nats: { servers: [nats.url], jwt: '', seed: '', inboxPrefix: '' },
      hubKeys: [{ keyId: hubKey.keyId, publicKey: rawPublicKey(hubKey.publicKey) }],
    },
  };
  const fixture = {
    dir,
    nats,
    kubeconfig,
    stateDir: join(dir, 'state'),
    hub: await startFakeHub(pki, registration),
    async publish(generation: number, objects: KubeObject[]) {
      const nc = await connect({ servers: nats.url });
      await ensureBundleStream(nc);
      await publishEnvelope(
        nc,
        'dev-1',
        generation,
        signedBytes(makeBundle('dev-1', generation, objects), hubKey),
      );
      await nc.close();
    },
    async kubectl(...args: string[]) {
      const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfig, ...args]);
      return stdout;
    },
    async startAgent(): Promise<ManagedProcess> {
      const p = await startProcess(
        process.execPath,
        [BIN, 'run', '--state-dir', fixture.stateDir, '--kubeconfig', kubeconfig, '--heartbeat', '2'],
        { cwd: dir, name: 'agent', ready: /agent starting/, timeoutMs: 60_000 },
      );
      t.after(() => p.stop());
      return p;
    },
  };
  t.after(() => fixture.hub.stop());
  const joined = await startProcess(
    process.execPath,
    [
      BIN,
      'join',
      '--hub',
      fixture.hub.address,
      '--token',
      'tok',
      '--ca-hash',
      pki.caHash,
      '--state-dir',
      fixture.stateDir,
    ],
    { cwd: dir, name: 'join' },
  );
  assert.equal(await joined.exited, 0, joined.log);
  return fixture;
}

const statuses = (hub: FakeHub) =>
  hub.received.flatMap((r) => (r.body.case === 'status' ? [{ seq: r.seq, status: r.body.value }] : []));

/** A failed wait shows what the agent logged, since it runs in its own process. */
async function withLog<T>(agent: ManagedProcess, wait: Promise<T>): Promise<T> {
  try {
    return await wait;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nagent log:\n${agent.log.slice(-6000)}`, { cause: err });
  }
}

/**
 * No report was lost: each agent process hands out consecutive seqs from a floor above all
 * earlier ones (the time in µs), so the seqs seen form exactly one unbroken run per process.
 */
function assertNoGaps(seqs: bigint[], processes: number) {
  const sorted = [...new Set(seqs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const runs: [bigint, bigint][] = [];
  for (const s of sorted) {
    const last = runs.at(-1);
    if (last && s === last[1] + 1n) last[1] = s;
    else runs.push([s, s]);
  }
  assert.equal(
    runs.length,
    processes,
    `seq runs ${JSON.stringify(runs.map((r) => r.map(String)))}: a gap is a lost report`,
  );
}

const namespace: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } };

test('a joined agent process applies its bundle, heals a kubectl edit, stops cleanly on SIGTERM; then import and status export work offline', async (t) => {
  const f = await fleetOfOne(t);
  const agent = await f.startAgent();
  await f.publish(1, [namespace, configMap('web-config', { LOG_LEVEL: 'info' })]);
  await eventually(
    async () =>
      assert.equal(
        await f.kubectl('-n', 'shop', 'get', 'configmap', 'web-config', '-o', 'jsonpath={.data.LOG_LEVEL}'),
        'info',
      ),
    {
      timeoutMs: 60_000,
    },
  );
  await eventually(
    () =>
      assert.ok(
        statuses(f.hub).some((s) => s.status.appliedGeneration === 1n && s.status.phase === Phase.SYNCED),
        'not yet: statuses(f.hub).some((s) => s.status.appliedGeneration === 1n && s.status.phase === Phase.SYNCED)',
      ),
    { timeoutMs: 60_000 },
  );

  await f.kubectl(
    '-n',
    'shop',
    'patch',
    'configmap',
    'web-config',
    '--type=merge',
    '-p',
    '{"data":{"LOG_LEVEL":"debug"}}',
  );
  await eventually(
    () =>
      assert.ok(
        statuses(f.hub).some((s) =>
          s.status.resources.some((r) => r.drift.some((d) => d.path === 'data.LOG_LEVEL')),
        ),
        'drift reported',
      ),
    { timeoutMs: 30_000 },
  );
  await eventually(
    async () =>
      assert.equal(
        await f.kubectl('-n', 'shop', 'get', 'configmap', 'web-config', '-o', 'jsonpath={.data.LOG_LEVEL}'),
        'info',
      ),
    {
      timeoutMs: 30_000,
      message: 'healed',
    },
  );

  agent.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.log);
  assert.match(agent.log, /outbox flushed/);

  // Air-gapped from here on: a bundle file carried in, status carried out.
  const file = join(f.dir, 'gen-2.bundle');
  writeFileSync(
    file,
    signedBytes(makeBundle('dev-1', 2, [namespace, configMap('web-config', { LOG_LEVEL: 'warn' })]), hubKey),
  );
  const imported = await startProcess(process.execPath, [BIN, 'import', file, '--state-dir', f.stateDir], {
    cwd: f.dir,
  });
  assert.equal(await imported.exited, 0, imported.log);
  assert.match(imported.log, /imported: generation 2/);
  assert.equal(
    await f.kubectl('-n', 'shop', 'get', 'configmap', 'web-config', '-o', 'jsonpath={.data.LOG_LEVEL}'),
    'warn',
  );

  const out = join(f.dir, 'status.json');
  const exported = await startProcess(
    process.execPath,
    [BIN, 'status', 'export', '-o', out, '--state-dir', f.stateDir],
    {
      cwd: f.dir,
    },
  );
  assert.equal(await exported.exited, 0, exported.log);
  const identity = (await createFileIdentityStore(f.stateDir).load())!;
  const key = importSigningKey(identity.agentKey);
  const status = verifyStatusExport(new Uint8Array(readFileSync(out)), () =>
    trustedKeys([{ keyId: key.keyId, publicKey: key.publicKey }]),
  );
  const fresh = status.reports.at(-1)!;
  assert.equal(
    fresh.body.case === 'status' && fresh.body.value.appliedGeneration,
    2n,
    'a fresh status of the import',
  );
});

test('killed mid-apply and restarted, then cut off from hub and NATS: it enforces and heals, and no report is lost or reordered', async (t) => {
  const f = await fleetOfOne(t);
  let agent = await f.startAgent();
  const objects = [
    namespace,
    ...Array.from({ length: 40 }, (_, i) => configMap(`cm-${i}`, { i: String(i) })),
  ];
  await f.publish(1, objects);
  await eventually(
    async () => assert.match(await f.kubectl('-n', 'shop', 'get', 'configmaps', '-o', 'name'), /cm-/),
    {
      timeoutMs: 60_000,
    },
  );
  agent.kill('SIGKILL');
  await agent.exited;

  agent = await f.startAgent();
  await eventually(
    async () =>
      assert.equal(
        (await f.kubectl('-n', 'shop', 'get', 'configmaps', '-o', 'name')).match(/cm-/g)?.length,
        40,
      ),
    { timeoutMs: 60_000 },
  );
  await eventually(
    () =>
      assert.ok(
        statuses(f.hub).some((s) => s.status.appliedGeneration === 1n && s.status.phase === Phase.SYNCED),
        'not yet: statuses(f.hub).some((s) => s.status.appliedGeneration === 1n && s.status.phase === Phase.SYNCED)',
      ),
    { timeoutMs: 60_000 },
  );

  // Hub and NATS go away; the cluster is still enforced.
  await f.hub.stop();
  await f.nats.process.stop();
  await f.kubectl('-n', 'shop', 'delete', 'configmap', 'cm-7');
  await withLog(
    agent,
    eventually(
      async () =>
        assert.match(await f.kubectl('-n', 'shop', 'get', 'configmap', 'cm-7', '-o', 'name'), /cm-7/),
      { timeoutMs: 60_000, message: 'healed while offline' },
    ),
  );

  // Stopped while cut off: whatever the hub never acknowledged is in the outbox, durably,
  // for the next connection (the catch-up itself is run.spec.ts's offline test).
  agent.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.log);
  const queued = replayOutbox(join(f.stateDir, 'outbox.jsonl')).reports.map((r) => r.seq);
  assert.ok(queued.length > 0, 'reports queued while offline');
  assertNoGaps([...f.hub.received.map((r) => r.seq), ...queued], 2);
});

test('manual sync holds a bundle until the hub sends SyncCommand; without selfHeal drift is reported and left', async (t) => {
  const f = await fleetOfOne(t);
  const agent = await f.startAgent();
  const policy = { sync: 'manual', selfHeal: false } as const;
  const cm = (level: string) => configMap('web-config', { LOG_LEVEL: level });
  const publish = async (generation: number, level: string) => {
    const nc = await connect({ servers: f.nats.url });
    await ensureBundleStream(nc);
    await publishEnvelope(
      nc,
      'dev-1',
      generation,
      signedBytes(makeBundle('dev-1', generation, [namespace, cm(level)], policy), hubKey),
    );
    await nc.close();
  };
  await publish(1, 'info');
  await eventually(
    () =>
      assert.ok(
        statuses(f.hub).some((s) => s.status.pendingGeneration === 1n),
        'not yet: statuses(f.hub).some((s) => s.status.pendingGeneration === 1n)',
      ),
    {
      timeoutMs: 60_000,
    },
  );
  await assert.rejects(f.kubectl('get', 'namespace', 'shop'), /NotFound/, 'held, not applied');

  f.hub.sendSync(1);
  await eventually(
    async () =>
      assert.equal(
        await f.kubectl('-n', 'shop', 'get', 'configmap', 'web-config', '-o', 'jsonpath={.data.LOG_LEVEL}'),
        'info',
      ),
    { timeoutMs: 60_000 },
  );

  await f.kubectl(
    '-n',
    'shop',
    'patch',
    'configmap',
    'web-config',
    '--type=merge',
    '-p',
    '{"data":{"LOG_LEVEL":"debug"}}',
  );
  await eventually(
    () =>
      assert.ok(
        statuses(f.hub).some((s) =>
          s.status.resources.some((r) =>
            r.drift.some((d) => d.path === 'data.LOG_LEVEL' && d.live.includes('debug')),
          ),
        ),
        "not yet: statuses(f.hub).some((s) => s.status.resources.some((r) => r.drift.some((d) => d.path === 'data.LOG_L",
      ),
    { timeoutMs: 30_000, message: 'drift reported' },
  );
  // Give a heal every chance to (wrongly) happen, then check it did not.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(
    await f.kubectl('-n', 'shop', 'get', 'configmap', 'web-config', '-o', 'jsonpath={.data.LOG_LEVEL}'),
    'debug',
  );
  agent.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.log);
});
