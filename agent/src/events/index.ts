/**
 * Kubernetes Events on the objects the agent applies, heals and prunes, so `kubectl describe`
 * and event tooling see what Flotilla did and from which bundle generation.
 */
import { hostname } from 'node:os';
import type { Logger } from '@flotilla/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { statusOf } from '../reconcile/cluster.js';
import type { AppliedObjects } from '../reconcile/index.js';
import { applyEvents } from './apply-events.js';
import { createKubeEventSink } from './kube-sink.js';
import { createEventRecorder, type EventRecorder, type EventRecorderOptions } from './recorder.js';

export { applyEvents, EventReason, GENERATION_ANNOTATION, REVISION_ANNOTATION } from './apply-events.js';
export { createKubeEventSink } from './kube-sink.js';
export {
  createEventRecorder,
  type EventRecorder,
  type EventRecorderOptions,
  type EventSink,
  type EventType,
  type InvolvedObject,
  type KubeEvent,
  type ObjectEvent,
} from './recorder.js';

/** The agent's events: pass `onApplied` to the reconciler, `flush` before the process exits. */
export interface ApplyEventWriter {
  onApplied(applied: AppliedObjects): void;
  flush(timeoutMs?: number): Promise<void>;
  recorder: EventRecorder;
}

/** Writes the events of every apply to the cluster of `kubeConfig`, as this pod (`instance`, default the host name). */
export function createApplyEventWriter(
  options: { kubeConfig: KubeConfig; logger?: Logger } & Partial<Omit<EventRecorderOptions, 'sink'>>,
): ApplyEventWriter {
  const { kubeConfig, ...rest } = options;
  const recorder = createEventRecorder({
    statusOf,
    ...rest,
    instance: options.instance ?? hostname(),
    sink: createKubeEventSink(kubeConfig),
  });
  return {
    recorder,
    onApplied(applied) {
      for (const event of applyEvents(applied)) recorder.record(event);
    },
    flush: (timeoutMs) => recorder.flush(timeoutMs),
  };
}
