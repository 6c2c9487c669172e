import { identityKey, type KubeObject, type ObjectIdentity } from '@flotilla/shared';
import type { AppliedObjects } from '../reconcile/index.js';
import type { InvolvedObject, ObjectEvent } from './recorder.js';

/** Annotations every event of an apply carries: which bundle did it. */
export const GENERATION_ANNOTATION = 'flotilla.dev/generation';
export const REVISION_ANNOTATION = 'flotilla.dev/revision';

/** The reasons the agent writes, as `kubectl get events --field-selector reason=…` selects them. */
export const EventReason = {
  /** An object the bundle added was created. */
  Created: 'Created',
  /** An object whose manifest changed in the bundle was updated to it. */
  Configured: 'Configured',
  /** An object whose manifest did not change had drifted (or was deleted) and was put back. */
  Healed: 'Healed',
  /** An object the bundle dropped was deleted. */
  Pruned: 'Pruned',
  ApplyFailed: 'ApplyFailed',
  PruneFailed: 'PruneFailed',
  /** An object that exists and is not Flotilla's was left alone. */
  NotAdopted: 'NotAdopted',
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];

function reference(id: ObjectIdentity, live?: KubeObject): InvolvedObject {
  const { uid, resourceVersion, namespace } = live?.metadata ?? {};
  return {
    apiVersion: id.group ? `${id.group}/${id.version}` : id.version,
    kind: id.kind,
    name: id.name,
    // A manifest without a namespace lands in the client's default one: name where it is.
    namespace: typeof namespace === 'string' && namespace ? namespace : id.namespace,
    ...(typeof uid === 'string' && uid ? { uid } : {}),
    ...(typeof resourceVersion === 'string' && resourceVersion ? { resourceVersion } : {}),
  };
}

/** Field paths only: values may be Secret data (hashed, but still nothing to put in an event). */
function fields(changed: string[] | undefined): string {
  const paths = [...new Set(changed ?? [])];
  if (paths.length === 0) return '';
  const shown = paths.slice(0, 8).join(', ');
  return paths.length > 8 ? `${shown} and ${paths.length - 8} more` : shown;
}

/**
 * The events of one apply, object by object: what was created, configured, healed, pruned, or
 * failed. An object counts as healed when its manifest is the one the inventory says was
 * applied last, and the apply still had to write it: the live object had drifted, or was gone.
 * Objects left unchanged get no event.
 */
export function applyEvents(applied: AppliedObjects): ObjectEvent[] {
  const { bundle, outcomes, previous, pruned } = applied;
  const at = `bundle generation ${bundle.generation} (revision ${bundle.revision.slice(0, 12)})`;
  const annotations = {
    [GENERATION_ANNOTATION]: String(bundle.generation),
    [REVISION_ANNOTATION]: bundle.revision,
  };
  const events: ObjectEvent[] = [];
  const add = (
    id: ObjectIdentity,
    live: KubeObject | undefined,
    type: ObjectEvent['type'],
    reason: EventReason,
    action: string,
    message: string,
  ) => events.push({ object: reference(id, live), type, reason, action, message, annotations });

  for (const o of outcomes) {
    const before = previous.get(identityKey(o.id));
    const same = before !== undefined && before.digest === o.digest;
    switch (o.action) {
      case 'created':
        if (same)
          add(o.id, o.live, 'Normal', 'Healed', 'Heal', `Flotilla re-created the deleted object from ${at}`);
        else add(o.id, o.live, 'Normal', 'Created', 'Apply', `Flotilla created it from ${at}`);
        break;
      case 'configured': {
        const changed = fields(o.changed);
        if (same)
          add(
            o.id,
            o.live,
            'Normal',
            'Healed',
            'Heal',
            `Flotilla reverted drift${changed ? ` in ${changed}` : ''} to ${at}`,
          );
        else
          add(
            o.id,
            o.live,
            'Normal',
            'Configured',
            'Apply',
            `Flotilla applied ${at}${changed ? `: ${changed}` : ''}`,
          );
        break;
      }
      case 'failed':
        add(
          o.id,
          o.live,
          'Warning',
          'ApplyFailed',
          'Apply',
          `Flotilla could not apply ${at}: ${o.error ?? 'apply failed'}`,
        );
        break;
      case 'conflict':
        add(
          o.id,
          o.live,
          'Warning',
          'NotAdopted',
          'Apply',
          `Flotilla left it alone (${at}): ${o.error ?? 'not managed by Flotilla'}`,
        );
        break;
      default:
        break;
    }
  }
  for (const entry of pruned?.deleted ?? [])
    add(entry, undefined, 'Normal', 'Pruned', 'Prune', `Flotilla deleted it: no longer in ${at}`);
  for (const { entry, error } of pruned?.failed ?? [])
    add(
      entry,
      undefined,
      'Warning',
      'PruneFailed',
      'Prune',
      `Flotilla could not delete it (${at}): ${error}`,
    );
  return events;
}
