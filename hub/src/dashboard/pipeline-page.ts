import { type ActionKind, actionButton } from './actions.js';
import { badge, esc, mono, page, table } from './html.js';
import type { PipelineStage, PipelineStep } from './pipeline.js';

function duration(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${s}s`;
}

const short = (revision: string | null) => revision?.slice(0, 12) ?? '-';

/** The gates of one step, each as a line a person acts on. */
function gateLines(step: PipelineStep): string[] {
  const lines: string[] = [];
  if (step.soakMs > 0)
    lines.push(
      step.soakLeftMs === null
        ? `soak ${duration(step.soakMs)}: no cluster to soak`
        : step.soakLeftMs > 0
          ? `soak ${duration(step.soakMs)}: ${duration(step.soakLeftMs)} left`
          : `soak ${duration(step.soakMs)}: done`,
    );
  if (step.approve)
    lines.push(
      step.pendingApprovals.length > 0
        ? `approval pending: ${step.pendingApprovals.map((p) => `asked by ${p.requestedBy} at ${p.at}`).join('; ')}`
        : `needs approval by a second person`,
    );
  return lines;
}

/** A step's state in one word: what a user sees before reading the reasons. */
export function stepState(step: PipelineStep): 'ready' | 'waiting' | 'up to date' | 'approval pending' {
  if (step.blockedBy.length > 0) return 'waiting';
  if (step.pendingApprovals.length > 0) return 'approval pending';
  if (!step.diffError && step.files.length === 0) return 'up to date';
  return 'ready';
}

const STEP_CLASS = { ready: 'ok', waiting: 'warn', 'up to date': 'off', 'approval pending': 'warn' } as const;

function stageButtons(s: PipelineStage, may: (kind: ActionKind, environment: string) => boolean): string {
  const env = s.name;
  const out = [
    may('sync', env) && s.clusters > 0 ? actionButton({ kind: 'sync', environment: env }, 'Sync') : '',
    may('pause', env) && s.clusters > 0
      ? s.paused
        ? actionButton({ kind: 'resume', environment: env }, 'Resume')
        : actionButton({ kind: 'pause', environment: env }, 'Pause')
      : '',
    may('rollback', env) && s.promotedInto
      ? actionButton({ kind: 'rollback', environment: env }, 'Roll back')
      : '',
  ].join('');
  return out ? `<div class="actions">${out}</div>` : '';
}

function stageCard(s: PipelineStage, may: (kind: ActionKind, environment: string) => boolean): string {
  const ready = s.clusters > 0 && s.ready === s.clusters - s.pausedClusters;
  return (
    `<div class="stage" id="env-${esc(s.name)}"><h2><a href="/ui?env=${encodeURIComponent(s.name)}">${esc(s.name)}</a></h2>` +
    `<div>revision <span class="mono">${esc(short(s.revision))}</span></div>` +
    `<div><span class="b ${ready ? 'ok' : s.clusters === 0 ? 'off' : 'warn'}" data-ready="${s.ready}/${s.clusters}">${s.ready}/${s.clusters} Synced and Healthy</span></div>` +
    (s.otherRevisions.length > 0
      ? `<div class="muted">also ${s.otherRevisions.map((r) => `${esc(short(r.revision))} on ${r.clusters}`).join(', ')}</div>`
      : '') +
    (s.disconnected > 0 ? `<div class="err">${s.disconnected} disconnected</div>` : '') +
    (s.paused
      ? `<div><span class="b off">paused</span> by ${esc(s.paused.by)}${s.paused.reason ? `: ${esc(s.paused.reason)}` : ''}</div>`
      : s.pausedClusters > 0
        ? `<div><span class="b off">${s.pausedClusters} paused</span></div>`
        : '') +
    `<div class="muted">${esc(s.branch ? `${s.branch}:` : '')}${esc(s.path)} · <a href="/ui/rollouts/${encodeURIComponent(s.name)}">rollout</a></div>` +
    stageButtons(s, may) +
    '</div>'
  );
}

function stepArrow(
  step: PipelineStep,
  may: (kind: ActionKind, environment: string) => boolean,
  actor: string | undefined,
): string {
  const state = stepState(step);
  // Four eyes: the identity that asked for a promotion cannot approve it, so it gets no button.
  const approvable = step.pendingApprovals.some((p) => p.requestedBy !== actor);
  const buttons = [
    may('promote', step.to) && step.pendingApprovals.length === 0
      ? actionButton({ kind: 'promote', from: step.from, to: step.to }, `Promote ${step.from} → ${step.to}`)
      : '',
    may('approve', step.to) && approvable
      ? actionButton({ kind: 'approve', from: step.from, to: step.to }, `Approve ${step.from} → ${step.to}`)
      : '',
  ].join('');
  return (
    `<div class="step"><div>→ promote</div><div>${badge(state, STEP_CLASS[state]).html}</div>` +
    `<div>${step.diffError ? '?' : step.files.length} file${step.files.length === 1 ? '' : 's'}` +
    `${step.commits !== null ? `, ${step.commits} commit${step.commits === 1 ? '' : 's'}` : ''}</div>` +
    `<div><a href="#step-${esc(step.from)}-${esc(step.to)}">details</a></div>` +
    (buttons ? `<div class="actions">${buttons}</div>` : '') +
    '</div>'
  );
}

function stepDetail(step: PipelineStep): string {
  const gates = gateLines(step);
  return (
    `<h2 id="step-${esc(step.from)}-${esc(step.to)}">${esc(step.from)} → ${esc(step.to)} ${badge(stepState(step), STEP_CLASS[stepState(step)]).html}</h2>` +
    `<p>${esc(step.to)} would get what ${esc(step.from)} runs at <span class="mono">${esc(short(step.fromRevision))}</span>` +
    (step.commits !== null
      ? `: ${step.commits} commit${step.commits === 1 ? '' : 's'} to ${esc(step.from)}'s directory since ${esc(step.to)} last got it.`
      : '.') +
    '</p>' +
    (gates.length > 0 ? `<ul class="gates">${gates.map((g) => `<li>${esc(g)}</li>`).join('')}</ul>` : '') +
    (step.blockedBy.length > 0
      ? `<p>Waiting for:</p><ul class="gates">${step.blockedBy.map((r) => `<li class="err">${esc(r)}</li>`).join('')}</ul>`
      : '') +
    (step.notes.length > 0
      ? `<ul class="gates">${step.notes.map((n) => `<li class="muted">${esc(n)}</li>`).join('')}</ul>`
      : '') +
    (step.diffError
      ? `<p class="err">What it would move is not known: ${esc(step.diffError)}</p>`
      : table(
          ['File', 'Change', 'Source'],
          step.files.map((f) => [mono(f.path), f.change, f.source ?? `env/${step.from}`]),
          `${step.to} already holds what ${step.from} runs.`,
        ))
  );
}

/** `/ui/pipeline`: environments in promotion order, what each runs, and what promoting would move. */
export function pipelinePage(
  stages: PipelineStage[],
  configError: string | null,
  /** Whether this session may do an action on an environment: only those buttons are shown. */
  may: (kind: ActionKind, environment: string) => boolean = () => false,
  /** The session's identity: a promotion it asked for shows no Approve button to it. */
  actor?: string,
): string {
  const flow = stages.map((s) => stageCard(s, may) + (s.next ? stepArrow(s.next, may, actor) : '')).join('');
  return page(
    'Pipeline',
    `<h1>Pipeline</h1>` +
      (configError ? `<p class="err">${esc(configError)}</p>` : '') +
      (stages.length > 0 ? `<div class="pipe">${flow}</div>` : '<p class="empty">No environments yet.</p>') +
      stages.map((s) => (s.next ? stepDetail(s.next) : '')).join(''),
    { nav: true, refreshS: 10 },
  );
}
