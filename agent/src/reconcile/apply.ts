import {
  canonicalJson,
  formatIdentity,
  identityKey,
  identityOf,
  type KubeObject,
  type Logger,
  type ObjectIdentity,
  type SyncPolicy,
  sha256Digest,
} from '@flotilla/shared';
import { apiMessage, type Cluster } from './cluster.js';
import type { DriftCheck } from './drift-check.js';
import { appliedFieldsOf } from './fields-v1.js';
import type { Inventory } from './inventory.js';
import type { Limiter } from './limit.js';
import { ownershipConflict } from './ownership.js';
import { positionalIdentity } from './result.js';
import { type RetryOptions, sleep, withRetry } from './retry.js';

/**
 * What happened to one object of the bundle. `conflict`: it exists, Flotilla did not create
 * it and may not adopt it, so it was left alone.
 */
export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'skipped' | 'failed' | 'conflict';

export interface ObjectOutcome {
  id: ObjectIdentity;
  desired: KubeObject;
  action: ApplyAction;
  /** The live object after the call, when known. */
  live?: KubeObject;
  /** Digest of the applied manifest, for the inventory. */
  digest: string;
  /** Starts with the object: `apps/v1 Deployment shop/web: apply failed: …`. */
  error?: string;
  /** Managed fields that differ from what the apply stores (`unchanged`: none). */
  drift?: { path: string; desired: string; live: string }[];
  /** A failure that retrying the same bundle would only repeat (refused before apply). */
  permanent?: boolean;
  /** `configured`: the managed fields the apply changed, as its dry run found them (for events). */
  changed?: string[];
}

export interface ApplyContext {
  cluster: Cluster;
  fieldManager: string;
  logger: Logger;
  crdWaitMs: number;
  retry: RetryOptions;
  /** The server's own drift and no-op decisions. */
  check: DriftCheck;
  /** The bundle's policy: adoption and ignored fields. */
  policy: Pick<SyncPolicy, 'adopt' | 'ignoreDifferences'>;
  /** Bounds the reads and dry runs of a stage that run at once. */
  limit: Limiter;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /**
   * Objects refused before apply (a SOPS document that does not decrypt here), with why: each
   * fails alone, naming itself, and keeps its place in the inventory (so it is never pruned).
   */
  refused?: ReadonlyMap<KubeObject, string>;
  /**
   * The bundle's form of each decoded object (a SOPS document): the inventory records its
   * digest, so that no hash of a clear Secret value is stored in a ConfigMap.
   */
  sourceOf?: ReadonlyMap<KubeObject, KubeObject>;
}

const CRD_GROUP = 'apiextensions.k8s.io';

export function isCrd(id: ObjectIdentity): boolean {
  return id.group === CRD_GROUP && id.kind === 'CustomResourceDefinition';
}

export function isNamespace(id: ObjectIdentity): boolean {
  return id.group === '' && id.kind === 'Namespace';
}

export function manifestDigest(obj: KubeObject): string {
  return sha256Digest(canonicalJson(obj));
}

/** The custom kinds a bundle's CRDs define, `group/Kind` → CRD name. */
function customKinds(objects: { id: ObjectIdentity; desired: KubeObject }[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const { id, desired } of objects) {
    if (!isCrd(id)) continue;
    const spec = desired.spec as { group?: string; names?: { kind?: string } } | undefined;
    if (spec?.group && spec.names?.kind) out.set(`${spec.group}/${spec.names.kind}`, id.name);
  }
  return out;
}

/**
 * Applies every object of a bundle in stages, the way fluxcd/pkg ssa does: CRDs, then
 * Namespaces, then other cluster-scoped kinds, then namespaced ones, waiting for each CRD
 * to be Established before its custom resources. One object's failure is recorded and the
 * rest go on. Never throws, except with the abort reason when `signal` aborts.
 */
