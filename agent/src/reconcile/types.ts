import type { Bundle, KubeObject, Logger, ObjectIdentity } from '@flotilla/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import type { LoopProgress } from '../health/progress.js';
import type { ObjectOutcome } from './apply.js';
import type { Inventory } from './inventory.js';
import type { PruneOutcome } from './prune.js';

/** Whether a live object matches its desired state (`Pruned`: deleted because the bundle dropped it). */
export type SyncState = 'Synced' | 'OutOfSync' | 'Missing' | 'Pruned';

/** How a live object is doing, by the rules of health.ts. */
export type HealthState = 'Healthy' | 'Progressing' | 'Degraded' | 'Unknown';

/** One field the bundle sets whose live value differs. */
export interface FieldDrift {
  /** Dotted path, e.g. `spec.replicas`, `data.LOG_LEVEL`, `spec.template.spec.containers[name=web].image`. */
  path: string;
  /** JSON text of the desired value (redacted for Secret data). */
  desired: string;
  /** JSON text of the live value (redacted for Secret data), or `<missing>`. */
  live: string;
  /** When the agent first saw this field drift. */
  since: Date;
}

/** Status of one object of the bundle. */
export interface ResourceReport {
  id: ObjectIdentity;
  sync: SyncState;
  health: HealthState;
  healthReason: string;
  drift: FieldDrift[];
  error?: string;
}

/** What one apply did, object by object (model: fluxcd/pkg ssa ChangeSet). */
export interface ChangeSet {
  created: ObjectIdentity[];
  configured: ObjectIdentity[];
  unchanged: ObjectIdentity[];
  deleted: ObjectIdentity[];
  skipped: ObjectIdentity[];
  /**
   * `permanent`: a failure that retrying the same bundle would only repeat (a SOPS document
   * that does not decrypt here); the run loop does not retry those, the next bundle may fix them.
   */
  failed: { id: ObjectIdentity; error: string; permanent?: boolean }[];
  /** Pruned but not gone yet (finalizers): reported Terminating, looked at again by the next apply. */
  terminating: ObjectIdentity[];
}

/** The outcome of `apply` or `assess`, as data. */
export interface ReconcileResult {
  changes: ChangeSet;
  resources: ResourceReport[];
  phase: 'Progressing' | 'Synced' | 'Failed';
  health: HealthState;
  /** The first failure, starting with the object: `apps/v1 Deployment shop/web: apply failed: …`. */
  error?: string;
  /** How long an apply spent applying objects and pruning (0 when nothing was pruned); not set by assess. */
  timings?: { applyMs: number; pruneMs: number };
}

/**
 * Turns a bundle object into the object to apply, just before apply (and before assess and
 * watch compare with it): SOPS-encrypted Secrets are decrypted here, in the cluster. The clear
 * object is kept in memory only, never in the bundle file, the inventory or a report.
 */
export interface ObjectDecoder {
  /** Whether the object needs decoding; objects it declines go to apply as they are. */
  applies(obj: KubeObject): boolean;
  /**
   * The object to apply. Throws to refuse this one object: the message (which must never
   * carry a value) is reported after the object's identity, and the rest of the bundle applies.
   */
  decode(obj: KubeObject): Promise<KubeObject>;
}

export interface ReconcilerOptions {
  kubeConfig: KubeConfig;
  /** This cluster's name; names the inventory ConfigMap `flotilla-inventory-<cluster>`. */
  cluster: string;
  /** Server-side apply field manager; default `flotilla-agent`. */
  fieldManager?: string;
  /** Where the inventory ConfigMap lives; default `flotilla-system` (created if missing). */
  inventoryNamespace?: string;
  logger?: Logger;
  /** How long to wait for a CRD to become Established before its custom resources fail; default 30 s. */
  crdWaitMs?: number;
  /** Per-request timeout against the API server; default 15 s. */
  requestTimeoutMs?: number;
  /** Key of the HMAC that drifted Secret values are reported as; unkeyed sha256 without. */
  secretHashKey?: Uint8Array;
  /** Decodes bundle objects just before apply (SOPS decryption); none: objects apply as they are. */
  decoder?: ObjectDecoder;
  /** How long a prune waits for a deleted object to be gone before reporting it Terminating; default 2 s. */
  pruneWaitMs?: number;
  /**
   * How often the watch asks the server about every object even without an event (a dry run
   * each), for what changes without one (a new default, a new admission webhook); default 10 min.
   */
  resyncMs?: number;
  /**
   * Each watch stream asks the server to end it after a random time between this and twice
   * this (as client-go's reflectors do), and is then listed and watched again: a stream that
   * went silent without ending (a dead connection) is noticed within twice this; default 75 s.
   */
  watchTimeoutMs?: number;
  /**
   * Told what each apply did to each object (the agent's Kubernetes Events are written from it).
   * Called after the apply and prune, before the inventory is written; what it throws is ignored.
   */
  onApplied?: (applied: AppliedObjects) => void;
}

/** What one apply did, object by object, with what the inventory held before it. */
export interface AppliedObjects {
  bundle: Bundle;
  outcomes: readonly ObjectOutcome[];
  /** The inventory before the apply: an object whose manifest digest it already holds was healed, not changed. */
  previous: Inventory;
  /** Undefined when nothing was pruned. */
  pruned?: PruneOutcome;
}

export interface ApplyOptions {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** A handle on a running watch. */
export interface WatchHandle {
  /**
   * Resolves once every stream has listed its objects (their baseline checked) and its watch is
   * connected, or its first attempt failed (it keeps trying): a change made after that to an
   * object of a connected stream is seen by the watch, not only by its next relist.
   */
  readonly ready: Promise<void>;
  /**
   * Reads every object of the bundle again and asks the server about each (a dry run, not the
   * cached verdict); resolves once all are checked, after reporting any change.
   */
  resync(): Promise<void>;
  stop(): Promise<void>;
}

export interface Reconciler {
  /**
   * Server-side apply of the whole bundle in order, then prune per policy; never throws for
   * one object's failure (it is in `changes.failed` and `error`). Rejects with the signal's
   * reason when `signal` aborts. Objects that have not drifted (by the server's dry run) are
   * not re-applied, so an unchanged bundle costs a GET (and at most a dry run) per object and
   * writes nothing. An existing object Flotilla did not create is not taken over: it is
   * skipped with a conflict error unless it may be adopted.
   */
  apply(bundle: Bundle, options?: ApplyOptions): Promise<ReconcileResult>;
  /** Reads live state and reports health + drift of every object of the bundle (dry runs only, no writes). */
  assess(bundle: Bundle): Promise<ReconcileResult>;
  /**
   * Watches the bundle's objects; within ~1 s of a live change that creates or clears drift,
   * or changes sync or health, calls onChange with the reports of all the bundle's objects the
   * watch has listed. Reconnects on its own; stop() ends every stream. `known` is what the
   * caller last saw (the apply's reports): a first list that differs from it is reported too,
   * so a change between the apply and the start of the watch is never lost.
   */
  watch(
    bundle: Bundle,
    onChange: (resources: ResourceReport[]) => void,
    known?: readonly ResourceReport[],
    options?: WatchOptions,
  ): WatchHandle;
}

export interface WatchOptions {
  /** Told of each stream's progress (list, events, end), one part per kind and namespace, for the watchdog. */
  progress?: LoopProgress;
}
