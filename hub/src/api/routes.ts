import { FlotillaError, InvalidError } from '@flotilla/shared';
import type { ApplyRequests } from '../apply-request/apply-request.js';
import type { AuditLog } from '../audit/audit.js';
import type { BundlePublisher } from '../bundles/publish-cluster.js';
import type { ClusterService } from '../clusters/cluster-service.js';
import { matchesSelector, parseSelector } from '../clusters/selector.js';
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
  /** A cluster's environment, for the scope check; none for an unknown cluster (the handler says 404). */
  const clusterEnvironment = async (name: string) => {
    const cluster = await s.clusters.get(name);
    return cluster ? [cluster.environment] : [];
  };
  return [
    {
      method: 'GET',
      path: '/api/v1/clusters',
      permission: 'read',
      async handle(req) {
        // `?selector=region in (eu),gpu=true`: what a label selector selects, as kubectl's -l.
        const text = req.query.get('selector');
        const selector = text === null ? undefined : parseSelector(text);
        const all = await s.fleet.clusters();
        return {
          json: { clusters: selector ? all.filter((c) => matchesSelector(selector, c.labels)) : all },
        };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/clusters/:name/labels',
      permission: 'clusters',
      async handle(req) {
        const body = await req.json();
        const set = (body.set ?? {}) as Record<string, unknown>;
        if (typeof set !== 'object' || Array.isArray(set)) throw new InvalidError('set', 'must be an object');
        for (const [k, v] of Object.entries(set))
          if (typeof v !== 'string') throw new InvalidError(`set.${k}`, 'must be a string');
        const remove = body.remove ?? [];
        if (!Array.isArray(remove) || remove.some((k) => typeof k !== 'string'))
          throw new InvalidError('remove', 'must be a list of label keys');
        const cluster = await s.clusters.label(
          req.params.name!,
          { set: set as Record<string, string>, remove: remove as string[] },
          req.actor,
        );
        return { json: cluster };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/clusters/:name/environment',
      permission: 'clusters',
      async handle(req) {
        const body = await req.json();
        return { json: await s.clusters.move(req.params.name!, str(body, 'environment')!, req.actor) };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/clusters',
      permission: 'clusters',
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
      permission: 'clusters',
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
      permission: 'clusters',
      async handle(req) {
        await s.clusters.remove(req.params.name!, req.actor);
        return { json: { removed: req.params.name } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/clusters/:name',
      permission: 'read',
      async handle(req) {
        const source = req.query.get('source') ?? undefined;
        const detail = await s.fleet.cluster(req.params.name!, source ? { source } : {});
        if (!detail) throw new FlotillaError('not-found', `cluster ${req.params.name}: no such cluster`);
        return { json: detail };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/fleet/status',
      permission: 'read',
      handle: async () => ({ json: { clusters: await s.fleet.status() } }),
    },
    {
      method: 'GET',
      path: '/api/v1/fleet/drift',
      permission: 'read',
      handle: async (req) => ({
        json: {
          drift: await s.fleet.drift({
            history: ['1', 'true'].includes(req.query.get('history') ?? ''),
            ...(req.query.get('source') ? { source: req.query.get('source')! } : {}),
          }),
        },
      }),
    },
    {
      method: 'POST',
      path: '/api/v1/sync',
      permission: 'sync',
      async environments(req) {
        const body = await req.json();
        const cluster = str(body, 'cluster', false);
        return cluster
          ? clusterEnvironment(cluster)
          : [str(body, 'environment', false) ?? ''].filter(Boolean);
      },
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
      permission: 'read-secrets',
      environments: (req) => clusterEnvironment(req.params.cluster!),
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
      permission: 'clusters',
      handle: async (req) => ({ json: await s.statusImport.import(await req.bytes(), req.actor) }),
    },
    {
      method: 'GET',
      path: '/api/v1/audit',
      permission: 'read',
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
      permission: 'keys',
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
      path: '/api/v1/publish-loop/run',
      permission: 'sync',
      async handle() {
        const pass = await s.sync.trigger('api');
        return { json: pass };
      },
    },
  ];
}
