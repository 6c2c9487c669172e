import { readFileSync, writeFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { errorMessage } from '@flotilla/shared';
import type { AuditEntry } from '../audit/audit.js';
import { parseLabelChanges } from '../clusters/selector.js';
import type { EnvDiff, PromoteResult, RollbackResult } from '../promotion/index.js';
import type { PendingPromotion, PromotionRecord } from '../promotion/promotion-log.js';
import type {
  ClusterDetail,
  ClusterListEntry,
  FleetClusterStatus,
  FleetDrift,
} from '../status/fleet-view.js';
import { ago } from '../util/ago.js';
import { parseDuration } from '../util/duration.js';
import { CliError, createHubClient, type HubClient } from './client.js';
import { COMPLETION_SHELLS, type CompletionShell, completionScript } from './completion.js';
import { createCredentials } from './credentials.js';
import { fleetStatusTable, fleetWarningsText, watchFleetStatus } from './fleet-status.js';
import { labelsText, table } from './format.js';
import { storedLoginToken } from './login.js';
import { rolloutCommands } from './rollout-commands.js';

/** Where the CLI reads its settings from; main.ts fills it from the environment. */
export interface CliEnv {
  hubUrl?: string;
  token?: string;
  repoPassword?: string;
  repoToken?: string;
  /** The git webhook's secret for `hub start` (FLOTILLA_WEBHOOK_SECRET); --webhook-secret-file wins. */
  webhookSecret?: string;
  /** FLOTILLA_OIDC_CLIENT_SECRET: the dashboard's single sign-on client secret (never in the config file). */
  oidcClientSecret?: string;
  /** PEM file of the CA that an https:// hub's certificate must chain to (FLOTILLA_CA_FILE). */
  caFile?: string;
  /**
   * Where `flotilla login` keeps its tokens (`$XDG_CONFIG_HOME/flotilla`, else
   * `~/.config/flotilla`); without it, only FLOTILLA_TOKEN authenticates.
   */
  configDir?: string;
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Ends a command that runs until stopped (`fleet status --watch`) cleanly; main.ts aborts it on Ctrl-C. */
  stop?: AbortSignal;
}

type Options = NonNullable<ParseArgsConfig['options']>;

const GLOBAL: Options = {
  hub: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
};

export const USAGE = `flotilla — multi-cluster GitOps hub

  flotilla hub init --data-dir D [--tls-san NAME]… [-o json]
  flotilla hub start --nats URL --repo URL [--data-dir D] [--cache-dir D] [--repo-username U --repo-password P | --repo-token T]
                     [--database postgres://…] [--http HOST:PORT] [--http-tls] [--grpc HOST:PORT] [--advertise HOST:PORT]
                     [--poll 30s] [--heartbeat-window 30s] [--agent-credential-ttl 90d] [--agent-nats-url URL]…
                     [--bundle-replicas 1] [--tls-san NAME]… [--age-recovery-recipient age1…]… [--ready-file F]
                     [--log-level info]
                     [--chart-auth-file F]   (JSON [{url, username, password}]: private Helm repositories and registries)
                     [--notify-config FILE]   (webhook receivers: receivers: [{name, url, format: json|slack, events}])
                     [--webhook-secret-file F]  (or FLOTILLA_WEBHOOK_SECRET: git webhooks must be signed with it)
                     [--oidc-config F]          (dashboard single sign-on; client secret in FLOTILLA_OIDC_CLIENT_SECRET)
  flotilla hub rotate-key [--data-dir D]
  flotilla cluster add NAME --env ENV [--label k=v]… [--ttl 24h] [-o json]
  flotilla cluster list [--selector 'region in (eu),gpu=true'] [-o json]
  flotilla cluster label NAME k=v… k2-… [-o json]        (k=v sets, k- removes; the cluster is rendered again at once)
  flotilla cluster move NAME --env ENV [-o json]
  flotilla cluster show NAME [--source app/NAME|env/NAME] [-o json]   (its objects: source, sync, health and why, open drift)
  flotilla cluster token NAME [--ttl 24h] [-o json]    (join an existing cluster again; replaces its agent)
  flotilla cluster remove NAME
  flotilla cluster pause NAME [--reason TEXT]          (keeps its bundle, gets no new one)
  flotilla cluster resume NAME
  flotilla env pause ENV [--reason TEXT]
  flotilla env resume ENV
  flotilla rollout status ENV [-o json]                (its waves)
  flotilla rollout resume ENV                          (goes on past a halt)
  flotilla bundle approve CLUSTER                      (a bundle held for its blast radius)
  flotilla notify history [-o json]                    (webhook deliveries and their outcome)
  flotilla fleet status [-o json] [--watch [--interval 2s]]  (--watch: then a row per change, until Ctrl-C)
  flotilla fleet drift [--history] [--source app/NAME|env/NAME] [-o json]
  flotilla sync CLUSTER | --env ENV [-o json]
  flotilla env diff FROM TO [-o json]
  flotilla promote FROM TO [-o json]                   (into an environment with approve: true, it waits for approval)
  flotilla promote FROM TO --approve [-o json]         (approve the waiting promotion: another identity than the one that asked)
  flotilla promote --history [-o json]
  flotilla rollback ENV [-o json]
  flotilla bundle export --cluster X -o FILE
  flotilla status import FILE [-o json]
  flotilla audit [--cluster X] [-o json]
  flotilla login [--hub URL]                           (single sign-on: a device code to enter at the provider; the token is kept
                                                       in $XDG_CONFIG_HOME/flotilla/credentials.json, mode 0600, for this hub)
  flotilla logout [--hub URL]                          (forgets this hub's login and revokes its refresh token)
  flotilla whoami [-o json]                            (the identity, role and environments the hub takes you for)
  flotilla token create NAME --role viewer|deployer|approver|admin [--env ENV]… [--ttl 30d] [-o json]
                                                       (an API token, shown once; --env scopes its role, default every environment)
  flotilla token list [-o json]
  flotilla token revoke NAME
  flotilla secret recipients --env ENV… [-o json]      (the age recipients SOPS files for ENV are encrypted to)
  flotilla secret encrypt --env ENV… -f FILE [-o OUT]  (a SOPS file for ENV's agents, made here: the hub never sees it)
  flotilla secret rekey --env ENV… -f FILE --identity KEYFILE [-o OUT]
                                                       (the same values for today's recipients; KEYFILE opens FILE now)
  flotilla completion bash|zsh                         (e.g. source <(flotilla completion bash))

Global: --hub URL (or FLOTILLA_HUB, default http://127.0.0.1:8080); the token (the bootstrap admin token or one
from \`flotilla token create\`) comes from FLOTILLA_TOKEN, else from the hub's \`flotilla login\` (FLOTILLA_TOKEN wins);
a hub started with --http-tls is https://…, trusted through FLOTILLA_CA_FILE (tls/ca.pem in its data dir);
the audit log and promotion history name the token's identity (\`admin\` for the bootstrap token, token:NAME,
oidc:SUBJECT for a login).
`;

/** Flags every command takes, as completion offers them. */
const GLOBAL_FLAGS = ['--hub', '-o', '--output', '-h', '--help'];

const GROUPS = new Set([
  'hub',
  'cluster',
  'fleet',
  'bundle',
  'status',
  'env',
  'rollout',
  'notify',
  'secret',
  'token',
]);

/** Runs one CLI invocation; returns the exit code. Never calls process.exit itself. */
export async function runCli(argv: string[], env: CliEnv, io: CliIo): Promise<number> {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-') || words.length === (GROUPS.has(words[0] ?? '') ? 2 : 1)) break;
    words.push(a);
  }
  const command = words.join(' ');
  const rest = argv.slice(words.length);
  const parse = (options: Options) => {
    try {
      return parseArgs({
        args: rest,
        options: { ...GLOBAL, ...options },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new CliError(`${command || 'flotilla'}: ${errorMessage(err)}`, 2);
    }
  };
  try {
    if (words.length === 0 || command === 'help') {
      io.out(USAGE);
      return words.length === 0 && !argv.includes('--help') && !argv.includes('-h') ? 2 : 0;
    }
    const handler = COMMANDS[command];
    if (!handler) throw new CliError(`unknown command "${command}"; see flotilla --help`, 2);
    return (await handler({ parse, env, io, client: () => clientFor(env, parse({})) })) ?? 0;
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`flotilla: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`flotilla: ${errorMessage(err)}\n`);
    return 1;
  }
}

export interface Ctx {
  parse(options: Options): ReturnType<typeof parseArgs<{ options: Options; allowPositionals: true }>>;
  env: CliEnv;
  io: CliIo;
  client(): HubClient;
}

/** The hub a command talks to: --hub, else FLOTILLA_HUB, else the local default. */
export function hubOf(env: CliEnv, parsed: { values: Record<string, unknown> }): string {
  return (parsed.values.hub as string | undefined) ?? env.hubUrl ?? 'http://127.0.0.1:8080';
}

/** A client of the hub, with FLOTILLA_TOKEN when set, else the hub's stored `flotilla login`. */
export function clientFor(env: CliEnv, parsed: { values: Record<string, unknown> }): HubClient {
  const hub = hubOf(env, parsed);
  const auth =
    env.token || (env.configDir ? storedLoginToken(createCredentials(env.configDir), hub) : undefined);
  return createHubClient(hub, auth || undefined, env.caFile);
}

export function jsonOutput(values: Record<string, unknown>): boolean {
  const o = values.output;
  if (o === undefined) return false;
  if (o === 'json') return true;
  throw new CliError(`-o ${String(o)}: only -o json is supported`, 2);
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new CliError(`expected exactly one ${what}`, 2);
  return positionals[0]!;
}

function print(io: CliIo, json: boolean, data: unknown, human: () => string): void {
  io.out(json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

/**
 * The server side of the CLI (the hub itself, its data dir and keys), loaded only by the
 * commands that need it: every other command talks HTTP and must start as fast as kubectl.
 */
const serverSide = () => import('./hub-commands.js');

const COMMANDS: Record<string, (ctx: Ctx) => Promise<number | undefined>> = {
  ...(rolloutCommands({
    clientFor: (env, parsed) => clientFor(env as CliEnv, parsed),
    jsonOutput,
    one,
    print,
  }) as Record<string, (ctx: Ctx) => Promise<number | undefined>>),
  'hub init': async ({ parse, io }) => {
    const { hubInit } = await serverSide();
    const { values } = parse({
      'data-dir': { type: 'string' },
      'tls-san': { type: 'string', multiple: true },
    });
    const json = jsonOutput(values);
    const result = await hubInit(
      (values['data-dir'] as string) ?? '.flotilla/hub',
      (values['tls-san'] as string[]) ?? [],
    );
    print(io, json, result, () =>
      [
        `data dir:      ${result.dataDir}`,
        `CA hash:       ${result.caHash}`,
        `CA file:       ${result.caFile} (FLOTILLA_CA_FILE for a hub started with --http-tls)`,
        `NATS config:   ${result.natsConfig} (append it to your nats-server config)`,
        result.adminToken
          ? `admin token:   ${result.adminToken}\n               (shown once: store it now, e.g. export FLOTILLA_TOKEN=…)`
          : 'admin token:   already created (it is shown only once)',
        '',
      ].join('\n'),
    );
    return 0;
  },

  'hub start': async (ctx) => (await serverSide()).hubStart(ctx),

  'hub rotate-key': async ({ parse, io, env }) => {
    const { values } = parse({ 'data-dir': { type: 'string' } });
    const json = jsonOutput(values);
    const result = values['data-dir']
      ? (await serverSide()).hubRotateKeyOffline(values['data-dir'] as string)
      : await clientFor(env, { values }).json<{ keyId: string; keys: string[] }>(
          'POST',
          '/api/v1/hub/rotate-key',
        );
    print(
      io,
      json,
      result,
      () => `new signing key ${result.keyId}; active keys: ${result.keys.join(', ')}\n`,
    );
    return 0;
  },

  'cluster add': async ({ parse, io, env }) => {
    const { values, positionals } = parse({
      env: { type: 'string' },
      label: { type: 'string', multiple: true },
      ttl: { type: 'string' },
    });
    const json = jsonOutput(values);
    const name = one(positionals, 'cluster NAME');
    if (!values.env) throw new CliError('cluster add: --env ENV is required', 2);
    const labels: Record<string, string> = {};
    for (const l of (values.label as string[]) ?? []) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new CliError(`--label ${l}: expected key=value`, 2);
      labels[l.slice(0, eq)] = l.slice(eq + 1);
    }
    const added = await clientFor(env, { values }).json<{ name: string; token: string; joinCommand: string }>(
      'POST',
      '/api/v1/clusters',
      { name, environment: values.env, labels, ...(values.ttl ? { ttl: values.ttl } : {}) },
    );
    print(io, json, added, () =>
      joinText(`cluster ${added.name} added. Join it (the token works once and expires):`, added.joinCommand),
    );
    return 0;
  },

  'cluster list': async ({ parse, io, env }) => {
    const { values } = parse({ selector: { type: 'string', short: 'l' } });
    const json = jsonOutput(values);
    const q =
      values.selector === undefined ? '' : `?selector=${encodeURIComponent(values.selector as string)}`;
    const data = await clientFor(env, { values }).json<{ clusters: ClusterListEntry[] }>(
      'GET',
      `/api/v1/clusters${q}`,
    );
    print(io, json, data, () =>
      table(
        ['NAME', 'ENVIRONMENT', 'LABELS', 'CONNECTED', 'LAST SEEN'],
        data.clusters.map((c) => [
          c.name,
          c.environment,
          labelsText(c.labels),
          c.connected ? 'yes' : 'no',
          ago(c.lastSeen),
        ]),
      ),
    );
    return 0;
  },

  'cluster label': async ({ parse, io, env }) => {
    const { values, positionals } = parse({});
    const [name, ...changes] = positionals;
    if (!name || changes.length === 0)
      throw new CliError('cluster label: expected NAME and at least one k=v (set) or k- (remove)', 2);
    let change: { set: Record<string, string>; remove: string[] };
    try {
      change = parseLabelChanges(changes);
    } catch (err) {
      throw new CliError(`cluster label: ${errorMessage(err)}`, 2);
    }
    const data = await clientFor(env, { values }).json<{ name: string; labels: Record<string, string> }>(
      'POST',
      `/api/v1/clusters/${encodeURIComponent(name)}/labels`,
      change,
    );
    print(
      io,
      jsonOutput(values),
      data,
      () => `cluster ${data.name} labels: ${labelsText(data.labels) || '(none)'}\n`,
    );
    return 0;
  },

  'cluster move': async ({ parse, io, env }) => {
    const { values, positionals } = parse({ env: { type: 'string' } });
    const name = one(positionals, 'cluster NAME');
    if (!values.env) throw new CliError('cluster move: --env ENV is required', 2);
    const data = await clientFor(env, { values }).json<{ name: string; environment: string }>(
      'POST',
      `/api/v1/clusters/${encodeURIComponent(name)}/environment`,
      { environment: values.env },
    );
    print(
      io,
      jsonOutput(values),
      data,
      () => `cluster ${data.name} is in environment ${data.environment}; it is rendered from there at once\n`,
    );
    return 0;
  },

  'cluster token': async ({ parse, io, env }) => {
    const { values, positionals } = parse({ ttl: { type: 'string' } });
    const name = one(positionals, 'cluster NAME');
    const issued = await clientFor(env, { values }).json<{
      name: string;
      token: string;
      joinCommand: string;
    }>('POST', `/api/v1/clusters/${encodeURIComponent(name)}/tokens`, values.ttl ? { ttl: values.ttl } : {});
    print(io, jsonOutput(values), issued, () =>
      joinText(
        `a new join token for cluster ${issued.name} (works once, expires; joining replaces the current agent):`,
        issued.joinCommand,
      ),
    );
    return 0;
  },

  'cluster show': async ({ parse, io, env }) => {
    const { values, positionals } = parse({ source: { type: 'string' } });
    const name = one(positionals, 'cluster NAME');
    const q = values.source ? `?source=${encodeURIComponent(values.source as string)}` : '';
    const data = await clientFor(env, { values }).json<ClusterDetail>(
      'GET',
      `/api/v1/clusters/${encodeURIComponent(name)}${q}`,
    );
    print(io, jsonOutput(values), data, () => clusterDetailText(data));
    return 0;
  },

  'cluster remove': async ({ parse, io, env }) => {
    const { values, positionals } = parse({});
    const name = one(positionals, 'cluster NAME');
    const data = await clientFor(env, { values }).json<unknown>(
      'DELETE',
      `/api/v1/clusters/${encodeURIComponent(name)}`,
    );
    print(
      io,
      jsonOutput(values),
      data,
      () => `cluster ${name} removed; its agent credential and NATS user are revoked\n`,
    );
    return 0;
  },

  'fleet status': async ({ parse, io, env }) => {
    const { values } = parse({ watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } });
    const json = jsonOutput(values);
    const client = clientFor(env, { values });
    const poll = async () =>
      (await client.json<{ clusters: FleetClusterStatus[] }>('GET', '/api/v1/fleet/status')).clusters;
    if (values.watch) {
      let intervalMs = 2000;
      try {
        if (values.interval) intervalMs = parseDuration(values.interval as string, '--interval');
      } catch (err) {
        throw new CliError(`fleet status: ${errorMessage(err)}`, 2);
      }
      if (intervalMs < 100) throw new CliError('fleet status: --interval is at least 100ms', 2);
      return watchFleetStatus({ poll, intervalMs, json, io, ...(io.stop ? { signal: io.stop } : {}) });
    }
    if (values.interval) throw new CliError('fleet status: --interval goes with --watch', 2);
    const clusters = await poll();
    print(io, json, { clusters }, () => fleetStatusTable(clusters) + fleetWarningsText(clusters));
    return 0;
  },

  login: async (ctx) => (await import('./login-commands.js')).login(ctx),
  logout: async (ctx) => (await import('./login-commands.js')).logout(ctx),
  whoami: async (ctx) => (await import('./login-commands.js')).whoami(ctx),
  'token create': async (ctx) => (await import('./token-commands.js')).tokenCreate(ctx),
  'token list': async (ctx) => (await import('./token-commands.js')).tokenList(ctx),
  'token revoke': async (ctx) => (await import('./token-commands.js')).tokenRevoke(ctx),
  'secret recipients': async (ctx) => (await import('./secret-commands.js')).secretRecipients(ctx),
  'secret encrypt': async (ctx) => (await import('./secret-commands.js')).secretEncrypt(ctx),
  'secret rekey': async (ctx) => (await import('./secret-commands.js')).secretRekey(ctx),

  'fleet drift': async ({ parse, io, env }) => {
    const { values } = parse({ history: { type: 'boolean' }, source: { type: 'string' } });
    const json = jsonOutput(values);
    const query = new URLSearchParams();
    if (values.history) query.set('history', 'true');
    if (values.source) query.set('source', values.source as string);
    const data = await clientFor(env, { values }).json<{ drift: FleetDrift[] }>(
      'GET',
      `/api/v1/fleet/drift${query.size > 0 ? `?${query}` : ''}`,
    );
    print(io, json, data, () =>
      data.drift.length === 0
        ? 'no drift\n'
        : table(
            [
              'CLUSTER',
              'ENV',
              'SOURCE',
              'OBJECT',
              'FIELD',
              'DESIRED',
              'LIVE',
              'SINCE',
              ...(values.history ? ['CLEARED'] : []),
            ],
            data.drift.map((d) => [
              d.cluster,
              d.environment,
              d.source,
              `${d.group ? `${d.group}/` : ''}${d.kind} ${d.namespace ? `${d.namespace}/` : ''}${d.name}`,
              d.field,
              d.desired,
              d.live,
              d.since,
              ...(values.history ? [d.clearedAt ?? 'open'] : []),
            ]),
          ),
    );
    return 0;
  },

  sync: async ({ parse, io, env }) => {
    const { values, positionals } = parse({ env: { type: 'string' } });
    const json = jsonOutput(values);
    if ((positionals.length === 1) === !!values.env || positionals.length > 1)
      throw new CliError('sync: give a CLUSTER or --env ENV', 2);
    const data = await clientFor(env, { values }).json<{
      syncs: { cluster: string; generation: number; delivered: boolean }[];
    }>('POST', '/api/v1/sync', values.env ? { environment: values.env } : { cluster: positionals[0] });
    print(io, json, data, () =>
      table(
        ['CLUSTER', 'GENERATION', 'DELIVERED'],
        data.syncs.map((s) => [
          s.cluster,
          s.generation,
          s.delivered ? 'yes' : 'pending (agent not connected)',
        ]),
      ),
    );
    return 0;
  },

  'env diff': async ({ parse, io, env }) => {
    const { values, positionals } = parse({});
    const json = jsonOutput(values);
    if (positionals.length !== 2) throw new CliError('env diff: expected FROM and TO environments', 2);
    const [from, to] = positionals as [string, string];
    const data = await clientFor(env, { values }).json<EnvDiff>(
      'GET',
      `/api/v1/environments/${encodeURIComponent(from)}/diff/${encodeURIComponent(to)}`,
    );
    print(io, json, data, () => {
      const what =
        data.fromRevisionSource === 'running'
          ? `what ${from} runs (${data.fromRevision.slice(0, 12)})`
          : `${from}'s branch head ${data.fromRevision.slice(0, 12)} (no ${from} cluster has reported yet)`;
      if (data.files.length === 0) return `${to} already holds ${what}\n`;
      const head = `${data.files.length} file(s) differ between ${what} and ${to} (${data.toRevision?.slice(0, 12) ?? 'no branch yet'}):\n`;
      return [head, ...data.files.map((f) => f.patch)].join('\n');
    });
    return 0;
  },

  promote: async ({ parse, io, env }) => {
    const { values, positionals } = parse({ approve: { type: 'boolean' }, history: { type: 'boolean' } });
    const json = jsonOutput(values);
    const client = clientFor(env, { values });
    if (values.history) {
      if (positionals.length > 0) throw new CliError('promote --history takes no environments', 2);
      const data = await client.json<{ promotions: PromotionRecord[]; pending?: PendingPromotion[] }>(
        'GET',
        '/api/v1/promotions',
      );
      const pending = data.pending ?? [];
      // JSON: the promotions made, newest first, each waiting one before them as kind "pending".
      const rows = [
        ...pending.map((p) => ({
          id: p.id,
          at: p.requestedAt,
          kind: 'pending' as const,
          from: p.from,
          to: p.to,
          fromRevision: p.revision,
          commit: null,
          fastForward: false,
          actor: p.requestedBy,
          approvedBy: null,
        })),
        ...data.promotions,
      ];
      print(io, json, rows, () =>
        table(
          ['TIME', 'KIND', 'FROM', 'TO', 'REVISION', 'COMMIT', 'FF', 'ACTOR', 'APPROVED BY'],
          rows.map((p) => [
            p.at,
            p.kind === 'pending' ? 'pending approval' : p.kind,
            p.from,
            p.to,
            p.fromRevision.slice(0, 12),
            p.commit?.slice(0, 12) ?? '',
            p.fastForward ? 'yes' : '',
            p.actor,
            p.approvedBy ?? '',
          ]),
        ),
      );
      return 0;
    }
    if (positionals.length !== 2)
      throw new CliError('promote: expected FROM and TO environments (or --history)', 2);
    const [from, to] = positionals as [string, string];
    const result = await client.json<PromoteResult>(
      'POST',
      values.approve ? '/api/v1/promotions/approvals' : '/api/v1/promotions',
      { from, to },
    );
    print(
      io,
      json,
      result,
      () =>
        (result.pending
          ? `promotion ${from}@${result.fromRevision.slice(0, 12)} → ${to} waits for approval by an identity other than ${result.pending.requestedBy}: \`flotilla promote ${from} ${to} --approve\`\n`
          : !result.changed
            ? `${to} already holds what ${from} runs (${result.fromRevision.slice(0, 12)}); nothing to promote\n`
            : `promoted ${from}@${result.fromRevision.slice(0, 12)} → ${to} as ${result.commit.slice(0, 12)}${
                result.fastForward ? ' (fast-forward)' : ''
              }${result.record?.approvedBy ? `, asked for by ${result.record.actor}, approved by ${result.record.approvedBy}` : ''}; ${to}'s clusters follow on the next sync\n`) +
        (result.notes ?? []).map((n) => `note: ${n}\n`).join(''),
    );
    return 0;
  },

  rollback: async ({ parse, io, env }) => {
    const { values, positionals } = parse({});
    const json = jsonOutput(values);
    const environment = one(positionals, 'environment ENV');
    const result = await clientFor(env, { values }).json<RollbackResult>('POST', '/api/v1/rollbacks', {
      environment,
    });
    print(
      io,
      json,
      result,
      () =>
        `rolled back ${environment}: reverted the promotion from ${result.undid.from}@${result.undid.fromRevision.slice(0, 12)} as ${result.commit.slice(0, 12)}; ${environment}'s clusters follow on the next sync\n`,
    );
    return 0;
  },

  'bundle export': async ({ parse, io, env }) => {
    const { values } = parse({ cluster: { type: 'string' } });
    if (!values.cluster) throw new CliError('bundle export: --cluster X is required', 2);
    if (!values.output) throw new CliError('bundle export: -o FILE is required', 2);
    const bytes = await clientFor(env, { values }).bytes(
      'GET',
      `/api/v1/bundles/${encodeURIComponent(values.cluster as string)}/latest`,
    );
    writeFileSync(values.output as string, bytes);
    io.err(`wrote the latest bundle of ${values.cluster} to ${values.output} (${bytes.length} bytes)\n`);
    return 0;
  },

  'status import': async ({ parse, io, env }) => {
    const { values, positionals } = parse({});
    const json = jsonOutput(values);
    const file = one(positionals, 'FILE');
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (err) {
      throw new CliError(`${file}: ${errorMessage(err)}`);
    }
    const data = await clientFor(env, { values }).bytes('POST', '/api/v1/status/import', bytes);
    const outcome = JSON.parse(new TextDecoder().decode(data)) as {
      cluster: string;
      exportedAt: string;
      stored: number;
      duplicates: number;
    };
    print(
      io,
      json,
      outcome,
      () =>
        `cluster ${outcome.cluster}: ${outcome.stored} report(s) stored, ${outcome.duplicates} already known (exported ${outcome.exportedAt})\n`,
    );
    return 0;
  },

  completion: async ({ parse, io }) => {
    const { positionals } = parse({});
    const shell = one(positionals, `shell (${COMPLETION_SHELLS.join(' or ')})`);
    if (!COMPLETION_SHELLS.includes(shell as CompletionShell))
      throw new CliError(
        `completion: no completion for shell "${shell}"; choose ${COMPLETION_SHELLS.join(' or ')}`,
        2,
      );
    io.out(completionScript(shell as CompletionShell, USAGE, GROUPS, GLOBAL_FLAGS));
    return 0;
  },

  audit: async ({ parse, io, env }) => {
    const { values } = parse({ cluster: { type: 'string' } });
    const json = jsonOutput(values);
    const q = values.cluster ? `?cluster=${encodeURIComponent(values.cluster as string)}` : '';
    const data = await clientFor(env, { values }).json<{ audit: AuditEntry[] }>('GET', `/api/v1/audit${q}`);
    print(io, json, data, () =>
      table(
        ['TIME', 'ACTION', 'ACTOR', 'CLUSTER', 'OUTCOME', 'DETAIL'],
        data.audit.map((a) => [a.at, a.action, a.actor, a.cluster, a.outcome, a.detail]),
      ),
    );
    return 0;
  },
};

