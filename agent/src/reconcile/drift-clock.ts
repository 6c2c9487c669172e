import { identityKey, type ObjectIdentity } from '@flotilla/shared';
import type { FieldDrift } from './types.js';

/** One drifted field before it is stamped with `since`. */
export interface FieldDiff {
  path: string;
  desired: string;
  live: string;
}

/** The value shown for a field (or object) the live side lacks. */
export const MISSING = '<missing>';

/**
 * Remembers when each drifted field was first seen, so `since` survives re-assessment and
 * a field that stops drifting forgets its time (it starts afresh if it drifts again).
 */
export interface DriftClock {
  stamp(id: ObjectIdentity, diffs: FieldDiff[], now?: Date): FieldDrift[];
  forget(id: ObjectIdentity): void;
}

export function createDriftClock(): DriftClock {
  const seen = new Map<string, Map<string, Date>>();
  return {
    stamp(id, diffs, now = new Date()) {
      const key = identityKey(id);
      const before = seen.get(key) ?? new Map<string, Date>();
      const after = new Map<string, Date>();
      const out = diffs.map((d) => {
        const since = before.get(d.path) ?? now;
        after.set(d.path, since);
        return { ...d, since };
      });
      if (after.size > 0) seen.set(key, after);
      else seen.delete(key);
      return out;
    },
    forget(id) {
      seen.delete(identityKey(id));
    },
  };
}
