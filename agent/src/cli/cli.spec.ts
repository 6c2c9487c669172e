import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
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
