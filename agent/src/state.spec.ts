import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startKubeServer } from '@flotilla/e2e/kube';
import { generateSigningKey } from '@flotilla/shared';
import { KubeConfig } from '@kubernetes/client-node';
import {
  type AgentIdentity,
  createBundleStore,
  createFileIdentityStore,
  createSecretIdentityStore,
  credentialRotationDue,
  encodeAgentKey,
  lockStateDir,
  stateDirHolder,
  writeFileDurable,
} from './state.js';
import { tempDir } from './test-support.js';

const IDENTITY: AgentIdentity = {
  hub: 'hub.example:7443',
  caPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
  cluster: 'dev-1',
  environment: 'dev',
  labels: { region: 'eu' },
  agentCredential: 'secret-credential',
  nats: { servers: ['nats://n:4222'], jwt: 'jwt', seed: 'seed', inboxPrefix: '_INBOX_AG.dev-1' },
  hubKeys: [],
  agentKey: encodeAgentKey(generateSigningKey()),
  registeredAt: new Date(0).toISOString(),
};
const identity = (): AgentIdentity => structuredClone(IDENTITY);

test('the file identity store round-trips with mode 0600 and leaves no temp files', async (t) => {
  const dir = join(tempDir(t), 'state');
  const store = createFileIdentityStore(dir);
  assert.equal(await store.load(), undefined);
  await store.save(identity());
  assert.deepEqual(await store.load(), identity());
  assert.equal(statSync(store.location).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['identity.json']);
});

test('a corrupt identity file is an error naming the file, not a silent re-join', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'identity.json'), '{"hub":');
  await assert.rejects(createFileIdentityStore(dir).load(), /identity\.json: is not JSON/);
});

test('the last good bundle is stored as the exact bytes given', (t) => {
  const store = createBundleStore(tempDir(t));
  assert.equal(store.read(), undefined);
  const bytes = new TextEncoder().encode('{"payloadType":"x"}');
  store.write(bytes);
  assert.deepEqual(store.read(), bytes);
  assert.equal(statSync(store.path).mode & 0o777, 0o600);
});

test('a durable write makes its missing directory (mode 0700), then replaces the file in place', (t) => {
  const path = join(tempDir(t), 'state', 'nested', 'file.json');
  writeFileDurable(path, 'one');
  assert.equal(readFileSync(path, 'utf8'), 'one');
  assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
  writeFileDurable(path, 'two');
  assert.equal(readFileSync(path, 'utf8'), 'two');
  assert.deepEqual(readdirSync(join(path, '..')), ['file.json'], 'no temp file left');
});

test('a state dir is held by one process at a time; a lock left by a dead process is taken over', (t) => {
  const dir = tempDir(t);
  // Held by a live process (this test's parent stands in for another agent).
  writeFileSync(join(dir, 'agent.pid'), String(process.ppid));
  assert.equal(stateDirHolder(dir), process.ppid);
  assert.throws(() => lockStateDir(dir), /in use by process/);
  // Left behind by a process that is gone.
  writeFileSync(join(dir, 'agent.pid'), '999999999');
  const lock = lockStateDir(dir);
  assert.equal(stateDirHolder(dir), process.pid);
  assert.throws(() => lockStateDir(dir), /in use by process/, 'not twice in one process either');
  lock.release();
  assert.equal(stateDirHolder(dir), undefined);
});

test('in a cluster the identity lives in Secret flotilla-agent of the agent namespace', async (t) => {
  const kube = await startKubeServer();
  t.after(() => kube.stop());
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(kube.kubeconfig);
  const store = createSecretIdentityStore({ kubeConfig, namespace: 'default' });
  assert.equal(store.location, 'Secret default/flotilla-agent');
  assert.equal(await store.load(), undefined);
  await store.save(identity());
  assert.deepEqual(await store.load(), identity());
  const updated = { ...identity(), agentCredential: 'rotated' };
  await store.save(updated);
  assert.equal((await store.load())?.agentCredential, 'rotated');
});

test('an age recipient the hub does not have yet makes a credential rotation due at once, to carry it', () => {
  const now = new Date('2026-01-02T00:00:00Z');
  const fresh: AgentIdentity = {
    ...identity(),
    registeredAt: '2026-01-01T00:00:00Z',
    credentialExpiresAt: '2026-04-01T00:00:00Z',
  };
  assert.equal(credentialRotationDue(fresh, now), false, 'a fresh credential is not due');
  const withKey = { ...fresh, ageIdentities: ['AGE-SECRET-KEY-1X'], ageRecipient: 'age1x' };
  assert.equal(credentialRotationDue({ ...withKey, ageRecipientRegistered: false }, now), true);
  assert.equal(credentialRotationDue({ ...withKey, ageRecipientRegistered: true }, now), false);
});
