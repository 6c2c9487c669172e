/** How a retry waits: base·2ⁿ for the n-th retry (n from 0), capped, optionally jittered. */
export interface BackoffPolicy {
  baseMs: number;
  /** No wait is longer than this; default unbounded. */
  maxMs?: number;
  /** The exponent stops growing here (2^maxDoublings·base at most); default unbounded. */
  maxDoublings?: number;
  /** Spread each wait uniformly over ±this share of it (0.25: 75 %–125 %); default 0. */
  jitter?: number;
}

/** The wait before retry number `attempt` (0 for the first retry) under `policy`. */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(0, attempt), policy.maxDoublings ?? Number.POSITIVE_INFINITY);
  const delay = Math.min(policy.baseMs * 2 ** exponent, policy.maxMs ?? Number.POSITIVE_INFINITY);
  const jitter = policy.jitter ?? 0;
  return jitter === 0 ? delay : delay * (1 - jitter + Math.random() * 2 * jitter);
}
