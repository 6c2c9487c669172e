import type { Delivery } from '../notify/index.js';
import type { Pause, RolloutStatus } from '../rollout/index.js';
import type { HubClient } from './client.js';
import { table } from './format.js';
import type { CliIo } from './run.js';

type Values = Record<string, unknown>;

/** What these commands need from the CLI's runner (run.ts owns parsing and output). */
export interface CommandHelpers {
  clientFor(env: unknown, parsed: { values: Values }): HubClient;
  jsonOutput(values: Values): boolean;
  one(positionals: string[], what: string): string;
  print(io: CliIo, json: boolean, data: unknown, human: () => string): void;
}

interface Ctx {
  parse(options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>): {
    values: Values;
    positionals: string[];
  };
  env: unknown;
  io: CliIo;
}

const pausedText = (p: Pause) =>
  `paused${p.scope === 'environment' ? ` with environment ${p.name}` : ''} by ${p.by}${p.reason ? ` (${p.reason})` : ''}`;

function durationText(ms: number): string {
  if (ms === 0) return 'none';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** `flotilla rollout status` for humans: the rollout's state, then a row per cluster, wave by wave. */
export function rolloutStatusText(s: RolloutStatus): string {
  if (s.state === 'none')
    return `environment ${s.environment} has no rollout waves: a new generation reaches every cluster at once\n`;
  const head = [
    `environment: ${s.environment}`,
    `rollout:     ${s.state}${s.commit ? ` (${s.commit.slice(0, 12)}, since ${s.startedAt})` : ''}; soak ${durationText(s.soakMs)}, maxUnavailable ${s.maxUnavailable ?? 'the whole wave'}`,
    ...(s.halted
      ? [
          `halted:      at ${s.halted.at} by cluster ${s.halted.cluster}: ${s.halted.reason}`,
          `             flotilla rollout resume ${s.environment} goes on to the next wave; a new commit starts over`,
        ]
      : []),
    '',
  ];
  const rows = s.waves.flatMap((w) =>
    w.clusters.map((c) => [
      `${w.index + 1} ${w.name} (${w.picks})`,
      w.state,
      c.name,
      c.paused ? 'paused' : c.released ? (c.ready ? 'done' : 'updating') : 'waiting',
      `${c.generation ?? '-'}/${c.desiredGeneration ?? '-'}`,
      c.health,
      c.paused ? pausedText(c.paused) : c.hold,
    ]),
  );
  return `${head.join('\n')}\n${table(['WAVE', 'WAVE STATE', 'CLUSTER', 'CLUSTER STATE', 'GEN/NEWEST', 'HEALTH', 'HOLD'], rows)}`;
}

/**
 * `cluster pause|resume`, `env pause|resume`, `rollout status|resume` and `bundle approve`:
 * kept apart from run.ts, which spreads them into its command table.
 */
export function rolloutCommands(
  h: CommandHelpers,
): Record<string, (ctx: Ctx) => Promise<number | undefined>> {
  const pause =
    (kind: 'cluster' | 'env') =>
    async ({ parse, io, env }: Ctx) => {
      const { values, positionals } = parse({ reason: { type: 'string' } });
      const name = h.one(positionals, kind === 'cluster' ? 'cluster NAME' : 'environment ENV');
      const path = kind === 'cluster' ? 'clusters' : 'environments';
      const data = await h
        .clientFor(env, { values })
        .json<Pause>('POST', `/api/v1/${path}/${encodeURIComponent(name)}/pause`, {
          ...(values.reason ? { reason: values.reason } : {}),
        });
      h.print(io, h.jsonOutput(values), data, () =>
        kind === 'cluster'
          ? `cluster ${name} paused: it keeps enforcing and healing its bundle, gets no new one, and is left out of promotion gates\n`
          : `environment ${name} paused: each of its clusters keeps its bundle and gets no new one\n`,
      );
      return 0;
    };
  const resume =
    (kind: 'cluster' | 'env') =>
    async ({ parse, io, env }: Ctx) => {
      const { values, positionals } = parse({});
      const name = h.one(positionals, kind === 'cluster' ? 'cluster NAME' : 'environment ENV');
      const path = kind === 'cluster' ? 'clusters' : 'environments';
      const data = await h
        .clientFor(env, { values })
        .json<{ resumed: boolean; stillPaused: Pause | null }>(
          'POST',
          `/api/v1/${path}/${encodeURIComponent(name)}/resume`,
        );
      h.print(io, h.jsonOutput(values), data, () =>
        [
          data.resumed
            ? `${kind === 'cluster' ? 'cluster' : 'environment'} ${name} resumed: the next pass gives it what it missed`
            : `${kind === 'cluster' ? 'cluster' : 'environment'} ${name} was not paused`,
          ...(data.stillPaused ? [`cluster ${name} is still ${pausedText(data.stillPaused)}`] : []),
          '',
        ].join('\n'),
      );
      return 0;
    };
  return {
    'cluster pause': pause('cluster'),
    'cluster resume': resume('cluster'),
    'env pause': pause('env'),
    'env resume': resume('env'),
    'rollout status': async ({ parse, io, env }) => {
      const { values, positionals } = parse({});
      const environment = h.one(positionals, 'environment ENV');
      const data = await h
        .clientFor(env, { values })
        .json<RolloutStatus>('GET', `/api/v1/rollouts/${encodeURIComponent(environment)}`);
      h.print(io, h.jsonOutput(values), data, () => rolloutStatusText(data));
      return 0;
    },
    'rollout resume': async ({ parse, io, env }) => {
      const { values, positionals } = parse({});
      const environment = h.one(positionals, 'environment ENV');
      const data = await h
        .clientFor(env, { values })
        .json<RolloutStatus>('POST', `/api/v1/rollouts/${encodeURIComponent(environment)}/resume`);
      h.print(
        io,
        h.jsonOutput(values),
        data,
        () => `rollout of ${environment} resumed\n\n${rolloutStatusText(data)}`,
      );
      return 0;
    },
    'notify history': async ({ parse, io, env }) => {
      const { values } = parse({});
      const data = await h
        .clientFor(env, { values })
        .json<{ deliveries: Delivery[] }>('GET', '/api/v1/notifications');
      h.print(io, h.jsonOutput(values), data, () =>
        data.deliveries.length === 0
          ? 'no notifications yet\n'
          : table(
              ['ID', 'CREATED', 'RECEIVER', 'EVENT', 'STATE', 'ATTEMPTS', 'LAST ERROR', 'SUMMARY'],
              data.deliveries.map((d) => [
                d.id,
                d.createdAt,
                d.receiver,
                d.kind,
                d.state,
                d.attempts,
                d.lastError,
                d.summary,
              ]),
            ),
      );
      return 0;
    },
    'bundle approve': async ({ parse, io, env }) => {
      const { values, positionals } = parse({});
      const cluster = h.one(positionals, 'cluster NAME');
      const data = await h
        .clientFor(env, { values })
        .json<{ cluster: string; digest: string }>(
          'POST',
          `/api/v1/bundles/${encodeURIComponent(cluster)}/approve`,
        );
      h.print(
        io,
        h.jsonOutput(values),
        data,
        () =>
          `the held bundle of cluster ${cluster} (${data.digest.slice(0, 19)}) is approved; the next pass publishes it\n`,
      );
      return 0;
    },
  };
}
