/**
 * The `flotilla-agent` command line as data: usage text, flags, and their validation. Nothing
 * here loads the agent (NATS, gRPC, the Kubernetes client, pino): `--help`, `version` and a bad
 * argument are answered from this module alone, and only a valid command loads what it runs.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage, InvalidError } from '@flotilla/shared/errors';
import { parseListenAddress } from '../health/listen-address.js';
import { DEFAULT_STATE_DIR } from '../state-dir.js';
import { AGENT_VERSION } from '../version.js';

/** What the entry point read from the environment; nothing below main.ts reads `process.env`. */
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
  flotilla-agent version

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

/** The flags every command that touches a cluster or the state dir shares. */
export interface CommonArgs {
  /** Absolute. */
  stateDir: string;
  /** `--kubeconfig`, absolute; when absent the one remembered in the state dir is used. */
  kubeconfig?: string;
  inCluster: boolean;
}

/** One valid invocation, every flag checked and defaulted. */
export type CliCommand =
  | {
      name: 'join';
      common: CommonArgs;
      hub: string;
      token: string;
      caHash: string;
      /** Absolute. */
      ageKeyFile?: string;
    }
  | {
      name: 'run';
      common: CommonArgs;
      heartbeatMs: number;
      healResetMs: number;
      windowCheckMs: number;
      stallTimeoutMs: number;
      /** Checked as HOST:PORT already. */
      metricsAddr?: string;
      natsUrls: string[];
      natsDomain?: string;
      /** Absolute. */
      ageKeyFile?: string;
    }
  | { name: 'import'; common: CommonArgs /** Absolute. */; file: string }
  | { name: 'status-export'; common: CommonArgs /** Absolute. */; output: string }
  | { name: 'version' };

/** What the command line asks for: a command to run, the usage text, or a usage error. */
export type ParsedCli =
  | { kind: 'command'; command: CliCommand; logFormat: LogFormat }
  | { kind: 'usage'; exitCode: 0 | 2; text: string }
  | { kind: 'invalid'; command: string; message: string };

export type LogFormat = 'json' | 'pretty';

/**
 * The least `--stall-timeout`: longer than the slowest single step a loop may wait on while the
 * agent is healthy. That is an API server that swallows requests: one step of an apply is tried
 * 4 times with a 15 s timeout (about a minute) before it fails; a NATS connect, a gRPC connect and
 * an unanswered report each give up within 20 s.
 */
export const MIN_STALL_TIMEOUT_S = 90;

