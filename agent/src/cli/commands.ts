import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createLogger,
  errorMessage,
  FlotillaError,
  InvalidError,
  type Logger,
  secretHashKey,
} from '@flotilla/shared';
import { KubeConfig } from '@kubernetes/client-node';
import type { ApplyEventWriter } from '../events/index.js';
import type { Reconciler, ReconcilerOptions } from '../reconcile/index.js';
import { runAgent } from '../run.js';
import { createSopsDecoder, newAgeKey, readAgeKeyFile } from '../secrets/index.js';
import {
  type AgentIdentity,
  createFileIdentityStore,
  createSecretIdentityStore,
  DEFAULT_STATE_DIR,
  type IdentityStore,
  inClusterNamespace,
  rememberedKubeconfig,
  rememberKubeconfig,
} from '../state.js';
import { AGENT_VERSION } from '../version.js';

/** What the entry point read from the environment; nothing below reads `process.env`. */
export interface CliEnvironment {
  /** `FLOTILLA_AGENT_LOG_LEVEL`; default info. */
  logLevel?: string;
  /** `FLOTILLA_AGENT_LOG_FORMAT`: `json` (default) or `pretty`; `--log-format` wins. */
  logFormat?: string;
  /** `FLOTILLA_AGENT_STATE_DIR`: the default for `--state-dir`. */
  stateDir?: string;
  /**
   * `FLOTILLA_AGENT_CLOCK_FILE`: a file holding an ISO time that maintenance windows are read
   * against instead of the system clock (drills and tests of windows); the system clock when unset.
   */
  clockFile?: string;
}

/** The clock windows are read against: the clock file's time while it holds one, else the system clock. */
function windowClock(env: CliEnvironment): (() => Date) | undefined {
  const file = env.clockFile;
  if (!file) return undefined;
  return () => {
    try {
      const at = new Date(readFileSync(file, 'utf8').trim());
      if (!Number.isNaN(at.getTime())) return at;
    } catch {
      // no file: the system clock
    }
    return new Date();
  };
}

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT); `run` waits on it. */
  stopSignal: Promise<string>;
}

export const USAGE = `flotilla-agent — the Flotilla agent: pulls its cluster's signed bundle and keeps the cluster matching it

Usage:
  flotilla-agent join --hub HOST:PORT --token TOKEN --ca-hash sha256:HEX [--state-dir DIR] [--kubeconfig FILE] [--in-cluster]
                      [--age-key-file FILE]
  flotilla-agent run [--state-dir DIR] [--kubeconfig FILE] [--in-cluster] [--heartbeat SECONDS] [--heal-reset SECONDS]
                     [--window-check SECONDS]   (how often a bundle held outside its maintenance window is looked at; default 30)
                     [--age-key-file FILE]
                     [--nats-url URL]… [--nats-domain DOMAIN]   (a NATS leaf node site: its local server, the hub's JetStream domain)
                     [--metrics-addr HOST:PORT] [--stall-timeout SECONDS]
  flotilla-agent import BUNDLE_FILE [--state-dir DIR] [--kubeconfig FILE] [--in-cluster]
  flotilla-agent status export -o FILE [--state-dir DIR] [--kubeconfig FILE] [--in-cluster]

  --log-format  json (one JSON object per line, the default) or pretty (for a person at a terminal); any command
  --state-dir   where the outbox and the last good bundle live (and the identity, outside a cluster); default ${DEFAULT_STATE_DIR}
  --in-cluster  use the pod's service account, and keep the identity in Secret flotilla-agent of the pod's namespace
  --age-key-file  age identities (age-keygen output) that open SOPS-encrypted Secrets. At join: the agent's own
                key (its recipient is registered with the hub) instead of a new one; at run: more keys, e.g. a
                team key, used for decryption only. Without it, join makes a key that never leaves the cluster.
  --heal-reset  self-heal backs off (1 s, 2 s, … up to 60 s) while drift keeps coming back, as in a fight with another
                controller; a drift this long after the previous heal is healed at once again; default 60
  --metrics-addr  serve /healthz, /readyz and Prometheus /metrics here (":8080" for every interface); off by default
  --stall-timeout with --metrics-addr: /healthz fails once a loop (pull, watch, reconcile, status) has waited this long
                on something that should have ended (a request, a watch stream), so that the kubelet restarts a wedged
                agent; at least 90; default 300
`;

