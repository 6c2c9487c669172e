import { ErrorCode } from '@flotilla/shared';
import { type GitAuthor, type GitSource, SourceError } from '../../source/index.js';
import { matchesKeep, type TreeChange, updateTree, writeEmptyTree } from './tree-edit.js';

/** What a promotion did to TO's branch. */
export interface PromoteGitResult {
  /** TO's branch head afterwards. */
  commit: string;
  /** TO's branch was moved to FROM's commit instead of getting a new commit. */
  fastForward: boolean;
  /** False when TO already held FROM's content: nothing was pushed. */
  changed: boolean;
}

export interface PromoteTreeArgs {
  /** FROM's content at the revision FROM verifiably runs. */
  from: { branch: string; path: string; commit: string };
  to: { branch: string; path: string; keep: string[] };
  /** Must name the source revision; a `Flotilla-Promoted-From` trailer is added either way. */
  message: string;
  author: GitAuthor;
}

/**
 * The git half of `flotilla promote`: one rule for directory, branch and mixed mappings.
 * Makes TO's (branch, path) hold FROM's (commit, path) content, except the files matching
 * TO's `keep` globs, which stay as TO had them. When both use the same path, TO's head is
 * an ancestor of FROM's commit and the result would equal FROM's tree there, TO's branch is
 * fast-forwarded; otherwise one commit is added on TO's branch. Nothing is pushed when TO
 * already holds that content. A TO branch that moved meanwhile makes the push fail (conflict).
 */
export async function promoteTree(source: GitSource, args: PromoteTreeArgs): Promise<PromoteGitResult> {
  const { from, to } = args;
  await source.fetch();
  const fromFiles = await source.listFiles(from.commit, from.path);
  if (!fromFiles)
    throw new SourceError(`${source.url}: ${from.path} does not exist at ${from.commit.slice(0, 12)}`, {
      code: ErrorCode.NotFound,
    });

  let toHead: string | null = null;
  try {
    toHead = await source.resolveBranch(to.branch);
  } catch (err) {
    if ((err as SourceError).code !== ErrorCode.NotFound) throw err;
  }
  if (!toHead) {
    if (from.path !== to.path)
      throw new SourceError(`${source.url}: branch ${to.branch} does not exist`, {
        code: ErrorCode.NotFound,
      });
    // A branch pipeline's first promotion: the branch starts at FROM's commit.
    await source.push(to.branch, from.commit);
    return { commit: from.commit, fastForward: true, changed: true };
  }

  const toFiles = (await source.listFiles(toHead, to.path)) ?? new Map();
  const desired = new Map<string, TreeChange>();
  for (const [p, e] of fromFiles) if (!matchesKeep(p, to.keep)) desired.set(p, { mode: e.mode, oid: e.oid });
  for (const [p, e] of toFiles) if (matchesKeep(p, to.keep)) desired.set(p, { mode: e.mode, oid: e.oid });
  const newSub = await updateTree(source, null, desired);
  const currentSub = await source.treeId(toHead, to.path);
  if (newSub === currentSub) return { commit: toHead, fastForward: false, changed: false };

  if (from.path === to.path && newSub === (await source.treeId(from.commit, from.path))) {
    if (await source.isAncestor(toHead, from.commit)) {
      await source.push(to.branch, from.commit);
      return { commit: from.commit, fastForward: true, changed: true };
    }
  }

  const root = await source.commitTree(toHead);
  const change: TreeChange = newSub ? { mode: '040000', oid: newSub } : null;
  const tree =
    (await updateTree(source, root, new Map([[to.path, change]]))) ?? (await writeEmptyTree(source));
  const message = withTrailer(
    args.message,
    'Flotilla-Promoted-From',
    `${from.branch}@${from.commit}:${from.path}`,
  );
  const commit = await source.commit({ tree, parents: [toHead], message, author: args.author });
  await source.push(to.branch, commit);
  return { commit, fastForward: false, changed: true };
}

export function withTrailer(message: string, key: string, value: string): string {
  const body = message.trimEnd();
  if (body.includes(`${key}: ${value}`)) return `${body}\n`;
  return `${body}\n\n${key}: ${value}\n`;
}
