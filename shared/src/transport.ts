import { gunzipSync, gzipSync } from 'node:zlib';
import { sha256Digest } from './digest.js';
import { VerifyError, VerifyErrorCode } from './envelope.js';

/**
 * How a bundle envelope travels over NATS: gzip, split into chunks small enough for any
 * server's max_payload, each chunk on its own subject, then a head naming every chunk's
 * digest. The hub publishes chunks first and the head last, so a head never names chunks
 * that are not there yet; a reader that meets a chunk of a newer bundle sees its digest
 * differ and starts again from the head.
 */
export interface TransportHead {
  v: 1;
  cluster: string;
  generation: number;
  encoding: 'gzip';
  /** Bytes of the compressed envelope, and its digest. */
  size: number;
  digest: string;
  chunks: string[];
}

/** 768 KiB: under nats-server's default 1 MiB max_payload with room for headers. */
export const DEFAULT_CHUNK_SIZE = 768 * 1024;
/** A decompressed envelope larger than this is refused (a gzip bomb is not a bundle). */
export const MAX_ENVELOPE_BYTES = 256 * 1024 * 1024;

export function packForTransport(
  envelope: Uint8Array,
  meta: { cluster: string; generation: number },
  chunkSize = DEFAULT_CHUNK_SIZE,
): { head: TransportHead; chunks: Uint8Array[] } {
  const packed = gzipSync(envelope);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < packed.length || chunks.length === 0; at += chunkSize)
    chunks.push(packed.subarray(at, at + chunkSize));
  return {
    head: {
      v: 1,
      ...meta,
      encoding: 'gzip',
      size: packed.length,
      digest: sha256Digest(packed),
      chunks: chunks.map((c) => sha256Digest(c)),
    },
    chunks,
  };
}

export function decodeTransportHead(bytes: Uint8Array): TransportHead {
  let head: unknown;
  try {
    head = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'transport head is not JSON', { cause: err });
  }
  return transportHeadOf(head);
}

/** A parsed value as a transport head (e.g. the one a notify carries), or a Malformed VerifyError. */
export function transportHeadOf(value: unknown): TransportHead {
  const head = value as TransportHead | undefined;
  if (
    head?.v !== 1 ||
    !Array.isArray(head.chunks) ||
    typeof head.digest !== 'string' ||
    head.encoding !== 'gzip'
  ) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'transport head has an unknown shape');
  }
  return head;
}

/**
 * Reassembles the envelope bytes a head names, fetching chunks by index. Each chunk and
 * the whole are checked against their digests before anything is decompressed.
 */
export async function unpackTransport(
  head: TransportHead,
  fetchChunk: (index: number) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const [i, expected] of head.chunks.entries()) {
    const chunk = await fetchChunk(i);
    if (sha256Digest(chunk) !== expected) {
      throw new VerifyError(
        VerifyErrorCode.DigestMismatch,
        `chunk ${i + 1}/${head.chunks.length} of generation ${head.generation} does not match its digest`,
      );
    }
    parts.push(chunk);
  }
  const packed = Buffer.concat(parts);
  if (packed.length !== head.size || sha256Digest(packed) !== head.digest) {
    throw new VerifyError(
      VerifyErrorCode.DigestMismatch,
      `reassembled bundle of generation ${head.generation} does not match its digest`,
    );
  }
  try {
    return new Uint8Array(gunzipSync(packed, { maxOutputLength: MAX_ENVELOPE_BYTES }));
  } catch (err) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'bundle does not decompress', { cause: err });
  }
}