const COMMON = {
  'state-dir': { type: 'string' },
  kubeconfig: { type: 'string' },
  'in-cluster': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

interface Common {
  stateDir: string;
  kubeconfig?: string;
  inCluster: boolean;
}

/**
 * The flags every command shares. A `--kubeconfig` given to `join` or `run` is remembered
 * in the state dir and used by later commands that do not name one.
 */
function common(
  values: { 'state-dir'?: string; kubeconfig?: string; 'in-cluster'?: boolean },
  env: CliEnvironment,
): Common {
  const stateDir = resolve(values['state-dir'] ?? env.stateDir ?? DEFAULT_STATE_DIR);
  return {
    stateDir,
    kubeconfig: values.kubeconfig ? resolve(values.kubeconfig) : rememberedKubeconfig(stateDir),
    inCluster: values['in-cluster'] ?? false,
  };
}

function remember(c: Common, values: { kubeconfig?: string }): void {
  if (values.kubeconfig && c.kubeconfig) rememberKubeconfig(c.stateDir, c.kubeconfig);
}

async function loadKubeConfig(c: Common): Promise<KubeConfig> {
  const kc = new KubeConfig();
  try {
    if (c.inCluster) kc.loadFromCluster();
    else if (c.kubeconfig) kc.loadFromFile(c.kubeconfig);
    else {
      kc.loadFromDefault();
      // client-node falls back to http://localhost:8080 when it finds nothing: never guess a cluster.
      if (kc.getCurrentCluster()?.server === 'http://localhost:8080') {
        throw new Error(
          'none found (no --kubeconfig, no KUBECONFIG, no ~/.kube/config); pass --kubeconfig FILE or --in-cluster',
        );
      }
    }
  } catch (err) {
    throw new InvalidError(c.kubeconfig ? `--kubeconfig ${c.kubeconfig}` : 'kubeconfig', errorMessage(err), {
      cause: err,
    });
  }
  return kc;
}

async function identityStore(c: Common): Promise<IdentityStore> {
  if (!c.inCluster) return createFileIdentityStore(c.stateDir);
  return createSecretIdentityStore({ kubeConfig: await loadKubeConfig(c), namespace: inClusterNamespace() });
}

async function loadIdentity(c: Common): Promise<AgentIdentity> {
  const store = await identityStore(c);
  const identity = await store.load();
  if (!identity) {
    throw new FlotillaError(
      'not-found',
      `${store.location}: no agent identity; run \`flotilla-agent join\` first`,
    );
  }
  return identity;
}

async function reconcilerFor(
  c: Common,
  identity: AgentIdentity,
  logger: Logger,
  extra: Pick<ReconcilerOptions, 'watchTimeoutMs' | 'onApplied'> = {},
  moreAgeIdentities: string[] = [],
): Promise<Reconciler> {
  const kubeConfig = await loadKubeConfig(c);
  const { createReconciler } = await import('../reconcile/index.js');
  const identities = [...(identity.ageIdentities ?? []), ...moreAgeIdentities];
  // Drifted Secret values show as an HMAC under a key only this agent holds (from its private key).
  return createReconciler({
    kubeConfig,
    cluster: identity.cluster,
    logger,
    secretHashKey: secretHashKey(identity.agentKey),
    ...extra,
    decoder: createSopsDecoder(() => identities),
  });
}

/** Kubernetes Events on what each apply did (loaded only by the commands that apply). */
async function eventsFor(c: Common, logger: Logger): Promise<ApplyEventWriter> {
  const { createApplyEventWriter } = await import('../events/index.js');
  return createApplyEventWriter({ kubeConfig: await loadKubeConfig(c), logger });
}

/**
 * The least `--stall-timeout`: longer than the slowest single step a loop may wait on while the
 * agent is healthy. That is an API server that swallows requests: one step of an apply is tried
 * 4 times with a 15 s timeout (about a minute) before it fails; a NATS connect, a gRPC connect and
 * an unanswered report each give up within 20 s.
 */
const MIN_STALL_TIMEOUT_S = 90;

/** `--log-format F` or `--log-format=F` anywhere in the arguments (every command takes it), and the rest. */
function takeLogFormat(argv: string[], fallback = 'json'): { format: string; argv: string[] } {
  let format = fallback;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--log-format') format = argv[++i] ?? '';
    else if (a.startsWith('--log-format=')) format = a.slice('--log-format='.length);
    else rest.push(a);
  }
  return { format, argv: rest };
}

/**
 * An identity from before age keys gets one now, kept in its store and registered with the
 * hub by a credential rotation that this makes due at once.
 */
