import { formatIdentity, type KubeObject, type ObjectIdentity, type SyncPolicy } from '@flotilla/shared';
import { managedFieldsOf, managersOf } from './fields-v1.js';

/** An annotation on a manifest that lets Flotilla take over an object someone else created. */
export const ADOPT_ANNOTATION = 'flotilla.dev/adopt';

export interface OwnershipFacts {
  /** The agent's inventory lists the object: it applied it before. */
  inInventory: boolean;
  fieldManager: string;
  policy: Pick<SyncPolicy, 'adopt'>;
}

/** Whether `fieldManager` has ever written the object (server-side apply or update). */
export function writtenBy(live: KubeObject, fieldManager: string): boolean {
  return managedFieldsOf(live).some((m) => m.manager === fieldManager);
}

/**
 * Why an existing object must not be applied, or undefined when Flotilla may apply it: it
 * created the object (its inventory lists it, or its field manager is among the object's
 * managers), the manifest is annotated `flotilla.dev/adopt: "true"`, or the environment's policy
 * sets `adopt: true`. Otherwise every apply would force Flotilla's values over someone else's
 * object and a later prune would delete it. The message names the object and its managers.
 */
export function ownershipConflict(
  id: ObjectIdentity,
  desired: KubeObject,
  live: KubeObject | undefined,
  facts: OwnershipFacts,
): string | undefined {
  if (!live || facts.inInventory || writtenBy(live, facts.fieldManager)) return undefined;
  if (facts.policy.adopt === true) return undefined;
  if (desired.metadata.annotations?.[ADOPT_ANNOTATION] === 'true') return undefined;
  const managers = managersOf(live);
  const by = managers.length > 0 ? `managed by ${managers.join(', ')}` : 'with no recorded managers';
  return (
    `${formatIdentity(id)}: conflict: exists, ${by}, and was not created by Flotilla; ` +
    `left alone until its manifest is annotated ${ADOPT_ANNOTATION}: "true" or the environment's policy sets adopt: true`
  );
}
