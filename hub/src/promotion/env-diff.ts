import { createTwoFilesPatch } from 'diff';
import { isMap, isSeq, parseAllDocuments } from 'yaml';
import { SECRET_VALUE_FIELDS, type SecretValues } from '../secrets/secret-values.js';
import { summariseSopsNode } from '../secrets/sops-diff.js';
import type { GitSource, GitTreeEntry } from '../source/index.js';
import { matchesKeep } from './git/tree-edit.js';

/** One file that differs between what FROM runs and what TO holds. */
export interface FileDiff {
  /** Relative to the environment's directory (or, with `source`, the app's). */
  path: string;
  /** `app/NAME` for a file of an app's directory that promotion moves with the environment's. */
  source?: string;
  change: 'added' | 'modified' | 'deleted';
  /** A unified diff from TO (---) to FROM (+++); Secret values shown as hashes (secrets/secret-values.ts). */
  patch: string;
}

export interface TreeSide {
  /** Commit, or null when TO's branch does not exist yet. */
  commit: string | null;
  path: string;
}

/** Files larger than this are reported as differing without a patch. */
const MAX_PATCH_BYTES = 256 * 1024;

/**
 * What a promotion from `from` to `to` would change: every file under FROM's directory at
 * FROM's commit against the same file under TO's, leaving out the files TO keeps as its own.
 * A file holding a Kubernetes Secret is diffed with its values replaced by hashes, so a diff
 * shows that a key changed, never what it holds.
 */
export async function diffEnvironments(
  source: GitSource,
  from: TreeSide,
  to: TreeSide & { keep: string[] },
  options: { secretValues: SecretValues },
): Promise<FileDiff[]> {
  const list = async (side: TreeSide) =>
    side.commit
      ? ((await source.listFiles(side.commit, side.path)) ?? new Map<string, GitTreeEntry>())
      : new Map();
  const [fromFiles, toFiles] = await Promise.all([list(from), list(to)]);
  const paths = [...new Set([...fromFiles.keys(), ...toFiles.keys()])]
    .filter((p) => !matchesKeep(p, to.keep))
    .sort();
  const diffs: FileDiff[] = [];
  for (const path of paths) {
    const a = toFiles.get(path);
    const b = fromFiles.get(path);
    if (a && b && a.oid === b.oid && a.mode === b.mode) continue;
    const change = !a ? 'added' : !b ? 'deleted' : 'modified';
    const [before, after] = await Promise.all([
      a ? source.readBlob(a.oid) : null,
      b ? source.readBlob(b.oid) : null,
    ]);
    diffs.push({
      path,
      change,
      patch: patchOf(`${to.path}/${path}`, `${from.path}/${path}`, before, after, options.secretValues),
    });
  }
  return diffs;
}

function patchOf(
  oldName: string,
  newName: string,
  before: Uint8Array | null,
  after: Uint8Array | null,
  secretValues: SecretValues,
): string {
  const header = `--- ${before ? oldName : '/dev/null'}\n+++ ${after ? newName : '/dev/null'}\n`;
  const size = Math.max(before?.length ?? 0, after?.length ?? 0);
  if (size > MAX_PATCH_BYTES) return `${header}(file of ${size} bytes differs; too large to show)\n`;
  if ([before, after].some((b) => b?.includes(0))) return `${header}(binary file differs)\n`;
  const text = (b: Uint8Array | null) => (b ? redactSecrets(new TextDecoder().decode(b), secretValues) : '');
  const patch = createTwoFilesPatch(
    before ? oldName : '/dev/null',
    after ? newName : '/dev/null',
    text(before),
    text(after),
    undefined,
    undefined,
    { context: 3 },
  );
  // Drop the `Index:`/`===` preamble: the header lines are what `git diff` users read.
  return patch.slice(patch.indexOf('---'));
}

/**
 * Replaces the values of every Secret's `data` and `stringData` in a YAML or JSON stream
 * (also Secrets inside a `kind: List`) with what `values` shows them as (a keyed hash); a
 * file that mentions a Secret but cannot be parsed is not shown at all.
 */
export function redactSecrets(text: string, values: SecretValues): string {
  if (!text.includes('Secret')) return text;
  const unparsable = '(a file that mentions a Secret and cannot be parsed; content not shown)\n';
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text);
  } catch {
    return unparsable;
  }
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return unparsable;
  let changed = false;
  const redact = (node: unknown) => {
    if (!isMap(node)) return;
    // SOPS: which encrypted values differ, by their ciphertext's hash; never decrypted.
    if (summariseSopsNode(node)) {
      changed = true;
      return;
    }
    if (node.get('kind') === 'Secret') {
      for (const field of SECRET_VALUE_FIELDS) {
        const entries = node.get(field, true);
        if (!isMap(entries)) continue;
        for (const pair of entries.items) {
          const value = (pair.value as { value?: unknown } | null)?.value ?? pair.value;
          entries.set(pair.key, values.shown(value));
          changed = true;
        }
      }
    }
    const items = node.get('items', true);
    if (isSeq(items)) for (const item of items.items) redact(item);
  };
  for (const doc of docs) redact(doc.contents);
  return changed ? docs.map((d) => d.toString()).join('') : text;
}
