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
        if (body.approve !== undefined)
          throw new InvalidError(
            'approve',
            'an approval is POST /api/v1/promotions/approvals (flotilla promote FROM TO --approve), by an identity other than the one that asked',
          );
        const result = await promotions.promote({
          from: name(body, 'from'),
          to: name(body, 'to'),
          actor: req.actor,
        });
        return { status: result.pending ? 202 : result.changed ? 201 : 200, json: result };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/promotions/approvals',
      // Approving needs `approve` on TO, not `promote`: an approver approves, a deployer asks.
      permission: 'approve',
      environments: async (req) => [name(await req.json(), 'to')],
      async handle(req) {
        const body = await req.json();
        const result = await promotions.approve({
          from: name(body, 'from'),
          to: name(body, 'to'),
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
        json: {
          promotions: await promotions.history(Number(req.query.get('limit')) || undefined),
          pending: await promotions.pending(),
        },
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
