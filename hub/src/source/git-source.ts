import * as fs from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, errorMessage, FlotillaError, type Logger, redactUrl } from '@flotilla/shared';
import git from 'isomorphic-git';
import webHttp from 'isomorphic-git/http/web';
import { createObjectCache } from './object-cache.js';

/** A git failure: the message starts with the source URL (never its credentials) and keeps the cause. */
export class SourceError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? ErrorCode.Source, message, options);
    this.name = 'SourceError';
  }
}

export interface GitAuthor {
  name: string;
  email: string;
}

/** One entry of a git tree. `mode` is git's: 040000 tree, 100644/100755 file, 120000 symlink, 160000 submodule. */
export interface GitTreeEntry {
  path: string;
  mode: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

export interface GitSourceOptions {
  /** HTTP(S) URL of the repository. Userinfo in it is moved to `auth` and never logged. */
  url: string;
  /** `token` is sent as the basic-auth password (username `username` or `x-access-token`). */
  auth?: { username?: string; password?: string; token?: string };
  /** Where the bare object cache lives; created if missing. Nothing here is a worktree. */
  cacheDir: string;
  logger?: Logger;
  /** Default author of commits the hub writes (promotion, rollback). */
  author?: GitAuthor;
  /** Limit on each HTTP request to the git server, so a hung server cannot stall polling. Default 5 minutes. */
  requestTimeoutMs?: number;
}

/**
 * The hub's view of one git repository: a bare object cache fetched over HTTP(S) with
 * isomorphic-git. Reads go to git objects by commit, never to a worktree, so what is
 * rendered is exactly what was committed. Writes (commit, push) back promotion and rollback.
 */
export interface GitSource {
  /** The URL without credentials. */
  readonly url: string;
  /** Clones on the first call, then fetches all branches (pruning deleted ones). */
  fetch(): Promise<void>;
  /** The remote's default branch (its HEAD), as of the last fetch. */
  defaultBranch(): Promise<string>;
  /** Commit sha of the remote branch after the last fetch; SourceError (not-found) if missing. */
  resolveBranch(branch: string): Promise<string>;
  /** The file at `path` in `commit`, or null if there is no file there. */
  readFile(commit: string, path: string): Promise<Uint8Array | null>;
  /** Git tree oid of the directory `path` in `commit` ('' = the root), null if absent. */
  treeId(commit: string, path: string): Promise<string | null>;
  isAncestor(ancestor: string, descendant: string): Promise<boolean>;
  log(
    branch: string,
    depth?: number,
  ): Promise<{ commit: string; message: string; author: string; timestamp: number }[]>;

