import { backoffDelay } from '@flotilla/shared';
import { statusOf } from './cluster.js';

/** Statuses worth another try: throttling, and a server that is briefly unwell. */
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

/** A request that took longer than the request timeout. */
export class RequestTimeoutError extends Error {
  constructor(ms: number) {
    super(`request timed out after ${ms} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** Worth retrying: throttling, a briefly unwell server, a dropped connection or a timeout; never a refusal. */
export function isTransient(err: unknown): boolean {
  if (TRANSIENT_STATUS.has(statusOf(err))) return true;
  if (err instanceof RequestTimeoutError) return true;
  const e = err as {
    code?: unknown;
    errno?: unknown;
    type?: unknown;
    cause?: unknown;
    name?: unknown;
  } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  if (typeof e.errno === 'string' && TRANSIENT_CODES.has(e.errno)) return true;
  // node-fetch wraps socket errors as FetchError of type 'system'.
  if (e.name === 'FetchError' && e.type === 'system') return true;
  return e.cause !== undefined && e.cause !== err && isTransient(e.cause);
}

export interface RetryOptions {
  attempts: number;
  baseDelayMs: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Runs `fn` with a per-attempt timeout, retrying transient API failures with exponential backoff and jitter. */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await withTimeout(fn(), options.timeoutMs);
    } catch (err) {
      if (attempt >= options.attempts || !isTransient(err)) throw err;
      const delay = backoffDelay(attempt - 1, { baseMs: options.baseDelayMs, jitter: 0.25 });
      await sleep(delay, options.signal);
    }
  }
}

/** A request that outlives `ms` fails with RequestTimeoutError (transient); its late answer is ignored. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  if (!(ms > 0)) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RequestTimeoutError(ms)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
