import { createHash, createHmac } from 'node:crypto';
import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values are secret wherever they appear in a log record. pino's redact
 * matches exact paths, so each name is listed at the top level and one and two levels down.
 */
export const SECRET_FIELDS = [
  'token',
  'password',
  'secret',
  'seed',
  'jwt',
  'credential',
  'credentials',
  'authorization',
  'privateKey',
  'adminToken',
  'agentCredential',
  'stringData',
  'data',
  'auth',
  'creds',
] as const;

export const REDACT_PATHS: string[] = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

export interface LoggerConfig {
  /** The component, e.g. `hub` or `agent`. */
  name: string;
  level?: LoggerOptions['level'];
  /** Where to write; stdout by default. */
  destination?: NodeJS.WritableStream;
}

const SECRET_KEYS = new Set<string>(SECRET_FIELDS.map((f) => f.toLowerCase()));
const MAX_DEPTH = 16;

/**
 * Secrets that can hide inside free text (an error message, a URL): URL userinfo, bearer
 * tokens and Flotilla's own token formats are replaced wherever they appear.
 */
export function scrubText(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, '$1 [redacted]')
    .replace(/\bflt_(admin|join|agent|tok)_[A-Za-z0-9_-]+/g, 'flt_$1_[redacted]');
}

/** A copy of a log record with secret-named fields censored at any depth and text scrubbed. */
function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return scrubText(value.message);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value instanceof Uint8Array || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEYS.has(k.toLowerCase()) ? '[redacted]' : scrub(v, depth + 1);
  return out;
}

/**
 * A pino logger that redacts secret-bearing fields (see SECRET_FIELDS) at any depth, and
 * URL userinfo, bearer tokens and Flotilla tokens inside any string, the message included.
 */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    name: config.name,
    level: config.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { log: (record) => scrub(record, 0) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>,
        );
      },
    },
  };
  return config.destination ? pino(options, config.destination as pino.DestinationStream) : pino(options);
}

/** A URL with any userinfo removed, for logs, errors and status. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/**
 * What a Secret value is shown as in drift, status and diffs: a short hash, never the value.
 * With a key (the agent's, the hub's) the hash is an HMAC, so someone who sees it cannot test
 * guesses of a weak value offline; equal values still show equal under one key.
 */
export function redactSecretValue(value: unknown, key?: Uint8Array): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  const hex = key ? createHmac('sha256', key).update(text).digest('hex') : createHashHex(text);
  return `[redacted ${hex.slice(0, 12)}]`;
}

/** A Secret-hash key derived from a secret the holder already keeps (its private key). */
export function secretHashKey(secret: string | Uint8Array): Uint8Array {
  return createHash('sha256').update('flotilla/v1 secret-hash\0').update(secret).digest();
}

function createHashHex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
