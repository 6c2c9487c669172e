import { FlotillaError, InvalidError } from '@flotilla/shared';
import type { ApplyRequests } from '../apply-request/apply-request.js';
import type { AuditLog } from '../audit/audit.js';
import type { BundlePublisher } from '../bundles/publish-cluster.js';
import type { ClusterService } from '../clusters/cluster-service.js';
import type { PublishPass } from '../publish-loop/publish-loop.js';
import type { FleetView } from '../status/fleet-view.js';
import type { StatusImporter } from '../status/import.js';
import { parseDuration } from '../util/duration.js';
import type { Route } from './router.js';

/** The hub services the admin API exposes: the same operations as the CLI. */
export interface AdminApiServices {
  clusters: ClusterService;
  fleet: FleetView;
  applyRequests: ApplyRequests;
  bundles: Pick<BundlePublisher, 'latest'>;
  statusImport: StatusImporter;
  audit: AuditLog;
  sync: { trigger(reason: string): Promise<PublishPass> };
  rotateKey(): Promise<{ keyId: string; keys: string[] }>;
}

function str(body: Record<string, unknown>, field: string, required = true): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw new InvalidError(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw new InvalidError(field, 'must be a string');
  return v;
}

/** Every /api/v1 route of the hub. Others (promotion) add theirs next to these. */
export function adminRoutes(s: AdminApiServices): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/clusters',
      handle: async () => ({ json: { clusters: await s.fleet.clusters() } }),
    },
    {
      method: 'POST',
      path: '/api/v1/clusters',
      async handle(req) {
        const body = await req.json();
        const labels = (body.labels ?? {}) as Record<string, unknown>;
        if (typeof labels !== 'object' || Array.isArray(labels))
          throw new InvalidError('labels', 'must be an object');
        for (const [k, v] of Object.entries(labels))
          if (typeof v !== 'string') throw new InvalidError(`labels.${k}`, 'must be a string');
        const ttl = str(body, 'ttl', false);
        const added = await s.clusters.add(
          {
            name: str(body, 'name')!,
            environment: str(body, 'environment')!,
            labels: labels as Record<string, string>,
            ...(ttl ? { ttlMs: parseDuration(ttl, 'ttl') } : {}),
          },
          req.actor,
        );
        return { status: 201, json: added };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/clusters/:name/tokens',
      async handle(req) {
        const body = await req.json();
        const ttl = str(body, 'ttl', false);
        const issued = await s.clusters.issueToken(
          req.params.name!,
          ttl ? { ttlMs: parseDuration(ttl, 'ttl') } : {},
          req.actor,
        );
        return { status: 201, json: issued };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/clusters/:name',
      async handle(req) {
        await s.clusters.remove(req.params.name!, req.actor);
        return { json: { removed: req.params.name } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/clusters/:name',
      async handle(req) {
        const detail = await s.fleet.cluster(req.params.name!);
        if (!detail) throw new FlotillaError('not-found', `cluster ${req.params.name}: no such cluster`);
        return { json: detail };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/fleet/status',
      handle: async () => ({ json: { clusters: await s.fleet.status() } }),
    },
    {
      method: 'GET',
      path: '/api/v1/fleet/drift',
      handle: async (req) => ({
        json: {
          drift: await s.fleet.drift({ history: ['1', 'true'].includes(req.query.get('history') ?? '') }),
        },
      }),
    },
    {
      method: 'POST',
      path: '/api/v1/sync',
      async handle(req) {
        const body = await req.json();
        const cluster = str(body, 'cluster', false);
        const environment = str(body, 'environment', false);
        if (!cluster === !environment)
          throw new InvalidError('sync', 'give exactly one of cluster or environment');
        const syncs = await s.applyRequests.request(
          cluster ? { cluster } : { environment: environment! },
          req.actor,
        );
        return { json: { syncs } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/bundles/:cluster/latest',
      async handle(req) {
        const cluster = req.params.cluster!;
        const latest = await s.bundles.latest(cluster);
        if (!latest) throw new FlotillaError('not-found', `cluster ${cluster}: no bundle published yet`);
        return {
          bytes: latest.envelope,
          contentType: 'application/vnd.flotilla.envelope+json',
          filename: `${cluster}-${latest.generation}.bundle.json`,
        };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/status/import',
      handle: async (req) => ({ json: await s.statusImport.import(await req.bytes(), req.actor) }),
    },
    {
      method: 'GET',
      path: '/api/v1/audit',
      handle: async (req) => ({
        json: {
          audit: await s.audit.list({
            ...(req.query.get('cluster') ? { cluster: req.query.get('cluster')! } : {}),
            limit: Math.min(Number(req.query.get('limit') ?? 500) || 500, 5000),
          }),
        },
      }),
    },
    {
      method: 'POST',
      path: '/api/v1/hub/rotate-key',
      async handle(req) {
        const rotated = await s.rotateKey();
        await s.audit.record({
          action: 'hub.rotate-key',
          actor: req.actor,
          cluster: null,
          outcome: 'ok',
          detail: rotated.keyId,
        });
        return { json: rotated };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/webhooks/git',
      // A git host cannot hold the admin token; the webhook only makes the hub fetch sooner.
      public: true,
      async handle() {
        void s.sync.trigger('webhook');
        return { status: 202, json: { accepted: true } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/publish-loop/run',
      async handle() {
        const pass = await s.sync.trigger('api');
        return { json: pass };
      },
    },
  ];
}
