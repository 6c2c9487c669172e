/**
 * `npm run bench:agent`: the memory and CPU an agent uses on this machine, run as in
 * development (TypeScript through tsx) and as shipped (`agent/dist/flotilla-agent.mjs`, one
 * esbuild bundle run by plain node; `npm run build -w @flotilla/agent` makes it). Each agent
 * joins a real hub, applies its bundle, watches it, and is sampled while idle. Then an agent
 * holding a 500-object bundle is sampled while idle and while healing: objects are changed
 * one after another with real kubectl, and the agent puts each back. The shipped agent is also
 * run with `--metrics-addr` (health endpoints, watchdog and prom-client loaded), scraped once a
 * second as Prometheus and the kubelet would.
 *
 * Every run first prints the floor: a bare node process, sampled the same way. `--layers` adds
 * node with each of the agent's libraries imported on its own (what each costs before the agent
 * runs a line). `--tsx` adds the agent run from TypeScript through tsx (development).
 * `--node-flag F` (repeatable) passes F to node for the shipped agent, to weigh V8 flags.
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, type FleetStatusRow, startFleet } from '../fleet/fleet.js';
import { freePort } from '../harness/free-port.js';
import { startProcess } from '../harness/process.js';
import { kubectl } from '../journeys/kubectl.js';
import { machineLine, procStats } from './report.js';

const BUNDLE = join(ROOT, 'agent', 'dist', 'flotilla-agent.mjs');
const SAMPLE_S = 20;
const TARGETS =
  'targets: ≤ 50 MiB idle with 4 objects, ≤ 150 MiB holding 500, start → first report ≤ 1 s, idle CPU ≤ 0.5 %';

const { values: flags } = parseArgs({
  options: {
    layers: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    'node-flag': { type: 'string', multiple: true, default: [] },
  },
});
const nodeFlags = flags['node-flag'] ?? [];

/**
 * Node importing `specifiers` (resolved from the agent package) and then idling, sampled as an
 * idle agent is: the floor under the agent, layer by layer.
 */
async function layer(label: string, specifiers: string[]): Promise<string> {
  const code = `${specifiers.map((s) => `await import(${JSON.stringify(s)});`).join('')}console.log('loaded');setInterval(()=>{},1e6);`;
  const p = await startProcess(process.execPath, [...nodeFlags, '--input-type=module', '-e', code], {
    name: `layer:${label}`,
    cwd: join(ROOT, 'agent'),
    ready: /loaded/,
  });
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const s = await sample(p.pid!, 5);
    return `  ${label.padEnd(38)} RSS ${s.rssMiB.toFixed(1)} MiB`;
  } finally {
    await p.stop();
  }
}

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

/** The hub's own record of a cluster's last contact, read straight from its API (no CLI process per poll). */
async function lastSeen(fleet: Fleet, cluster: string): Promise<number> {
  const res = await fetch(`${fleet.hub.http}/api/v1/fleet/status`, {
    headers: { authorization: `Bearer ${fleet.adminToken}` },
  });
  const body = (await res.json()) as { clusters: FleetStatusRow[] };
  const row = body.clusters.find((r) => r.name === cluster);
  return row?.lastSeen ? Date.parse(row.lastSeen) : 0;
}

/** Milliseconds from `startedAt` until the hub has heard from the cluster since then (polled every 20 ms). */
async function firstReport(fleet: Fleet, cluster: string, startedAt: number): Promise<number> {
  for (;;) {
    if ((await lastSeen(fleet, cluster)) >= startedAt) return Date.now() - startedAt;
    if (Date.now() - startedAt > 60_000) throw new Error(`${cluster}: no report within 60 s of the start`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const floor: string[] = ['floor (node idling after its imports, sampled as the agent is):'];
floor.push(await layer('bare node', []));
if (flags.layers) {
  for (const [label, specs] of [
    ['node + nats', ['nats']],
    ['node + @grpc/grpc-js', ['@grpc/grpc-js']],
    ['node + @bufbuild/protobuf', ['@bufbuild/protobuf']],
    ['node + pino', ['pino']],
    ['node + yaml', ['yaml']],
    ['node + prom-client', ['prom-client']],
    ['node + @kubernetes/client-node', ['@kubernetes/client-node']],
    ['node + nats, grpc-js, protobuf, pino', ['nats', '@grpc/grpc-js', '@bufbuild/protobuf', 'pino']],
  ] as [string, string[]][])
    floor.push(await layer(label, specs));
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
  const variants: [string, string, string[], boolean][] = flags.tsx
    ? [
        [
          'tsx (development)',
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'agent', 'src', 'cli', 'main.ts')],
          false,
        ],
      ]
    : [];
  if (existsSync(BUNDLE)) {
    variants.push(['bundle (shipped)', process.execPath, [...nodeFlags, BUNDLE], false]);
    variants.push(['bundle + /metrics', process.execPath, [...nodeFlags, BUNDLE], true]);
  } else results.push(`(no ${BUNDLE}: run npm run build -w @flotilla/agent to measure the shipped agent)`);
  for (const [label, cmd, pre, metrics] of variants) {
    const port = metrics ? await freePort() : 0;
    const startedAt = Date.now();
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
      const startMs = await firstReport(fleet, 'edge-1', startedAt);
      await fleet.waitSynced(['edge-1']);
      await new Promise((r) => setTimeout(r, 3000));
      const idle = await sample(p.pid!, SAMPLE_S);
      results.push(
        `${label.padEnd(18)} start → first report ${startMs} ms; idle: RSS ${idle.rssMiB.toFixed(1)} MiB (peak ${idle.peakMiB.toFixed(1)} MiB over ${SAMPLE_S} s), CPU ${idle.cpuPct.toFixed(2)} % of one core`,
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
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end; node flags: ${nodeFlags.join(' ') || 'none'}`,
    TARGETS,
    ...floor,
    'one cluster, 4 objects:',
    ...results,
  ].join('\n'),
);
