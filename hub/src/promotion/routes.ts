import { InvalidError } from '@flotilla/shared';
import type { Route } from '../api/router.js';
import type { PromotionService } from './promotion-service.js';

function name(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || !v) throw new InvalidError(field, 'is required (an environment name)');
  return v;
}

/** The admin API of promotion: the same operations as `flotilla promote|rollback|env diff`. */
export function promotionRoutes(promotions: PromotionService): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/promotions',
      permission: 'promote',
      environments: async (req) => [name(await req.json(), 'to')],
      async handle(req) {
        const body = await req.json();
        if (body.approve === true) await req.authorize('approve', name(body, 'to'));
        if (body.approve !== undefined && typeof body.approve !== 'boolean')
          throw new InvalidError('approve', 'must be true or false');
        const result = await promotions.promote({
          from: name(body, 'from'),
          to: name(body, 'to'),
          approve: body.approve === true,
          actor: req.actor,
        });
        return { status: result.changed ? 201 : 200, json: result };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/promotions',
      permission: 'read',
      handle: async (req) => ({
        json: { promotions: await promotions.history(Number(req.query.get('limit')) || undefined) },
      }),
    },
    {
      method: 'POST',
      path: '/api/v1/rollbacks',
      permission: 'rollback',
      environments: async (req) => [name(await req.json(), 'environment')],
      async handle(req) {
        const body = await req.json();
        return { status: 201, json: await promotions.rollback(name(body, 'environment'), req.actor) };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/environments/:from/diff/:to',
      permission: 'read',
      handle: async (req) => ({ json: await promotions.diff(req.params.from!, req.params.to!) }),
    },
  ];
}
