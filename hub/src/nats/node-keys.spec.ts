import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAccount, createOperator, createUser, decode, fromPublic } from '@nats-io/jwt';
import { loadNatsIdentity, mintAgentUser } from './identity.js';
import { nodeKeyPair } from './node-keys.js';

test('a node:crypto key pair signs byte for byte as nkeys does, and verifies only its own signatures', () => {
  const keys = [
    createOperator(),
    ...Array.from({ length: 20 }, () => [createUser(), createAccount()]).flat(),
  ];
  for (const kp of keys) {
    const fast = nodeKeyPair(kp);
    const data = new TextEncoder().encode(`payload for ${kp.getPublicKey()}`);
    assert.equal(fast.getPublicKey(), kp.getPublicKey());
    assert.deepEqual(fast.getPrivateKey(), kp.getPrivateKey());
    assert.deepEqual(fast.sign(data), kp.sign(data));
    assert.equal(fast.verify(data, kp.sign(data)), true);
    assert.equal(fast.verify(data, createUser().sign(data)), false, "another key's signature");
  }
});

test("an agent's user JWT is signed by the fleet account and verifies with its public key", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const identity = await loadNatsIdentity(dir);
  const user = await mintAgentUser(identity, 'dev-1');
  const claims = decode(user.jwt);
  assert.equal(claims.iss, identity.account.getPublicKey());
  assert.equal(claims.sub, user.publicKey);
  const [head, body, sig] = user.jwt.split('.');
  const verified = fromPublic(claims.iss).verify(
    new TextEncoder().encode(`${head}.${body}`),
    Buffer.from(sig!, 'base64url'),
  );
  assert.equal(verified, true, 'the JWT signature checks against the account key');
});
