import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../harness/eventually.js';
import { type GitServer, type GitWorkdir, startGitServer } from '../harness/git-server.js';
import { type NatsServer, startNatsServer } from '../harness/nats.js';
import { type NatsCluster, startNatsCluster } from '../harness/nats-cluster.js';
import { type ManagedProcess, startProcess } from '../harness/process.js';
import { startKubeProcess } from '../kube/index.js';
import { bin, type CliResult, runCli, runJson, splitCommand } from './cli.js';

export interface FleetClusterSpec {
  name: string;
  environment: string;
  labels?: Record<string, string>;
}

export interface FleetOptions {
  /** Files of the source repository on `main`. */
  repoFiles: Record<string, string>;
  /** Extra branches created from `main` right after the initial commit. */
  branches?: string[];
  clusters: FleetClusterSpec[];
  /** Where everything lives; a temp dir by default (removed on stop). */
  baseDir?: string;
  /** `postgres://…` to run the hub on PostgreSQL instead of PGlite. */
  database?: string;
  /** Hub poll interval and heartbeat window, short for tests. */
  poll?: string;
  heartbeatWindow?: string;
  /** Delay of the simulated controllers in each Kubernetes API test server. */
  readyDelayMs?: number;
  /** Print every process's output (also FLOTILLA_E2E_ECHO=1). */
  echo?: boolean;
  /** Start agents right away (default true). */
  startAgents?: boolean;
  /** More `flotilla hub start` arguments (e.g. `--agent-credential-ttl 9s`). */
  hubArgs?: string[];
  /** Node flags for the hub process, e.g. `--cpu-prof` to profile it (NODE_OPTIONS refuses that one). */
  hubNodeArgs?: string[];
  /** The hub's nats-server: a JetStream domain and a leaf node listener, for leaf node sites. */
  nats?: { jsDomain?: string; leafnodes?: boolean };
  /** Run NATS as a JetStream cluster of this many nodes instead of one server; the hub gets every URL. */
  natsClusterSize?: number;
}

export interface FleetCluster extends FleetClusterSpec {
  kubeconfig: string;
  kube: { stop(): Promise<void>; restart(): Promise<void> };
  stateDir: string;
  agent?: ManagedProcess;
  /** What `cluster add -o json` printed. */
  token: string;
  joinCommand: string;
}

export interface HubProcess {
  process: ManagedProcess;
  http: string;
  grpc: string;
  caHash: string;
}

/** Every part of Flotilla as a real, separate process: git over HTTP, nats-server, hub, and per cluster an API server and an agent. */
export interface Fleet {
  baseDir: string;
  git: GitServer;
  repoUrl: string;
  /** A working clone on `main` to commit to and push from. */
  work: GitWorkdir;
  /** The hub's nats-server; with `natsClusterSize`, the cluster's first node. */
  nats: NatsServer;
  natsCluster?: NatsCluster;
  hub: HubProcess;
  hubDataDir: string;
  adminToken: string;
  clusters: Map<string, FleetCluster>;
  /** Environment for the CLI: FLOTILLA_HUB and FLOTILLA_TOKEN. */
  env: NodeJS.ProcessEnv;
  flotilla(...args: string[]): Promise<CliResult>;
  flotillaJson<T = unknown>(...args: string[]): Promise<T>;
  agent(cluster: string, ...args: string[]): Promise<CliResult>;
  addCluster(spec: FleetClusterSpec): Promise<FleetCluster>;
  joinAgent(cluster: string): Promise<void>;
  /** Starts `flotilla-agent run` for the cluster, with extra arguments (e.g. `--nats-url` for a leaf site) and environment. */
  startAgent(cluster: string, extraArgs?: string[], env?: NodeJS.ProcessEnv): Promise<ManagedProcess>;
  stopHub(): Promise<void>;
  startHub(): Promise<void>;
  /** POST /api/v1/webhooks/git: fetch the source now rather than at the next poll. */
  poke(): Promise<void>;
  fleetStatus(): Promise<FleetStatusRow[]>;
  waitSynced(
    clusters?: string[],
    options?: { timeoutMs?: number; revision?: Record<string, string> },
  ): Promise<FleetStatusRow[]>;
  stop(): Promise<void>;
}

