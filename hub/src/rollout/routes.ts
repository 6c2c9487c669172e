import { InvalidError } from '@flotilla/shared';
import type { Route } from '../api/router.js';
import type { Pauses, PauseTarget } from './pause.js';
import type { RolloutService } from './rollout-service.js';

function reasonOf(body: Record<string, unknown>): string | null {
  const v = body.reason;
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw new InvalidError('reason', 'must be a string');
  return v;
}

/** The admin API of safe rollout: the same operations as `flotilla cluster|env pause`, `rollout`, `bundle approve`. */
export function rolloutRoutes(s: {
  rollout: RolloutService;
  pauses: Pauses;
  /** A cluster's environment, for the scope check; undefined for an unknown cluster. */
  clusterEnvironment(cluster: string): Promise<string | undefined>;
}): Route[] {
  const ofCluster = async (cluster: string) => {
    const environment = await s.clusterEnvironment(cluster);
    return environment ? [environment] : [];
  };
  const pauseRoutes = (
    path: string,
    target: (name: string) => PauseTarget,
    environments: (name: string) => Promise<string[]>,
  ): Route[] => [
    {
      method: 'POST',
      path: `${path}/pause`,
      permission: 'pause',
      environments: (req) => environments(req.params.name!),
      async handle(req) {
        const body = await req.json();
        return { json: await s.pauses.pause(target(req.params.name!), reasonOf(body), req.actor) };
      },
    },
    {
      method: 'POST',
      path: `${path}/resume`,
      permission: 'pause',
      environments: (req) => environments(req.params.name!),
      handle: async (req) => ({ json: await s.pauses.resume(target(req.params.name!), req.actor) }),
    },
  ];
  return [
    ...pauseRoutes('/api/v1/clusters/:name', (cluster) => ({ cluster }), ofCluster),
    ...pauseRoutes(
      '/api/v1/environments/:name',
      (environment) => ({ environment }),
      async (environment) => [environment],
    ),
    {
      method: 'GET',
      path: '/api/v1/pauses',
      permission: 'read',
      handle: async () => ({ json: { pauses: await s.pauses.list() } }),
    },
    {
      method: 'GET',
      path: '/api/v1/rollouts/:environment',
      permission: 'read',
      handle: async (req) => ({ json: await s.rollout.status(req.params.environment!) }),
    },
    {
      method: 'POST',
      path: '/api/v1/rollouts/:environment/resume',
      permission: 'pause',
      environments: async (req) => [req.params.environment!],
      handle: async (req) => ({ json: await s.rollout.resume(req.params.environment!, req.actor) }),
    },
    {
      method: 'POST',
      path: '/api/v1/bundles/:cluster/approve',
      permission: 'approve',
      environments: (req) => ofCluster(req.params.cluster!),
      handle: async (req) => ({ json: await s.rollout.approve(req.params.cluster!, req.actor) }),
    },
  ];
}
