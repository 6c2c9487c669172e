import { InvalidError } from '@flotilla/shared';
import type { Route } from '../api/router.js';
import { parseDuration } from '../util/duration.js';
import type { TokenStore } from './token-store.js';

/** The admin API of API tokens: the same operations as `flotilla token create|list|revoke`. */
export function tokenRoutes(tokens: TokenStore): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/tokens',
      permission: 'tokens',
      async handle(req) {
        const body = await req.json();
        const { name, role, environments = [], ttl } = body;
        if (typeof name !== 'string') throw new InvalidError('name', 'is required (a token name)');
        if (typeof role !== 'string')
          throw new InvalidError('role', 'is required (viewer, deployer, approver or admin)');
        if (!Array.isArray(environments) || environments.some((e) => typeof e !== 'string'))
          throw new InvalidError('environments', 'must be a list of environment names');
        if (ttl !== undefined && typeof ttl !== 'string')
          throw new InvalidError('ttl', 'must be a duration such as 30d');
        const created = await tokens.create(
          { name, role, environments, ...(ttl ? { ttlMs: parseDuration(ttl, 'ttl') } : {}) },
          req.actor,
        );
        return { status: 201, json: created };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/tokens',
      permission: 'tokens',
      handle: async () => ({ json: { tokens: await tokens.list() } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/tokens/:name',
      permission: 'tokens',
      async handle(req) {
        await tokens.revoke(req.params.name!, req.actor);
        return { json: { revoked: req.params.name } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/whoami',
      permission: 'read',
      handle: async (req) => {
        const { actor, role, environments, expiresAt } = req.identity!;
        return { json: { actor, role, environments, expiresAt: expiresAt?.toISOString() ?? null } };
      },
    },
  ];
}
