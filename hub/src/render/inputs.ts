import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { GitSource } from '../source/index.js';
import type { RenderLimits } from './limits.js';
import { RenderError } from './render-error.js';

/** One file a render reads, by repository path, with the blob it has at the rendered commit. */
export interface InputFile {
  path: string;
  oid: string;
}

/**
 * The files one render may read, collected from git objects (never a worktree). Collection
 * enforces the sandbox rules: no `..`/`.git`/odd tree entry names, no submodules, symlinks
 * only to files inside the repository (materialised as copies), and the file-count cap.
 */
export class InputSet {
  readonly files = new Map<string, InputFile>();
  private readonly dirs = new Set<string>();
  constructor(
    private readonly source: GitSource,
    readonly commit: string,
    private readonly limits: RenderLimits,
  ) {}

  readBlob(oid: string): Promise<Uint8Array> {
    return this.source.readBlob(oid);
  }

  has(path: string): boolean {
    return this.files.has(path) || this.dirs.has(path);
  }

  /** Adds every file under repository directory `dir`, skipping the top-level subdirectories named in `skip`. */
  async addDir(dir: string, skip: string[] = []): Promise<void> {
    if (this.dirs.has(dir)) return;
    this.dirs.add(dir);
    const tree = await this.source.treeId(this.commit, dir);
    if (!tree) throw new RenderError(dir || '/', 'directory not found at this revision');
    await this.walk(tree, dir, 0, new Set(skip));
  }

  /**
   * Adds the files of a plain directory, as addDir, except its subdirectories (at any depth)
   * that hold one of `toolFiles` (a kustomization or a Chart.yaml): those are returned, not
   * added, to be rendered with their own tool.
   */
  async addPlainDir(dir: string, skip: string[], toolFiles: readonly string[]): Promise<string[]> {
    const tree = await this.source.treeId(this.commit, dir);
    if (!tree) throw new RenderError(dir || '/', 'directory not found at this revision');
    this.dirs.add(dir);
    const nested: string[] = [];
    await this.walk(tree, dir, 0, new Set(skip), { toolFiles: new Set(toolFiles), found: nested });
    return nested;
  }

  /** Adds one file by repository path (following in-repository symlinks). */
  async addFile(path: string): Promise<void> {
    if (this.files.has(path)) return;
    const entry = await this.entryAt(path);
    if (!entry) throw new RenderError(path, 'file not found at this revision');
    if (entry.type === 'tree') return this.addDir(path);
    await this.addEntry(path, entry.mode, entry.oid);
  }

  /** The entry at a repository path, or null; symlinks along the way are not followed. */
  async entryAt(path: string): Promise<{ mode: string; oid: string; type: string } | null> {
    const parent = posix.dirname(path);
    const tree = await this.source.treeId(this.commit, parent === '.' ? '' : parent);
    if (!tree) return null;
    const name = posix.basename(path);
    return (await this.source.readTree(tree)).find((e) => e.path === name) ?? null;
  }

  private async walk(
    treeOid: string,
    prefix: string,
    depth: number,
    skip: Set<string>,
    nested?: { toolFiles: Set<string>; found: string[] },
  ): Promise<void> {
    if (depth > this.limits.maxDepth)
      throw new RenderError(prefix, `directories nested deeper than ${this.limits.maxDepth}`);
    for (const e of await this.source.readTree(treeOid)) {
      const path = prefix ? `${prefix}/${e.path}` : e.path;
      checkEntryName(e.path, path);
      if (depth === 0 && skip.has(e.path)) continue;
      if (e.type === 'tree') {
        if (nested) {
          const entries = await this.source.readTree(e.oid);
          if (entries.some((x) => x.type !== 'tree' && nested.toolFiles.has(x.path))) {
            nested.found.push(path);
            continue;
          }
        }
        this.dirs.add(path);
        await this.walk(e.oid, path, depth + 1, skip, nested);
      } else await this.addEntry(path, e.mode, e.oid);
    }
  }

