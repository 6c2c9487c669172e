import { createHash } from 'node:crypto';
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

/** A pino logger that redacts secret-bearing fields (see SECRET_FIELDS). */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    name: config.name,
    level: config.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
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

/** What a Secret value is shown as in drift and status: a short hash, never the value. */
export function redactSecretValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return `[redacted ${createHashHex(text).slice(0, 12)}]`;
}

function createHashHex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
