import {
  canonicalJson,
  formatIdentity,
  identityKey,
  type KubeObject,
  type ObjectIdentity,
  redactSecretValue,
  type SyncPolicy,
  sha256Digest,
} from '@flotilla/shared';
import { apiMessage, type Cluster } from './cluster.js';
import { type DriftClock, type FieldDiff, MISSING } from './drift-clock.js';
import { appliedFieldsOf, type FieldsV1, formatPath, managedDifferences } from './fields-v1.js';
import { assessHealth } from './health.js';
import { ignoredPointers, withIgnored } from './ignore.js';
import { ownershipConflict } from './ownership.js';
import { type RetryOptions, withRetry } from './retry.js';
import type { ResourceReport } from './types.js';

/** The drift path of an object that is gone altogether: the whole object, live `<missing>`. */
export const WHOLE_OBJECT = '(object)';
/** What the bundle wants of a missing object: that it exists. */
export const PRESENT = '<present>';

/** What the server says of one object against its manifest. */
export interface Verdict {
  /** Fields Flotilla manages whose stored value differs from what an apply would store. */
  diffs: FieldDiff[];
  /** An apply would store exactly what is stored now (so it is not made). */
  inSync: boolean;
}

/** The facts a report needs beyond the objects themselves. */
export interface CheckFacts {
  policy: Pick<SyncPolicy, 'adopt' | 'ignoreDifferences'>;
  /** The inventory lists the object (Flotilla applied it before). */
  inInventory: boolean;
  /** Ask the server even when the cached verdict still holds (a resync). */
  fresh?: boolean;
}

export interface DriftCheck {
  /**
   * The manifest as it is to be applied over `live`: fields ignored by the policy or the
   * object's annotation take their live values. Throws InvalidError naming a bad annotation.
   */
  effective(
    id: ObjectIdentity,
    desired: KubeObject,
    live: KubeObject | undefined,
    facts: CheckFacts,
  ): KubeObject;
  /** Dry-runs the apply of `effective` and compares the result with `live` (cached by content). */
  verdict(id: ObjectIdentity, effective: KubeObject, live: KubeObject, fresh?: boolean): Promise<Verdict>;
  /** Records that `live` is what applying `effective` stored, so the next check costs no call. */
  remember(id: ObjectIdentity, effective: KubeObject, live: KubeObject): void;
  /** Drops what is known of an object that is gone for good (pruned). */
  forget(id: ObjectIdentity): void;
  /** The status report of one object from its live state (undefined: missing). */
  report(
    id: ObjectIdentity,
    desired: KubeObject,
    live: KubeObject | undefined,
    facts: CheckFacts,
  ): Promise<ResourceReport>;
}

export interface DriftCheckContext {
  cluster: Cluster;
  fieldManager: string;
  clock: DriftClock;
  retry: RetryOptions;
  secretHashKey?: Uint8Array;
}

/** What an apply may change: everything but server bookkeeping and status (controllers write that). */
function comparable(obj: KubeObject): unknown {
  const { status: _s, metadata, ...rest } = obj as KubeObject & { status?: unknown };
  const { managedFields: _m, resourceVersion: _rv, ...meta } = metadata ?? {};
  return { ...rest, metadata: meta };
}

/** The fields a manifest sets, lists whole: what a server without managedFields is compared on. */
function manifestFields(obj: unknown): FieldsV1 {
  const tree: FieldsV1 = {};
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return tree;
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'status') continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0) {
      tree[`f:${k}`] = manifestFields(v);
    } else tree[`f:${k}`] = {};
  }
  const meta = tree['f:metadata'];
  if (meta) {
    delete meta['f:name'];
    delete meta['f:namespace'];
  }
  return tree;
}

function isSecret(id: ObjectIdentity): boolean {
  return id.group === '' && id.kind === 'Secret';
}

/**
 * A Secret's `stringData` is write-only: the server folds it into `data`. Its managed keys are
 * compared, and reported, under `data`.
 */