  private async addEntry(path: string, mode: string, oid: string): Promise<void> {
    if (mode === '160000') throw new RenderError(path, 'is a git submodule, which rendering does not follow');
    let target = { mode, oid };
    let at = path;
    for (let hops = 0; target.mode === '120000'; hops++) {
      if (hops >= 8) throw new RenderError(path, 'symlink chain is too long');
      const link = Buffer.from(await this.source.readBlob(target.oid));
      if (link.length > 4096) throw new RenderError(path, 'symlink target is too long');
      const resolved = resolveLink(path, at, link.toString('utf8'));
      const next = await this.entryAt(resolved);
      if (!next)
        throw new RenderError(path, 'symlink points to a path that does not exist in the repository');
      if (next.type === 'tree') throw new RenderError(path, 'symlink to a directory is not followed');
      if (next.mode === '160000') throw new RenderError(path, 'symlink points to a submodule');
      target = next;
      at = resolved;
    }
    this.files.set(path, { path, oid: target.oid });
    if (this.files.size > this.limits.maxFiles)
      throw new RenderError(path, `more than ${this.limits.maxFiles} files in one render`);
  }

  /** Reads every input blob, enforcing the byte cap before anything is parsed or written. */
  async read(): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    let total = 0;
    for (const f of [...this.files.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const blob = await this.source.readBlob(f.oid);
      total += blob.byteLength;
      if (blob.byteLength > this.limits.maxBytes)
        throw new RenderError(f.path, `file is larger than the limit (${this.limits.maxBytes} bytes)`);
      if (total > this.limits.maxBytes)
        throw new RenderError(f.path, `render inputs exceed the limit (${this.limits.maxBytes} bytes)`);
      out.set(f.path, blob);
    }
    return out;
  }
}

/** Writes inputs under `root` (a private temp dir). Paths were validated at collection. */
export function materialise(root: string, contents: Map<string, Uint8Array>): void {
  for (const [path, data] of contents) {
    const full = join(root, path);
    if (!full.startsWith(`${root}/`)) throw new RenderError(path, 'path leaves the sandbox');
    mkdirSync(dirname(full), { recursive: true, mode: 0o700 });
    writeFileSync(full, data, { mode: 0o600 });
  }
}

const BAD_NAME = /[/\\\0]/;

function checkEntryName(name: string, path: string): void {
  if (name === '..' || name === '.' || name === '' || BAD_NAME.test(name))
    throw new RenderError(path, 'tree entry has a forbidden name');
  if (name.toLowerCase() === '.git') throw new RenderError(path, 'touches .git');
}

/**
 * Resolves a symlink's target to a repository path, refusing absolute targets, targets
 * that leave the repository and targets through `.git`.
 */
function resolveLink(linkPath: string, at: string, target: string): string {
  if (!target || target.includes('\0')) throw new RenderError(linkPath, 'symlink has an invalid target');
  if (target.startsWith('/') || /^[A-Za-z]:[\\/]/.test(target))
    throw new RenderError(linkPath, 'symlink points to an absolute path outside the repository');
  const resolved = posix.normalize(posix.join(posix.dirname(at), target));
  if (resolved === '..' || resolved.startsWith('../') || resolved.startsWith('/'))
    throw new RenderError(linkPath, 'symlink leaves the repository');
  if (resolved.split('/').some((p) => p.toLowerCase() === '.git'))
    throw new RenderError(linkPath, 'symlink touches .git');
  return resolved;
}

/** Resolves a reference found in a repository file relative to that file's directory; null if it escapes. */
export function resolveRepoPath(fromDir: string, ref: string): string | null {
  const resolved = posix.normalize(posix.join(fromDir || '.', ref)).replace(/\/+$/, '');
  if (resolved === '..' || resolved.startsWith('../') || resolved.startsWith('/')) return null;
  if (resolved.split('/').some((p) => p.toLowerCase() === '.git')) return null;
  return resolved === '.' ? '' : resolved;
}
