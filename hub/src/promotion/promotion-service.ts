import { randomBytes } from 'node:crypto';
import { ErrorCode, FlotillaError, type Logger } from '@flotilla/shared';
import { PermissionDeniedError } from '../access/roles.js';
import type { AuditLog } from '../audit/audit.js';
import { type EnvironmentConfig, type FleetConfig, loadFleetConfig } from '../config/index.js';
import { pauseText } from '../rollout/pause.js';
import { createSecretValues, type SecretValues } from '../secrets/secret-values.js';
import type { GitAuthor, GitSource, SourceError } from '../source/index.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';
import { type AppPromotionPath, appPromotionPaths } from './app-paths.js';
import { diffEnvironments, type FileDiff } from './env-diff.js';
import { evaluateGates, type SourceClusterState } from './gates.js';
import { promoteTree, revertCommit } from './git/index.js';
import { type TreeChange, updateTree, writeEmptyTree } from './git/tree-edit.js';
import type { PendingPromotion, PromotionLog, PromotionRecord } from './promotion-log.js';

export interface PromoteRequest {
  from: string;
  to: string;
  /** The authenticated identity asking (or, for approve, approving). */
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
  /** What the gates left out, e.g. paused FROM clusters. */
  notes: string[];
  record: PromotionRecord | null;
  /** Into an environment that requires approval: the request now waiting for another identity; nothing moved. */
  pending: PendingPromotion | null;
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
  /**
   * Moves FROM's running revision into TO; into an environment with `promotion: {approve:
   * true}` it only records the request (gates checked), which then waits for approve().
   */
  promote(request: PromoteRequest): Promise<PromoteResult>;
  /**
   * Approves the promotion FROM → TO waiting for approval and runs it, gates checked again:
   * refused (403) when the approver is the identity that asked for it.
   */
  approve(request: PromoteRequest): Promise<PromoteResult>;
  /** Promotions waiting for approval, oldest first. */
  pending(): Promise<PendingPromotion[]>;
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
  /**
   * How Secret values show in `env diff` (secrets/secret-values.ts: an HMAC under the hub's key);
   * without it, under a random key of this process, so hashes compare only within its lifetime.
   */
  secretValues?: SecretValues;
  author?: GitAuthor;
  now?: () => Date;
}

const DEFAULT_AUTHOR: GitAuthor = { name: 'Flotilla', email: 'flotilla@localhost' };

