import type { RolloutStatus } from '../rollout/index.js';
import { esc, page } from './html.js';

const STATE_CLASS: Record<string, string> = {
  done: 'ok',
  complete: 'ok',
  rolling: 'warn',
  updating: 'warn',
  halted: 'bad',
  waiting: 'off',
  paused: 'off',
  none: 'off',
};

const badge = (text: string) => `<span class="b ${STATE_CLASS[text] ?? 'off'}">${esc(text)}</span>`;

/** `/ui/rollouts/ENV`: what `flotilla rollout status ENV` shows, wave by wave. */
export function rolloutPage(s: RolloutStatus): string {
  const head =
    `<h1>Rollout of ${esc(s.environment)} ${badge(s.state)}</h1>` +
    (s.state === 'none'
      ? '<p class="empty">This environment has no waves: a new generation reaches every cluster at once.</p>'
      : `<p>Revision <span class="mono">${esc(s.commit?.slice(0, 12) ?? '-')}</span>, soak ${esc(Math.round(s.soakMs / 1000))}s, at most ${esc(s.maxUnavailable ?? 'a whole wave')} updating at once.</p>`) +
    (s.halted
      ? `<p class="err">Halted at ${esc(s.halted.at)} by cluster ${esc(s.halted.cluster)}: ${esc(s.halted.reason)}. <span class="mono">flotilla rollout resume ${esc(s.environment)}</span> goes on to the next wave; a new commit starts over.</p>`
      : '');
  const waves = s.waves
    .map(
      (w) =>
        `<h2>wave ${w.index + 1} ${esc(w.name)} <small>(${esc(w.picks)})</small> ${badge(w.state)}</h2>` +
        `<table><thead><tr><th>Cluster</th><th>State</th><th>Generation</th><th>Health</th><th>Why it waits</th></tr></thead><tbody>` +
        w.clusters
          .map((c) => {
            const state = c.paused ? 'paused' : c.released ? (c.ready ? 'done' : 'updating') : 'waiting';
            return (
              `<tr><td><a href="/ui/clusters/${encodeURIComponent(c.name)}">${esc(c.name)}</a></td><td>${badge(state)}</td>` +
              `<td>${esc(c.generation ?? '-')} / ${esc(c.desiredGeneration ?? '-')}</td><td>${esc(c.health)}</td><td>${esc(c.hold ?? '')}</td></tr>`
            );
          })
          .join('') +
        '</tbody></table>',
    )
    .join('');
  return page(`Rollout ${s.environment}`, head + waves, { nav: true, refreshS: 5 });
}
