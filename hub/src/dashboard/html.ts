import { createHash } from 'node:crypto';
import type { PromotionRecord } from '../promotion/promotion-log.js';
import type { ClusterDetail, ClusterResource, FleetClusterStatus, FleetDrift } from '../status/fleet-view.js';
import {
  ClusterState,
  DEFAULT_PAGE_SIZE,
  type FleetPage,
  type FleetQuery,
  fleetQueryString,
} from './fleet-query.js';
import type { ObjectDiff } from './object-diff.js';

/**
 * The dashboard's pages, rendered on the hub from the same fleet view the CLI prints: plain
 * HTML and one inline stylesheet, no script. Every value goes through `esc`, so an object
 * name or an error text from a cluster can never become markup.
 */

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a:hover{color:#fff}
header strong{font-size:16px;margin-right:12px}header form{margin-left:auto}
header button{background:none;border:1px solid #6b7487;color:#cfd6e4;border-radius:4px;cursor:pointer}
main{padding:16px 20px}h1{font-size:18px;margin:4px 0 12px}h2{font-size:15px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e6e8ee;vertical-align:top}
th{background:#eef0f4;font-weight:600;font-size:12px;text-transform:uppercase;color:#525b6e}
td.mono,.mono{font-family:ui-monospace,monospace;font-size:12px}
.b{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600}
.ok{background:#dff5e3;color:#17692b}.warn{background:#fff1cc;color:#7a5200}
.bad{background:#fde0e0;color:#9b1c1c}.off{background:#e6e8ee;color:#525b6e}
.err{color:#9b1c1c}.muted{color:#6b7487}.empty{padding:12px;background:#fff;color:#6b7487}
dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px;background:#fff;padding:12px;margin:0}
dt{color:#6b7487}dd{margin:0}
form.login{max-width:420px;margin:60px auto;background:#fff;padding:24px;box-shadow:0 1px 3px #0002}
form.login input{width:100%;box-sizing:border-box;padding:8px;margin:8px 0 12px;font-family:ui-monospace,monospace}
form.login button{padding:8px 16px}
form.filter{display:flex;gap:10px;align-items:flex-end;flex-wrap:wrap;margin:0 0 12px}
form.filter label{display:flex;flex-direction:column;font-size:12px;color:#525b6e;gap:2px}
form.filter input,form.filter select{padding:4px 6px}
.actions{display:flex;gap:8px;margin:0 0 10px}form.act{display:inline}.done{color:#17692b}.add{color:#17692b}.del{color:#9b1c1c}.states a{margin-right:10px}.states a.on{font-weight:700}nav.pages{margin:10px 0;display:flex;gap:12px}
.pipe{display:flex;flex-wrap:wrap;gap:8px;align-items:stretch;margin-bottom:16px}
.stage{background:#fff;box-shadow:0 1px 2px #0001;padding:10px 14px;min-width:180px}
.stage h2{margin:0 0 6px}.step{padding:10px 6px;min-width:150px;font-size:13px;color:#525b6e}
pre.diff{background:#fff;padding:12px;overflow-x:auto;font-size:12px;box-shadow:0 1px 2px #0001}
ul.gates{margin:4px 0;padding-left:18px}
`;

/** The Content-Security-Policy of every page: nothing but this stylesheet, forms to the hub itself. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** HTML-escapes any value for text and attribute positions. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A page: the fleet navigation (when logged in), the body, and a refresh when it shows live state. */
export function page(
  title: string,
  body: string,
  options: { nav?: boolean; refreshS?: number; refreshTo?: string } = {},
): string {
  const nav = options.nav
    ? `<header><strong>Flotilla</strong><a href="/ui/pipeline">Pipeline</a><a href="/ui">Fleet</a><a href="/ui/drift">Drift history</a>` +
      `<a href="/ui/promotions">Promotions</a>` +
      `<form method="post" action="/ui/logout"><button type="submit">Log out</button></form></header>`
    : '<header><strong>Flotilla</strong></header>';
  const refresh =
    options.refreshS !== undefined
      ? `<meta http-equiv="refresh" content="${options.refreshS}${options.refreshTo ? `;url=${esc(options.refreshTo)}` : ''}">`
      : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Flotilla</title>${refresh}<style>${STYLE}</style></head><body>${nav}<main>${body}</main></body></html>`;
}

export function loginPage(error?: string, sso = false): string {
  return page(
    'Log in',
    `<form class="login" method="post" action="/ui/login"><h1>Fleet dashboard</h1>` +
      (sso
        ? `<p><a id="sso" href="/ui/oidc/start">Log in with single sign-on</a></p><p class="muted">or with a token:</p>`
        : '') +
      `<label for="token">Token (<span class="mono">FLOTILLA_TOKEN</span>)</label>` +
      `<input id="token" name="token" type="password" autocomplete="off" required autofocus>` +
      (error ? `<p class="err">${esc(error)}</p>` : '') +
      `<button type="submit">Log in</button></form>`,
  );
}

export type Cell = string | { html: string };

export function table(headers: string[], rows: Cell[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  const cell = (c: Cell) => `<td>${typeof c === 'string' ? esc(c) : c.html}</td>`;
  return (
    `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

const CLASS_OF: Record<string, string> = {
  Synced: 'ok',
  Healthy: 'ok',
  Pruned: 'off',
  OutOfSync: 'warn',
  Progressing: 'warn',
  Missing: 'bad',
  Degraded: 'bad',
  Failed: 'bad',
  Unknown: 'off',
};

export function badge(
  text: string | null | undefined,
  cls = CLASS_OF[text ?? ''] ?? 'off',
): { html: string } {
  return { html: `<span class="b ${cls}">${esc(text ?? 'Unknown')}</span>` };
}

export const mono = (text: string | null | undefined) => ({
  html: `<span class="mono">${esc(text ?? '-')}</span>`,
});

export function objectName(o: { group: string; kind: string; namespace: string; name: string }): string {
  return `${o.group ? `${o.group}/` : ''}${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
}

function connectedCell(c: FleetClusterStatus, ago: (iso: string | null) => string): { html: string } {
  if (c.connected) return badge(`connected, ${ago(c.lastSeen)}`, 'ok');
  if (c.reportedVia === 'import') return badge(`imported, reported ${ago(c.reportedAt)}`, 'warn');
  return badge(`disconnected, last seen ${ago(c.lastSeen)}`, 'bad');
}

export function clusterLink(name: string): { html: string } {
  return { html: `<a href="/ui/clusters/${encodeURIComponent(name)}">${esc(name)}</a>` };
}

/** A source (`env/NAME`, `app/NAME`) as a link that filters the page it is on to that source. */
function sourceLink(page: string, source: string): { html: string } {
  return { html: `<a href="${esc(page)}?source=${encodeURIComponent(source)}">${esc(source)}</a>` };
}

/** Says which source a page shows, with the way back to all of them. */
function sourceFilter(page: string, source: string | undefined): string {
  return source
    ? `<p>Showing objects from <strong>${esc(source)}</strong> only. <a href="${esc(page)}">Show every source</a></p>`
    : '';
}

const driftRow = (d: FleetDrift, withCluster: boolean, page: string): Cell[] => [
  ...(withCluster ? [clusterLink(d.cluster), d.environment] : []),
  sourceLink(page, d.source),
  d.clearedAt ? objectName(d) : objectLink(d.cluster, d),
  mono(d.field),
  mono(d.desired),
  mono(d.live),
  d.since,
];

/** The link to one object's desired/live page. */
export function objectLink(
  cluster: string,
  o: { group: string; kind: string; namespace: string; name: string },
): {
  html: string;
} {
  const ref = `${o.group}/${o.kind}/${o.namespace}/${o.name}`;
  return {
    html: `<a href="/ui/clusters/${encodeURIComponent(cluster)}/object?ref=${encodeURIComponent(ref)}">${esc(objectName(o))}</a>`,
  };
}

/** The fleet filter: environment, label selector and state, sent as a GET form (no script). */
function filterForm(fleet: FleetPage, query: FleetQuery, source: string | undefined): string {
  const option = (value: string, label: string, selected: boolean) =>
    `<option value="${esc(value)}"${selected ? ' selected' : ''}>${esc(label)}</option>`;
  const states = Object.values(ClusterState);
  return (
    `<form class="filter" method="get" action="/ui">` +
    `<label>Environment<select name="env">${option('', 'all', !query.environment)}${fleet.environments
      .map((e) => option(e, e, e === query.environment))
      .join('')}</select></label>` +
    `<label>Labels<input name="labels" value="${esc(query.labels?.text ?? '')}" placeholder="region=eu,tier in (web)" size="28"></label>` +
    `<label>State<select name="state">${option('', 'any', !query.state)}${states
      .map((s) => option(s, `${s} (${fleet.counts[s]})`, s === query.state))
      .join('')}</select></label>` +
    (query.pageSize !== DEFAULT_PAGE_SIZE
      ? `<input type="hidden" name="size" value="${query.pageSize}">`
      : '') +
    (source ? `<input type="hidden" name="source" value="${esc(source)}">` : '') +
    `<button type="submit">Filter</button>` +
    (query.environment || query.labels || query.state ? ` <a href="/ui">clear</a>` : '') +
    `</form>`
  );
}

function pager(fleet: FleetPage, query: FleetQuery): string {
  if (fleet.pages <= 1) return '';
  const link = (n: number, text: string) =>
    `<a href="/ui${esc(fleetQueryString(query, { page: n }))}">${text}</a>`;
  return (
    `<nav class="pages">` +
    (fleet.page > 1
      ? link(fleet.page - 1, '&larr; previous')
      : '<span class="muted">&larr; previous</span>') +
    `<span>page ${fleet.page} of ${fleet.pages}</span>` +
    (fleet.page < fleet.pages
      ? link(fleet.page + 1, 'next &rarr;')
      : '<span class="muted">next &rarr;</span>') +
    `</nav>`
  );
}

/** Open drift rows shown at most on the fleet page (all of it is on the drift page and the CLI). */
const MAX_FLEET_DRIFT_ROWS = 200;

/**
 * `/ui`: what `flotilla fleet status` and `flotilla fleet drift` show, one filtered page of
 * clusters at a time, with the open drift of the clusters on that page.
 */
export function fleetPage(
  fleet: FleetPage,
  query: FleetQuery,
  drift: FleetDrift[],
  ago: (iso: string | null) => string,
  source?: string,
): string {
  const rows = fleet.clusters.map((c) => [
    clusterLink(c.name),
    { html: `<a href="/ui/rollouts/${encodeURIComponent(c.environment)}">${esc(c.environment)}</a>` },
    Object.entries(c.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
    mono(c.revision?.slice(0, 12)),
    `${c.generation ?? '-'}${c.desiredGeneration != null && c.desiredGeneration !== c.generation ? ` → ${c.desiredGeneration}` : ''}`,
    badge(c.sync),
    badge(c.health),
    c.drifted ? badge(String(c.drifted), 'warn') : '0',
    connectedCell(c, ago),
    {
      html: c.error
        ? `<span class="err">${esc(c.error)}</span>`
        : c.paused
          ? `<span class="b off">paused</span> by ${esc(c.paused.by)}${c.paused.reason ? `: ${esc(c.paused.reason)}` : ''}`
          : c.hold
            ? esc(c.hold)
            : '',
    },
  ]);
  const onPage = new Set(fleet.clusters.map((c) => c.name));
  const shownDrift = drift.filter((d) => onPage.has(d.cluster));
  const filtered = fleet.matching !== fleet.total;
  const first = (fleet.page - 1) * query.pageSize + 1;
  return page(
    'Fleet',
    `<h1>Fleet: ${filtered ? `${fleet.matching} of ` : ''}${fleet.total} cluster${fleet.total === 1 ? '' : 's'}</h1>` +
      filterForm(fleet, query, source) +
      (fleet.pages > 1
        ? `<p class="muted">Showing ${first}–${first + fleet.clusters.length - 1} of ${fleet.matching}.</p>`
        : '') +
      table(
        [
          'Cluster',
          'Env',
          'Labels',
          'Revision',
          'Generation',
          'Sync',
          'Health',
          'Drifted',
          'Connection',
          'Error',
        ],
        rows,
        fleet.total === 0
          ? 'No clusters yet: flotilla cluster add NAME --env ENV'
          : 'No cluster matches this filter.',
      ) +
      pager(fleet, query) +
      `<h2>Open drift${fleet.pages > 1 || filtered ? ' of the clusters shown' : ''}</h2>` +
      sourceFilter('/ui', source) +
      table(
        ['Cluster', 'Env', 'Source', 'Object', 'Field', 'Desired', 'Live', 'Since'],
        shownDrift.slice(0, MAX_FLEET_DRIFT_ROWS).map((d) => driftRow(d, true, '/ui')),
        'No drift: every cluster matches git.',
      ) +
      (shownDrift.length > MAX_FLEET_DRIFT_ROWS
        ? `<p class="muted">${shownDrift.length - MAX_FLEET_DRIFT_ROWS} more drifted fields: see <span class="mono">flotilla fleet drift</span>.</p>`
        : ''),
    { nav: true, refreshS: 5 },
  );
}

/** `/ui/clusters/NAME`: what `flotilla cluster show NAME` shows. */
export function clusterPage(
  { cluster: c, resources }: ClusterDetail,
  ago: (iso: string | null) => string,
  source?: string,
  /** The action buttons this session may use (already checked against its role). */
  buttons = '',
): string {
  const here = `/ui/clusters/${encodeURIComponent(c.name)}`;
  const drifted = resources.flatMap((r) =>
    r.drift.map(
      (d) =>
        [
          objectLink(c.name, r),
          sourceLink(here, r.source),
          mono(d.field),
          mono(d.desired),
          mono(d.live),
          d.since,
        ] as Cell[],
    ),
  );
  return page(
    c.name,
    `<h1>Cluster ${esc(c.name)}</h1>` +
      (buttons ? `<div class="actions">${buttons}</div>` : '') +
      `<dl>` +
      `<dt>Environment</dt><dd>${esc(c.environment)}</dd>` +
      `<dt>Labels</dt><dd>${esc(
        Object.entries(c.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ') || '-',
      )}</dd>` +
      `<dt>Revision</dt><dd class="mono">${esc(c.revision ?? '-')}</dd>` +
      `<dt>Generation</dt><dd>${esc(c.generation ?? '-')} (newest published ${esc(c.desiredGeneration ?? '-')})</dd>` +
      `<dt>Status</dt><dd>${badge(c.sync).html} ${badge(c.health).html} <span class="muted">phase ${esc(c.phase ?? '-')}</span></dd>` +
      `<dt>Connection</dt><dd>${connectedCell(c, ago).html}</dd>` +
      `<dt>Error</dt><dd>${c.error ? `<span class="err">${esc(c.error)}</span>` : '-'}</dd></dl>` +
      `<h2>Objects</h2>` +
      sourceFilter(here, source) +
      table(
        ['Object', 'Source', 'Sync', 'Health', 'Reason'],
        resources.map((r) => [
          r.drift.length > 0 ? objectLink(c.name, r) : objectName(r),
          sourceLink(here, r.source),
          badge(r.sync),
          badge(r.health),
          { html: r.error ? `<span class="err">${esc(r.error)}</span>` : esc(r.healthReason ?? '') },
        ]),
        'No objects reported yet.',
      ) +
      `<h2>Open drift</h2>` +
      table(['Object', 'Source', 'Field', 'Desired', 'Live', 'Since'], drifted, 'No drift.'),
    { nav: true, refreshS: 5 },
  );
}

/** `/ui/drift`: `flotilla fleet drift --history`, open and cleared. */
export function driftHistoryPage(drift: FleetDrift[], source?: string): string {
  return page(
    'Drift history',
    `<h1>Drift history</h1>` +
      sourceFilter('/ui/drift', source) +
      table(
        ['Cluster', 'Env', 'Source', 'Object', 'Field', 'Desired', 'Live', 'Since', 'Cleared'],
        drift.map((d) => [
          ...driftRow(d, true, '/ui/drift'),
          d.clearedAt ? d.clearedAt : badge('open', 'warn'),
        ]),
        'No drift has been seen.',
      ),
    { nav: true },
  );
}

/** `/ui/promotions`: `flotilla promote --history`. */
export function promotionsPage(records: PromotionRecord[]): string {
  return page(
    'Promotions',
    `<h1>Promotions and rollbacks</h1>` +
      table(
        ['At', 'Who', 'Kind', 'From', 'To', 'Source revision', 'Commit'],
        records.map((r) => [
          r.at,
          r.actor,
          r.kind === 'rollback'
            ? `rollback of #${r.undoes ?? '?'}`
            : r.fastForward
              ? 'promote (fast-forward)'
              : 'promote',
          r.from,
          r.to,
          mono(r.fromRevision.slice(0, 12)),
          mono(r.commit.slice(0, 12)),
        ]),
        'No promotions yet: flotilla promote FROM TO',
      ),
    { nav: true },
  );
}

export function notFoundPage(what: string): string {
  return page('Not found', `<h1>Not found</h1><p>${esc(what)}</p>`, { nav: true });
}

/** A unified diff with its lines marked added or removed (as text: the page has no script). */
function patchHtml(patch: string): string {
  return `<pre class="diff">${patch
    .split('\n')
    .map((line) =>
      line.startsWith('+') && !line.startsWith('+++')
        ? `<span class="add">${esc(line)}</span>`
        : line.startsWith('-') && !line.startsWith('---')
          ? `<span class="del">${esc(line)}</span>`
          : esc(line),
    )
    .join('\n')}</pre>`;
}

/**
 * `/ui/clusters/NAME/object?ref=…`: one object's desired state against its live state, as far
 * as the hub knows it (the bundle's manifest and the drift the agent reported); a Secret's
 * values never appear, only the hashes the agent reports for drifted keys.
 */
export function objectPage(cluster: string, resource: ClusterResource, diff: ObjectDiff): string {
  const name = objectName(resource);
  return page(
    `${cluster}: ${name}`,
    `<h1>${esc(name)} <small class="muted">on <a href="/ui/clusters/${encodeURIComponent(cluster)}">${esc(cluster)}</a></small></h1>` +
      `<dl><dt>Source</dt><dd>${esc(resource.source)}</dd>` +
      `<dt>Status</dt><dd>${badge(resource.sync).html} ${badge(resource.health).html} ${esc(resource.healthReason ?? '')}</dd>` +
      (resource.error ? `<dt>Error</dt><dd class="err">${esc(resource.error)}</dd>` : '') +
      `</dl>` +
      `<h2>Drifted fields</h2>` +
      table(
        ['Field', 'Desired', 'Live', 'Since'],
        resource.drift.map((d) => [mono(d.field), mono(d.desired), mono(d.live), d.since]),
        'No drift: the live object matches its manifest.',
      ) +
      `<h2>Desired → live</h2>` +
      (diff.desired === null
        ? '<p class="empty">The bundle this cluster applied has no manifest for this object.</p>'
        : diff.patch
          ? patchHtml(diff.patch)
          : '<p class="empty">No difference.</p>') +
      (diff.unplaced.length > 0
        ? `<p class="muted">Not placed in the manifest above (see the table): ${esc(diff.unplaced.join(', '))}</p>`
        : '') +
      (diff.desired !== null ? `<h2>Desired manifest</h2><pre class="diff">${esc(diff.desired)}</pre>` : ''),
    { nav: true },
  );
}