/** A gate stands in the way: every reason is named. Maps to HTTP 409. */
export class PromotionRefusedError extends FlotillaError {
  readonly reasons: string[];
  readonly notes: string[];
  constructor(from: string, to: string, reasons: string[], notes: string[] = []) {
    super(
      ErrorCode.Conflict,
      `promote ${from} → ${to} refused:\n${reasons.map((r) => `  - ${r}`).join('\n')}${notes.map((n) => `\n  note: ${n}`).join('')}`,
    );
    this.name = 'PromotionRefusedError';
    this.reasons = reasons;
    this.notes = notes;
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
  const diffOptions = { secretValues: options.secretValues ?? createSecretValues(randomBytes(32)) };
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
        // A cluster whose content a newer commit left as it was runs that commit's render as well.
        revision: c.sync === 'Synced' && c.renderedRevision ? c.renderedRevision : c.revision,
        sync: c.sync,
        health: c.health,
        connected: c.connected,
        healthySince: c.healthySince ? new Date(c.healthySince) : null,
        paused: c.paused ? pauseText(c.paused) : null,
      }));

  const afterMove = (reason: string) => {
    void options.sync
      .trigger(reason)
      .catch((err) => logger.warn({ err: String(err), reason }, 'publish pass after a promotion failed'));
  };

  /**
   * One promotion, serialised by the caller. Without an approval, into an environment that
   * requires one, it stops after the gates and records the request; with one, the request's
   * revision is what FROM must still run.
   */
  const run = async (
    request: PromoteRequest,
    approval: { approvedBy: string; request: PendingPromotion } | null,
  ): Promise<PromoteResult> => {
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
      // Approval is this service's own step (a request waits for another identity), not a gate.
      approved: true,
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
      throw new PromotionRefusedError(from, to, gate.reasons, gate.notes);
    }
    const fromBranch = fromEnv.branch ?? defaultBranch;
    const toBranch = toEnv.branch ?? defaultBranch;
    const previousHead = await branchHead(toBranch);
    if (toEnv.promotion.approve && !approval) {
      const pending = await log.request({ from, to, revision: gate.revision, requestedBy: actor });
      await audit.record({
        action: 'promote.request',
        actor,
        cluster: null,
        outcome: 'ok',
        detail: `${from}@${gate.revision.slice(0, 12)} → ${to}: waits for approval by another identity`,
      });
      logger.info({ from, to, revision: gate.revision, requestedBy: actor }, 'promotion waits for approval');
      return {
        from,
        to,
        fromRevision: gate.revision,
        commit: previousHead ?? '',
        fastForward: false,
        changed: false,
        notes: gate.notes,
        record: null,
        pending,
      };
    }
    if (approval && approval.request.revision !== gate.revision) {
      const reason = `${from} now runs ${gate.revision.slice(0, 12)}, the promotion asked for ${approval.request.revision.slice(0, 12)}: ask for it again`;
      await audit.record({
        action: 'promote.approve',
        actor: approval.approvedBy,
        cluster: null,
        outcome: 'refused',
        detail: `${from} → ${to}: ${reason}`,
      });
      throw new PromotionRefusedError(from, to, [reason], gate.notes);
    }
    const short = gate.revision.slice(0, 12);
    const apps = await appPromotionPaths(
      source,
      config,
      fromEnv,
      toEnv,
      gate.revision,
      fromBranch === toBranch,
    );
    const result = await promoteTree(source, {
      from: { branch: fromBranch, path: fromEnv.path, commit: gate.revision },
      to: { branch: toBranch, path: toEnv.path, keep: toEnv.keep },
      also: apps,
      message: [
        `promote ${from} → ${to}: ${fromEnv.path}@${short}`,
        '',
        `${to} (${toBranch}:${toEnv.path}) now holds what ${from} runs at ${gate.revision}`,
        `(${clusters
          .filter((c) => !c.paused)
          .map((c) => c.name)
          .join(', ')} Synced and Healthy), except the files ${to} keeps.`,
        ...apps.map((a) => `App ${a.app}: ${a.to} now holds ${a.from}.`),
        ...gate.notes.map((n) => `Note: ${n}.`),
        `Promoted by ${actor}.`,
        ...(approval ? [`Approved by ${approval.approvedBy}.`] : []),
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
      notes: gate.notes,
      record: null,
      pending: null,
    };
    if (!result.changed) {
      if (approval) await log.approved(approval.request.id, approval.approvedBy, null);
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
      ...(approval ? { approvedBy: approval.approvedBy } : {}),
    });
    if (approval) {
      await log.approved(approval.request.id, approval.approvedBy, outcome.record.id);
      await audit.record({
        action: 'promote.approve',
        actor: approval.approvedBy,
        cluster: null,
        outcome: 'ok',
        detail: `${from}@${short} → ${to}, asked for by ${actor}`,
      });
    }
    await audit.record({
      action: 'promote',
      actor,
      cluster: null,
      outcome: 'ok',
      detail: `${from}@${short} → ${to} as ${result.commit.slice(0, 12)}${result.fastForward ? ' (fast-forward)' : ''}${approval ? `, approved by ${approval.approvedBy}` : ''}`,
    });
    logger.info(
      { from, to, revision: gate.revision, commit: result.commit, fastForward: result.fastForward },
      'promoted',
    );
    afterMove(`promote ${from} → ${to}`);
    return outcome;
  };

  return {
    promote: (request) => serial(() => run(request, null)),

    approve: (request) =>
      serial(async () => {
        const { from, to, actor } = request;
        const [waiting] = await log.pending({ from, to });
        if (!waiting) {
          await audit.record({
            action: 'promote.approve',
            actor,
            cluster: null,
            outcome: 'refused',
            detail: `${from} → ${to}: nothing waits for approval`,
          });
          throw new FlotillaError(
            ErrorCode.NotFound,
            `approve ${from} → ${to}: no promotion waits for approval; ask for it first with \`flotilla promote ${from} ${to}\``,
          );
        }
        if (waiting.requestedBy === actor) {
          const detail = `${from} → ${to}: ${actor} asked for this promotion and cannot approve it too (four eyes): another approver must`;
          await audit.record({ action: 'promote.approve', actor, cluster: null, outcome: 'refused', detail });
          throw new PermissionDeniedError(detail, 'approve', to);
        }
        return run({ from, to, actor: waiting.requestedBy }, { approvedBy: actor, request: waiting });
      }),

    pending: () => log.pending(),

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
          // The environment's directory and every app directory that promotion moved with it.
          const fromEnv = config.environments.find((e) => e.name === target.from);
          const apps: AppPromotionPath[] = fromEnv
            ? await appPromotionPaths(source, config, fromEnv, env, target.commit, false)
            : [];
          const changes = new Map<string, TreeChange>();
          for (const path of [env.path, ...apps.map((a) => a.to)]) {
            const [now, promoted, before] = await Promise.all([
              source.treeId(head, path),
              source.treeId(target.commit, path),
              source.treeId(target.previousHead, path),
            ]);
            if (promoted === before) continue;
            if (now !== promoted)
              throw new FlotillaError(
                ErrorCode.Conflict,
                `${subject}: ${branch}:${path} changed since; revert it in git by hand`,
              );
            changes.set(path, before ? { mode: '040000', oid: before } : null);
          }
          const root = await source.commitTree(head);
          const tree = (await updateTree(source, root, changes)) ?? (await writeEmptyTree(source));
          commit = await source.commit({
            tree,
            parents: [head],
            message: `${message}\n\nThis reverts commits ${target.previousHead}..${target.commit} in ${[...changes.keys()].join(', ') || env.path}.\n`,
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
        diffOptions,
      );
      // The apps a promotion would move with the environment, each file named by its app.
      const fromBranch = fromEnv.branch ?? defaultBranch;
      const toBranch = toEnv.branch ?? defaultBranch;
      for (const app of await appPromotionPaths(
        source,
        config,
        fromEnv,
        toEnv,
        fromRevision,
        fromBranch === toBranch,
      )) {
        const appFiles = await diffEnvironments(
          source,
          { commit: fromRevision, path: app.from },
          { commit: toRevision, path: app.to, keep: app.keep },
          diffOptions,
        );
        files.push(...appFiles.map((f) => ({ ...f, source: `app/${app.app}` })));
      }
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
