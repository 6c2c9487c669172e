import { sign as edSign, verify as edVerify } from 'node:crypto';
import { ErrorCode, FlotillaError } from './errors.js';
import type { SigningKey, TrustedKeys } from './keys.js';

/**
 * A DSSE envelope (https://github.com/secure-systems-lab/dsse): the payload travels as
 * the exact bytes that were signed, with its type bound into the signature (PAE).
 */
export interface Envelope {
  payloadType: string;
  /** base64 of the payload bytes. */
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export const VerifyErrorCode = {
  Malformed: 'malformed',
  BadSignature: 'bad-signature',
  UnknownKey: 'unknown-key',
  WrongPayloadType: 'wrong-payload-type',
  WrongCluster: 'wrong-cluster',
  StaleGeneration: 'stale-generation',
  DigestMismatch: 'digest-mismatch',
} as const;
export type VerifyErrorCode = (typeof VerifyErrorCode)[keyof typeof VerifyErrorCode];

/** Why an envelope or bundle was refused; `reason` is safe to report (no payload content). */
export class VerifyError extends FlotillaError {
  readonly reason: VerifyErrorCode;
  constructor(reason: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Verify, `bundle refused (${reason}): ${message}`, options);
    this.name = 'VerifyError';
    this.reason = reason;
  }
}

/** DSSE pre-authentication encoding: binds the payload type into what is signed. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
}

export function signEnvelope(payloadType: string, payload: Uint8Array, key: SigningKey): Envelope {
  const sig = edSign(null, pae(payloadType, payload), key.privateKey);
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid: key.keyId, sig: sig.toString('base64') }],
  };
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(envelope));
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parses envelope bytes, refusing anything not exactly envelope-shaped. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'envelope is not JSON', { cause: err });
  }
  const e = raw as Partial<Envelope> | null;
  if (!e || typeof e !== 'object' || Array.isArray(e))
    throw new VerifyError(VerifyErrorCode.Malformed, 'envelope is not an object');
  if (typeof e.payloadType !== 'string' || !e.payloadType)
    throw new VerifyError(VerifyErrorCode.Malformed, 'payloadType is missing');
  if (typeof e.payload !== 'string' || !BASE64.test(e.payload))
    throw new VerifyError(VerifyErrorCode.Malformed, 'payload is not base64');
  if (!Array.isArray(e.signatures) || e.signatures.length === 0)
    throw new VerifyError(VerifyErrorCode.Malformed, 'signatures are missing');
  for (const s of e.signatures) {
    if (!s || typeof s.keyid !== 'string' || typeof s.sig !== 'string' || !BASE64.test(s.sig)) {
      throw new VerifyError(VerifyErrorCode.Malformed, 'a signature lacks keyid or sig');
    }
  }
  return {
    payloadType: e.payloadType,
    payload: e.payload,
    signatures: e.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
  };
}

/**
 * Verifies an envelope against trusted keys and returns its payload bytes. At least one
 * signature must be by a trusted key and valid; signatures by unknown keys are ignored
 * (so keys can rotate), but an envelope signed only by unknown keys is refused as such.
 */
export function verifyEnvelope(envelope: Envelope, keys: TrustedKeys, expectedType: string): Uint8Array {
  if (envelope.payloadType !== expectedType) {
    throw new VerifyError(
      VerifyErrorCode.WrongPayloadType,
      `payload type ${JSON.stringify(envelope.payloadType)}, expected ${expectedType}`,
    );
  }
  const payload = new Uint8Array(Buffer.from(envelope.payload, 'base64'));
  const message = pae(envelope.payloadType, payload);
  let known = 0;
  for (const s of envelope.signatures) {
    const key = keys.get(s.keyid);
    if (!key) continue;
    known++;
    if (edVerify(null, message, key, Buffer.from(s.sig, 'base64'))) return payload;
  }
  if (known === 0) {
    throw new VerifyError(
      VerifyErrorCode.UnknownKey,
      `signed by ${envelope.signatures.map((s) => s.keyid).join(', ')}, none of them trusted`,
    );
  }
  throw new VerifyError(VerifyErrorCode.BadSignature, 'signature does not match the payload');
}