export async function applyObjects(
  objects: readonly KubeObject[],
  inventory: Inventory,
  ctx: ApplyContext,
): Promise<ObjectOutcome[]> {
  const outcomes: ObjectOutcome[] = [];
  const pending: { id: ObjectIdentity; desired: KubeObject }[] = [];
  const refused: { id: ObjectIdentity; desired: KubeObject; why: string }[] = [];
  objects.forEach((desired, i) => {
    try {
      const id = identityOf(desired, `object ${i}`);
      const why = ctx.refused?.get(desired);
      if (why !== undefined) refused.push({ id, desired, why });
      else pending.push({ id, desired });
    } catch (err) {
      const id = positionalIdentity(desired, i);
      outcomes.push({ id, desired, action: 'failed', digest: '', error: `${apiMessage(err)}` });
    }
  });
  for (const r of refused) {
    // Read only, so that the report says whether an earlier version of it is live.
    const live = await withRetry(() => ctx.cluster.get(r.desired), ctx.retry).catch(() => undefined);
    outcomes.push({ ...failed(r, r.why, ctx), permanent: true, ...(live ? { live } : {}) });
  }
  const total = objects.length;
  let done = outcomes.length;
  const progress = () => ctx.onProgress?.(++done, total);

  const crds = pending.filter((p) => isCrd(p.id));
  const namespaces = pending.filter((p) => isNamespace(p.id));
  const rest = pending.filter((p) => !isCrd(p.id) && !isNamespace(p.id));

  for (const o of await applyStage(crds, inventory, ctx, progress)) outcomes.push(o);
  // Custom resources need their CRD Established: the API server does not serve them before.
  const established = new Set<string>();
  await Promise.all(
    outcomes
      .filter((o) => isCrd(o.id) && o.action !== 'failed')
      .map(async (o) => {
        const live = await waitEstablished(o.desired, ctx);
        if (live) {
          established.add(o.id.name);
          o.live = live;
        }
      }),
  );
  for (const o of await applyStage(namespaces, inventory, ctx, progress)) outcomes.push(o);

  const custom = customKinds(crds);
  const clusterScoped: typeof rest = [];
  const namespaced: typeof rest = [];
  for (const p of rest) {
    ctx.signal?.throwIfAborted();
    const crd = custom.get(`${p.id.group}/${p.id.kind}`);
    if (crd && !established.has(crd)) {
      const crdFailed = outcomes.some((o) => isCrd(o.id) && o.id.name === crd && o.action === 'failed');
      const why = crdFailed ? 'failed to apply' : `is not established after ${ctx.crdWaitMs} ms`;
      outcomes.push(failed(p, `apply failed: its CustomResourceDefinition ${crd} ${why}`, ctx));
      progress();
      continue;
    }
    let info: Awaited<ReturnType<Cluster['resource']>>;
    try {
      info = await resourceOf(p.desired, ctx, crd !== undefined);
    } catch (err) {
      outcomes.push(failed(p, `apply failed: discovery: ${apiMessage(err)}`, ctx));
      progress();
      continue;
    }
    if (!info) {
      outcomes.push(
        failed(p, `apply failed: the API server does not serve ${p.desired.apiVersion} ${p.id.kind}`, ctx),
      );
      progress();
      continue;
    }
    (info.namespaced ? namespaced : clusterScoped).push(p);
  }
  for (const stage of [clusterScoped, namespaced]) {
    for (const o of await applyStage(stage, inventory, ctx, progress)) outcomes.push(o);
  }
  // Report in bundle order, whatever the stage order was.
  const order = new Map(
    objects.flatMap((o, i) => {
      try {
        return [[identityKey(identityOf(o)), i] as const];
      } catch {
        return [];
      }
    }),
  );
  return outcomes.sort((a, b) => (order.get(identityKey(a.id)) ?? -1) - (order.get(identityKey(b.id)) ?? -1));
}

/** The inventory's digest of an object: of its bundle form, never of a decrypted Secret. */
function digestOf(desired: KubeObject, ctx: Pick<ApplyContext, 'sourceOf'>): string {
  return manifestDigest(ctx.sourceOf?.get(desired) ?? desired);
}

function failed(
  p: { id: ObjectIdentity; desired: KubeObject },
  message: string,
  ctx: Pick<ApplyContext, 'sourceOf'>,
): ObjectOutcome {
  return {
    id: p.id,
    desired: p.desired,
    action: 'failed',
    digest: digestOf(p.desired, ctx),
    error: `${formatIdentity(p.id)}: ${message}`,
  };
}

/** Discovery of a kind; a custom kind whose CRD was just established may take a moment to be served. */
async function resourceOf(obj: KubeObject, ctx: ApplyContext, custom: boolean) {
  const deadline = Date.now() + (custom ? Math.min(ctx.crdWaitMs, 10_000) : 0);
  for (;;) {
    const info = await withRetry(() => ctx.cluster.resource(obj.apiVersion, obj.kind), ctx.retry);
    if (info || Date.now() >= deadline) return info;
    await sleep(250, ctx.signal);
  }
}

