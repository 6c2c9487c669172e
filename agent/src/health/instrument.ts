import type { ReconcileResult, Reconciler, ResourceReport } from '../reconcile/index.js';
import { emptyChangeSet } from '../reconcile/result.js';
import type { LoopProgress } from './progress.js';

/** Where an instrumented reconciler reports what it sees. */
export interface ReconcilerObserver {
  /** The reconcile loop: busy during an apply (a beat per object) and while a watch stops. */
  reconcile: LoopProgress;
  /** The watch loop, handed to each watch: one part per stream. */
  watch: LoopProgress;
  /** Each apply's outcome and how long it took, also when it threw (then as a Failed result). */
  reconciled(result: ReconcileResult, durationMs: number): void;
  /** Object reports: every object after an apply (`complete`), the watched ones after a change. */
  resources(reports: readonly ResourceReport[], complete: boolean): void;
}

/**
 * The reconciler with the watchdog and the metrics looking on: the run loop calls it as it
 * would the plain one. An apply that never settles leaves the reconcile loop busy without
 * beats, which is what the watchdog looks for; one that takes long but moves on beats per object.
 */
export function instrumentReconciler(inner: Reconciler, observer: ReconcilerObserver): Reconciler {
  const { reconcile } = observer;
  return {
    async apply(bundle, options = {}) {
      const started = performance.now();
      reconcile.beat('apply');
      try {
        const result = await inner.apply(bundle, {
          ...options,
          onProgress: (done, total) => {
            reconcile.beat('apply');
            options.onProgress?.(done, total);
          },
        });
        observer.reconciled(result, performance.now() - started);
        observer.resources(result.resources, true);
        return result;
      } catch (err) {
        observer.reconciled(
          { changes: emptyChangeSet(), resources: [], phase: 'Failed', health: 'Unknown' },
          performance.now() - started,
        );
        throw err;
      } finally {
        reconcile.idle('apply');
      }
    },
    assess: (bundle) => inner.assess(bundle),
    watch(bundle, onChange, known, options) {
      const handle = inner.watch(
        bundle,
        (reports) => {
          observer.resources(reports, false);
          onChange(reports);
        },
        known,
        { ...options, progress: observer.watch },
      );
      return {
        ready: handle.ready,
        resync: () => handle.resync(),
        async stop() {
          // Stopping waits for every stream to end: a stream that cannot end shows here.
          reconcile.beat('watch-stop');
          try {
            await handle.stop();
          } finally {
            reconcile.idle('watch-stop');
          }
        },
      };
    },
  };
}
