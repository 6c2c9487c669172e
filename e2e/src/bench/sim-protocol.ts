/**
 * The messages between `bench:fleet` and its agent processes (e2e/src/sim/agent-worker.ts),
 * over the IPC channel of `child_process.fork`. Typed here, in the e2e project, because the
 * worker's project depends on this one and not the other way round.
 */

/** One simulated cluster to join: what `flotilla cluster add` hands out. */
export interface SimAgentSpec {
  name: string;
  /** The hub replica's gRPC address this agent joins and streams to. */
  hub: string;
  token: string;
  caHash: string;
}

/** An object every simulated cluster holds, and the data key to change in it. */
export interface TamperTarget {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  key: string;
}

export type SimRequest =
  | { op: 'start'; agents: SimAgentSpec[]; baseDir: string; readyDelayMs: number; concurrency: number }
  | { op: 'tamper'; target: TamperTarget; value: string }
  | { op: 'stats' }
  | { op: 'stop' };

export type SimReply =
  | { op: 'started'; started: number; failed: { name: string; error: string }[] }
  | { op: 'tampered'; edited: number }
  | { op: 'stats'; rssKiB: number; agents: number }
  | { op: 'stopped' }
  | { op: 'error'; error: string };
