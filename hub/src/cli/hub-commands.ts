import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLogger, errorMessage } from '@flotilla/shared';
import type { ChartCredential } from '../charts/chart-store.js';
import { initDataDir } from '../pki/init.js';
import { rotateSigningKey } from '../pki/signing-keys.js';
import { caCertPath } from '../pki/tls.js';
import { parseDuration } from '../util/duration.js';
import { CliError } from './client.js';
import type { CliEnv, CliIo } from './run.js';

/** `flotilla hub init`: creates the data dir idempotently; the admin token appears only the first time. */
export async function hubInit(
  dataDir: string,
  tlsSans: string[],
): Promise<{
  dataDir: string;
  adminToken: string | null;
  caHash: string;
  caFile: string;
  natsConfig: string;
}> {
  const identity = await initDataDir(dataDir, { tlsSans });
  return {
    dataDir: identity.dataDir,
    adminToken: identity.newAdminToken ?? null,
    caHash: identity.tls.caHash,
    caFile: caCertPath(identity.dataDir),
    natsConfig: identity.natsConfigPath,
  };
}

/** `flotilla hub rotate-key --data-dir D`: a running hub on that dir picks the new key up at once. */
export function hubRotateKeyOffline(dataDir: string): { keyId: string; keys: string[] } {
  const ring = rotateSigningKey(resolve(dataDir));
  return { keyId: ring.current.keyId, keys: ring.all.map((k) => k.keyId) };
}

interface StartCtx {
  parse(options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>): {
    values: Record<string, unknown>;
    positionals: string[];
  };
  env: CliEnv;
  io: CliIo;
}

/**
 * `flotilla hub start`: runs the hub in the foreground until SIGTERM or SIGINT, then stops
 * everything cleanly. When serving, writes the ready file and logs `hub ready`.
 */
