import { ErrorCode, FlotillaError, type Logger } from '@flotilla/shared';
import type { AuditLog } from '../audit/audit.js';
import { type EnvironmentConfig, type FleetConfig, loadFleetConfig } from '../config/index.js';
import type { GitAuthor, GitSource, SourceError } from '../source/index.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { diffEnvironments, type FileDiff } from './env-diff.js';
import { evaluateGates, type SourceClusterState } from './gates.js';
import { promoteTree, revertCommit } from './git/index.js';
import { updateTree, writeEmptyTree } from './git/tree-edit.js';
import type { PromotionLog, PromotionRecord } from './promotion-log.js';

export interface PromoteRequest {
  from: string;
  to: string;
  approve?: boolean;
  actor: string;
}

export interface PromoteResult {
  from: string;
  to: string;
  /** The revision FROM runs, whose content TO now holds. */
  fromRevision: string;
  /** TO's branch head afterwards. */
  commit: string;
  fastForward: boolean;
  /** False when TO already held that content: nothing was pushed or recorded. */
  changed: boolean;
  record: PromotionRecord | null;
}

export interface RollbackResult {
  environment: string;
  /** The promotion undone. */
  undid: PromotionRecord;
  /** The revert commit on the environment's branch. */
  commit: string;
  record: PromotionRecord;
}

export interface EnvDiff {
  from: string;
  to: string;
  /** The revision FROM runs (or its branch head, when no FROM cluster has reported yet). */
  fromRevision: string;
  fromRevisionSource: 'running' | 'branch-head';
  toRevision: string | null;
  files: FileDiff[];
}

/** `flotilla promote`, `flotilla rollback`, `flotilla env diff` and the promotion history. */
export interface PromotionService {
  promote(request: PromoteRequest): Promise<PromoteResult>;
  rollback(environment: string, actor: string): Promise<RollbackResult>;
  diff(from: string, to: string): Promise<EnvDiff>;
  history(limit?: number): Promise<PromotionRecord[]>;
}

export interface PromotionServiceOptions {
  source: GitSource;
  fleet: { status(): Promise<FleetClusterStatus[]> };
  log: PromotionLog;
  audit: AuditLog;
  /** Asked to run a reconcile pass after TO's branch moved. */
  sync: { trigger(reason: string): Promise<unknown> };
  logger: Logger;
  /** Key of the HMAC that Secret values show as in `env diff`; unkeyed sha256 without. */
  secretHashKey?: Uint8Array;
  author?: GitAuthor;
  now?: () => Date;
}

const DEFAULT_AUTHOR: GitAuthor = { name: 'Flotilla', email: 'flotilla@localhost' };

/** A gate stands in the way: every reason is named. Maps to HTTP 409. */
export class PromotionRefusedError extends FlotillaError {
  readonly reasons: string[];
  constructor(from: string, to: string, reasons: string[]) {
    super(
      ErrorCode.Conflict,
      `promote ${from} → ${to} refused:\n${reasons.map((r) => `  - ${r}`).join('\n')}`,
    );
    this.name = 'PromotionRefusedError';
    this.reasons = reasons;
  }
}

/**
 * Promotion has one rule for every mapping: TO's (branch, directory) gets FROM's content at
 * the revision every FROM cluster verifiably runs, except TO's own files; the git work is
 * promoteTree's. Rollback undoes the newest promotion into an environment not yet undone,
 * with a git revert (or, for a fast-forward, one commit restoring the directory). One
 * promotion or rollback runs at a time.
 */
