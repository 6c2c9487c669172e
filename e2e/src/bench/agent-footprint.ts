/**
 * `npm run bench:agent`: the memory and CPU an agent uses on this machine, run as in
 * development (TypeScript through tsx) and as shipped (`agent/dist/flotilla-agent.mjs`, one
 * esbuild bundle run by plain node; `npm run build -w @flotilla/agent` makes it). Each agent
 * joins a real hub, applies its bundle, watches it, and is sampled while idle.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bin, ROOT } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { startFleet } from '../fleet/fleet.js';
import { startProcess } from '../harness/process.js';
import { machineLine, procStats } from './report.js';

const BUNDLE = join(ROOT, 'agent', 'dist', 'flotilla-agent.mjs');
const SAMPLE_S = 20;

const fleet = await startFleet({
  repoFiles: {
    'flotilla.yaml': 'environments:\n  - {name: edge, path: environments/edge}\n',
    ...appFiles('edge'),
  },
  clusters: [{ name: 'edge-1', environment: 'edge' }],
  startAgents: false,
  readyDelayMs: 0,
});
const results: string[] = [];
try {
  await fleet.joinAgent('edge-1');
  const c = fleet.clusters.get('edge-1')!;
  const variants: [string, string, string[]][] = [['tsx (development)', bin('flotilla-agent'), []]];
  if (existsSync(BUNDLE)) variants.push(['bundle (shipped)', process.execPath, [BUNDLE]]);
  else results.push(`(no ${BUNDLE}: run npm run build -w @flotilla/agent to measure the shipped agent)`);
  for (const [label, cmd, pre] of variants) {
    const p = await startProcess(
      cmd,
      [...pre, 'run', '--state-dir', c.stateDir, '--kubeconfig', c.kubeconfig],
      { name: `agent:${label}` },
    );
    try {
      await fleet.waitSynced(['edge-1']);
      await new Promise((r) => setTimeout(r, 3000));
      const pid = p.pid!;
      const before = procStats(pid);
      let peak = before.rssKiB;
      for (let i = 0; i < SAMPLE_S; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        peak = Math.max(peak, procStats(pid).rssKiB);
      }
      const after = procStats(pid);
      const cpuPct = ((after.cpuTicks - before.cpuTicks) / 100 / SAMPLE_S) * 100;
      results.push(
        `${label.padEnd(18)} RSS ${(after.rssKiB / 1024).toFixed(0)} MiB (peak ${(peak / 1024).toFixed(0)} MiB over ${SAMPLE_S} s idle), CPU ${cpuPct.toFixed(2)} % of one core`,
      );
    } finally {
      await p.stop();
    }
  }
} finally {
  await fleet.stop();
}
console.log(
  [
    'Flotilla agent footprint (one cluster, 4 objects, watching, heartbeats; idle after converging)',
    machineLine(),
    ...results,
  ].join('\n'),
);