async function withAgeKey(
  identity: AgentIdentity,
  store: IdentityStore,
  log: Logger,
): Promise<AgentIdentity> {
  if (identity.ageIdentities?.length) return identity;
  const key = await newAgeKey();
  const next: AgentIdentity = {
    ...identity,
    ageIdentities: key.identities,
    ageRecipient: key.recipient,
    ageRecipientRegistered: false,
  };
  await store.save(next);
  log.info(
    { recipient: key.recipient, stored: store.location },
    'age key created; registering it with the hub',
  );
  return next;
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new InvalidError(flag, 'is required');
  return value;
}

/**
 * Runs one CLI invocation and returns its exit code: 0 done, 1 failed (the message says
 * why), 2 usage error. `run` returns only when stopped.
 */
export async function runCli(cliArgs: string[], env: CliEnvironment, io: CliIo): Promise<number> {
  const { format, argv } = takeLogFormat(cliArgs, env.logFormat);
  if (format !== 'json' && format !== 'pretty') {
    io.stderr.write(`flotilla-agent: --log-format: "${format}" is not json or pretty\n`);
    return 2;
  }
  // Pretty printing is for a person at a terminal: pino-pretty loads only then.
  const destination =
    format === 'pretty'
      ? (await import('pino-pretty')).default({ destination: io.stderr, colorize: false, sync: true })
      : io.stderr;
  const log = createLogger({ name: 'agent', level: env.logLevel ?? 'info', destination });
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'join': {
        const { values } = parseArgs({
          args: rest,
          options: {
            ...COMMON,
            hub: { type: 'string' },
            token: { type: 'string' },
            'ca-hash': { type: 'string' },
            'age-key-file': { type: 'string' },
          },
        });
        if (values.help) return usage(io, 0);
        const c = common(values, env);
        const ageFile = values['age-key-file'];
        // Join, import and export load only when they run (the bundle keeps them in chunks of their own).
        const { join } = await import('../join.js');
        const identity = await join({
          ...(ageFile ? { ageIdentities: readAgeKeyFile(resolve(ageFile), '--age-key-file') } : {}),
          hub: required(values.hub, '--hub'),
          token: required(values.token, '--token'),
          caHash: required(values['ca-hash'], '--ca-hash'),
          store: await identityStore(c),
          logger: log,
        });
        remember(c, values);
        say(
          `joined: cluster ${identity.cluster} (environment ${identity.environment}); identity stored in ` +
            `${(await identityStore(c)).location}; start with: flotilla-agent run --state-dir ${c.stateDir}`,
        );
        return 0;
      }
      case 'run': {
        const { values } = parseArgs({
          args: rest,
          options: {
            ...COMMON,
            heartbeat: { type: 'string' },
            'heal-reset': { type: 'string' },
            'nats-url': { type: 'string', multiple: true },
            'nats-domain': { type: 'string' },
            'metrics-addr': { type: 'string' },
            'stall-timeout': { type: 'string' },
            'window-check': { type: 'string' },
            'age-key-file': { type: 'string' },
          },
        });
        if (values.help) return usage(io, 0);
        const c = common(values, env);
        const stallS = values['stall-timeout'] ? Number(values['stall-timeout']) : 300;
        if (!(stallS >= MIN_STALL_TIMEOUT_S))
          throw new InvalidError(
            '--stall-timeout',
            `"${values['stall-timeout']}" is not a number of seconds of at least ${MIN_STALL_TIMEOUT_S}`,
          );
        const metricsAddr = values['metrics-addr'];
        const heartbeatS = values.heartbeat ? Number(values.heartbeat) : 10;
        if (!(heartbeatS > 0))
          throw new InvalidError('--heartbeat', `"${values.heartbeat}" is not a positive number`);
        const healResetS = values['heal-reset'] ? Number(values['heal-reset']) : 60;
        if (!(healResetS > 0))
          throw new InvalidError('--heal-reset', `"${values['heal-reset']}" is not a positive number`);
        // The health endpoints and prom-client load only when asked for. They listen before the
        // agent starts, so that a port already taken fails the command before anything runs.
        const healthModule = metricsAddr ? await import('../health/index.js') : undefined;
        if (healthModule && metricsAddr) healthModule.parseListenAddress(metricsAddr);
        const windowCheckS = values['window-check'] ? Number(values['window-check']) : 30;
        if (!(windowCheckS > 0))
          throw new InvalidError('--window-check', `"${values['window-check']}" is not a positive number`);
        const store = await identityStore(c);
        const identity = await withAgeKey(await loadIdentity(c), store, log);
        remember(c, values);
        const ageFile = values['age-key-file'];
        // Every watch stream ends within half the stall timeout, so a quiet one still shows progress.
        const events = await eventsFor(c, log);
        const reconciler = await reconcilerFor(
          c,
          identity,
          log,
          {
            ...(healthModule ? { watchTimeoutMs: (stallS * 1000) / 4 } : {}),
            onApplied: events.onApplied,
          },
          ageFile ? readAgeKeyFile(resolve(ageFile), '--age-key-file') : [],
        );
        const health = healthModule?.createAgentHealth({
          cluster: identity.cluster,
          version: AGENT_VERSION,
          stallTimeoutMs: stallS * 1000,
          logger: log,
        });
        const server =
          healthModule && health && metricsAddr
            ? await healthModule.startHealthServer({ address: metricsAddr, health, logger: log })
            : undefined;
        const now = windowClock(env);
        const running = await runAgent({
          identity,
          saveIdentity: (next) => store.save(next),
          stateDir: c.stateDir,
          reconciler,
          logger: log,
          heartbeatMs: heartbeatS * 1000,
          healResetMs: healResetS * 1000,
          windowCheckMs: windowCheckS * 1000,
          ...(now ? { now } : {}),
          nats: {
            servers: values['nats-url'] ?? [],
            ...(values['nats-domain'] ? { jsDomain: values['nats-domain'] } : {}),
          },
          ...(health ? { health } : {}),
        }).catch(async (err) => {
          await server?.close();
          throw err;
        });
        const signal = await io.stopSignal;
        log.info({ signal }, 'stop requested');
        await running.stop();
        await events.flush(5000);
        await server?.close();
        return 0;
      }
      case 'import': {
        const { values, positionals } = parseArgs({ args: rest, options: COMMON, allowPositionals: true });
        if (values.help) return usage(io, 0);
        if (positionals.length !== 1)
          throw new InvalidError('BUNDLE_FILE', 'exactly one bundle file is required');
        const c = common(values, env);
        const identity = await loadIdentity(c);
        const file = resolve(positionals[0]!);
        const { importBundleFile, verifyBundleFile } = await import('../air-gap.js');
        // Refuse a bad file before touching the cluster at all.
        verifyBundleFile({ file, identity, stateDir: c.stateDir });
        const events = await eventsFor(c, log);
        const { bundle, result } = await importBundleFile({
          file,
          identity,
          stateDir: c.stateDir,
          reconciler: await reconcilerFor(c, identity, log, { onApplied: events.onApplied }),
          logger: log,
          ...(windowClock(env) ? { now: windowClock(env)! } : {}),
        });
        await events.flush(5000);
        say(
          `imported: generation ${bundle.generation} (revision ${bundle.revision}) for cluster ${bundle.cluster}: ` +
            `${result.phase}, ${result.health}${result.error ? `; ${result.error}` : ''}`,
        );
        return result.phase === 'Failed' ? 1 : 0;
      }
      case 'status': {
        const [sub, ...args] = rest;
        if (sub !== 'export')
          throw new InvalidError('status', `unknown subcommand "${sub ?? ''}"; try "status export"`);
        const { values } = parseArgs({
          args,
          options: { ...COMMON, output: { type: 'string', short: 'o' } },
        });
        if (values.help) return usage(io, 0);
        const c = common(values, env);
        const identity = await loadIdentity(c);
        let reconciler: Reconciler | undefined;
        try {
          reconciler = await reconcilerFor(c, identity, log);
        } catch (err) {
          log.warn({ err: errorMessage(err) }, 'no Kubernetes access: exporting queued reports only');
        }
        const file = resolve(required(values.output, '-o'));
        const { exportStatusFile } = await import('../air-gap.js');
        const { reports } = await exportStatusFile({
          file,
          identity,
          stateDir: c.stateDir,
          reconciler,
          logger: log,
        });
        say(`status exported: ${reports.length} report(s) for cluster ${identity.cluster} to ${file}`);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        return usage(io, command ? 0 : 2);
      default:
        io.stderr.write(`flotilla-agent: unknown command "${command}"\n\n`);
        return usage(io, 2);
    }
  } catch (err) {
    const usageError =
      err instanceof InvalidError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    io.stderr.write(`flotilla-agent ${command}: ${errorMessage(err)}\n`);
    return usageError ? 2 : 1;
  }
}

function usage(io: CliIo, code: number): number {
  (code === 0 ? io.stdout : io.stderr).write(USAGE);
  return code;
}
