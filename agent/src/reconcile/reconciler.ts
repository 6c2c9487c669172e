import {
  type Bundle,
  createLogger,
  formatIdentity,
  InvalidError,
  identityKey,
  identityOf,
  type KubeObject,
  type Logger,
  type ObjectIdentity,
} from '@flotilla/shared';
import { type ApplyContext, applyObjects } from './apply.js';
import { apiMessage, type Cluster, createCluster } from './cluster.js';
import { createDriftCheck, PRESENT, WHOLE_OBJECT } from './drift-check.js';
import { createDriftClock, MISSING } from './drift-clock.js';
import { assessHealth } from './health.js';
import { createInventoryStore, type Inventory, type InventoryEntry } from './inventory.js';
import { createLimiter } from './limit.js';
import { type PruneOutcome, pruneObjects } from './prune.js';
import { emptyChangeSet, positionalIdentity, summarise } from './result.js';
import { isTransient, type RetryOptions, withRetry } from './retry.js';
import type {
  ObjectDecoder,
  ReconcileResult,
  Reconciler,
  ReconcilerOptions,
  ResourceReport,
  WatchHandle,
  WatchOptions,
} from './types.js';
import { watchObjects } from './watch.js';

export const DEFAULT_FIELD_MANAGER = 'flotilla-agent';
export const DEFAULT_INVENTORY_NAMESPACE = 'flotilla-system';
export const DEFAULT_CRD_WAIT_MS = 30_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
export const DEFAULT_PRUNE_WAIT_MS = 2000;
export const DEFAULT_RESYNC_MS = 10 * 60_000;
export const DEFAULT_WATCH_TIMEOUT_MS = 75_000;
/** How many drift checks run at once against the API server. */
const CHECK_CONCURRENCY = 8;

interface Settings {
  cluster: string;
  fieldManager: string;
  inventoryNamespace: string;
  logger: Logger;
  crdWaitMs: number;
  requestTimeoutMs: number;
  pruneWaitMs: number;
  resyncMs: number;
  watchTimeoutMs: number;
  secretHashKey?: Uint8Array;
  decoder?: ObjectDecoder;
  onApplied?: ReconcilerOptions['onApplied'];
}

/** The one place ReconcilerOptions are validated and defaulted (the kubeConfig is createReconciler's). */
export function parseReconcilerOptions(
  options: Omit<ReconcilerOptions, 'kubeConfig'> & Partial<Pick<ReconcilerOptions, 'kubeConfig'>>,
): Settings {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(options.cluster ?? '')) {
    throw new InvalidError('cluster', `must be a DNS label, got ${JSON.stringify(options.cluster)}`);
  }
  const positive = (name: string, v: number | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    if (!(v > 0)) throw new InvalidError(name, `must be a positive number of milliseconds, got ${v}`);
    return v;
  };
  return {
    cluster: options.cluster,
    fieldManager: options.fieldManager || DEFAULT_FIELD_MANAGER,
    inventoryNamespace: options.inventoryNamespace || DEFAULT_INVENTORY_NAMESPACE,
    logger: options.logger ?? createLogger({ name: 'agent-reconcile' }),
    crdWaitMs: positive('crdWaitMs', options.crdWaitMs, DEFAULT_CRD_WAIT_MS),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    pruneWaitMs: positive('pruneWaitMs', options.pruneWaitMs, DEFAULT_PRUNE_WAIT_MS),
    resyncMs: positive('resyncMs', options.resyncMs, DEFAULT_RESYNC_MS),
    watchTimeoutMs: positive('watchTimeoutMs', options.watchTimeoutMs, DEFAULT_WATCH_TIMEOUT_MS),
    ...(options.secretHashKey ? { secretHashKey: options.secretHashKey } : {}),
    ...(options.decoder ? { decoder: options.decoder } : {}),
    ...(options.onApplied ? { onApplied: options.onApplied } : {}),
  };
}

