import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startProcess } from '@flotilla/e2e/harness';
import {
  generateSigningKey,
  importSigningKey,
  rawPublicKey,
  trustedKeys,
  verifyStatusExport,
} from '@flotilla/shared';
import { createBundleStore, createFileIdentityStore } from '../state.js';
import { createTestPki, makeBundle, signedBytes, startFakeHub, tempDir } from '../test-support.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../bin/flotilla-agent.js');
const hubKey = generateSigningKey();

/** Runs the real bin in its own process and returns its exit code and output. */
async function cli(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  const p = await startProcess(process.execPath, [BIN, ...args], {
    cwd,
    name: `flotilla-agent ${args[0]}`,
    env: { ...process.env, FLOTILLA_AGENT_LOG_LEVEL: 'warn' },
  });
  const code = await p.exited;
  return { code, out: p.log };
}

async function joined(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const pki = createTestPki(dir);
  const hub = await startFakeHub(pki, {
    token: 'tok-1',
    response: {
      cluster: 'edge-1',
      environment: 'prod',
      labels: { site: 'ship' },
      agentCredential: 'cred',
      nats: { servers: ['nats://127.0.0.1:1'], jwt: '', seed: '', inboxPrefix: '' },
      hubKeys: [{ keyId: hubKey.keyId, publicKey: rawPublicKey(hubKey.publicKey) }],
    },
  });
  t.after(() => hub.stop());
  const stateDir = join(dir, 'state');
  return { dir, pki, hub, stateDir };
}

test('flotilla-agent join pins the CA hash, stores the identity 0600, and refuses a wrong hash with a clear error', async (t) => {
  const { dir, pki, hub, stateDir } = await joined(t);
  const wrong = await cli(
    ['join', '--hub', hub.address, '--token', 'tok-1', '--ca-hash', pki.otherCaHash, '--state-dir', stateDir],
    dir,
  );
  assert.equal(wrong.code, 1);
  assert.match(wrong.out, /flotilla-agent join: hub 127\.0\.0\.1:\d+: no certificate .* matches --ca-hash/);

  const ok = await cli(
    ['join', '--hub', hub.address, '--token', 'tok-1', '--ca-hash', pki.caHash, '--state-dir', stateDir],
    dir,
  );
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /joined: cluster edge-1 \(environment prod\)/);
  const identity = await createFileIdentityStore(stateDir).load();
  assert.equal(identity?.cluster, 'edge-1');
  assert.equal(statSync(join(stateDir, 'identity.json')).mode & 0o777, 0o600);

  const usage = await cli(['join', '--hub', hub.address], dir);
  assert.equal(usage.code, 2);
  assert.match(usage.out, /--token: is required/);
});

test('flotilla-agent import refuses tampered and older files with a non-zero exit, before touching any cluster', async (t) => {
  const { dir, pki, hub, stateDir } = await joined(t);
  await cli(
    ['join', '--hub', hub.address, '--token', 'tok-1', '--ca-hash', pki.caHash, '--state-dir', stateDir],
    dir,
  );
  // Generation 3 is the last good bundle already.
  createBundleStore(stateDir).write(signedBytes(makeBundle('edge-1', 3), hubKey));
  const older = join(dir, 'older.json');
  writeFileSync(older, signedBytes(makeBundle('edge-1', 2), hubKey));
  const tampered = join(dir, 'tampered.json');
  const envelope = JSON.parse(Buffer.from(signedBytes(makeBundle('edge-1', 4), hubKey)).toString());
  envelope.payload = Buffer.from(JSON.stringify(makeBundle('edge-1', 5))).toString('base64');
  writeFileSync(tampered, JSON.stringify(envelope));
  const foreign = join(dir, 'foreign.json');
  writeFileSync(foreign, signedBytes(makeBundle('other', 9), hubKey));
  // A kubeconfig that points nowhere: a refused file must fail on verification, not on the cluster.
  const kubeconfig = join(dir, 'missing-kubeconfig');

  for (const [file, reason] of [
    [older, 'stale-generation'],
    [tampered, 'bad-signature'],
    [foreign, 'wrong-cluster'],
  ] as const) {
    const r = await cli(['import', file, '--state-dir', stateDir, '--kubeconfig', kubeconfig], dir);
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.out,
      new RegExp(`flotilla-agent import: .*${file.split('/').pop()}: bundle refused \\(${reason}\\)`),
    );
  }
});

