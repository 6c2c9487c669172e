import { toJsonString } from '@bufbuild/protobuf';
import { ReportStatusRequestSchema } from '@flotilla/proto';
import {
  type Bundle,
  backoffDelay,
  createLogger,
  errorMessage,
  identityKey,
  type Logger,
  sha256Digest,
  type TrustedKeys,
  VerifyError,
  VerifyErrorCode,
  verifyBundle,
  windowState,
} from '@flotilla/shared';
import type { Outbox, ReportBody } from './outbox.js';
import {
  emptyChangeSet,
  type ReconcileResult,
  type Reconciler,
  type ResourceReport,
  type WatchHandle,
} from './reconcile/index.js';
import type { BundleStore } from './state.js';
import { heartbeatBody, overallHealth, refusedBody, statusBody } from './status-report.js';

/** Where a bundle came from: it decides whether `manual` sync holds it. */
export type BundleOrigin = 'nats' | 'import' | 'stored';

/** What happened to an offered bundle, as data. */
export type OfferOutcome =
  | { kind: 'applied'; generation: number; result: ReconcileResult }
  | { kind: 'held'; generation: number }
  | { kind: 'unchanged'; generation: number }
  | { kind: 'refused'; code: string; reason: string };

export interface AgentOptions {
  cluster: string;
  /** Hub keys pinned at join. */
  keys: TrustedKeys;
  reconciler: Reconciler;
  outbox: Outbox;
  bundleStore: BundleStore;
  logger?: Logger;
  /** A heartbeat is sent when nothing else was reported for this long; default 10 s, or the hub's pace if shorter. */
  heartbeatMs?: number;
  /** Self-heal backoff: first re-apply at once, then base·2ⁿ up to max while drift keeps coming back. */
  healBaseMs?: number;
  healMaxMs?: number;
  /** A heal this long after the previous one starts the backoff again; default 60 s. */
  healResetMs?: number;
  /** Asked to look for a bundle again (a sync command named a generation we do not hold yet). */
  onRefreshWanted?: () => void;
  /** Told of each self-heal re-apply scheduled: its delay (the backoff) and attempt number (metrics). */
  onHealScheduled?: (heal: { delayMs: number; attempt: number }) => void;
  /** The clock maintenance windows are read against; default the system clock. */
  now?: () => Date;
  /** How often a bundle held outside its maintenance window is looked at again; default 30 s. */
  windowCheckMs?: number;
}

interface ParsedAgentOptions
  extends Required<Omit<AgentOptions, 'logger' | 'onRefreshWanted' | 'onHealScheduled' | 'now'>> {
  logger: Logger;
  onRefreshWanted: () => void;
  onHealScheduled?: AgentOptions['onHealScheduled'];
  now: () => Date;
}

function parseAgentOptions(options: AgentOptions): ParsedAgentOptions {
  return {
    ...options,
    logger: options.logger ?? createLogger({ name: 'agent', level: 'silent' }),
    heartbeatMs: options.heartbeatMs ?? 10_000,
    healBaseMs: options.healBaseMs ?? 1000,
    healMaxMs: options.healMaxMs ?? 60_000,
    healResetMs: options.healResetMs ?? 60_000,
    onRefreshWanted: options.onRefreshWanted ?? (() => {}),
    now: options.now ?? (() => new Date()),
    windowCheckMs: options.windowCheckMs ?? 30_000,
  };
}

/** What the agent is doing now. */
export interface AgentSnapshot {
  bundle?: Bundle;
  pending?: Bundle;
  result?: ReconcileResult;
  resources: readonly ResourceReport[];
}

/**
 * The agent's run loop, with every I/O behind what it receives: bundles are offered to it
 * (from NATS, an import, or the state dir), it verifies them, applies or holds them per the
 * bundle's sync policy, watches for drift, heals it when the policy says so, and puts every
 * report into the outbox. One bundle operation runs at a time.
 */
export interface Agent {
  /** Enforces the stored last good bundle at once, before any network connection. */
  start(): Promise<void>;
  offer(envelope: Uint8Array, meta?: { origin?: BundleOrigin; generation?: number }): Promise<OfferOutcome>;
  /** A bundle that could not even be read (e.g. its chunks never matched): reported, not applied. */
  refuse(refusal: { generation: number; digest: string; error: VerifyError }): void;
  /** The hub's SyncCommand: apply the held bundle of this generation. */
  sync(generation: number): Promise<OfferOutcome | undefined>;
  snapshot(): AgentSnapshot;
  /** The current full status, as a report body (for a status export). */
  currentStatus(): ReportBody;
  /** The hub's pacing: heartbeats at most this far apart (never slower than configured). */
  pace(settings: { heartbeatMs: number }): void;
  stop(): Promise<void>;
}

