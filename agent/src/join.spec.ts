import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { test } from 'node:test';
import { generateSigningKey, importSigningKey, keyIdOf, rawPublicKey } from '@flotilla/shared';
import { ageRecipientOf } from '@flotilla/shared/sops';
import { ageCli } from '@flotilla/shared/sops/testing';
import { join } from './join.js';
import { readAgeKeyFile } from './secrets/index.js';
import { createFileIdentityStore, identityTrustedKeys } from './state.js';
import { createTestPki, startFakeHub, tempDir } from './test-support.js';

const hubKey = generateSigningKey();

async function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const pki = createTestPki(dir);
  const hub = await startFakeHub(pki, {
    token: 'tok-1',
    response: {
      cluster: 'dev-1',
      environment: 'dev',
      labels: { region: 'eu' },
      agentCredential: 'agent-cred-1',
      nats: {
        servers: ['nats://127.0.0.1:4222'],
        jwt: 'jwt',
        seed: 'SU-seed',
        inboxPrefix: '_INBOX_AG.dev-1',
      },
      hubKeys: [{ keyId: hubKey.keyId, publicKey: rawPublicKey(hubKey.publicKey) }],
    },
  });
  t.after(() => hub.stop());
  return { dir, pki, hub };
}

test('join with the pinned CA hash registers and stores the identity with mode 0600', async (t) => {
  const { dir, pki, hub } = await setup(t);
  const stateDir = joinPath(dir, 'state');
  const store = createFileIdentityStore(stateDir);
  const identity = await join({ hub: hub.address, token: 'tok-1', caHash: pki.caHash, store });
  assert.equal(identity.cluster, 'dev-1');
  assert.deepEqual(identity.labels, { region: 'eu' });
  assert.equal(identity.caPem.trim(), pki.caPem.trim());

  const stored = await store.load();
  assert.deepEqual(stored, identity);
  assert.equal(statSync(store.location).mode & 0o777, 0o600);
  assert.ok(identityTrustedKeys(stored!).has(hubKey.keyId), 'the hub key is pinned');
  // The hub got the public half of the agent's own key.
  const agentKey = importSigningKey(stored!.agentKey);
  assert.deepEqual(new Uint8Array(hub.registrations[0]!.agentPublicKey), rawPublicKey(agentKey.publicKey));
  assert.equal(keyIdOf(agentKey.publicKey), agentKey.keyId);
  // And the recipient of its own age key, made here and kept only here.
  assert.match(stored!.ageIdentities?.[0] ?? '', /^AGE-SECRET-KEY-1/);
  assert.equal(hub.registrations[0]!.ageRecipient, await ageRecipientOf(stored!.ageIdentities![0]!));
  assert.equal(stored!.ageRecipient, hub.registrations[0]!.ageRecipient);
  assert.equal(stored!.ageRecipientRegistered, true);
});

test('join with an age key the operator gives (age-keygen) registers that key’s recipient', async (t) => {
  const { dir, pki, hub } = await setup(t);
  const { keygen } = ageCli();
  const keyFile = joinPath(dir, 'age.txt');
  execFileSync(keygen, ['-o', keyFile], { stdio: 'pipe' });
  const store = createFileIdentityStore(joinPath(dir, 'state'));
  const identities = readAgeKeyFile(keyFile, '--age-key-file');
  const identity = await join({
    hub: hub.address,
    token: 'tok-1',
    caHash: pki.caHash,
    store,
    ageIdentities: identities,
  });
  const fromKeygen = execFileSync(keygen, ['-y', keyFile], { encoding: 'utf8' }).trim();
  assert.equal(hub.registrations[0]!.ageRecipient, fromKeygen);
  assert.deepEqual(identity.ageIdentities, identities);
});

test('join refuses a hub whose CA does not match the hash, before sending the token', async (t) => {
  const { dir, pki, hub } = await setup(t);
  const store = createFileIdentityStore(joinPath(dir, 'state'));
  await assert.rejects(
    join({ hub: hub.address, token: 'tok-1', caHash: pki.otherCaHash, store }),
    /no certificate in the chain it presents matches --ca-hash/,
  );
  assert.equal(hub.registrations.length, 0, 'the token never left the agent');
  assert.equal(await store.load(), undefined);
});

test('join reports a refused token clearly and stores nothing', async (t) => {
  const { dir, pki, hub } = await setup(t);
  const store = createFileIdentityStore(joinPath(dir, 'state'));
  await assert.rejects(
    join({ hub: hub.address, token: 'used-token', caHash: pki.caHash, store }),
    /join refused: token is unknown or already used/,
  );
  assert.equal(await store.load(), undefined);
});

test('join rejects malformed arguments naming the flag', async (t) => {
  const { dir } = await setup(t);
  const store = createFileIdentityStore(dir);
  await assert.rejects(join({ hub: 'no-port', token: 't', caHash: 'sha256:00', store }), /--hub/);
  await assert.rejects(join({ hub: '127.0.0.1:1', token: 't', caHash: 'md5:abc', store }), /--ca-hash/);
});
