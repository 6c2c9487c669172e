/**
 * JSON with object keys sorted at every level, so equal content always yields equal
 * bytes and therefore an equal digest. Used for content digests only: signed payloads
 * are verified as the bytes they travel as, never re-serialised.
 *
 * The hub and every agent digest bundles with it, so its output is fixed byte for byte
 * (canonical-json.spec.ts holds it to its first, plainer definition). Written as one pass
 * that appends to a string, with no per-level entry arrays: the agent digests each bundle,
 * each manifest and each drift check's inputs with it.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v: unknown = value[i];
      // A hole of a sparse array was written as nothing, an undefined item as null.
      if (v !== undefined) out += canonicalJson(v);
      else if (i in value) out += 'null';
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  // Keys are distinct, so the default sort (UTF-16 code units) is the order `<` gives.
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}
