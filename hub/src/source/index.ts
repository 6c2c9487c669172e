export {
  createGitSource,
  type GitAuthor,
  type GitSource,
  type GitSourceOptions,
  type GitTreeEntry,
  SourceError,
} from './git-source.js';
