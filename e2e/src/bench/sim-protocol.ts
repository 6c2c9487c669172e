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
  | { op: 'burst'; target: TamperTarget; value: string; timeoutMs: number }
  | { op: 'flood'; perAgent: number; timeoutMs: number }
  | { op: 'expect'; revision: string }
  | { op: 'await'; timeoutMs: number }
  | { op: 'stats' }
  | { op: 'stop' };

export type SimReply =
  | { op: 'started'; started: number; failed: { name: string; error: string }[] }
  | { op: 'burst'; edited: number; result: DriftBurstResult }
  /**
   * `silent`: agents whose outbox was not empty at the timeout; `appendedAt`: when every report
   * was in its outbox (`Date.now()`); `cpuMs`: the worker's CPU over the flood.
   */
  | { op: 'flooded'; result: BurstResult; appendedAt: number; cpuMs: number }
  | { op: 'armed' }
  /** When the hub acknowledged each agent's first Synced and Healthy report at the expected revision (`Date.now()`). */
  | { op: 'converged'; at: Record<string, number>; missing: string[] }
  | { op: 'stats'; rssKiB: number; agents: number }
  | { op: 'stopped' }
  | { op: 'error'; error: string };

/**
 * What the agents of one process sent: every report the outboxes took, when the first was
 * appended and when the outboxes were empty again, i.e. the hub had acknowledged (stored) the
 * last of them. Times are `Date.now()`, comparable between processes of one machine.
 */
export interface BurstResult {
  reports: number;
  firstAppendAt: number;
  drainedAt: number;
  /** Agents that appended no report before the timeout. */
  silent: number;
}

/**
 * The drift burst: `reports` are the drift and heal reports (and any other status); the
 * heartbeats sent meanwhile are counted apart, as they are not the burst.
 */
export interface DriftBurstResult extends BurstResult {
  heartbeats: number;
  /** Agents that had not reported the drift and then the heal before the timeout. */
  unhealed: number;
}
