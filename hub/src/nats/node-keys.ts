import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyPair } from '@nats-io/jwt';

/** The DER head of a PKCS#8 ed25519 private key; the 32-byte seed follows it. */
const PKCS8_ED25519_HEAD = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The same nkeys key pair, signing through node:crypto. nkeys does ed25519 in JavaScript
 * (tweetnacl) and derives the public key anew at every call, a scalar multiplication each:
 * one user JWT took about eight of them, most of a Register's CPU. ed25519 signatures are
 * deterministic, so the JWTs are byte for byte what nkeys signs; the public key is derived
 * once. A key pair that is not nkeys' own (no raw seed to read) is returned as it is.
 */
export function nodeKeyPair(kp: KeyPair): KeyPair {
  const raw = (kp as KeyPair & { getRawSeed?(): Uint8Array }).getRawSeed?.();
  if (!raw) return kp;
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_HEAD, raw]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  let encodedPublic: string | undefined;
  let encodedPrivate: Uint8Array | undefined;
  return {
    getPublicKey: () => (encodedPublic ??= kp.getPublicKey()),
    getPrivateKey: () => (encodedPrivate ??= kp.getPrivateKey()),
    getSeed: () => kp.getSeed(),
    sign: (input) => new Uint8Array(sign(null, input, privateKey)),
    verify: (input, sig) => verify(null, input, publicKey, sig),
    clear: () => kp.clear(),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
  };
}