export interface FleetStatusRow {
  name: string;
  environment: string;
  revision: string | null;
  generation: number | null;
  phase: string | null;
  sync: string | null;
  health: string | null;
  drifted: number;
  error: string | null;
  connected: boolean;
  lastSeen: string | null;
  /** Beyond the contract: how the newest status arrived (`stream` or `import`), and when it was observed. */
  reportedVia?: string | null;
  reportedAt?: string | null;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const echo = options.echo ?? Boolean(process.env.FLOTILLA_E2E_ECHO);
  const baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), 'flotilla-fleet-'));
  const ownsBase = !options.baseDir;
  mkdirSync(baseDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    if (ownsBase) rmSync(baseDir, { recursive: true, force: true });
  };

  try {
    const git = await startGitServer();
    stops.push(() => git.stop());
    const repoUrl = await git.createRepo('fleet', options.repoFiles);
    const clone = await git.clone('fleet', join(baseDir, 'repo'));
    // Like a user, pull before committing: the hub itself pushes promotions and rollbacks.
    const work: GitWorkdir = {
      ...clone,
      async commit(files, message) {
        const upstream = await clone.git('rev-parse', '--abbrev-ref', '@{u}').catch(() => null);
        if (upstream) await clone.git('pull', '-q', '--rebase');
        return clone.commit(files, message);
      },
    };
    for (const branch of options.branches ?? [])
      await work.git('push', '-q', 'origin', `HEAD:refs/heads/${branch}`);

    const hubDataDir = join(baseDir, 'hub');
    const init = await runJson<{ adminToken: string; caHash: string; natsConfig: string }>(bin('flotilla'), [
      'hub',
      'init',
      '--data-dir',
      hubDataDir,
      '-o',
      'json',
    ]);
    const natsCluster = options.natsClusterSize
      ? await startNatsCluster({
          size: options.natsClusterSize,
          config: readFileSync(init.natsConfig, 'utf8'),
        })
      : undefined;
    if (natsCluster) stops.push(() => natsCluster.stop());
    const nats =
      natsCluster?.nodes[0] ??
      (await startNatsServer({
        config: readFileSync(init.natsConfig, 'utf8'),
        storeDir: join(baseDir, 'nats'),
        ...(options.nats?.jsDomain ? { jsDomain: options.nats.jsDomain } : {}),
        ...(options.nats?.leafnodes ? { leafnodes: true } : {}),
      }));
    if (!natsCluster) stops.push(() => nats.stop());

    const readyFile = join(baseDir, 'hub-ready.json');
    const hubArgs = [
      'hub',
      'start',
      '--data-dir',
      hubDataDir,
      ...(natsCluster?.urls ?? [nats.url]).flatMap((url) => ['--nats', url]),
      '--repo',
      repoUrl,
      '--http',
      '127.0.0.1:0',
      '--grpc',
      '127.0.0.1:0',
      '--ready-file',
      readyFile,
      '--poll',
      options.poll ?? '2s',
      '--heartbeat-window',
      options.heartbeatWindow ?? '10s',
      ...(options.database ? ['--database', options.database] : []),
      ...(options.hubArgs ?? []),
    ];
    const launchHub = async (): Promise<HubProcess> => {
      rmSync(readyFile, { force: true });
      const [command, args]: [string, string[]] = options.hubNodeArgs?.length
        ? [process.execPath, [...options.hubNodeArgs, bin('flotilla'), ...hubArgs]]
        : [bin('flotilla'), hubArgs];
      const p = await startProcess(command, args, {
        name: 'hub',
        ready: /hub ready/,
        timeoutMs: 60_000,
        echo,
      });
      const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as {
        http: string;
        grpc: string;
        caHash: string;
      };
      return { process: p, ...ready };
    };
    let hub = await launchHub();
    // Restarting the hub keeps its ports only if asked; pin them after the first start.
    const pin = (flag: string, value: string) => {
      const i = hubArgs.indexOf(flag);
      hubArgs[i + 1] = value;
    };
    pin('--http', new URL(hub.http).host);
    pin('--grpc', hub.grpc);
    stops.push(() => fleet.hub.process.stop());

    const env: NodeJS.ProcessEnv = { FLOTILLA_HUB: hub.http, FLOTILLA_TOKEN: init.adminToken };
    const clusters = new Map<string, FleetCluster>();

    const fleet: Fleet = {
      baseDir,
      git,
      repoUrl,
      work,
      nats,
      ...(natsCluster ? { natsCluster } : {}),
      hub,
      hubDataDir,
      adminToken: init.adminToken,
      clusters,
      env,
      flotilla: (...args) => runCli(bin('flotilla'), args, env),
      flotillaJson: (...args) => runJson(bin('flotilla'), [...args, '-o', 'json'], env),
      agent: (cluster, ...args) =>
        runCli(bin('flotilla-agent'), [...args, '--state-dir', clusters.get(cluster)!.stateDir]),
      async addCluster(spec) {
        const kubeDir = join(baseDir, 'kube', spec.name);
        mkdirSync(kubeDir, { recursive: true });
        const kube = await startKubeProcess({
          name: spec.name,
          readyDelayMs: options.readyDelayMs ?? 300,
          statePath: join(kubeDir, 'state.json'),
        });
        stops.push(() => kube.stop());
        const labels = Object.entries(spec.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
        const added = await runJson<{ name: string; token: string; joinCommand: string }>(
          bin('flotilla'),
          ['cluster', 'add', spec.name, '--env', spec.environment, ...labels, '-o', 'json'],
          env,
        );
        const c: FleetCluster = {
          ...spec,
          kubeconfig: kube.kubeconfigPath,
          kube,
          stateDir: join(baseDir, 'agents', spec.name),
          token: added.token,
          joinCommand: added.joinCommand,
        };
        clusters.set(spec.name, c);
        return c;
      },
      async joinAgent(cluster) {
        const c = clusters.get(cluster)!;
        const [cmd, ...args] = splitCommand(c.joinCommand);
        // The printed command is `npx flotilla-agent join …`; run it as printed, from the project root.
        const r = await runCli(cmd === 'npx' ? 'npx' : cmd!, [
          ...args,
          '--state-dir',
          c.stateDir,
          '--kubeconfig',
          c.kubeconfig,
        ]);
        if (r.code !== 0) throw new Error(`join of ${cluster} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
      },
      async startAgent(cluster, extraArgs = [], agentEnv) {
        const c = clusters.get(cluster)!;
        const p = await startProcess(
          bin('flotilla-agent'),
          ['run', '--state-dir', c.stateDir, '--kubeconfig', c.kubeconfig, ...extraArgs],
          { name: `agent:${cluster}`, echo, ...(agentEnv ? { env: { ...process.env, ...agentEnv } } : {}) },
        );
        c.agent = p;
        stops.push(() => p.stop());
        return p;
      },
      async stopHub() {
        await fleet.hub.process.stop();
      },
      async startHub() {
        hub = await launchHub();
        fleet.hub = hub;
      },
      async poke() {
        const res = await fetch(`${fleet.hub.http}/api/v1/webhooks/git`, {
          method: 'POST',
          headers: { authorization: `Bearer ${init.adminToken}` },
        });
        if (!res.ok) throw new Error(`webhook: HTTP ${res.status} ${await res.text()}`);
      },
      async fleetStatus() {
        const out = await fleet.flotillaJson<{ clusters: FleetStatusRow[] }>('fleet', 'status');
        return out.clusters;
      },
      async waitSynced(names, opts = {}) {
        const want = names ?? [...clusters.keys()];
        return eventually(
          async () => {
            const rows = await fleet.fleetStatus();
            for (const name of want) {
              const row = rows.find((r) => r.name === name);
              if (!row) throw new Error(`${name} not in fleet status`);
              const rev = opts.revision?.[name];
              if (
                row.sync !== 'Synced' ||
                row.health !== 'Healthy' ||
                !row.connected ||
                (rev && row.revision !== rev)
              ) {
                throw new Error(`${name}: ${JSON.stringify(row)}`);
              }
            }
            return rows;
          },
          {
            timeoutMs: opts.timeoutMs ?? 90_000,
            intervalMs: 500,
            message: `fleet ${want.join(', ')} Synced and Healthy`,
          },
        );
      },
      stop: stopAll,
    };

    for (const spec of options.clusters) await fleet.addCluster(spec);
    if (options.startAgents ?? true) {
      for (const name of clusters.keys()) {
        await fleet.joinAgent(name);
        await fleet.startAgent(name);
      }
    }
    return fleet;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