/** The live CRD once it is Established, or undefined after `crdWaitMs`. */
async function waitEstablished(crd: KubeObject, ctx: ApplyContext): Promise<KubeObject | undefined> {
  const deadline = Date.now() + ctx.crdWaitMs;
  for (;;) {
    try {
      const live = await ctx.cluster.get(crd);
      const conditions = (live?.status as { conditions?: { type?: string; status?: string }[] } | undefined)
        ?.conditions;
      if (conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return live;
    } catch (err) {
      ctx.logger.debug({ err: apiMessage(err), crd: crd.metadata.name }, 'waiting for CRD');
    }
    if (Date.now() >= deadline) return undefined;
    await sleep(200, ctx.signal);
  }
}

/** What a stage learnt of one object before writing: done already, or to be applied. */
type Plan =
  | { outcome: ObjectOutcome }
  | {
      id: ObjectIdentity;
      desired: KubeObject;
      effective: KubeObject;
      live?: KubeObject;
      digest: string;
      changed?: string[];
    };

/**
 * One stage: every object is read and checked first, concurrently (bounded), since a read or a
 * dry run of one object does not depend on writing another of the same stage; then the objects
 * that need it are applied one by one, in bundle order. An unchanged stage thus costs about one
 * round trip, not two per object.
 */
async function applyStage(
  items: { id: ObjectIdentity; desired: KubeObject }[],
  inventory: Inventory,
  ctx: ApplyContext,
  progress: () => void,
): Promise<ObjectOutcome[]> {
  const plans = await Promise.all(
    items.map((p) => ctx.limit(() => planOne(p.id, p.desired, inventory, ctx))),
  );
  const out: ObjectOutcome[] = [];
  for (const plan of plans) {
    out.push('outcome' in plan ? plan.outcome : await writeOne(plan, ctx));
    progress();
  }
  return out;
}

/**
 * Decides whether one object is applied: not when the server says the apply would change
 * nothing (a dry run of the apply under the agent's field manager, compared with the live
 * object), so an unchanged bundle writes nothing and never bumps resourceVersion, whatever the
 * server normalises or defaults. An existing object Flotilla did not create is not taken over
 * unless it may be adopted (see ownership.ts); fields the policy or the object ignores keep
 * their live values (see ignore.ts).
 */
async function planOne(
  id: ObjectIdentity,
  desired: KubeObject,
  inventory: Inventory,
  ctx: ApplyContext,
): Promise<Plan> {
  ctx.signal?.throwIfAborted();
  const digest = digestOf(desired, ctx);
  const subject = formatIdentity(id);
  let live: KubeObject | undefined;
  try {
    live = await withRetry(() => ctx.cluster.get(desired), ctx.retry);
  } catch (err) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    return {
      outcome: {
        id,
        desired,
        action: 'failed',
        digest,
        error: `${subject}: read failed: ${apiMessage(err)}`,
      },
    };
  }
  const facts = { policy: ctx.policy, inInventory: inventory.has(identityKey(id)) };
  const conflict = ownershipConflict(id, desired, live, { ...facts, fieldManager: ctx.fieldManager });
  if (conflict) {
    ctx.logger.warn({ object: subject }, 'not taken over: not created by Flotilla');
    return { outcome: { id, desired, action: 'conflict', live, digest, error: conflict } };
  }
  let effective: KubeObject;
  try {
    effective = ctx.check.effective(id, desired, live, facts);
  } catch (err) {
    return {
      outcome: { id, desired, action: 'failed', live, digest, error: `${subject}: ${apiMessage(err)}` },
    };
  }
  // An object this manager never applied is applied (adopted), even when equal, so that it owns
  // its fields from now on.
  let changed: string[] | undefined;
  if (live && appliedFieldsOf(live, ctx.fieldManager)) {
    try {
      const verdict = await ctx.check.verdict(id, effective, live);
      if (verdict.inSync) return { outcome: { id, desired, action: 'unchanged', live, digest, drift: [] } };
      changed = verdict.diffs.map((d) => d.path);
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      // The apply meets the same refusal and reports it.
      ctx.logger.debug({ object: subject, err: apiMessage(err) }, 'dry run failed');
    }
  }
  return { id, desired, effective, digest, ...(live ? { live } : {}), ...(changed ? { changed } : {}) };
}

/** Server-side apply of one planned object (forced: Flotilla owns it or adopts it). */
async function writeOne(
  plan: Exclude<Plan, { outcome: ObjectOutcome }>,
  ctx: ApplyContext,
): Promise<ObjectOutcome> {
  ctx.signal?.throwIfAborted();
  const { id, desired, effective, live, digest, changed } = plan;
  const subject = formatIdentity(id);
  try {
    const result = await withRetry(
      () => ctx.cluster.apply(effective, { fieldManager: ctx.fieldManager }),
      ctx.retry,
    );
    ctx.check.remember(id, effective, result);
    const before = live?.metadata.resourceVersion;
    const action: ApplyAction = !live
      ? 'created'
      : result.metadata.resourceVersion === before
        ? 'unchanged'
        : 'configured';
    ctx.logger.debug({ object: subject, action }, 'applied');
    return { id, desired, action, live: result, digest, drift: [], ...(changed ? { changed } : {}) };
  } catch (err) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    ctx.logger.warn({ object: subject, err: apiMessage(err) }, 'apply failed');
    return {
      id,
      desired,
      action: 'failed',
      live,
      digest,
      error: `${subject}: apply failed: ${apiMessage(err)}`,
    };
  }
}
