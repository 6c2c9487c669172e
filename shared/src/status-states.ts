import { Health, Phase, SyncState } from '@flotilla/proto';

/**
 * The one mapping between the status states' names (what people, the API and the database
 * see) and their wire enums (what an agent's report carries). The agent encodes with the
 * `*_CODES`, the hub decodes with the `*_NAMES`.
 */
export type PhaseName = 'Progressing' | 'Synced' | 'Failed';
export type SyncName = 'Synced' | 'OutOfSync' | 'Missing' | 'Pruned';
export type HealthName = 'Healthy' | 'Progressing' | 'Degraded' | 'Unknown';

export const PHASE_CODES: Record<PhaseName, Phase> = {
  Progressing: Phase.PROGRESSING,
  Synced: Phase.SYNCED,
  Failed: Phase.FAILED,
};

export const SYNC_CODES: Record<SyncName, SyncState> = {
  Synced: SyncState.SYNCED,
  OutOfSync: SyncState.OUT_OF_SYNC,
  Missing: SyncState.MISSING,
  Pruned: SyncState.PRUNED,
};

export const HEALTH_CODES: Record<HealthName, Health> = {
  Healthy: Health.HEALTHY,
  Progressing: Health.PROGRESSING,
  Degraded: Health.DEGRADED,
  Unknown: Health.UNKNOWN,
};

/** A phase an agent left unset (an older agent, a report without status) has no name. */
export const PHASE_NAMES: Record<Phase, PhaseName | null> = {
  [Phase.UNSPECIFIED]: null,
  [Phase.PROGRESSING]: 'Progressing',
  [Phase.SYNCED]: 'Synced',
  [Phase.FAILED]: 'Failed',
};

export const HEALTH_NAMES: Record<Health, HealthName> = {
  [Health.UNSPECIFIED]: 'Unknown',
  [Health.HEALTHY]: 'Healthy',
  [Health.PROGRESSING]: 'Progressing',
  [Health.DEGRADED]: 'Degraded',
  [Health.UNKNOWN]: 'Unknown',
};

export const SYNC_NAMES: Record<SyncState, SyncName | 'Unknown'> = {
  [SyncState.UNSPECIFIED]: 'Unknown',
  [SyncState.SYNCED]: 'Synced',
  [SyncState.OUT_OF_SYNC]: 'OutOfSync',
  [SyncState.MISSING]: 'Missing',
  [SyncState.PRUNED]: 'Pruned',
};
