import { isDeepStrictEqual } from 'node:util';
import type { KubeObject } from '@flotilla/shared';
import { isSopsDocument, isSopsValue, SopsError, sopsMetadata } from '@flotilla/shared/sops';
import { parseAllDocuments } from 'yaml';
import { RenderError } from './render-error.js';

/**
 * SOPS documents in a render. The hub never decrypts them: it carries them to the agent as
 * the user wrote them. Their MAC covers values in document order, so what renderers do to
 * them is undone or refused here, with the file named.
 */

/** Text that holds a SOPS document (its encrypted MAC): left out of `${cluster.…}` substitution. */
export function isSopsText(text: string): boolean {
  return /(^|\n)\s*"?mac"?\s*:\s*"?ENC\[AES256_GCM,/.test(text);
}

const ENCRYPTED = 'ENC[AES256_GCM,';

/**
 * Checks the SOPS documents of one file (or one renderer output): identity fields must stay in
 * clear, for the hub to know what the object is, and the metadata must be of the format.
 */
export function checkSopsObjects(objects: readonly KubeObject[], file: string): void {
  for (const [i, obj] of objects.entries()) {
    if (!isSopsDocument(obj)) continue;
    const meta = obj.metadata as Record<string, unknown>;
    for (const [field, value] of [
      ['apiVersion', obj.apiVersion],
      ['kind', obj.kind],
      ['metadata.name', meta.name],
      ['metadata.namespace', meta.namespace],
    ] as const)
      if (isSopsValue(value))
        throw new RenderError(
          file,
          `document ${i}: SOPS document with ${field} encrypted: apiVersion, kind and metadata must stay in clear (encrypt with encrypted_regex ^(data|stringData)$, as \`flotilla secret encrypt\` does)`,
        );
    try {
      sopsMetadata(obj);
    } catch (err) {
      if (err instanceof SopsError)
        throw new RenderError(file, `document ${i} (${obj.kind} ${meta.name}): ${err.message}`);
      throw err;
    }
  }
}

/** The chart's files that hold SOPS-encrypted values: Helm would template ciphertext. */
export function refuseSopsInChart(dir: string, contents: ReadonlyMap<string, Uint8Array>): void {
  for (const [path, data] of contents) {
    if (!path.startsWith(`${dir}/`)) continue;
    if (Buffer.from(data).includes(ENCRYPTED))
      throw new RenderError(
        path,
        'holds SOPS-encrypted values: a Helm chart cannot template them (the hub never decrypts); keep the encrypted Secret as a manifest of its own (plain YAML or Kustomize) beside the chart',
      );
  }
}

/**
 * Kustomize rewrites every document it outputs: keys sorted, metadata transformed (namespace,
 * labels, name prefix). For each SOPS document of its output this puts back the document as its
 * file has it, keeping only kustomize's metadata. Refused, naming the file: a transformation of
 * anything but metadata (a patch into encrypted data), or of metadata when the MAC covers every
 * value (the agent would find the MAC broken).
 */
export function restoreSopsDocuments(
  objects: KubeObject[],
  contents: ReadonlyMap<string, Uint8Array>,
  outputName: string,
): KubeObject[] {
  if (!objects.some(isSopsDocument)) return objects;
  const originals = new Map<string, { path: string; doc: KubeObject }>();
  for (const [path, data] of contents) {
    if (!/\.(ya?ml|json)$/i.test(path)) continue;
    const text = Buffer.from(data).toString('utf8');
    if (!isSopsText(text)) continue;
    for (const doc of parseAllDocuments(text, { prettyErrors: false })) {
      let value: unknown;
      try {
        // Kustomize read these files already: one that does not parse here has no SOPS document to give.
        value = doc.errors.length ? undefined : doc.toJS({ maxAliasCount: 100 });
      } catch {
        continue;
      }
      if (isSopsDocument(value))
        originals.set(String((value.sops as { mac: string }).mac), { path, doc: value as KubeObject });
    }
  }
  return objects.map((obj, i) => {
    if (!isSopsDocument(obj)) return obj;
    const original = originals.get(String((obj.sops as { mac: string }).mac));
    if (!original)
      throw new RenderError(
        outputName,
        `document ${i}: a SOPS document that is not in any file of the kustomization`,
      );
    const { metadata: before, ...restBefore } = original.doc;
    const { metadata: after, ...restAfter } = obj;
    if (!isDeepStrictEqual(restBefore, restAfter))
      throw new RenderError(
        original.path,
        'kustomize changed a SOPS-encrypted document beyond its metadata (a patch or generator?); the hub cannot re-encrypt it',
      );
    if (!isDeepStrictEqual(before, after) && !sopsMetadata(obj).macOnlyEncrypted)
      throw new RenderError(
        original.path,
        'kustomize changed the metadata (namespace, labels or name) of a SOPS document whose MAC covers every value, so the agent would refuse it; encrypt it again with `flotilla secret encrypt` (its MAC covers the encrypted values only) or set those fields in the file',
      );
    return { ...original.doc, metadata: isDeepStrictEqual(before, after) ? before : after };
  });
}