const COMMON = {
  'state-dir': { type: 'string' },
  kubeconfig: { type: 'string' },
  'in-cluster': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/**
 * Parses and checks one invocation's arguments. Exit codes the caller uses: a `usage` result
 * carries its own (0 asked for, 2 missing command); `invalid` is a usage error (2).
 */
export function parseCliArgs(cliArgs: readonly string[], env: CliEnvironment): ParsedCli {
  const { format, argv } = takeLogFormat(cliArgs, env.logFormat);
  const [command, ...rest] = argv;
  if (format !== 'json' && format !== 'pretty')
    return { kind: 'invalid', command: '', message: `--log-format: "${format}" is not json or pretty` };
  try {
    const parsed = parseCommand(command, rest, env);
    return 'kind' in parsed ? parsed : { kind: 'command', command: parsed, logFormat: format };
  } catch (err) {
    const known =
      err instanceof InvalidError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (!known) throw err;
    return { kind: 'invalid', command: command ?? '', message: errorMessage(err) };
  }
}

function parseCommand(
  command: string | undefined,
  rest: string[],
  env: CliEnvironment,
): CliCommand | Extract<ParsedCli, { kind: 'usage' }> {
  const usage = (exitCode: 0 | 2, before = '') => ({
    kind: 'usage' as const,
    exitCode,
    text: before + USAGE,
  });
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
      if (values.help) return usage(0);
      const ageKeyFile = values['age-key-file'];
      return {
        name: 'join',
        common: common(values, env),
        hub: required(values.hub, '--hub'),
        token: required(values.token, '--token'),
        caHash: required(values['ca-hash'], '--ca-hash'),
        ...(ageKeyFile ? { ageKeyFile: resolve(ageKeyFile) } : {}),
      };
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
      if (values.help) return usage(0);
      const stallS = values['stall-timeout'] ? Number(values['stall-timeout']) : 300;
      if (!(stallS >= MIN_STALL_TIMEOUT_S))
        throw new InvalidError(
          '--stall-timeout',
          `"${values['stall-timeout']}" is not a number of seconds of at least ${MIN_STALL_TIMEOUT_S}`,
        );
      const metricsAddr = values['metrics-addr'];
      if (metricsAddr !== undefined) parseListenAddress(metricsAddr);
      const ageKeyFile = values['age-key-file'];
      const natsDomain = values['nats-domain'];
      return {
        name: 'run',
        common: common(values, env),
        heartbeatMs: positiveSeconds(values.heartbeat, '--heartbeat', 10) * 1000,
        healResetMs: positiveSeconds(values['heal-reset'], '--heal-reset', 60) * 1000,
        windowCheckMs: positiveSeconds(values['window-check'], '--window-check', 30) * 1000,
        stallTimeoutMs: stallS * 1000,
        ...(metricsAddr !== undefined ? { metricsAddr } : {}),
        natsUrls: values['nats-url'] ?? [],
        ...(natsDomain ? { natsDomain } : {}),
        ...(ageKeyFile ? { ageKeyFile: resolve(ageKeyFile) } : {}),
      };
    }
    case 'import': {
      const { values, positionals } = parseArgs({ args: rest, options: COMMON, allowPositionals: true });
      if (values.help) return usage(0);
      if (positionals.length !== 1)
        throw new InvalidError('BUNDLE_FILE', 'exactly one bundle file is required');
      return { name: 'import', common: common(values, env), file: resolve(positionals[0]!) };
    }
    case 'status': {
      const [sub, ...args] = rest;
      if (sub !== 'export')
        throw new InvalidError('status', `unknown subcommand "${sub ?? ''}"; try "status export"`);
      const { values } = parseArgs({ args, options: { ...COMMON, output: { type: 'string', short: 'o' } } });
      if (values.help) return usage(0);
      return {
        name: 'status-export',
        common: common(values, env),
        output: resolve(required(values.output, '-o')),
      };
    }
    case 'version':
    case '--version':
      return { name: 'version' };
    case undefined:
      return usage(2);
    case 'help':
    case '--help':
    case '-h':
      return usage(0);
    default:
      return usage(2, `flotilla-agent: unknown command "${command}"\n\n`);
  }
}

/** The line `flotilla-agent version` prints. */
export const VERSION_LINE = `flotilla-agent ${AGENT_VERSION}`;

function common(
  values: { 'state-dir'?: string; kubeconfig?: string; 'in-cluster'?: boolean },
  env: CliEnvironment,
): CommonArgs {
  return {
    stateDir: resolve(values['state-dir'] ?? env.stateDir ?? DEFAULT_STATE_DIR),
    ...(values.kubeconfig ? { kubeconfig: resolve(values.kubeconfig) } : {}),
    inCluster: values['in-cluster'] ?? false,
  };
}

function positiveSeconds(value: string | undefined, flag: string, fallback: number): number {
  const s = value ? Number(value) : fallback;
  if (!(s > 0)) throw new InvalidError(flag, `"${value}" is not a positive number`);
  return s;
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new InvalidError(flag, 'is required');
  return value;
}

/** `--log-format F` or `--log-format=F` anywhere in the arguments (every command takes it), and the rest. */
function takeLogFormat(argv: readonly string[], fallback = 'json'): { format: string; argv: string[] } {
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
