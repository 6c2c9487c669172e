import { ErrorCode } from '@flotilla/shared';
import { type GitAuthor, type GitSource, SourceError } from '../../source/index.js';
import { diffTrees, entryAt, type TreeChange, updateTree, writeEmptyTree } from './tree-edit.js';

export interface RevertCommitArgs {
  branch: string;
  /** The commit to undo; it must be on `branch` and have exactly one parent. */
  commit: string;
  message: string;
  author: GitAuthor;
}

/**
 * The git half of `flotilla rollback`: a real revert commit of `commit` on `branch`,
 * pushed. It is a 3-way change per file (base = the commit, theirs = its parent, ours =
 * the branch head): files changed again since then conflict and nothing is written.
 */
export async function revertCommit(source: GitSource, args: RevertCommitArgs): Promise<{ commit: string }> {
  const subject = `${source.url}: revert ${args.commit.slice(0, 12)} on ${args.branch}`;
  await source.fetch();
  const head = await source.resolveBranch(args.branch);
  const parents = await source.commitParents(args.commit).catch((cause) => {
    throw new SourceError(`${subject}: commit not found`, { cause, code: ErrorCode.NotFound });
  });
  if (parents.length !== 1)
    throw new SourceError(`${subject}: only commits with exactly one parent can be reverted`, {
      code: ErrorCode.Invalid,
    });
  if (!(await source.isAncestor(args.commit, head)))
    throw new SourceError(`${subject}: the commit is not on the branch`, { code: ErrorCode.Invalid });

  const base = await source.commitTree(args.commit);
  const theirs = await source.commitTree(parents[0] as string);
  const ours = await source.commitTree(head);
  const changes = new Map<string, TreeChange>();
  const conflicts: string[] = [];
  for (const [path, [inCommit, inParent]] of await diffTrees(source, base, theirs)) {
    const now = await entryAt(source, ours, path);
    const same = (a: typeof now, b: typeof now) =>
      (a?.oid ?? null) === (b?.oid ?? null) && (a?.mode ?? null) === (b?.mode ?? null);
    if (same(now, inCommit)) changes.set(path, inParent ? { mode: inParent.mode, oid: inParent.oid } : null);
    else if (!same(now, inParent)) conflicts.push(path);
  }
  if (conflicts.length)
    throw new SourceError(
      `${subject}: changed again since, cannot revert: ${conflicts.slice(0, 10).join(', ')}`,
      {
        code: ErrorCode.Conflict,
      },
    );
  if (changes.size === 0)
    throw new SourceError(`${subject}: nothing to revert (already reverted)`, { code: ErrorCode.Conflict });
  const tree = (await updateTree(source, ours, changes)) ?? (await writeEmptyTree(source));
  const body = args.message.trimEnd();
  const message = body.includes(args.commit) ? body : `${body}\n\nThis reverts commit ${args.commit}.`;
  const commit = await source.commit({ tree, parents: [head], message, author: args.author });
  await source.push(args.branch, commit);
  return { commit };
}