/** A bundle's objects as they are applied: decoded, and those refused with why. */
interface Prepared {
  objects: KubeObject[];
  refused: Map<KubeObject, string>;
  /** Decoded object → the object as the bundle has it. */
  sourceOf: Map<KubeObject, KubeObject>;
}

/**
 * Decodes the objects the decoder applies to (SOPS documents), once per bundle. A refusal's
 * reason never carries a value; the object's name is put before it where it is reported.
 * Synchronous when no object needs decoding.
 */
function prepareObjects(bundle: Bundle, decoder: ObjectDecoder | undefined): Prepared | Promise<Prepared> {
  const refused = new Map<KubeObject, string>();
  const sourceOf = new Map<KubeObject, KubeObject>();
  if (!decoder || !bundle.objects.some((o) => decoder.applies(o)))
    return { objects: bundle.objects, refused, sourceOf };
  return Promise.all(
    bundle.objects.map(async (obj) => {
      if (!decoder.applies(obj)) return obj;
      try {
        const decoded = await decoder.decode(obj);
        sourceOf.set(decoded, obj);
        return decoded;
      } catch (err) {
        refused.set(obj, apiMessage(err));
        return obj;
      }
    }),
  ).then((objects) => ({ objects, refused, sourceOf }));
}

/**
 * The agent's reconcile engine for one cluster. It holds no bundle of its own: the run loop
 * passes the bundle to each call. It does keep when each drifted field was first seen, so
 * `since` is stable across assess, apply and watch.
 */
export function createReconciler(options: ReconcilerOptions): Reconciler {
  if (!options.kubeConfig) throw new InvalidError('kubeConfig', 'is required');
  const s = parseReconcilerOptions(options);
  return createReconcilerWith(createCluster(options.kubeConfig), s);
}

/**
 * The engine over a Cluster the caller brings instead of a kubeconfig: the fleet simulator
 * runs the real agent against an in-memory cluster this way.
 */
export function createClusterReconciler(
  cluster: Cluster,
  options: Omit<ReconcilerOptions, 'kubeConfig'>,
): Reconciler {
  return createReconcilerWith(cluster, parseReconcilerOptions(options));
}

