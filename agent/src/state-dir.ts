/**
 * Where the agent keeps its state when no `--state-dir` is given. A module of its own so that the
 * CLI's argument parsing names it without loading the state stores (and the Kubernetes client).
 */
export const DEFAULT_STATE_DIR = '.flotilla/agent';
