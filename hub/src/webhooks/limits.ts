import { LRUCache } from 'lru-cache';

/**
 * A token bucket per source (the caller's address): `burst` calls at once, then `perMinute`.
 * The buckets live in an LRU cache of at most `maxSources`, the least recently seen going first,
 * so a spray of addresses cannot grow the hub's memory; and a bucket is dropped once it would
 * have refilled (its TTL), since a missing bucket and a full one mean the same.
 */
export interface RateLimiter {
  /** Takes one call from `source`'s bucket; false when it is empty. */
  take(source: string): boolean;
  /** How many sources have a bucket now (past their TTL ones dropped first). */
  readonly size: number;
}

/** How a rate limiter is set; defaults applied in createRateLimiter. */
export interface RateLimiterOptions {
  /** Calls per minute per source after the burst. */
  perMinute: number;
  /** Calls a source may make at once. */
  burst: number;
  /** Buckets kept at most; default 10,000. */
  maxSources?: number;
  /** The clock in ms (tests); default `Date.now`. */
  now?: () => number;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const perMs = options.perMinute / 60_000;
  const buckets = new LRUCache<string, { tokens: number; at: number }>({
    max: options.maxSources ?? 10_000,
    // Time for an empty bucket to be full again: after it, forgetting the bucket changes nothing.
    ttl: Math.ceil(options.burst / perMs),
    // The same clock as the buckets' own arithmetic, read on every check (no cached time).
    perf: { now },
    ttlResolution: 0,
  });
  return {
    take(source) {
      const t = now();
      const b = buckets.get(source) ?? { tokens: options.burst, at: t };
      b.tokens = Math.min(options.burst, b.tokens + (t - b.at) * perMs);
      b.at = t;
      const ok = b.tokens >= 1;
      if (ok) b.tokens -= 1;
      buckets.set(source, b);
      return ok;
    },
    get size() {
      buckets.purgeStale();
      return buckets.size;
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