function foldStringData(tree: FieldsV1): FieldsV1 {
  const stringData = tree['f:stringData'];
  if (!stringData) return tree;
  const { 'f:stringData': _s, ...rest } = tree;
  return { ...rest, 'f:data': { ...(tree['f:data'] ?? {}), ...stringData } };
}

function show(v: unknown): string {
  return v === undefined ? MISSING : JSON.stringify(v);
}

/**
 * Drift and no-op decisions from the API server itself, as fluxcd/pkg ssa makes them: the
 * manifest is applied with `dryRun=All` under the agent's field manager, and what the server
 * would store is compared with what it stores now. Whatever the server normalises (`1000m` as
 * `1`), defaults or mutates (admission) is the same on both sides and never counts; the
 * comparison is limited to the fields the agent's manager would own (managedFields), whose
 * list keys come from the server. A verdict is cached by the manifest and the live object
 * without status and bookkeeping, so a controller's status writes cost no dry run.
 */
export function createDriftCheck(ctx: DriftCheckContext): DriftCheck {
  const cache = new Map<string, { key: string; verdict: Verdict }>();
  const cacheKey = (effective: KubeObject, live: KubeObject) =>
    sha256Digest(canonicalJson({ effective, live: comparable(live) }));
  const redact = (v: unknown) =>
    v === undefined
      ? MISSING
      : redactSecretValue(typeof v === 'string' ? v : JSON.stringify(v), ctx.secretHashKey);

  const check: DriftCheck = {
    effective(id, desired, live, facts) {
      return withIgnored(desired, live, ignoredPointers(id, desired, facts.policy.ignoreDifferences));
    },
    async verdict(id, effective, live, fresh = false) {
      const idKey = identityKey(id);
      const key = cacheKey(effective, live);
      const cached = cache.get(idKey);
      if (!fresh && cached?.key === key) return cached.verdict;
      const dry = await withRetry(
        () => ctx.cluster.apply(effective, { fieldManager: ctx.fieldManager, dryRun: true }),
        ctx.retry,
      );
      const secret = isSecret(id);
      let tree = appliedFieldsOf(dry, ctx.fieldManager) ?? manifestFields(effective);
      if (secret) tree = foldStringData(tree);
      const diffs = managedDifferences(tree, dry, live).map(({ path, a, b }) => {
        const secretValue = secret && path[0] === 'f:data';
        return {
          path: formatPath(path),
          desired: secretValue ? redact(a) : show(a),
          live: secretValue ? redact(b) : show(b),
        };
      });
      const verdict = {
        diffs,
        inSync: diffs.length === 0 && canonicalJson(comparable(dry)) === canonicalJson(comparable(live)),
      };
      cache.set(idKey, { key, verdict });
      return verdict;
    },
    forget(id) {
      cache.delete(identityKey(id));
      ctx.clock.forget(id);
    },
    remember(id, effective, live) {
      cache.set(identityKey(id), { key: cacheKey(effective, live), verdict: { diffs: [], inSync: true } });
    },
    async report(id, desired, live, facts) {
      const { health, reason } = assessHealth(live);
      if (!live) {
        const drift = ctx.clock.stamp(id, [{ path: WHOLE_OBJECT, desired: PRESENT, live: MISSING }]);
        return { id, sync: 'Missing', health, healthReason: reason, drift };
      }
      const conflict = ownershipConflict(id, desired, live, { ...facts, fieldManager: ctx.fieldManager });
      if (conflict) {
        ctx.clock.forget(id);
        return { id, sync: 'OutOfSync', health, healthReason: reason, drift: [], error: conflict };
      }
      try {
        const effective = check.effective(id, desired, live, facts);
        const { diffs } = await check.verdict(id, effective, live, facts.fresh);
        const drift = ctx.clock.stamp(id, diffs);
        return { id, sync: drift.length > 0 ? 'OutOfSync' : 'Synced', health, healthReason: reason, drift };
      } catch (err) {
        return {
          id,
          sync: 'OutOfSync',
          health,
          healthReason: reason,
          drift: [],
          error: `${formatIdentity(id)}: drift check failed: ${apiMessage(err)}`,
        };
      }
    },
  };
  return check;
}
