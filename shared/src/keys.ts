import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { sha256Digest } from './digest.js';
import { InvalidError } from './errors.js';

/** An ed25519 signing key with the id that names it in envelopes. */
export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A public key trusted to verify envelopes, by key id. */
export type TrustedKeys = ReadonlyMap<string, KeyObject>;

/** The raw 32 bytes of an ed25519 public key. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x)
    throw new InvalidError('public key', 'is not ed25519');
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

/** An ed25519 public key from its raw 32 bytes. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new InvalidError('public key', `must be 32 bytes, got ${raw.length}`);
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/** The key id is derived from the public key, so it cannot be claimed for another key. */
export function keyIdOf(publicKey: KeyObject): string {
  return sha256Digest(rawPublicKey(publicKey)).slice(0, 'sha256:'.length + 16);
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

/** PEM (PKCS#8) of a signing key's private half, for storage at rest. */
export function exportSigningKey(key: SigningKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function importSigningKey(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

export function trustedKeys(
  keys: Iterable<{ keyId: string; publicKey: Uint8Array | KeyObject }>,
): TrustedKeys {
  const map = new Map<string, KeyObject>();
  for (const k of keys) {
    const pub = k.publicKey instanceof Uint8Array ? publicKeyFromRaw(k.publicKey) : k.publicKey;
    if (keyIdOf(pub) !== k.keyId)
      throw new InvalidError(`key ${k.keyId}`, 'key id does not match the public key');
    map.set(k.keyId, pub);
  }
  return map;
}
