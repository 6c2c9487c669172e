import type { Json } from './json.js';
import type { ResourceType } from './resources.js';

/** Age as kubectl prints it: 45s, 3m12s, 2h, 4d. */
export function formatAge(timestamp: string | undefined, nowMs = Date.now()): string {
  if (!timestamp) return '<unknown>';
  const s = Math.max(0, Math.floor((nowMs - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

interface Column {
  name: string;
  type: string;
  cell: (o: Json) => unknown;
  priority?: number;
  format?: string;
}

function jsonPathCell(path: string): (o: Json) => unknown {
  const parts = path.replace(/^\./, '').split('.');
  return (o) => {
    let cur = o;
    for (const p of parts) cur = cur?.[p];
    return cur ?? null;
  };
}

const NAME: Column = { name: 'Name', type: 'string', cell: (o) => o.metadata.name };
const AGE: Column = { name: 'Age', type: 'string', cell: (o) => formatAge(o.metadata.creationTimestamp) };

function columnsFor(type: ResourceType): Column[] {
  if (type.custom) {
    const extra = (type.printerColumns ?? []).map((c) => ({
      name: c.name,
      type: c.type === 'date' ? 'string' : c.type,
      cell:
        c.type === 'date'
          ? (o: Json) => formatAge(jsonPathCell(c.jsonPath)(o) as string)
          : jsonPathCell(c.jsonPath),
      priority: c.priority ?? 0,
    }));
    return [NAME, ...extra, ...(extra.some((c) => c.name === 'Age') ? [] : [AGE])];
  }
  switch (type.kind) {
    case 'Deployment':
      return [
        NAME,
        {
          name: 'Ready',
          type: 'string',
          cell: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`,
        },
        { name: 'Up-to-date', type: 'integer', cell: (o) => o.status?.updatedReplicas ?? 0 },
        { name: 'Available', type: 'integer', cell: (o) => o.status?.availableReplicas ?? 0 },
        AGE,
      ];
    case 'StatefulSet':
    case 'ReplicaSet':
      return [
        NAME,
        {
          name: 'Ready',
          type: 'string',
          cell: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`,
        },
        AGE,
      ];
    case 'Pod':
      return [
        NAME,
        {
          name: 'Ready',
          type: 'string',
          cell: (o) => {
            const cs = o.status?.containerStatuses ?? [];
            return `${cs.filter((c: Json) => c.ready).length}/${o.spec?.containers?.length ?? 0}`;
          },
        },
        { name: 'Status', type: 'string', cell: (o) => o.status?.phase ?? 'Pending' },
        { name: 'Restarts', type: 'string', cell: () => '0' },
        AGE,
      ];
    case 'Service':
      return [
        NAME,
        { name: 'Type', type: 'string', cell: (o) => o.spec?.type },
        { name: 'Cluster-IP', type: 'string', cell: (o) => o.spec?.clusterIP ?? '<none>' },
        { name: 'External-IP', type: 'string', cell: () => '<none>' },
        {
          name: 'Port(s)',
          type: 'string',
          cell: (o) =>
            (o.spec?.ports ?? []).map((p: Json) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>',
        },
        AGE,
      ];
    case 'Namespace':
      return [NAME, { name: 'Status', type: 'string', cell: (o) => o.status?.phase ?? 'Active' }, AGE];
    case 'ConfigMap':
    case 'Secret':
      return [
        NAME,
        ...(type.kind === 'Secret' ? [{ name: 'Type', type: 'string', cell: (o: Json) => o.type }] : []),
        {
          name: 'Data',
          type: 'integer',
          cell: (o) => Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length,
        },
        AGE,
      ];
    case 'Job':
      return [
        NAME,
        {
          name: 'Status',
          type: 'string',
          cell: (o) =>
            (o.status?.conditions ?? []).find(
              (c: Json) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True',
            )?.type ?? 'Running',
        },
        {
          name: 'Completions',
          type: 'string',
          cell: (o) => `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1}`,
        },
        AGE,
      ];
    case 'Event':
      return type.group ? [NAME, AGE] : EVENT_COLUMNS;
    case 'PersistentVolumeClaim':
      return [
        NAME,
        { name: 'Status', type: 'string', cell: (o) => o.status?.phase ?? 'Pending' },
        { name: 'Volume', type: 'string', cell: (o) => o.spec?.volumeName ?? '' },
        { name: 'Capacity', type: 'string', cell: (o) => o.status?.capacity?.storage ?? '' },
        AGE,
      ];
    default:
      return [NAME, AGE];
  }
}

/**
 * The real server's columns for core/v1 Events (pkg/printers/internalversion): the timestamps of
 * an event written through events.k8s.io (eventTime, series) stand in for the legacy ones.
 */
const EVENT_COLUMNS: Column[] = (() => {
  const first = (o: Json) => formatAge(o.firstTimestamp ?? o.eventTime ?? undefined);
  const last = (o: Json) =>
    o.series ? formatAge(o.series.lastObservedTime) : o.lastTimestamp ? formatAge(o.lastTimestamp) : first(o);
  const count = (o: Json) => (o.series ? o.series.count : o.count || 1);
  const target = (o: Json) => {
    const kind = String(o.involvedObject?.kind ?? '').toLowerCase();
    return o.involvedObject?.name ? `${kind}/${o.involvedObject.name}` : kind;
  };
  const source = (o: Json) => {
    const component = o.source?.component || o.reportingComponent || '';
    const instance = o.source?.host || o.reportingInstance || '';
    if (!component) return '<unknown>';
    return instance ? `${component}, ${instance}` : component;
  };
  return [
    { name: 'Last Seen', type: 'string', cell: last },
    { name: 'Type', type: 'string', cell: (o) => o.type ?? '' },
    { name: 'Reason', type: 'string', cell: (o) => o.reason ?? '' },
    { name: 'Object', type: 'string', cell: target },
    { name: 'Subobject', type: 'string', cell: (o) => o.involvedObject?.fieldPath ?? '', priority: 1 },
    { name: 'Source', type: 'string', cell: source, priority: 1 },
    { name: 'Message', type: 'string', cell: (o) => String(o.message ?? '').trim() },
    { name: 'First Seen', type: 'string', cell: first, priority: 1 },
    { name: 'Count', type: 'string', cell: count, priority: 1 },
    { name: 'Name', type: 'string', cell: (o) => o.metadata.name, priority: 1, format: 'name' },
  ];
})();

/** A `meta.k8s.io/v1` Table, which `kubectl get` asks for; rows carry the objects' metadata. */
export function toTable(
  type: ResourceType,
  objects: Json[],
  options: { resourceVersion?: string; noHeaders?: boolean; includeObject?: string } = {},
): Json {
  const cols = columnsFor(type);
  const table: Json = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: options.resourceVersion ? { resourceVersion: options.resourceVersion } : {},
  };
  if (!options.noHeaders) {
    table.columnDefinitions = cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c === NAME ? 'name' : (c.format ?? ''),
      description: c.name,
      priority: c.priority ?? 0,
    }));
  }
  table.rows = objects.map((o) => ({
    cells: cols.map((c) => c.cell(o)),
    object:
      options.includeObject === 'Object'
        ? o
        : options.includeObject === 'None'
          ? undefined
          : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
  }));
  return table;
}

/** Whether the Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return Boolean(accept?.includes('as=Table'));
}