export function createPromotionService(options: PromotionServiceOptions): PromotionService {
  const { source, log, audit, logger } = options;
  const author = options.author ?? DEFAULT_AUTHOR;
  const now = options.now ?? (() => new Date());
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  async function current(): Promise<{ config: FleetConfig; defaultBranch: string }> {
    await source.fetch();
    const defaultBranch = await source.defaultBranch();
    const config = await loadFleetConfig(source, await source.resolveBranch(defaultBranch));
    return { config, defaultBranch };
  }

  const envOf = (config: FleetConfig, name: string): EnvironmentConfig => {
    const env = config.environments.find((e) => e.name === name);
    if (!env)
      throw new FlotillaError(
        ErrorCode.NotFound,
        `environment ${name}: not in flotilla.yaml (environments: ${config.environments.map((e) => e.name).join(', ')})`,
      );
    return env;
  };

  const checkPipeline = (config: FleetConfig, from: string, to: string) => {
    if (from === to)
      throw new FlotillaError(ErrorCode.Invalid, `promote ${from} → ${to}: FROM and TO are the same`);
    if (config.pipeline.length === 0) return;
    const i = config.pipeline.indexOf(from);
    if (i < 0 || config.pipeline[i + 1] !== to)
      throw new FlotillaError(
        ErrorCode.Invalid,
        `promote ${from} → ${to}: not a step of the pipeline ${config.pipeline.join(' → ')} in flotilla.yaml`,
      );
  };

  const branchHead = async (branch: string): Promise<string | null> => {
    try {
      return await source.resolveBranch(branch);
    } catch (err) {
      if ((err as SourceError).code === ErrorCode.NotFound) return null;
      throw err;
    }
  };

  const sourceClusters = async (env: string): Promise<SourceClusterState[]> =>
    (await options.fleet.status())
      .filter((c) => c.environment === env)
      .map((c) => ({
        name: c.name,
        revision: c.revision,
        sync: c.sync,
        health: c.health,
        connected: c.connected,
        healthySince: c.healthySince ? new Date(c.healthySince) : null,
      }));

  const afterMove = (reason: string) => {
    void options.sync
      .trigger(reason)
      .catch((err) => logger.warn({ err: String(err), reason }, 'publish pass after a promotion failed'));
  };

  return {
    promote: (request) =>
      serial(async () => {
        const { from, to, actor } = request;
        const { config, defaultBranch } = await current();
        checkPipeline(config, from, to);
        const fromEnv = envOf(config, from);
        const toEnv = envOf(config, to);
        const clusters = await sourceClusters(from);
        const gate = evaluateGates({
          from,
          to,
          clusters,
          promotion: toEnv.promotion,
          approved: request.approve === true,
          now: now(),
        });
        if (!gate.ok) {
          await audit.record({
            action: 'promote',
            actor,
            cluster: null,
            outcome: 'refused',
            detail: `${from} → ${to}: ${gate.reasons.join('; ')}`,
          });
          throw new PromotionRefusedError(from, to, gate.reasons);
        }
        const fromBranch = fromEnv.branch ?? defaultBranch;
        const toBranch = toEnv.branch ?? defaultBranch;
        const previousHead = await branchHead(toBranch);
        const short = gate.revision.slice(0, 12);
        const result = await promoteTree(source, {
          from: { branch: fromBranch, path: fromEnv.path, commit: gate.revision },
          to: { branch: toBranch, path: toEnv.path, keep: toEnv.keep },
          message: [
            `promote ${from} → ${to}: ${fromEnv.path}@${short}`,
            '',
            `${to} (${toBranch}:${toEnv.path}) now holds what ${from} runs at ${gate.revision}`,
            `(${clusters.map((c) => c.name).join(', ')} Synced and Healthy), except the files ${to} keeps.`,
            `Promoted by ${actor}.`,
          ].join('\n'),
          author,
        });
        const outcome: PromoteResult = {
          from,
          to,
          fromRevision: gate.revision,
          commit: result.commit,
          fastForward: result.fastForward,
          changed: result.changed,
          record: null,
        };
        if (!result.changed) {
          logger.info({ from, to, revision: gate.revision }, 'promotion: TO already holds that content');
          return outcome;
        }
        outcome.record = await log.record({
          actor,
          from,
          to,
          fromRevision: gate.revision,
          commit: result.commit,
          kind: 'promote',
          fastForward: result.fastForward,
          previousHead,
        });
        await audit.record({
          action: 'promote',
          actor,
          cluster: null,
          outcome: 'ok',
          detail: `${from}@${short} → ${to} as ${result.commit.slice(0, 12)}${result.fastForward ? ' (fast-forward)' : ''}`,
        });
        logger.info(
          { from, to, revision: gate.revision, commit: result.commit, fastForward: result.fastForward },
          'promoted',
        );
        afterMove(`promote ${from} → ${to}`);
        return outcome;
      }),

    rollback: (environment, actor) =>
      serial(async () => {
        const { config, defaultBranch } = await current();
        const env = envOf(config, environment);
        const branch = env.branch ?? defaultBranch;
        const history = await log.list({ limit: 10_000 });
        const undone = new Set(history.filter((r) => r.undoes != null).map((r) => r.undoes));
        const target = history.find((r) => r.kind === 'promote' && r.to === environment && !undone.has(r.id));
        if (!target)
          throw new FlotillaError(
            ErrorCode.NotFound,
            `rollback ${environment}: no promotion into ${environment} left to roll back`,
          );
        const head = await source.resolveBranch(branch);
        const subject = `rollback ${environment}: promotion of ${target.from}@${target.fromRevision.slice(0, 12)} (${target.commit.slice(0, 12)})`;
        let commit: string;
        const message = [
          `Revert "promote ${target.from} → ${environment}: ${target.fromRevision.slice(0, 12)}"`,
          '',
          `Rolled back by ${actor}.`,
        ].join('\n');
        if (!target.fastForward) {
          commit = (await revertCommit(source, { branch, commit: target.commit, message, author })).commit;
        } else {
          // A fast-forward has no commit of its own: restore the directory as it was before it.
          if (!target.previousHead)
            throw new FlotillaError(
              ErrorCode.Conflict,
              `${subject}: that promotion created branch ${branch}; there is no earlier state to return to`,
            );
          const [now, promoted, before] = await Promise.all([
            source.treeId(head, env.path),
            source.treeId(target.commit, env.path),
            source.treeId(target.previousHead, env.path),
          ]);
          if (now !== promoted)
            throw new FlotillaError(
              ErrorCode.Conflict,
              `${subject}: ${branch}:${env.path} changed since; revert it in git by hand`,
            );
          const root = await source.commitTree(head);
          const tree =
            (await updateTree(
              source,
              root,
              new Map([[env.path, before ? { mode: '040000', oid: before } : null]]),
            )) ?? (await writeEmptyTree(source));
          commit = await source.commit({
            tree,
            parents: [head],
            message: `${message}\n\nThis reverts commits ${target.previousHead}..${target.commit} in ${env.path}.\n`,
            author,
          });
          await source.push(branch, commit);
        }
        const record = await log.record({
          actor,
          from: target.from,
          to: environment,
          fromRevision: target.commit,
          commit,
          kind: 'rollback',
          previousHead: head,
          undoes: target.id,
        });
        await audit.record({
          action: 'rollback',
          actor,
          cluster: null,
          outcome: 'ok',
          detail: `${environment}: reverted ${target.commit.slice(0, 12)} as ${commit.slice(0, 12)}`,
        });
        logger.info({ environment, reverted: target.commit, commit }, 'rolled back');
        afterMove(`rollback ${environment}`);
        return { environment, undid: target, commit, record };
      }),

    async diff(from, to) {
      const { config, defaultBranch } = await current();
      const fromEnv = envOf(config, from);
      const toEnv = envOf(config, to);
      const revisions = [
        ...new Set((await sourceClusters(from)).map((c) => c.revision).filter((r): r is string => !!r)),
      ];
      if (revisions.length > 1)
        throw new FlotillaError(
          ErrorCode.Conflict,
          `env diff ${from} ${to}: ${from} clusters run different revisions (${revisions.map((r) => r.slice(0, 12)).join(', ')}); wait until they converge`,
        );
      const fromRevision = revisions[0] ?? (await source.resolveBranch(fromEnv.branch ?? defaultBranch));
      const toRevision = await branchHead(toEnv.branch ?? defaultBranch);
      const files = await diffEnvironments(
        source,
        { commit: fromRevision, path: fromEnv.path },
        { commit: toRevision, path: toEnv.path, keep: toEnv.keep },
        options.secretHashKey ? { secretHashKey: options.secretHashKey } : {},
      );
      return {
        from,
        to,
        fromRevision,
        fromRevisionSource: revisions[0] ? 'running' : 'branch-head',
        toRevision,
        files,
      };
    },

    history: (limit) => log.list(limit ? { limit } : {}),
  };
}
