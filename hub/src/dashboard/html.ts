import { createHash } from 'node:crypto';
import type { PromotionRecord } from '../promotion/promotion-log.js';
import type { ClusterDetail, FleetClusterStatus, FleetDrift } from '../status/fleet-view.js';

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
  options: { nav?: boolean; refreshS?: number } = {},
): string {
  const nav = options.nav
    ? `<header><strong>Flotilla</strong><a href="/ui">Fleet</a><a href="/ui/drift">Drift history</a>` +
      `<a href="/ui/promotions">Promotions</a>` +
      `<form method="post" action="/ui/logout"><button type="submit">Log out</button></form></header>`
    : '<header><strong>Flotilla</strong></header>';
  const refresh = options.refreshS ? `<meta http-equiv="refresh" content="${options.refreshS}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Flotilla</title>${refresh}<style>${STYLE}</style></head><body>${nav}<main>${body}</main></body></html>`;
}

export function loginPage(error?: string): string {
  return page(
    'Log in',
    `<form class="login" method="post" action="/ui/login"><h1>Fleet dashboard</h1>` +
      `<label for="token">Token (<span class="mono">FLOTILLA_TOKEN</span>)</label>` +
      `<input id="token" name="token" type="password" autocomplete="off" required autofocus>` +
      (error ? `<p class="err">${esc(error)}</p>` : '') +
      `<button type="submit">Log in</button></form>`,
  );
}

type Cell = string | { html: string };

function table(headers: string[], rows: Cell[][], empty: string): string {
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

function badge(text: string | null | undefined, cls = CLASS_OF[text ?? ''] ?? 'off'): { html: string } {
  return { html: `<span class="b ${cls}">${esc(text ?? 'Unknown')}</span>` };
}

const mono = (text: string | null | undefined) => ({ html: `<span class="mono">${esc(text ?? '-')}</span>` });

function objectName(o: { group: string; kind: string; namespace: string; name: string }): string {
  return `${o.group ? `${o.group}/` : ''}${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
}

function connectedCell(c: FleetClusterStatus, ago: (iso: string | null) => string): { html: string } {
  if (c.connected) return badge(`connected, ${ago(c.lastSeen)}`, 'ok');
  if (c.reportedVia === 'import') return badge(`imported, reported ${ago(c.reportedAt)}`, 'warn');
  return badge(`disconnected, last seen ${ago(c.lastSeen)}`, 'bad');
}

function clusterLink(name: string): { html: string } {
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
  objectName(d),
  mono(d.field),
  mono(d.desired),
  mono(d.live),
  d.since,
];

/** `/ui`: what `flotilla fleet status` and `flotilla fleet drift` show, on one page. */
export function fleetPage(
  clusters: FleetClusterStatus[],
  drift: FleetDrift[],
  ago: (iso: string | null) => string,
  source?: string,
): string {
  const rows = clusters.map((c) => [
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
  return page(
    'Fleet',
    `<h1>Fleet: ${clusters.length} cluster${clusters.length === 1 ? '' : 's'}</h1>` +
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
        'No clusters yet: flotilla cluster add NAME --env ENV',
      ) +
      `<h2>Open drift</h2>` +
      sourceFilter('/ui', source) +
      table(
        ['Cluster', 'Env', 'Source', 'Object', 'Field', 'Desired', 'Live', 'Since'],
        drift.map((d) => driftRow(d, true, '/ui')),
        'No drift: every cluster matches git.',
      ),
    { nav: true, refreshS: 5 },
  );
}

/** `/ui/clusters/NAME`: what `flotilla cluster show NAME` shows. */
export function clusterPage(
  { cluster: c, resources }: ClusterDetail,
  ago: (iso: string | null) => string,
  source?: string,
): string {
  const here = `/ui/clusters/${encodeURIComponent(c.name)}`;
  const drifted = resources.flatMap((r) =>
    r.drift.map(
      (d) =>
        [
          objectName(r),
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
    `<h1>Cluster ${esc(c.name)}</h1><dl>` +
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
          objectName(r),
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
