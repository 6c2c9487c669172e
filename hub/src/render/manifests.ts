import type { KubeObject } from '@flotilla/shared';
import { isAlias, LineCounter, parseAllDocuments } from 'yaml';
import type { RenderLimits } from './limits.js';
import { RenderError } from './render-error.js';

/** Counts shared across the files of one render, so the caps apply to the whole render. */
export interface ManifestBudget {
  documents: number;
}

/**
 * Parses one multi-document YAML/JSON text into Kubernetes objects. Empty documents are
 * skipped; `kind: List` is flattened; a document without apiVersion, kind or metadata.name
 * is a RenderError naming the file, the document index and its line. Errors never quote content.
 */
export function parseManifests(
  text: string,
  file: string,
  limits: RenderLimits,
  budget: ManifestBudget,
): KubeObject[] {
  const lines = new LineCounter();
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  } catch (cause) {
    throw new RenderError(file, 'is not valid YAML', { cause: stripCause(cause) });
  }
  const list = Array.isArray(docs) ? docs : [];
  const objects: KubeObject[] = [];
  list.forEach((doc, index) => {
    const start = doc.contents?.range?.[0] ?? doc.range?.[0];
    const line = start !== undefined ? lines.linePos(start).line : 1;
    const where = `document ${index}`;
    const error = doc.errors[0];
    if (error) {
      const at = error.linePos?.[0]?.line ?? line;
      throw new RenderError(file, `${where}: invalid YAML (${error.code})`, { line: at });
    }
    if (doc.contents === null) return;
    if (countAliases(doc.contents) > limits.maxAliases)
      throw new RenderError(file, `${where}: more than ${limits.maxAliases} YAML aliases`, { line });
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: limits.maxAliases });
    } catch {
      throw new RenderError(file, `${where}: YAML alias expansion exceeds the limit (${limits.maxAliases})`, {
        line,
      });
    }
    if (value === null || value === undefined) return;
    if (depthOf(value, limits.maxDepth + 1) > limits.maxDepth)
      throw new RenderError(file, `${where}: nesting deeper than ${limits.maxDepth}`, { line });
    const items =
      isObject(value) && value.kind === 'List' && Array.isArray(value.items)
        ? (value.items as unknown[])
        : [value];
    items.forEach((item, i) => {
      const at = items.length > 1 || item !== value ? `${where} item ${i}` : where;
      if (!isObject(item)) throw new RenderError(file, `${at}: is not a mapping`, { line });
      const meta = item.metadata;
      if (typeof item.apiVersion !== 'string' || !item.apiVersion)
        throw new RenderError(file, `${at}: apiVersion is required`, { line });
      if (typeof item.kind !== 'string' || !item.kind)
        throw new RenderError(file, `${at}: kind is required`, { line });
      if (!isObject(meta) || typeof meta.name !== 'string' || !meta.name)
        throw new RenderError(file, `${at}: metadata.name is required (${item.kind})`, { line });
      budget.documents++;
      if (budget.documents > limits.maxDocuments)
        throw new RenderError(file, `more than ${limits.maxDocuments} documents in one render`, { line });
      objects.push(item as KubeObject);
    });
  });
  return objects;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Depth of nested objects/arrays, stopping once `cap` is reached (no recursion: deep input cannot blow the stack). */
function depthOf(value: unknown, cap: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (d > max) max = d;
    if (max >= cap) return max;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** Alias nodes in a document, counted without expanding them. */
function countAliases(node: unknown): number {
  let count = 0;
  const stack: unknown[] = [node];
  while (stack.length) {
    const n = stack.pop() as Record<string, unknown> | null;
    if (!n || typeof n !== 'object') continue;
    if (isAlias(n)) {
      count++;
      continue;
    }
    if (Array.isArray(n.items)) stack.push(...(n.items as unknown[]));
    if ('key' in n) stack.push(n.key);
    if ('value' in n && typeof n.value === 'object') stack.push(n.value);
  }
  return count;
}

/** A parser error without the source excerpt some parsers attach. */
function stripCause(cause: unknown): Error {
  const name = cause instanceof Error ? cause.name : 'Error';
  return new Error(name);
}
