import picomatch from 'picomatch';
import type { GitSource, GitTreeEntry } from '../../source/index.js';

/** A file (or, with mode 040000, a whole subtree) to put at a path; null removes the path. */
export type TreeChange = { mode: string; oid: string } | null;

const TREE_MODE = '040000';

/**
 * Applies path → change edits to the tree `treeOid` (null = empty) and returns the new
 * tree's oid, or null if nothing is left. Untouched subtrees keep their oids, so the
 * result differs from the input exactly where the changes say.
 */
export async function updateTree(
  source: GitSource,
  treeOid: string | null,
  changes: Map<string, TreeChange>,
): Promise<string | null> {
  const entries = new Map<string, GitTreeEntry>();
  if (treeOid) for (const e of await source.readTree(treeOid)) entries.set(e.path, e);
  const nested = new Map<string, Map<string, TreeChange>>();
  for (const [path, change] of changes) {
    const slash = path.indexOf('/');
    if (slash < 0) {
      if (change) entries.set(path, { path, mode: change.mode, oid: change.oid, type: typeOf(change.mode) });
      else entries.delete(path);
      continue;
    }
    const head = path.slice(0, slash);
    const sub = nested.get(head) ?? new Map<string, TreeChange>();
    nested.set(head, sub);
    sub.set(path.slice(slash + 1), change);
  }
  for (const [name, sub] of nested) {
    const existing = entries.get(name);
    const oid = await updateTree(source, existing?.type === 'tree' ? existing.oid : null, sub);
    if (oid) entries.set(name, { path: name, mode: TREE_MODE, oid, type: 'tree' });
    else entries.delete(name);
  }
  if (entries.size === 0) return null;
  return source.writeTree([...entries.values()]);
}

/** The tree with no entries: what an emptied repository root becomes. */
export function writeEmptyTree(source: GitSource): Promise<string> {
  return source.writeTree([]);
}

/** The entry at `path` inside tree `treeOid` (no symlink following), or null. */
export async function entryAt(
  source: GitSource,
  treeOid: string,
  path: string,
): Promise<GitTreeEntry | null> {
  let current = treeOid;
  const parts = path.split('/');
  for (const [i, name] of parts.entries()) {
    const e = (await source.readTree(current)).find((x) => x.path === name);
    if (!e) return null;
    if (i === parts.length - 1) return e;
    if (e.type !== 'tree') return null;
    current = e.oid;
  }
  return null;
}

/** Per-file differences between two trees: path → [entry in a, entry in b], skipping equal subtrees. */
export async function diffTrees(
  source: GitSource,
  a: string | null,
  b: string | null,
  prefix = '',
): Promise<Map<string, [GitTreeEntry | null, GitTreeEntry | null]>> {
  const out = new Map<string, [GitTreeEntry | null, GitTreeEntry | null]>();
  if (a === b) return out;
  const ea = new Map((a ? await source.readTree(a) : []).map((e) => [e.path, e]));
  const eb = new Map((b ? await source.readTree(b) : []).map((e) => [e.path, e]));
  for (const name of new Set([...ea.keys(), ...eb.keys()])) {
    const x = ea.get(name) ?? null;
    const y = eb.get(name) ?? null;
    if (x && y && x.oid === y.oid && x.mode === y.mode) continue;
    const path = prefix ? `${prefix}/${name}` : name;
    const xTree = x?.type === 'tree' ? x.oid : null;
    const yTree = y?.type === 'tree' ? y.oid : null;
    if (xTree || yTree) {
      for (const [p, pair] of await diffTrees(source, xTree, yTree, path)) out.set(p, pair);
      if (x && !xTree) out.set(path, [x, null]);
      if (y && !yTree) out.set(path, [null, y]);
    } else out.set(path, [x, y]);
  }
  return out;
}

function typeOf(mode: string): GitTreeEntry['type'] {
  if (mode === TREE_MODE) return 'tree';
  if (mode === '160000') return 'commit';
  return 'blob';
}

/**
 * Whether `path` (relative to an environment's directory) matches a keep glob: `*` within a
 * segment, `**` across segments, `?` one character (picomatch, dot files included); a glob
 * naming a directory keeps all under it.
 */
export function matchesKeep(path: string, globs: string[]): boolean {
  return globs.some((g) => keepMatcher(g)(path));
}

const matchers = new Map<string, (path: string) => boolean>();

function keepMatcher(glob: string): (path: string) => boolean {
  let matcher = matchers.get(glob);
  if (!matcher) {
    matcher = picomatch([glob, `${glob.replace(/\/+$/, '')}/**`], { dot: true });
    matchers.set(glob, matcher);
  }
  return matcher;
}