/** The engine over any Cluster; createReconciler wires the one over the API server (cluster.ts). */
export function createReconcilerWith(cluster: Cluster, s: Settings): Reconciler {
  const clock = createDriftClock();
  const logger = s.logger;
  const retry: RetryOptions = { attempts: 4, baseDelayMs: 250, timeoutMs: s.requestTimeoutMs };
  const inventory = createInventoryStore(cluster, {
    cluster: s.cluster,
    namespace: s.inventoryNamespace,
    fieldManager: s.fieldManager,
  });
  const check = createDriftCheck({
    cluster,
    fieldManager: s.fieldManager,
    clock,
    retry,
    ...(s.secretHashKey ? { secretHashKey: s.secretHashKey } : {}),
  });
  /**
   * What the last apply left in the inventory: objects Flotilla created, for assess and watch.
   * Undefined until an apply or an assess has read it.
   */
  let owned: Set<string> | undefined;
  /** The inventory's keys, read once when no apply has run in this process (a status export). */
  async function ownedKeys(): Promise<Set<string>> {
    if (owned) return owned;
    try {
      owned = new Set((await withRetry(() => inventory.read(), retry)).keys());
    } catch (err) {
      // managedFields still tell which objects the agent applied.
      logger.debug({ err: apiMessage(err) }, 'inventory unreadable for assess');
      return new Set();
    }
    return owned;
  }
  /** Checks of a watch or an assess (a GET and maybe a dry run each) share this many slots. */
  const limit = createLimiter(CHECK_CONCURRENCY);
  /** Decoded objects per bundle: decrypted once for apply, then used by the watch. */
  const preparedOf = new WeakMap<Bundle, Prepared | Promise<Prepared>>();
  const prepared = (bundle: Bundle): Prepared | Promise<Prepared> => {
    let p = preparedOf.get(bundle);
    if (!p) {
      p = prepareObjects(bundle, s.decoder);
      preparedOf.set(bundle, p);
      if (p instanceof Promise)
        p.then((done) => preparedOf.set(bundle, done)).catch(() => preparedOf.delete(bundle));
    }
    return p;
  };

  async function apply(
    bundle: Bundle,
    options: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
  ): Promise<ReconcileResult> {
    const changes = emptyChangeSet();
    const resources: ResourceReport[] = [];
    const { objects, refused, sourceOf } = await prepared(bundle);
    let previous: Inventory;
    let inventoryError: string | undefined;
    try {
      previous = await withRetry(() => inventory.read(), { ...retry, signal: options.signal });
    } catch (err) {
      // Without the inventory nothing may be pruned, but the bundle can still be applied.
      options.signal?.throwIfAborted();
      const message = `inventory ${s.inventoryNamespace}/flotilla-inventory-${s.cluster}: read failed: ${apiMessage(err)}`;
      // An API server that does not answer would fail every object after its retries, one by
      // one: say so once, touch nothing, and let the run loop try again later.
      if (isTransient(err)) return unreachable(bundle, message);
      previous = new Map();
      inventoryError = message;
    }
    const ctx: ApplyContext = {
      cluster,
      fieldManager: s.fieldManager,
      logger,
      crdWaitMs: s.crdWaitMs,
      retry: { ...retry, signal: options.signal },
      check,
      policy: bundle.policy,
      limit,
      signal: options.signal,
      onProgress: options.onProgress,
      refused,
      sourceOf,
    };
    const applyStart = performance.now();
    const outcomes = await applyObjects(objects, previous, ctx);
    const applyMs = performance.now() - applyStart;
    let pruneMs = 0;
    let pruned: PruneOutcome | undefined;

    const next = new Map<string, InventoryEntry>();
    for (const o of outcomes) {
      const key = identityKey(o.id);
      if (o.action === 'failed') {
        changes.failed.push({
          id: o.id,
          error: o.error ?? `${formatIdentity(o.id)}: apply failed`,
          ...(o.permanent ? { permanent: true } : {}),
        });
        // Keep what an earlier apply put there: it is still ours to prune later.
        const before = previous.get(key);
        if (before) next.set(key, before);
      } else if (o.action === 'conflict') {
        // Someone else's object: never in the inventory, so never pruned.
        changes.skipped.push(o.id);
      } else {
        changes[o.action].push(o.id);
        next.set(key, { ...o.id, digest: o.digest });
      }
      resources.push(outcomeReport(o.id, o.live, o.drift, o.error));
    }

    // An empty render is more often a mistake than an intent: it prunes nothing unless allowed.
    const inBundle = new Set(outcomes.map((o) => identityKey(o.id)));
    const stale = [...previous.entries()].filter(([k]) => !inBundle.has(k));
    const mayPrune =
      !inventoryError && bundle.policy.prune && (bundle.objects.length > 0 || bundle.policy.allowEmpty);
    if (mayPrune && stale.length > 0) {
      const pruneStart = performance.now();
      pruned = await pruneObjects(
        stale.map(([, e]) => e),
        { cluster, fieldManager: s.fieldManager, logger, retry, waitMs: s.pruneWaitMs },
      );
      pruneMs = performance.now() - pruneStart;
      for (const e of pruned.deleted) {
        const id = identityOnly(e);
        changes.deleted.push(id);
        check.forget(id);
        resources.push({
          id,
          sync: 'Pruned',
          health: 'Healthy',
          healthReason: 'deleted: no longer in the bundle',
          drift: [],
        });
      }
      for (const { entry } of pruned.skipped) changes.skipped.push(identityOnly(entry));
      for (const { entry, reason } of pruned.terminating) {
        const id = identityOnly(entry);
        changes.terminating.push(id);
        next.set(identityKey(entry), entry);
        resources.push({ id, sync: 'OutOfSync', health: 'Progressing', healthReason: reason, drift: [] });
      }
      for (const { entry, error } of pruned.failed) {
        changes.failed.push({ id: identityOnly(entry), error });
        next.set(identityKey(entry), entry);
      }
    } else {
      // Not pruned now, still ours: a later bundle with pruning on may delete them.
      for (const [k, e] of stale) next.set(k, e);
    }

    try {
      s.onApplied?.({ bundle, outcomes, previous, ...(pruned ? { pruned } : {}) });
    } catch (err) {
      logger.warn({ err: apiMessage(err) }, 'apply observer failed');
    }
    owned = new Set(next.keys());
    let error = inventoryError;
    if (!inventoryError && !sameInventory(previous, next)) {
      try {
        await withRetry(() => inventory.write(next.values()), retry);
      } catch (err) {
        error = `inventory ${s.inventoryNamespace}/flotilla-inventory-${s.cluster}: write failed: ${apiMessage(err)}`;
      }
    }
    const result: ReconcileResult = {
      ...summarise(changes, resources, changes.failed[0]?.error ?? error),
      timings: { applyMs, pruneMs },
    };
    logger.info(
      {
        cluster: s.cluster,
        generation: bundle.generation,
        phase: result.phase,
        health: result.health,
        created: changes.created.length,
        configured: changes.configured.length,
        unchanged: changes.unchanged.length,
        deleted: changes.deleted.length,
        terminating: changes.terminating.length,
        skipped: changes.skipped.length,
        failed: changes.failed.length,
        applyMs: Math.round(applyMs),
        pruneMs: Math.round(pruneMs),
      },
      'bundle applied',
    );
    // Each failure names its object (`apps/v1 Deployment shop/web: apply failed: …`).
    for (const f of changes.failed)
      logger.warn({ generation: bundle.generation, error: f.error }, 'object not applied');
    return result;
  }

  async function assess(bundle: Bundle): Promise<ReconcileResult> {
    const inventoryKeys = await ownedKeys();
    const { objects, refused } = await prepared(bundle);
    const resources = await Promise.all(
      objects.map(async (obj, i) => {
        let id: ObjectIdentity;
        try {
          id = identityOf(obj, `object ${i}`);
        } catch (err) {
          return invalidReport(obj, i, apiMessage(err));
        }
        const why = refused.get(obj);
        if (why !== undefined) return refusedReport(id, why);
        try {
          return await limit(async () => {
            const live = await withRetry(() => cluster.get(obj), retry);
            return check.report(id, obj, live, {
              policy: bundle.policy,
              inInventory: inventoryKeys.has(identityKey(id)),
            });
          });
        } catch (err) {
          return {
            id,
            sync: 'OutOfSync',
            health: 'Unknown',
            healthReason: 'cannot read the live object',
            drift: [],
            error: `${formatIdentity(id)}: read failed: ${apiMessage(err)}`,
          } satisfies ResourceReport;
        }
      }),
    );
    return summarise(emptyChangeSet(), resources);
  }

  /** The report of an apply's outcome: what the apply (or its dry run) already established. */
  function outcomeReport(
    id: ObjectIdentity,
    live: KubeObject | undefined,
    drift: { path: string; desired: string; live: string }[] | undefined,
    error: string | undefined,
  ): ResourceReport {
    const { health, reason } = assessHealth(live);
    const err = error ? { error } : {};
    if (!live) {
      const missing = clock.stamp(id, [{ path: WHOLE_OBJECT, desired: PRESENT, live: MISSING }]);
      return { id, sync: 'Missing', health, healthReason: reason, drift: missing, ...err };
    }
    // A failure or a conflict says nothing of the fields: it is reported as the error.
    const stamped = clock.stamp(id, drift ?? []);
    const sync = error || stamped.length > 0 ? 'OutOfSync' : 'Synced';
    return { id, sync, health, healthReason: reason, drift: stamped, ...err };
  }

  return {
    apply,
    assess,
    watch(bundle, onChange, known, options) {
      const ready = prepared(bundle);
      if (!(ready instanceof Promise)) return watchPrepared(bundle, ready, onChange, known, options);
      // Decoding first (already done by the apply that comes before a watch, as a rule).
      let inner: WatchHandle | undefined;
      let stopped = false;
      const started = ready.then(
        (p) => {
          if (!stopped) inner = watchPrepared(bundle, p, onChange, known, options);
        },
        (err) => logger.error({ err: apiMessage(err) }, 'watch not started: decoding the bundle failed'),
      );
      return {
        ready: started.then(() => inner?.ready),
        async resync() {
          await started;
          await inner?.resync();
        },
        async stop() {
          stopped = true;
          await started;
          await inner?.stop();
        },
      };
    },
  };

  /** The watch over decoded objects; refused ones are not watched and stay reported with their error. */
  function watchPrepared(
    bundle: Bundle,
    p: Prepared,
    onChange: (resources: ResourceReport[]) => void,
    known: readonly ResourceReport[] | undefined,
    options: WatchOptions | undefined,
  ): WatchHandle {
    const refusedReports = [...p.refused.entries()].flatMap(([obj, why]) => {
      try {
        return [refusedReport(identityOf(obj), why)];
      } catch {
        return [];
      }
    });
    return watchObjects(
      p.refused.size ? p.objects.filter((o) => !p.refused.has(o)) : p.objects,
      {
        cluster,
        report: (id, desired, live, fresh) =>
          limit(() =>
            check.report(id, desired, live, {
              policy: bundle.policy,
              inInventory: owned?.has(identityKey(id)) ?? false,
              fresh,
            }),
          ),
        logger,
        debounceMs: 100,
        resyncMs: s.resyncMs,
        watchTimeoutMs: s.watchTimeoutMs,
        ...(options?.progress ? { progress: options.progress } : {}),
      },
      refusedReports.length ? (changed) => onChange([...changed, ...refusedReports]) : onChange,
      known,
    );
  }
}

