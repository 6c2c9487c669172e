import { createHash } from 'node:crypto';

/** `sha256:<hex>` of the given bytes or text. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