  /** Entries of a tree object (one level). */
  readTree(treeOid: string): Promise<GitTreeEntry[]>;
  /** Every file (blob, symlink, submodule) under `path` in `commit`, with paths relative to `path`; null if absent. */
  listFiles(commit: string, path: string): Promise<Map<string, GitTreeEntry> | null>;
  /** The tree oid of a commit's root. */
  commitTree(commit: string): Promise<string>;
  /** Parents of a commit. */
  commitParents(commit: string): Promise<string[]>;
  readBlob(oid: string): Promise<Uint8Array>;
  writeBlob(content: Uint8Array): Promise<string>;
  writeTree(entries: GitTreeEntry[]): Promise<string>;
  /** Writes a commit object (no ref is moved) and returns its sha. */
  commit(args: { tree: string; parents: string[]; message: string; author?: GitAuthor }): Promise<string>;
  /**
   * Pushes `commit` to `branch` on the remote (never forced: a remote that moved on is a
   * SourceError with code conflict), then records it as the remote branch head.
   */
  push(branch: string, commit: string): Promise<void>;
}

type HttpClient = typeof webHttp;

const MODE_TYPE: Record<string, GitTreeEntry['type']> = { '040000': 'tree', '160000': 'commit' };

/** Parses options and fills defaults in one place. */
function parseOptions(options: GitSourceOptions) {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (cause) {
    throw new SourceError(`${redactUrl(options.url)}: not a valid URL`, { cause, code: ErrorCode.Invalid });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new SourceError(`${redactUrl(options.url)}: only http(s) git sources are supported`, {
      code: ErrorCode.Invalid,
    });
  const auth = { ...options.auth };
  if (url.username || url.password) {
    auth.username ??= decodeURIComponent(url.username);
    if (url.password) auth.password ??= decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
  }
  return {
    url: url.toString(),
    auth,
    gitdir: join(options.cacheDir, 'repo.git'),
    author: options.author ?? { name: 'Flotilla', email: 'flotilla@localhost' },
    logger: options.logger,
    requestTimeoutMs: options.requestTimeoutMs ?? 300_000,
  };
}

/** Creates a GitSource over a bare cache in `options.cacheDir`. Nothing touches the network before fetch(). */
export function createGitSource(options: GitSourceOptions): GitSource {
  const o = parseOptions(options);
  const { gitdir, url } = o;
  const cache = {};
  const objects = createObjectCache();
  /** A commit's (or tree's) root tree, read once: the oid and its entries. */
  const rootTree = (oid: string) =>
    objects.tree(`root:${oid}`, async () => {
      const root = await git.readTree({ fs, gitdir, cache, oid });
      return { oid: root.oid, entries: root.tree.map(toEntry) };
    });
  const treeEntries = (treeOid: string) =>
    objects.tree(treeOid, async () => {
      const { tree } = await git.readTree({ fs, gitdir, cache, oid: treeOid });
      return tree.map(toEntry);
    });
  // Node's fetch: a per-request time limit, and no Authorization header carried across origins on redirect.
  const http: HttpClient = {
    request: (req) => webHttp.request({ ...req, signal: AbortSignal.timeout(o.requestTimeoutMs) }),
  };
  let initialised = false;
  let remoteHead: string | undefined;
  // fetch and push share the ref namespace: run them one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  const onAuth = () => {
    const { username, password, token } = o.auth;
    if (token) return { username: username ?? 'x-access-token', password: token };
    if (username || password) return { username: username ?? '', password: password ?? '' };
    return { cancel: true };
  };
  // Never retry a refused credential: isomorphic-git would loop.
  const onAuthFailure = () => ({ cancel: true });
  const fail = (verb: string, cause: unknown, code?: ErrorCode): never => {
    // isomorphic-git refuses tree entries such as `..` itself: that is bad repository content, not an outage.
    if ((cause as { code?: string }).code === 'UnsafeFilepathError') code = ErrorCode.Invalid;
    let msg = errorMessage(cause);
    for (const secret of [o.auth.password, o.auth.token])
      if (secret) msg = msg.split(secret).join('[redacted]');
    throw new SourceError(`${url}: ${verb}: ${redactUrl(msg)}`, { cause, code });
  };

  async function init(): Promise<void> {
    if (initialised) return;
    mkdirSync(gitdir, { recursive: true });
    if (!fs.existsSync(join(gitdir, 'HEAD'))) {
      await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
    }
    await git.setConfig({ fs, gitdir, path: 'remote.origin.url', value: url });
    await git.setConfig({
      fs,
      gitdir,
      path: 'remote.origin.fetch',
      value: '+refs/heads/*:refs/remotes/origin/*',
    });
    initialised = true;
  }

  const remoteRef = (branch: string) => `refs/remotes/origin/${branch}`;

  const source: GitSource = {
    url,
    fetch: () =>
      serial(async () => {
        await init();
        try {
          const result = await git.fetch({
            fs,
            http,
            gitdir,
            cache,
            url,
            remote: 'origin',
            singleBranch: false,
            tags: false,
            prune: true,
            onAuth,
            onAuthFailure,
          });
          if (result.defaultBranch) {
            remoteHead = result.defaultBranch.replace(/^refs\/heads\//, '');
            await git.setConfig({ fs, gitdir, path: 'flotilla.defaultbranch', value: remoteHead });
          }
          o.logger?.debug({ url, head: result.fetchHead }, 'git fetch done');
        } catch (err) {
          const code = (err as { code?: string }).code;
          const status = (err as { data?: { statusCode?: number } }).data?.statusCode;
          const auth = status === 401 || status === 403 || code === 'UserCanceledError';
          fail('fetch failed', err, auth ? ErrorCode.Unauthenticated : ErrorCode.Unavailable);
        }
      }),

    async defaultBranch() {
      if (remoteHead) return remoteHead;
      await init();
      const recorded = await git.getConfig({ fs, gitdir, path: 'flotilla.defaultbranch' });
      if (typeof recorded === 'string' && recorded) {
        remoteHead = recorded;
        return recorded;
      }
      const branches = await git.listBranches({ fs, gitdir, remote: 'origin' });
      for (const b of ['main', 'master']) if (branches.includes(b)) return b;
      if (branches[0] && branches[0] !== 'HEAD') return branches[0];
      throw new SourceError(`${url}: no branches (fetch first)`, { code: ErrorCode.NotFound });
    },

    async resolveBranch(branch) {
      await init();
      try {
        return await git.resolveRef({ fs, gitdir, ref: remoteRef(branch) });
      } catch (cause) {
        throw new SourceError(`${url}: branch ${branch} not found`, { cause, code: ErrorCode.NotFound });
      }
    },

    async readFile(commit, path) {
      try {
        const slash = path.lastIndexOf('/');
        const dir = await source.treeId(commit, slash < 0 ? '' : path.slice(0, slash));
        if (!dir) return null;
        const entry = (await treeEntries(dir)).find((e) => e.path === path.slice(slash + 1));
        if (!entry) return null;
        if (entry.type !== 'blob') throw new Error(`${path} is a ${entry.type}, not a file`);
        return await source.readBlob(entry.oid);
      } catch (err) {
        if (isNotFound(err)) return null;
        return fail(`read ${path} at ${commit.slice(0, 12)}`, err);
      }
    },

    async treeId(commit, path) {
      try {
        let { oid, entries } = await rootTree(commit);
        for (const name of path.split('/').filter(Boolean)) {
          const entry = entries.find((e) => e.path === name);
          if (entry?.type !== 'tree') return null;
          oid = entry.oid;
          entries = await treeEntries(oid);
        }
        return oid;
      } catch (err) {
        if (isNotFound(err) || (err as { code?: string }).code === 'ObjectTypeError') return null;
        return fail(`read tree ${path} at ${commit.slice(0, 12)}`, err);
      }
    },

    async isAncestor(ancestor, descendant) {
      if (ancestor === descendant) return true;
      try {
        return await git.isDescendent({ fs, gitdir, cache, oid: descendant, ancestor, depth: -1 });
      } catch (err) {
        return fail(`ancestry of ${descendant.slice(0, 12)}`, err);
      }
    },

    async log(branch, depth = 20) {
      const ref = await source.resolveBranch(branch);
      const entries = await git.log({ fs, gitdir, cache, ref, depth });
      return entries.map((e) => ({
        commit: e.oid,
        message: e.commit.message,
        author: `${e.commit.author.name} <${e.commit.author.email}>`,
        timestamp: e.commit.author.timestamp * 1000,
      }));
    },

    readTree: treeEntries,

    async listFiles(commit, path) {
      const root = await source.treeId(commit, path);
      if (!root) return null;
      const files = new Map<string, GitTreeEntry>();
      const walk = async (treeOid: string, prefix: string) => {
        for (const e of await source.readTree(treeOid)) {
          const p = prefix ? `${prefix}/${e.path}` : e.path;
          if (e.type === 'tree') await walk(e.oid, p);
          else files.set(p, { ...e, path: p });
        }
      };
      await walk(root, '');
      return files;
    },

    async commitTree(commit) {
      const { commit: c } = await git.readCommit({ fs, gitdir, cache, oid: commit });
      return c.tree;
    },

    async commitParents(commit) {
      const { commit: c } = await git.readCommit({ fs, gitdir, cache, oid: commit });
      return c.parent;
    },

    readBlob: (oid) =>
      objects.blob(oid, async () => {
        const { blob } = await git.readBlob({ fs, gitdir, cache, oid });
        return blob;
      }),

    writeBlob: (content) => git.writeBlob({ fs, gitdir, blob: content }),

    writeTree: (entries) =>
      git.writeTree({
        fs,
        gitdir,
        tree: entries.map((e) => ({
          path: e.path,
          mode: e.mode,
          oid: e.oid,
          type: MODE_TYPE[e.mode] ?? 'blob',
        })),
      }),

    async commit({ tree, parents, message, author }) {
      const who = author ?? o.author;
      const timestamp = Math.floor(Date.now() / 1000);
      const person = { name: who.name, email: who.email, timestamp, timezoneOffset: 0 };
      return git.writeCommit({
        fs,
        gitdir,
        commit: { tree, parent: parents, author: person, committer: person, message: ensureNewline(message) },
      });
    },

    push: (branch, commit) =>
      serial(async () => {
        await init();
        const local = `refs/flotilla/push/${branch}`;
        await git.writeRef({ fs, gitdir, ref: local, value: commit, force: true });
        try {
          const result = await git.push({
            fs,
            http,
            gitdir,
            url,
            ref: local,
            remoteRef: `refs/heads/${branch}`,
            onAuth,
            onAuthFailure,
          });
          const status = result.refs[`refs/heads/${branch}`];
          if (!result.ok || (status && !status.ok))
            throw new Error(status?.error ?? result.error ?? 'push rejected');
        } catch (err) {
          const rejected = /not a simple fast-forward|fast-forward|rejected|non-fast-forward/i.test(
            errorMessage(err),
          );
          fail(`push to ${branch}`, err, rejected ? ErrorCode.Conflict : ErrorCode.Unavailable);
        }
        await git.writeRef({ fs, gitdir, ref: remoteRef(branch), value: commit, force: true });
        o.logger?.info({ url, branch, commit }, 'git push done');
      }),
  };
  return source;
}

function toEntry(e: { path: string; mode: string; oid: string; type: GitTreeEntry['type'] }): GitTreeEntry {
  return { path: e.path, mode: e.mode, oid: e.oid, type: e.type };
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'NotFoundError';
}

function ensureNewline(message: string): string {
  return message.endsWith('\n') ? message : `${message}\n`;
}