/** An object refused before apply (it did not decrypt here): out of sync, with why after its name. */
function refusedReport(id: ObjectIdentity, why: string): ResourceReport {
  return {
    id,
    sync: 'OutOfSync',
    health: 'Unknown',
    healthReason: 'refused before apply',
    drift: [],
    error: `${formatIdentity(id)}: ${why}`,
  };
}

/** The result of an apply that could not reach the API server: every object skipped, nothing known. */
function unreachable(bundle: Bundle, error: string): ReconcileResult {
  const changes = emptyChangeSet();
  const resources: ResourceReport[] = bundle.objects.map((obj, i) => {
    let id: ObjectIdentity;
    try {
      id = identityOf(obj);
    } catch (err) {
      return invalidReport(obj, i, apiMessage(err));
    }
    changes.skipped.push(id);
    return { id, sync: 'OutOfSync', health: 'Unknown', healthReason: 'API server unreachable', drift: [] };
  });
  return summarise(changes, resources, error);
}

function invalidReport(obj: KubeObject, i: number, error: string): ResourceReport {
  return {
    id: positionalIdentity(obj, i),
    sync: 'OutOfSync',
    health: 'Unknown',
    healthReason: 'invalid manifest',
    drift: [],
    error,
  };
}

function identityOnly({ group, version, kind, namespace, name }: InventoryEntry): ObjectIdentity {
  return { group, version, kind, namespace, name };
}

function sameInventory(a: Inventory, b: Inventory): boolean {
  if (a.size !== b.size) return false;
  for (const [k, e] of a) {
    const o = b.get(k);
    if (!o || o.digest !== e.digest || o.version !== e.version) return false;
  }
  return true;
}