/** `flotilla cluster show` for humans: the status row, then every object, then its open drift. */
function clusterDetailText({ cluster: c, resources }: ClusterDetail): string {
  const object = (r: { group: string; kind: string; namespace: string; name: string }) =>
    `${r.group ? `${r.group}/` : ''}${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
  const drifted = resources.flatMap((r) => r.drift.map((d) => ({ r, d })));
  return [
    `cluster:     ${c.name} (environment ${c.environment}${Object.keys(c.labels).length ? `; ${labelsText(c.labels)}` : ''})`,
    `revision:    ${c.revision ?? '-'} (generation ${c.generation ?? '-'}; newest published ${c.desiredGeneration ?? '-'})`,
    `status:      ${c.sync}, ${c.health}, phase ${c.phase ?? '-'}`,
    `connected:   ${c.connected ? 'yes' : 'no'}, last seen ${ago(c.lastSeen)}`,
    `error:       ${c.error ?? '-'}`,
    ...(c.paused
      ? [
          `paused:      by ${c.paused.by}${c.paused.scope === 'environment' ? ` with environment ${c.paused.name}` : ''} at ${c.paused.at}${c.paused.reason ? ` (${c.paused.reason})` : ''}`,
        ]
      : []),
    ...(c.hold ? [`held:        ${c.hold}`] : []),
    '',
    resources.length === 0
      ? 'no objects reported yet\n'
      : table(
          ['OBJECT', 'SOURCE', 'SYNC', 'HEALTH', 'REASON'],
          resources.map((r) => [object(r), r.source, r.sync, r.health, r.error ?? r.healthReason]),
        ),
    ...(drifted.length === 0
      ? []
      : [
          table(
            ['DRIFTED OBJECT', 'FIELD', 'DESIRED', 'LIVE', 'SINCE'],
            drifted.map(({ r, d }) => [object(r), d.field, d.desired, d.live, d.since]),
          ),
        ]),
  ].join('\n');
}

/** A join command as `cluster add` and `cluster token` print it: a line of context, then the command. */
function joinText(intro: string, joinCommand: string): string {
  return `${intro}\n\n  ${joinCommand}\n`;
}
