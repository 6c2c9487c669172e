import { InvalidError } from '@flotilla/shared';
import { type LabelSelector, matchesSelector, parseSelector } from '../clusters/selector.js';
import type { FleetClusterStatus } from '../status/fleet-view.js';

/** The states the fleet page filters by: each one a question a user asks of a cluster. */
export const ClusterState = {
  synced: 'synced',
  outOfSync: 'out-of-sync',
  healthy: 'healthy',
  progressing: 'progressing',
  degraded: 'degraded',
  unknown: 'unknown',
  drifted: 'drifted',
  disconnected: 'disconnected',
  paused: 'paused',
  held: 'held',
  error: 'error',
} as const;
export type ClusterState = (typeof ClusterState)[keyof typeof ClusterState];

const STATES: readonly string[] = Object.values(ClusterState);

const MATCHES: Record<ClusterState, (c: FleetClusterStatus) => boolean> = {
  synced: (c) => c.sync === 'Synced',
  'out-of-sync': (c) => c.sync !== 'Synced',
  healthy: (c) => c.health === 'Healthy',
  progressing: (c) => c.health === 'Progressing',
  degraded: (c) => c.health === 'Degraded',
  unknown: (c) => c.health === 'Unknown',
  drifted: (c) => c.drifted > 0,
  disconnected: (c) => !c.connected,
  paused: (c) => c.paused !== null,
  held: (c) => c.hold !== null,
  error: (c) => c.error !== null,
};

/** A fleet page's filter and page, as its query string says (`?env=prod&labels=region%3Deu&state=degraded&page=2`). */
export interface FleetQuery {
  environment?: string;
  /** A label selector as kubectl's `-l` takes it, and its text for the form. */
  labels?: { text: string; selector: LabelSelector };
  state?: ClusterState;
  /** 1-based. */
  page: number;
  pageSize: number;
}

export const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;

/** Reads the fleet page's query string; a bad value is an InvalidError naming its parameter. */
export function parseFleetQuery(query: URLSearchParams): FleetQuery {
  const out: FleetQuery = { page: 1, pageSize: DEFAULT_PAGE_SIZE };
  const env = query.get('env')?.trim();
  if (env) out.environment = env;
  const labels = query.get('labels')?.trim();
  if (labels) out.labels = { text: labels, selector: parseSelector(labels, 'labels') };
  const state = query.get('state')?.trim();
  if (state) {
    if (!STATES.includes(state)) throw new InvalidError('state', `must be one of ${STATES.join(', ')}`);
    out.state = state as ClusterState;
  }
  const int = (name: string, max: number): number | undefined => {
    const text = query.get(name)?.trim();
    if (!text) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidError(name, `must be a whole number from 1 to ${max}`);
    return n;
  };
  out.page = int('page', 1_000_000) ?? 1;
  out.pageSize = int('size', MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE;
  return out;
}

/** The query string of `query` with `change` applied (for paging links), without defaults. */
export function fleetQueryString(query: FleetQuery, change: Partial<FleetQuery> = {}): string {
  const q = { ...query, ...change };
  const params = new URLSearchParams();
  if (q.environment) params.set('env', q.environment);
  if (q.labels) params.set('labels', q.labels.text);
  if (q.state) params.set('state', q.state);
  if (q.page > 1) params.set('page', String(q.page));
  if (q.pageSize !== DEFAULT_PAGE_SIZE) params.set('size', String(q.pageSize));
  const text = params.toString();
  return text ? `?${text}` : '';
}

export interface FleetPage {
  /** The clusters of this page, in name order. */
  clusters: FleetClusterStatus[];
  /** How many clusters match the filter, and how many there are at all. */
  matching: number;
  total: number;
  /** The page shown (clamped to the last one) and how many pages there are. */
  page: number;
  pages: number;
  /** Environments of the whole fleet, for the filter's choices. */
  environments: string[];
  /** Of the matching clusters, how many are in each state (the filter's counts). */
  counts: Record<ClusterState, number>;
}

/**
 * Filters and pages the fleet on the hub, so a browser gets one page of a 1,000-cluster fleet
 * rather than all of it; the counts let the filter say what each choice would show.
 */
export function pageFleet(all: readonly FleetClusterStatus[], query: FleetQuery): FleetPage {
  const scoped = all.filter(
    (c) =>
      (query.environment === undefined || c.environment === query.environment) &&
      (query.labels === undefined || matchesSelector(query.labels.selector, c.labels)),
  );
  const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<ClusterState, number>;
  for (const c of scoped) for (const s of STATES as ClusterState[]) if (MATCHES[s](c)) counts[s]++;
  const matching = query.state ? scoped.filter(MATCHES[query.state]) : scoped;
  const pages = Math.max(1, Math.ceil(matching.length / query.pageSize));
  const page = Math.min(query.page, pages);
  return {
    clusters: matching.slice((page - 1) * query.pageSize, page * query.pageSize),
    matching: matching.length,
    total: all.length,
    page,
    pages,
    environments: [...new Set(all.map((c) => c.environment))].sort(),
    counts,
  };
}
