import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import type { KeyPair } from '@nats-io/jwt';

/** The DER head of a PKCS#8 ed25519 private key; the 32-byte seed follows it. */
const PKCS8_ED25519_HEAD = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The same nkeys key pair, signing through node:crypto. nkeys does ed25519 in JavaScript
 * (tweetnacl) and derives the public key anew at every call, a scalar multiplication each:
 * one user JWT took about eight of them, most of a Register's CPU. ed25519 signatures are
 * deterministic, so the JWTs are byte for byte what nkeys signs; the public key is derived
 * by node:crypto too, once. A key pair that is not nkeys' own (no raw seed to read) is returned as it is.
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
  const seed = new TextDecoder().decode(kp.getSeed());
  // A seed reads `S` + the role's letter (`SU…` a user): the role's prefix byte is that letter's value << 3.
  const role = BASE32.indexOf(seed[1] ?? '') << 3;
  let encodedPublic: string | undefined;
  let encodedPrivate: Uint8Array | undefined;
  return {
    getPublicKey: () => (encodedPublic ??= encodePublicKey(role, publicKey)),
    getPrivateKey: () => (encodedPrivate ??= kp.getPrivateKey()),
    getSeed: () => kp.getSeed(),
    sign: (input) => new Uint8Array(sign(null, input, privateKey)),
    verify: (input, sig) => verify(null, input, publicKey, sig),
    clear: () => kp.clear(),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
  };
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** An nkeys public key: base32 of the role byte, the raw key and their CRC-16/XMODEM, little-endian. */
function encodePublicKey(role: number, key: KeyObject): string {
  const raw = Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
  const bytes = new Uint8Array(raw.length + 3);
  bytes[0] = role;
  bytes.set(raw, 1);
  const crc = crc16(bytes.subarray(0, raw.length + 1));
  bytes[raw.length + 1] = crc & 0xff;
  bytes[raw.length + 2] = crc >> 8;
  let out = '';
  let value = 0;
  let bits = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffffff;
    bits += 8;
    for (; bits >= 5; bits -= 5) out += BASE32[(value >>> (bits - 5)) & 31];
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const b of data) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
