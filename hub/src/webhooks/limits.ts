/**
 * A token bucket per source (the caller's address): `burst` calls at once, then `perMinute`.
 * At most `maxSources` buckets are kept; the oldest goes first, so a spray of addresses
 * cannot grow the hub's memory.
 */
export interface RateLimiter {
  /** Takes one call from `source`'s bucket; false when it is empty. */
  take(source: string): boolean;
}

export function createRateLimiter(options: {
  perMinute: number;
  burst: number;
  maxSources?: number;
  now?: () => number;
}): RateLimiter {
  const now = options.now ?? Date.now;
  const max = options.maxSources ?? 10_000;
  const perMs = options.perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(source) {
      const t = now();
      const b = buckets.get(source) ?? { tokens: options.burst, at: t };
      buckets.delete(source);
      b.tokens = Math.min(options.burst, b.tokens + (t - b.at) * perMs);
      b.at = t;
      const ok = b.tokens >= 1;
      if (ok) b.tokens -= 1;
      buckets.set(source, b);
      while (buckets.size > max) buckets.delete(buckets.keys().next().value!);
      return ok;
    },
  };
}

/**
 * Runs `run` at most once at a time with at most one run queued behind it, however often it
 * is asked for: a flood of webhook calls costs the hub two fetches, not one per call.
 * Returns whether this ask was folded into a run already queued.
 */
export function createCoalescer(run: () => Promise<unknown>): () => { coalesced: boolean } {
  let running: Promise<unknown> | undefined;
  let queued = false;
  const start = (): void => {
    running = run()
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
        if (queued) {
          queued = false;
          start();
        }
      });
  };
  return () => {
    if (!running) {
      start();
      return { coalesced: false };
    }
    if (queued) return { coalesced: true };
    queued = true;
    return { coalesced: false };
  };
}
