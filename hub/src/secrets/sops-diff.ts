import { isSopsValue } from '@flotilla/shared/sops';
import { isMap, isScalar, isSeq } from 'yaml';
import { encryptedValueShown } from './secret-values.js';

/**
 * Env diff of a SOPS document, which the hub cannot decrypt: each encrypted value shows as
 * `[encrypted <hash of its ciphertext>]`, so the diff says which encrypted values differ (and
 * equal ciphertext, e.g. a promoted file, shows no change), and the `sops` metadata as one line
 * naming its recipients. Returns false for a node that is not a SOPS document.
 */
export function summariseSopsNode(node: unknown): boolean {
  if (!isMap(node)) return false;
  const meta = node.get('sops', true);
  if (!isMap(meta) || !isSopsValue(meta.get('mac'))) return false;
  const walk = (n: unknown) => {
    if (isMap(n) || isSeq(n))
      for (const item of n.items as unknown[]) {
        const pair = item as { value?: unknown };
        const value = isMap(n) ? pair.value : item;
        if (isScalar(value) && isSopsValue(value.value)) value.value = encryptedValueShown(value.value);
        else walk(value);
      }
  };
  for (const pair of node.items) if (!(isScalar(pair.key) && pair.key.value === 'sops')) walk(pair.value);
  const age = meta.get('age', true);
  const recipients = isSeq(age) ? age.items.map((a) => (isMap(a) ? String(a.get('recipient')) : '?')) : [];
  node.set(
    'sops',
    `[SOPS metadata: data key for ${recipients.join(', ') || 'no age recipient'}; last modified ${String(meta.get('lastmodified'))}]`,
  );
  return true;
}
