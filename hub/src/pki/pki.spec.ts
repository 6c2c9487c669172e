import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Bundle, DEFAULT_SYNC_POLICY, trustedKeys, verifyBundle } from '@flotilla/shared';
import { signWithRing } from '../bundles/publish-cluster.js';
import { initDataDir } from './init.js';
import { ensureAdminToken, hashSecret, secretMatches } from './secrets.js';
import { createSigningKeyStore, rotateSigningKey } from './signing-keys.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'flotilla-pki-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('hub data dir', () => {
  test('init is idempotent: the same CA, keys and NATS identity on a second run; the admin token only once', async () => {
    const dir = tempDir();
    const first = await initDataDir(dir);
    const second = await initDataDir(dir);
    assert.ok(first.newAdminToken);
    assert.equal(second.newAdminToken, undefined);
    assert.equal(first.tls.caHash, second.tls.caHash);
    assert.equal(first.signingKeys.current.keyId, second.signingKeys.current.keyId);
    assert.equal(first.nats.account.getPublicKey(), second.nats.account.getPublicKey());
    assert.equal(statSync(join(dir, 'admin-token.sha256')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'signing-keys.json')).mode & 0o777, 0o600);
    assert.ok(!readFileSync(join(dir, 'admin-token.sha256'), 'utf8').includes(first.newAdminToken!));
  });

  test('the CA hash is sha256 of the CA DER; the server presents its certificate then the CA, with the SANs', async () => {
    const dir = tempDir();
    const { tls } = await initDataDir(dir, { tlsSans: ['hub.example.com', '10.1.2.3'] });
    const ca = new X509Certificate(tls.caPem);
    assert.equal(tls.caHash, `sha256:${createHash('sha256').update(ca.raw).digest('hex')}`);
    const [leafPem] = tls.chainPem.split(/(?<=-----END CERTIFICATE-----)\n/);
    const leaf = new X509Certificate(leafPem!);
    assert.ok(leaf.verify(ca.publicKey));
    assert.ok(tls.chainPem.trim().endsWith(tls.caPem.trim()));
    for (const san of ['DNS:localhost', 'IP Address:127.0.0.1', 'DNS:hub.example.com', 'IP Address:10.1.2.3'])
      assert.ok(leaf.subjectAltName?.includes(san), `${san} in ${leaf.subjectAltName}`);
    assert.equal(leaf.checkHost('localhost'), 'localhost');
    // A new SAN re-issues the server certificate under the same CA: pinned hashes stay valid.
    const again = await initDataDir(dir, { tlsSans: ['other.example.com'] });
    assert.equal(again.tls.caHash, tls.caHash);
    assert.ok(
      new X509Certificate(
        again.tls.chainPem.split('-----END CERTIFICATE-----')[0]! + '-----END CERTIFICATE-----',
      ).subjectAltName?.includes('DNS:other.example.com'),
    );
  });

  test('admin token checks are by hash, in constant time', () => {
    const dir = tempDir();
    const { hash, created } = ensureAdminToken(dir);
    assert.equal(hash, hashSecret(created!));
    assert.ok(secretMatches(created!, hash));
    assert.ok(!secretMatches(`${created}x`, hash));
  });
});

describe('signing key rotation', () => {
  const bundle: Bundle = {
    cluster: 'c1',
    environment: 'dev',
    generation: 1,
    revision: 'r',
    source: { url: 'https://git.example/fleet.git', branch: 'main', path: 'environments/dev' },
    createdAt: new Date(0).toISOString(),
    policy: DEFAULT_SYNC_POLICY,
    contentDigest: '',
    objects: [],
  };

  test('after a rotation the newest key signs and agents pinned to the old key still verify', async () => {
    const dir = tempDir();
    const store = createSigningKeyStore(dir);
    const old = store.ring().current;
    const ring = store.rotate();
    assert.notEqual(ring.current.keyId, old.keyId);
    assert.equal(ring.all.length, 2);
    const { contentDigest } = await import('@flotilla/shared');
    const b = { ...bundle, contentDigest: contentDigest([], DEFAULT_SYNC_POLICY) };
    const envelope = signWithRing(b, ring);
    assert.equal(envelope.signatures[0]?.keyid, ring.current.keyId);
    const onlyOld = trustedKeys([{ keyId: old.keyId, publicKey: old.publicKey }]);
    const onlyNew = trustedKeys([{ keyId: ring.current.keyId, publicKey: ring.current.publicKey }]);
    assert.equal(verifyBundle(envelope, { cluster: 'c1', keys: onlyOld }).generation, 1);
    assert.equal(verifyBundle(envelope, { cluster: 'c1', keys: onlyNew }).generation, 1);
  });

  test('a rotation done next to a running hub (rotate-key --data-dir) is picked up by it', async () => {
    const dir = tempDir();
    const store = createSigningKeyStore(dir);
    const before = store.ring().current.keyId;
    await new Promise((r) => setTimeout(r, 20));
    const rotated = rotateSigningKey(dir);
    assert.notEqual(rotated.current.keyId, before);
    assert.equal(store.ring().current.keyId, rotated.current.keyId);
  });
});