export async function hubStart({ parse, env, io }: StartCtx): Promise<number> {
  const { values } = parse({
    'data-dir': { type: 'string' },
    'cache-dir': { type: 'string' },
    nats: { type: 'string', multiple: true },
    repo: { type: 'string' },
    'repo-username': { type: 'string' },
    'repo-password': { type: 'string' },
    'repo-token': { type: 'string' },
    database: { type: 'string' },
    http: { type: 'string' },
    'http-tls': { type: 'boolean' },
    grpc: { type: 'string' },
    advertise: { type: 'string' },
    poll: { type: 'string' },
    'heartbeat-window': { type: 'string' },
    'agent-credential-ttl': { type: 'string' },
    'agent-nats-url': { type: 'string', multiple: true },
    'bundle-replicas': { type: 'string' },
    'tls-san': { type: 'string', multiple: true },
    'age-recovery-recipient': { type: 'string', multiple: true },
    'ready-file': { type: 'string' },
    'log-level': { type: 'string' },
    'chart-auth-file': { type: 'string' },
    'notify-config': { type: 'string' },
    'webhook-secret-file': { type: 'string' },
    'oidc-config': { type: 'string' },
  });
  const nats = values.nats as string[] | undefined;
  if (!nats?.length) throw new CliError('hub start: --nats URL is required', 2);
  if (!values.repo) throw new CliError('hub start: --repo URL is required', 2);
  const logger = createLogger({ name: 'hub', level: (values['log-level'] as string) ?? 'info' });
  const password = (values['repo-password'] as string | undefined) ?? env.repoPassword;
  const token = (values['repo-token'] as string | undefined) ?? env.repoToken;
  // Only `hub start` needs the hub itself: `hub init` and `rotate-key` stay light.
  const { startHub } = await import('../hub.js');
  let receivers: import('../notify/index.js').Receiver[] | undefined;
  if (values['notify-config']) {
    const file = values['notify-config'] as string;
    const { parseReceivers } = await import('../notify/config.js');
    try {
      receivers = parseReceivers(readFileSync(file, 'utf8'), file);
    } catch (err) {
      throw new CliError(`hub start: --notify-config ${errorMessage(err)}`, 2);
    }
  }
  const webhookSecret = values['webhook-secret-file']
    ? readSecretFile(values['webhook-secret-file'] as string, '--webhook-secret-file')
    : env.webhookSecret;
  let oidc: import('../dashboard/oidc.js').OidcOptions | undefined;
  if (values['oidc-config']) {
    const file = values['oidc-config'] as string;
    const { parseOidcConfig } = await import('../dashboard/oidc.js');
    try {
      oidc = parseOidcConfig(readFileSync(file, 'utf8'), file);
    } catch (err) {
      throw new CliError(`hub start: --oidc-config ${errorMessage(err)}`, 2);
    }
    if (env.oidcClientSecret) oidc.clientSecret = env.oidcClientSecret;
  }
  const hub = await startHub({
    ...(webhookSecret ? { webhook: { secret: webhookSecret } } : {}),
    ...(oidc ? { oidc } : {}),
    dataDir: (values['data-dir'] as string) ?? '.flotilla/hub',
    ...(values['cache-dir'] ? { cacheDir: values['cache-dir'] as string } : {}),
    nats,
    repo: {
      url: values.repo as string,
      ...(values['repo-username'] ? { username: values['repo-username'] as string } : {}),
      ...(password ? { password } : {}),
      ...(token ? { token } : {}),
    },
    ...(values.database ? { database: values.database as string } : {}),
    ...(values.http ? { http: values.http as string } : {}),
    ...(values['http-tls'] ? { httpTls: true } : {}),
    ...(values.grpc ? { grpc: values.grpc as string } : {}),
    ...(values.advertise ? { advertise: values.advertise as string } : {}),
    ...(values.poll ? { pollMs: parseDuration(values.poll as string, '--poll') } : {}),
    ...(values['heartbeat-window']
      ? { heartbeatWindowMs: parseDuration(values['heartbeat-window'] as string, '--heartbeat-window') }
      : {}),
    ...(values['agent-credential-ttl']
      ? {
          agentCredentialTtlMs: parseDuration(
            values['agent-credential-ttl'] as string,
            '--agent-credential-ttl',
          ),
        }
      : {}),
    ...(values['bundle-replicas'] ? { bundleReplicas: parseCount(values['bundle-replicas'] as string) } : {}),
    ...(values['chart-auth-file']
      ? { chartCredentials: readChartCredentials(values['chart-auth-file'] as string) }
      : {}),
    ...(receivers ? { notify: { receivers } } : {}),
    agentNats: (values['agent-nats-url'] as string[]) ?? [],
    tlsSans: (values['tls-san'] as string[]) ?? [],
    ageRecoveryRecipients: (values['age-recovery-recipient'] as string[]) ?? [],
    logger,
  });
  if (hub.identity.newAdminToken) {
    io.err(`admin token (shown once, store it now): ${hub.identity.newAdminToken}\n`);
  }
  if (!values['http-tls'] && !isLoopback(new URL(hub.httpUrl).hostname)) {
    logger.warn(
      { http: hub.httpUrl },
      'the admin API listens beyond this machine over plain HTTP: the admin token crosses the network in clear; ' +
        'use --http-tls, or put TLS in front of it',
    );
  }
  const ready = { http: hub.httpUrl, grpc: hub.grpcAddress, caHash: hub.caHash };
  if (values['ready-file']) writeFileSync(values['ready-file'] as string, JSON.stringify(ready));
  logger.info(ready, 'hub ready');
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'hub stopping');
      hub
        .stop()
        .catch((err) => logger.error({ err: errorMessage(err) }, 'hub stop failed'))
        .finally(resolveStop);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('hub stopped');
  return 0;
}

/** A secret kept in a file (a mounted Kubernetes Secret): its first line; never printed. */
function readSecretFile(file: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(
      `hub start: ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
      2,
    );
  }
  const secret = text.split('\n')[0]!.trim();
  if (!secret) throw new CliError(`hub start: ${flag} ${file}: is empty`, 2);
  return secret;
}

/**
 * `--chart-auth-file FILE`: a JSON list of `{url, username, password}` or `{url, token}`, the
 * credentials of private Helm repositories and registries by URL prefix. Read once at start;
 * its content is never printed, even when it is malformed.
 */
function readChartCredentials(file: string): ChartCredential[] {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(
      `hub start: --chart-auth-file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'is not valid JSON'}`,
      2,
    );
  }
  const ok =
    Array.isArray(value) &&
    value.every(
      (c) =>
        c &&
        typeof c === 'object' &&
        typeof c.url === 'string' &&
        ['username', 'password', 'token'].every((k) => c[k] === undefined || typeof c[k] === 'string'),
    );
  if (!ok)
    throw new CliError(
      `hub start: --chart-auth-file ${file}: must be a JSON list of {url, username, password} or {url, token}`,
      2,
    );
  return value as ChartCredential[];
}

/** `--bundle-replicas N`: digits only, so `3x` or `1.5` is refused rather than read as 3 or 1. */
function parseCount(value: string): number {
  if (!/^\d+$/.test(value))
    throw new CliError(`hub start: --bundle-replicas: ${value} is not a whole number`, 2);
  return Number(value);
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
