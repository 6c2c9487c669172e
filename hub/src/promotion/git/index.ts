export { type PromoteGitResult, promoteTree } from './promote-tree.js';
export { revertCommit } from './revert-commit.js';
