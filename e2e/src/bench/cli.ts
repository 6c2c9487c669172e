/**
 * `npm run bench:cli`: how quickly and in how much memory the `flotilla` command a user runs
 * (node_modules/.bin/flotilla, the esbuild bundle on plain node) answers, as kubectl would:
 * `--help` with no hub, and client commands against a running hub (a real fleet: git over
 * HTTP, nats-server, the hub on PGlite, clusters with agents, all Synced). Each command runs
 * as its own process, one after the other; wall time is spawn to exit as the shell sees it,
 * RSS is the process's peak (getrusage, read by a one-line `--import` hook at exit). For
 * comparison it also times the same CLI run from its TypeScript sources through tsx (how the
 * bin ran before the bundle) and `kubectl version --client`. `flotilla-agent --help` is timed
 * the same way (bundle and tsx). `--help-only` times only the `--help` lines, with no fleet.
 *
 *   npm run bench:cli -- [--runs N] [--help-only]
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bin, ROOT } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { startFleet } from '../fleet/fleet.js';
import { machineLine, msStats } from './report.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, 'help-only': { type: 'boolean', default: false } },
});
const runs = Number(values.runs);

/** Target of issue 17: client commands ≤ 150 ms and ≤ 60 MiB, `--help` ≤ 100 ms. */
const TARGET = { helpMs: 100, clientMs: 150, rssMiB: 60 };

/** Prints the process's peak RSS (KiB) and CPU time (µs) on stderr as it exits (URL-encoded: NODE_OPTIONS splits on spaces). */
const PEAK_RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  'process.on("exit", () => { const u = process.resourceUsage(); ' +
    'process.stderr.write("\\nbench-usage " + u.maxRSS + " " + (u.userCPUTime + u.systemCPUTime) + "\\n"); });',
)}`;

interface Sample {
  ms: number;
  rssMiB: number | undefined;
  cpuMs: number | undefined;
}

/** Runs one command to its exit; node commands get the RSS hook through NODE_OPTIONS. */
function once(cmd: string, args: string[], env: NodeJS.ProcessEnv, node: boolean): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, ...env, ...(node ? { NODE_OPTIONS: `--import=${PEAK_RSS_HOOK}` } : {}) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr}`));
      const usage = /bench-usage (\d+) (\d+)/.exec(stderr);
      resolve({
        ms,
        rssMiB: usage ? Number(usage[1]) / 1024 : undefined,
        cpuMs: usage ? Number(usage[2]) / 1000 : undefined,
      });
    });
  });
}

async function measure(
  label: string,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  n: number,
  targetMs?: number,
): Promise<string> {
  const node = cmd !== 'kubectl';
  await once(cmd, args, env, node); // warm the page cache; not counted
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push(await once(cmd, args, env, node));
  const ms = samples.map((s) => s.ms);
  const rss = samples.map((s) => s.rssMiB).filter((x): x is number => x !== undefined);
  const cpu = samples.map((s) => s.cpuMs).filter((x): x is number => x !== undefined);
  const cpuMedian = cpu.length ? [...cpu].sort((a, b) => a - b)[Math.floor(cpu.length / 2)]! : undefined;
  const median = [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  const peak = rss.length ? Math.max(...rss) : undefined;
  const verdict =
    targetMs === undefined
      ? ''
      : `  [${median <= targetMs ? 'ok' : 'OVER'} ≤ ${targetMs} ms; ${
          peak !== undefined && peak <= TARGET.rssMiB ? 'ok' : 'OVER'
        } ≤ ${TARGET.rssMiB} MiB]`;
  return `${label.padEnd(36)} wall ${msStats(ms)}; CPU median ${cpuMedian === undefined ? 'n/a' : `${cpuMedian.toFixed(0)} ms`}; peak RSS ${peak === undefined ? 'n/a' : `${peak.toFixed(0)} MiB`}${verdict}`;
}

/** `--help` of both commands from the bundle a user runs; and for comparison, from source through tsx. */
async function helpLines(): Promise<{ bundle: string[]; comparison: string[] }> {
  const fromSource = (pkg: string) => ['--import', 'tsx', join(ROOT, pkg, 'src', 'cli', 'main.ts'), '--help'];
  return {
    bundle: [
      await measure('flotilla --help', bin('flotilla'), ['--help'], {}, runs, TARGET.helpMs),
      await measure('flotilla-agent --help', bin('flotilla-agent'), ['--help'], {}, runs, TARGET.helpMs),
    ],
    comparison: [
      await measure('  node -e 0 (the floor)', process.execPath, ['-e', '0'], {}, 3),
      await measure('  from source via tsx: --help', process.execPath, fromSource('hub'), {}, 3),
      await measure('  from source via tsx: agent --help', process.execPath, fromSource('agent'), {}, 3),
    ],
  };
}

const lines: string[] = [];
if (values['help-only']) {
  const help = await helpLines();
  lines.push(...help.bundle, 'for comparison (3 runs each):', ...help.comparison);
} else {
  const fleet = await startFleet({
    repoFiles: {
      'flotilla.yaml':
        'environments:\n  - {name: dev, path: environments/dev}\n  - {name: prod, path: environments/prod}\n',
      ...appFiles('dev'),
      ...appFiles('prod'),
    },
    clusters: [
      { name: 'dev-1', environment: 'dev' },
      { name: 'dev-2', environment: 'dev' },
      { name: 'prod-1', environment: 'prod' },
    ],
    poll: '60s',
    heartbeatWindow: '30s',
    readyDelayMs: 0,
  });
  try {
    await fleet.waitSynced();
    const flotilla = bin('flotilla');
    const env = fleet.env;
    const help = await helpLines();
    lines.push(...help.bundle);
    for (const args of [
      ['cluster', 'list'],
      ['cluster', 'show', 'dev-1'],
      ['fleet', 'status'],
      ['fleet', 'status', '-o', 'json'],
      ['fleet', 'drift'],
      ['promote', '--history'],
      ['audit'],
    ])
      lines.push(await measure(`flotilla ${args.join(' ')}`, flotilla, args, env, runs, TARGET.clientMs));
    lines.push('for comparison (3 runs each):', ...help.comparison);
    lines.push(
      await measure(
        '  from source via tsx: cluster list',
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'hub', 'src', 'cli', 'main.ts'), 'cluster', 'list'],
        env,
        3,
      ),
    );
    lines.push(
      await measure('  kubectl version --client', 'kubectl', ['version', '--client'], {}, 3).catch(
        (err: Error) => `  kubectl version --client: not measured (${err.message.split('\n')[0]})`,
      ),
    );
  } finally {
    await fleet.stop();
  }
}
console.log(
  [
    'Flotilla CLI benchmark',
    machineLine(),
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end (wall times stretch with it; CPU time much less)`,
    `${runs} runs per command after one warm-up run, one at a time; ${
      values['help-only'] ? 'no hub' : 'hub on PGlite with 3 clusters, all Synced'
    }`,
    ...lines,
    `(targets: --help ≤ ${TARGET.helpMs} ms, client commands ≤ ${TARGET.clientMs} ms and ≤ ${TARGET.rssMiB} MiB, on the median)`,
  ].join('\n'),
);
