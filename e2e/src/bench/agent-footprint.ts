/**
 * `npm run bench:agent`: the memory and CPU an agent uses on this machine, run as in
 * development (TypeScript through tsx) and as shipped (`agent/dist/flotilla-agent.mjs`, one
 * esbuild bundle run by plain node; `npm run build -w @flotilla/agent` makes it). Each agent
 * joins a real hub, applies its bundle, watches it, and is sampled while idle. Then an agent
 * holding a 500-object bundle is sampled while idle and while healing: objects are changed
 * one after another with real kubectl, and the agent puts each back. The shipped agent is also
 * run with `--metrics-addr` (health endpoints, watchdog and prom-client loaded), scraped once a
 * second as Prometheus and the kubelet would.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bin, ROOT } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { startFleet } from '../fleet/fleet.js';
import { freePort } from '../harness/free-port.js';
import { startProcess } from '../harness/process.js';
import { kubectl } from '../journeys/kubectl.js';
import { machineLine, procStats } from './report.js';

const BUNDLE = join(ROOT, 'agent', 'dist', 'flotilla-agent.mjs');
const SAMPLE_S = 20;

/** GETs /metrics and /healthz once a second until stopped, as a scraper and the kubelet would. */
function scrape(port: number): () => void {
  const timer = setInterval(() => {
    for (const path of ['/metrics', '/healthz'])
      fetch(`http://127.0.0.1:${port}${path}`)
        .then((r) => r.text())
        .catch(() => {});
  }, 1000);
  return () => clearInterval(timer);
}

/** 500 objects: the namespace, 25 Deployments with a Service each, 449 ConfigMaps. */
function bigFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {
    [`${dir}/namespace.yaml`]: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: big\n',
  };
  for (let i = 0; i < 25; i++) {
    files[`${dir}/app-${i}.yaml`] = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app-${i}, namespace: big, labels: {app: app-${i}}}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-${i}}}
  template:
    metadata: {labels: {app: app-${i}}}
    spec:
      containers: [{name: app, image: 'nginx:1.27', ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: app-${i}, namespace: big}
spec:
  selector: {app: app-${i}}
  ports: [{port: 80, targetPort: 80}]
`;
  }
  for (let i = 0; i < 449; i++) {
    files[`${dir}/config-${i}.yaml`] = `apiVersion: v1
kind: ConfigMap
metadata: {name: config-${i}, namespace: big}
data: {INDEX: '${i}', CLUSTER: \${cluster.name}, PAYLOAD: '${'x'.repeat(200)}'}
`;
  }
  return files;
}

/** Resident memory now, its peak, and CPU % of one core while `during` runs for `seconds`. */
async function sample(pid: number, seconds: number, during?: (until: number) => Promise<void>) {
  const before = procStats(pid);
  let peak = before.rssKiB;
  const until = Date.now() + seconds * 1000;
  const work = during?.(until);
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    peak = Math.max(peak, procStats(pid).rssKiB);
  }
  await work;
  const after = procStats(pid);
  return {
    rssMiB: after.rssKiB / 1024,
    peakMiB: peak / 1024,
    cpuPct: ((after.cpuTicks - before.cpuTicks) / 100 / seconds) * 100,
  };
}

const fleet = await startFleet({
  repoFiles: {
    'flotilla.yaml':
      'environments:\n  - {name: edge, path: environments/edge}\n  - {name: big, path: environments/big}\n',
    ...appFiles('edge'),
    ...bigFiles('environments/big'),
  },
  clusters: [
    { name: 'edge-1', environment: 'edge' },
    { name: 'big-1', environment: 'big' },
  ],
  startAgents: false,
  readyDelayMs: 0,
});
const results: string[] = [];
try {
  await fleet.joinAgent('edge-1');
  const c = fleet.clusters.get('edge-1')!;
  const variants: [string, string, string[], boolean][] = [
    ['tsx (development)', bin('flotilla-agent'), [], false],
  ];
  if (existsSync(BUNDLE)) {
    variants.push(['bundle (shipped)', process.execPath, [BUNDLE], false]);
    variants.push(['bundle + /metrics', process.execPath, [BUNDLE], true]);
  } else results.push(`(no ${BUNDLE}: run npm run build -w @flotilla/agent to measure the shipped agent)`);
  for (const [label, cmd, pre, metrics] of variants) {
    const port = metrics ? await freePort() : 0;
    const p = await startProcess(
      cmd,
      [
        ...pre,
        'run',
        '--state-dir',
        c.stateDir,
        '--kubeconfig',
        c.kubeconfig,
        ...(metrics ? ['--metrics-addr', `127.0.0.1:${port}`] : []),
      ],
      { name: `agent:${label}` },
    );
    const stopScraping = metrics ? scrape(port) : () => {};
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
      stopScraping();
      await p.stop();
    }
  }
  // An agent holding 500 objects: idle, then healing one changed object after another.
  await fleet.joinAgent('big-1');
  const big = fleet.clusters.get('big-1')!;
  results.push('one cluster, 500 objects (25 Deployments, 25 Services, 449 ConfigMaps, 1 Namespace):');
  for (const [label, cmd, pre, metrics] of variants) {
    const port = metrics ? await freePort() : 0;
    const p = await startProcess(
      cmd,
      [
        ...pre,
        'run',
        '--state-dir',
        big.stateDir,
        '--kubeconfig',
        big.kubeconfig,
        ...(metrics ? ['--metrics-addr', `127.0.0.1:${port}`] : []),
      ],
      { name: `agent:${label}:big` },
    );
    const stopScraping = metrics ? scrape(port) : () => {};
    try {
      await fleet.waitSynced(['big-1'], { timeoutMs: 300_000 });
      await new Promise((r) => setTimeout(r, 3000));
      const idle = await sample(p.pid!, SAMPLE_S);
      let edits = 0;
      const healing = await sample(p.pid!, SAMPLE_S, async (until) => {
        while (Date.now() < until) {
          await kubectl(big.kubeconfig, [
            '-n',
            'big',
            'patch',
            'configmap',
            `config-${edits % 449}`,
            '--type',
            'merge',
            '-p',
            JSON.stringify({ data: { INDEX: `tampered-${edits}` } }),
          ]);
          edits++;
        }
      });
      // Healed: the last edit is undone and the cluster is back to Synced.
      await fleet.waitSynced(['big-1'], { timeoutMs: 120_000 });
      results.push(
        `${label.padEnd(18)} idle: RSS ${idle.rssMiB.toFixed(0)} MiB (peak ${idle.peakMiB.toFixed(0)} MiB over ${SAMPLE_S} s), CPU ${idle.cpuPct.toFixed(2)} % of one core`,
        `${''.padEnd(18)} healing ${edits} kubectl edits in ${SAMPLE_S} s: RSS ${healing.rssMiB.toFixed(0)} MiB (peak ${healing.peakMiB.toFixed(0)} MiB), CPU ${healing.cpuPct.toFixed(1)} % of one core (target: ≤ 150 MiB RSS)`,
      );
    } finally {
      stopScraping();
      await p.stop();
    }
  }
} finally {
  await fleet.stop();
}
console.log(
  [
    'Flotilla agent footprint (watching, heartbeats; idle after converging, and healing)',
    machineLine(),
    'one cluster, 4 objects:',
    ...results,
  ].join('\n'),
);