test('flotilla-agent status export writes a file the hub verifies with the agent key', async (t) => {
  const { dir, pki, hub, stateDir } = await joined(t);
  await cli(
    ['join', '--hub', hub.address, '--token', 'tok-1', '--ca-hash', pki.caHash, '--state-dir', stateDir],
    dir,
  );
  const file = join(dir, 'status.json');
  const r = await cli(
    ['status', 'export', '-o', file, '--state-dir', stateDir, '--kubeconfig', join(dir, 'nope')],
    dir,
  );
  assert.equal(r.code, 0, r.out);
  const identity = (await createFileIdentityStore(stateDir).load())!;
  const key = importSigningKey(identity.agentKey);
  const exported = verifyStatusExport(new Uint8Array(readFileSync(file)), (c) =>
    c === 'edge-1' ? trustedKeys([{ keyId: key.keyId, publicKey: key.publicKey }]) : undefined,
  );
  assert.equal(exported.cluster, 'edge-1');
});

test('flotilla-agent run refuses a bad --metrics-addr, a too short --stall-timeout and a taken port, before taking the state dir', async (t) => {
  const { dir, pki, hub, stateDir } = await joined(t);
  await cli(
    ['join', '--hub', hub.address, '--token', 'tok-1', '--ca-hash', pki.caHash, '--state-dir', stateDir],
    dir,
  );
  // A cluster that is never reached: each refusal comes before the agent starts.
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]\n' +
      'contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n',
  );
  const run = (...args: string[]) =>
    cli(['run', '--state-dir', stateDir, '--kubeconfig', kubeconfig, ...args], dir);

  const addr = await run('--metrics-addr', '8080');
  assert.equal(addr.code, 2, addr.out);
  assert.match(addr.out, /flotilla-agent run: --metrics-addr: "8080" is not HOST:PORT or :PORT/);

  const short = await run('--metrics-addr', '127.0.0.1:0', '--stall-timeout', '5');
  assert.equal(short.code, 2, short.out);
  assert.match(short.out, /--stall-timeout: "5" is not a number of seconds of at least 90/);

  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const busy = await run('--metrics-addr', `127.0.0.1:${port}`);
  assert.equal(busy.code, 2, busy.out);
  assert.match(
    busy.out,
    new RegExp(`--metrics-addr: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
  );
  assert.equal(existsSync(join(stateDir, 'outbox.jsonl')), false, 'the agent never started');
});

test('flotilla-agent --log-format pretty writes readable lines instead of JSON, and an unknown format is a usage error', async (t) => {
  const { dir, pki, hub, stateDir } = await joined(t);
  const run = async (args: string[]) => {
    const p = await startProcess(process.execPath, [BIN, ...args], {
      cwd: dir,
      name: `flotilla-agent ${args[0]}`,
      env: { ...process.env, FLOTILLA_AGENT_LOG_LEVEL: 'info' },
    });
    return { code: await p.exited, out: p.log };
  };
  const joinArgs = [
    'join',
    '--hub',
    hub.address,
    '--token',
    'tok-1',
    '--ca-hash',
    pki.caHash,
    '--state-dir',
    stateDir,
  ];
  const pretty = await run([...joinArgs, '--log-format', 'pretty']);
  assert.equal(pretty.code, 0, pretty.out);
  assert.match(pretty.out, /INFO \(agent\/\d+\): hub CA pinned/, 'the info line is printed for a person');
  assert.doesNotMatch(pretty.out, /\{"level":/, 'no JSON log line');
  const bad = await run(['--log-format=xml', ...joinArgs]);
  assert.equal(bad.code, 2, bad.out);
  assert.match(bad.out, /--log-format: "xml" is not json or pretty/);
});