/** Reads a payload's generation without trusting it: only for naming what was refused. */
function peekGeneration(envelope: Uint8Array): number {
  try {
    const e = JSON.parse(new TextDecoder().decode(envelope));
    const b = JSON.parse(Buffer.from(e.payload, 'base64').toString('utf8'));
    return typeof b.generation === 'number' ? b.generation : 0;
  } catch {
    return 0;
  }
}

export function createAgent(options: AgentOptions): Agent {
  const o = parseAgentOptions(options);
  const log = o.logger;
  let current: { bundle: Bundle; digest: string } | undefined;
  /** A bundle received and held: why, and until when when the agent will apply it by itself. */
  let pending: { bundle: Bundle; envelope: Uint8Array; reason: string; until?: Date } | undefined;
  let windowTimer: NodeJS.Timeout | undefined;
  let approved = 0;
  let result: ReconcileResult | undefined;
  let resources: readonly ResourceReport[] = [];
  let watch: WatchHandle | undefined;
  let stopped = false;
  const abort = new AbortController();
  let queue: Promise<unknown> = Promise.resolve();
  const refusedSeen = new Set<string>();
  let lastStatusKey = '';
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let heartbeatMs = o.heartbeatMs;
  let healTimer: NodeJS.Timeout | undefined;
  let healAttempts = 0;
  let lastHealAt = 0;

  /** Runs bundle operations one at a time, in arrival order. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };

  const armHeartbeat = () => {
    if (heartbeatTimer) clearTimeout(heartbeatTimer);
    if (stopped) return;
    heartbeatTimer = setTimeout(() => {
      heartbeatTimer = undefined;
      o.outbox.append(heartbeatBody(current?.bundle.generation ?? 0));
    }, heartbeatMs);
    heartbeatTimer.unref?.();
  };
  const unsubscribe = o.outbox.onAppend(() => armHeartbeat());

  /**
   * The apply's phase, kept current by the watch: a failed apply stays Failed until the
   * next apply; otherwise Progressing while an object is, else Synced. Drift does not
   * change the phase: it is reported per object.
   */
  const phaseNow = (): ReconcileResult['phase'] => {
    if (!result) return 'Progressing';
    if (result.phase === 'Failed') return 'Failed';
    return resources.some((r) => r.health === 'Progressing') ? 'Progressing' : 'Synced';
  };

  const statusNow = (): ReportBody =>
    statusBody({
      bundle: current?.bundle,
      bundleDigest: current?.digest,
      phase: phaseNow(),
      health: resources.length ? overallHealth(resources) : (result?.health ?? 'Unknown'),
      resources,
      error: result?.error,
      pendingGeneration: pending?.bundle.generation,
      pendingReason: pending?.reason,
      pendingUntil: pending?.until,
    });

  /** Reports the full status unless it is identical to the last one reported. */
  const reportStatus = () => {
    if (stopped) return;
    const body = statusNow();
    const key = toJsonString(ReportStatusRequestSchema, {
      $typeName: 'flotilla.v1.ReportStatusRequest',
      seq: 0n,
      body,
    });
    if (key === lastStatusKey) return;
    lastStatusKey = key;
    o.outbox.append(body);
  };

  const reportRefused = (generation: number, digest: string, err: VerifyError) => {
    const key = `${digest} ${err.reason}`;
    log.warn({ generation, digest, code: err.reason, reason: err.message }, 'bundle refused');
    if (refusedSeen.has(key)) return;
    refusedSeen.add(key);
    o.outbox.append(refusedBody({ generation, digest, code: err.reason, reason: err.message }));
  };

  /**
   * Drift worth a re-apply: drifted fields or a missing object. An object out of sync for
   * another reason (a conflict with its owner, a failed check) has an error that a re-apply
   * would only repeat.
   */
  const hasDrift = (rs: readonly ResourceReport[]) =>
    rs.some((r) => r.drift.length > 0 || r.sync === 'Missing');

  const scheduleHeal = (why: string) => {
    if (stopped || healTimer || !current) return;
    const now = Date.now();
    if (now - lastHealAt > o.healResetMs) healAttempts = 0;
    const delay =
      healAttempts === 0 ? 0 : backoffDelay(healAttempts - 1, { baseMs: o.healBaseMs, maxMs: o.healMaxMs });
    healAttempts++;
    log.info({ why, inMs: delay, attempt: healAttempts }, 're-applying the bundle');
    o.onHealScheduled?.({ delayMs: delay, attempt: healAttempts });
    healTimer = setTimeout(() => {
      healTimer = undefined;
      lastHealAt = Date.now();
      const bundle = current?.bundle;
      if (!bundle || stopped) return;
      void serial(async () => {
        if (stopped || current?.bundle !== bundle) return;
        await runApply(bundle);
      });
    }, delay);
  };

  const onWatchChange = (changed: ResourceReport[]) => {
    if (stopped) return;
    // The watch covers the bundle's objects; pruned ones still Terminating stay listed until
    // the next apply finds them gone.
    const terminating = new Set((result?.changes.terminating ?? []).map(identityKey));
    const waiting = (result?.resources ?? []).filter((r) => terminating.has(identityKey(r.id)));
    resources = [...changed, ...waiting];
    reportStatus();
    if (current?.bundle.policy.selfHeal && hasDrift(changed)) scheduleHeal('drift');
  };

  /**
   * Whether a retry could help: a failure that is not permanent (a SOPS document that does not
   * decrypt here fails the same way until a new bundle), or an error that is no object's.
   */
  const retriable = (r: ReconcileResult) =>
    r.changes.failed.some((f) => !f.permanent) ||
    (r.phase === 'Failed' && r.error !== undefined && !r.changes.failed.some((f) => f.error === r.error));

  const runApply = async (bundle: Bundle): Promise<ReconcileResult> => {
    let r: ReconcileResult;
    try {
      r = await o.reconciler.apply(bundle, { signal: abort.signal });
    } catch (err) {
      r = {
        changes: emptyChangeSet(),
        resources: [...resources],
        phase: 'Failed',
        health: 'Unknown',
        error: `bundle generation ${bundle.generation}: apply failed: ${errorMessage(err)}`,
      };
      // The reconciler logs each outcome it reaches; one it never reached is logged here.
      log.error({ generation: bundle.generation, err: errorMessage(err) }, 'bundle not applied');
    }
    if (stopped) return r;
    result = r;
    resources = r.resources;
    reportStatus();
    // Failures are retried with the same backoff as drift, and so is a prune still waiting for
    // an object to be gone.
    if (retriable(r)) scheduleHeal('apply failures');
    else if (r.changes.terminating.length > 0) scheduleHeal('pruned objects still terminating');
    return r;
  };

  const apply = async (
    bundle: Bundle,
    envelope: Uint8Array,
    digest = sha256Digest(envelope),
  ): Promise<OfferOutcome> => {
    // Persist first: a kill mid-apply restarts by enforcing this bundle again.
    o.bundleStore.write(envelope);
    if (watch) await watch.stop().catch(() => {});
    watch = undefined;
    current = { bundle, digest };
    if (pending && pending.bundle.generation <= bundle.generation) pending = undefined;
    healAttempts = 0;
    const r = await runApply(bundle);
    if (!stopped) watch = o.reconciler.watch(bundle, onWatchChange, resources);
    return { kind: 'applied', generation: bundle.generation, result: r };
  };

  const offerNow = async (envelope: Uint8Array, origin: BundleOrigin, hintGeneration?: number) => {
    const applied = current?.bundle.generation;
    const digest = sha256Digest(envelope);
    let bundle: Bundle;
    try {
      // The applied generation itself passes here and is a no-op below.
      bundle = verifyBundle(envelope, {
        keys: o.keys,
        cluster: o.cluster,
        appliedGeneration: applied ? applied - 1 : undefined,
      });
      if (current && bundle.generation === current.bundle.generation) {
        if (bundle.contentDigest === current.bundle.contentDigest) {
          return { kind: 'unchanged', generation: bundle.generation } as const;
        }
        throw new VerifyError(
          VerifyErrorCode.StaleGeneration,
          `generation ${bundle.generation} is the applied generation with different content`,
        );
      }
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      reportRefused(hintGeneration ?? peekGeneration(envelope), digest, err);
      return { kind: 'refused', code: err.reason, reason: err.message } as const;
    }
    const manual = bundle.policy.sync === 'manual' && origin === 'nats' && bundle.generation > approved;
    if (manual) {
      if (pending?.bundle.generation !== bundle.generation) {
        pending = { bundle, envelope, reason: 'sync policy is manual' };
        log.info({ generation: bundle.generation }, 'bundle held: sync policy is manual');
        reportStatus();
      }
      return { kind: 'held', generation: bundle.generation } as const;
    }
    // Outside its maintenance windows a new bundle waits, whether it came over NATS or was
    // imported on an air-gapped site; an explicit sync command does not wait.
    const window =
      bundle.generation > approved ? windowState(bundle.policy.windows, o.now()) : ({ open: true } as const);
    if (!window.open) {
      const until = window.opensAt;
      if (pending?.bundle.generation !== bundle.generation || pending.until?.getTime() !== until.getTime()) {
        pending = { bundle, envelope, reason: 'outside its maintenance window', until };
        log.info(
          { generation: bundle.generation, until: until.toISOString() },
          'bundle held: outside its maintenance window',
        );
        reportStatus();
      }
      armWindowCheck();
      return { kind: 'held', generation: bundle.generation } as const;
    }
    return apply(bundle, envelope, digest);
  };

  /** Looks at a bundle held for its window again until the window opens. */
  const armWindowCheck = () => {
    if (windowTimer || stopped) return;
    windowTimer = setInterval(() => {
      const held = pending;
      if (stopped || !held?.until) {
        if (windowTimer) clearInterval(windowTimer);
        windowTimer = undefined;
        return;
      }
      if (!windowState(held.bundle.policy.windows, o.now()).open) return;
      if (windowTimer) clearInterval(windowTimer);
      windowTimer = undefined;
      void serial(async () => {
        if (pending !== held || stopped) return;
        log.info({ generation: held.bundle.generation }, 'maintenance window open: applying the held bundle');
        await apply(held.bundle, held.envelope);
      });
    }, o.windowCheckMs);
    windowTimer.unref?.();
  };

  return {
    async start() {
      const stored = o.bundleStore.read();
      if (!stored) {
        log.info('no stored bundle yet; waiting for one');
        reportStatus();
        return;
      }
      await serial(async () => {
        let bundle: Bundle;
        try {
          bundle = verifyBundle(stored, { keys: o.keys, cluster: o.cluster });
        } catch (err) {
          log.error(
            { path: o.bundleStore.path, err: errorMessage(err) },
            'stored bundle refused; not enforcing it',
          );
          if (err instanceof VerifyError) reportRefused(peekGeneration(stored), sha256Digest(stored), err);
          return;
        }
        log.info({ generation: bundle.generation }, 'enforcing the stored bundle');
        await apply(bundle, stored);
      });
    },
    offer(envelope, meta = {}) {
      return serial(() => offerNow(envelope, meta.origin ?? 'nats', meta.generation));
    },
    refuse({ generation, digest, error }) {
      reportRefused(generation, digest, error);
    },
    sync(generation) {
      return serial(async () => {
        if (generation > approved) approved = generation;
        if (pending && pending.bundle.generation <= generation) {
          const { bundle, envelope } = pending;
          log.info({ generation: bundle.generation }, 'sync command: applying the held bundle');
          return apply(bundle, envelope);
        }
        if (!current || generation > current.bundle.generation) {
          log.info({ generation }, 'sync command for a bundle not received yet; pulling');
          o.onRefreshWanted();
        }
        return undefined;
      });
    },
    snapshot: () => ({ bundle: current?.bundle, pending: pending?.bundle, result, resources }),
    currentStatus: statusNow,
    pace(settings) {
      const next = Math.min(o.heartbeatMs, settings.heartbeatMs);
      if (next === heartbeatMs) return;
      heartbeatMs = next;
      log.info({ heartbeatMs }, 'heartbeat paced by the hub');
      armHeartbeat();
    },
    async stop() {
      stopped = true;
      abort.abort();
      unsubscribe();
      if (heartbeatTimer) clearTimeout(heartbeatTimer);
      if (healTimer) clearTimeout(healTimer);
      if (windowTimer) clearInterval(windowTimer);
      await queue;
      await watch?.stop().catch(() => {});
    },
  };
}
