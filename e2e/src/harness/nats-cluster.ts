import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';
import { type NatsServer, startNatsServer } from './nats.js';

export interface NatsClusterOptions {
  /** How many nodes; 3 by default (the smallest cluster that keeps a quorum with one node down). */
  size?: number;
  /**
   * Extra configuration given to every node (e.g. operator mode from `flotilla hub init`).
   * A full account resolver's `dir` is replaced by one of the node's own, as each pod of the
   * deploy's StatefulSet keeps its resolver on its own volume: nodes never share that dir.
   */
  config?: string;
  /** The NATS cluster's name; `flotilla` by default. */
  name?: string;
}

/** One node of a test cluster: a real nats-server with its own ports and store dir. */
export interface NatsClusterNode extends NatsServer {
  /** `server_name`, e.g. `n1`: what JetStream reports as a stream's leader or replica. */
  name: string;
  /** Its monitoring endpoint (`/healthz`, `/jsz`), `http://127.0.0.1:PORT`. */
  monitorUrl: string;
  /** SIGKILL: the node dies without a goodbye, as a crashed pod does. */
  kill(): Promise<void>;
}

/**
 * A JetStream cluster of real nats-servers on loopback: each node has a free client, route
 * and monitoring port and its own store dir, and routes to every other node.
 */
export interface NatsCluster {
  nodes: NatsClusterNode[];
  /** Every node's client URL, as a client's server list. */
  urls: string[];
  /** Resolves once every running node is healthy with JetStream and sees a meta leader. */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

/** Distinct free ports: one client, route and monitoring port per node. */
async function clusterPorts(size: number): Promise<{ client: number; route: number; monitor: number }[]> {
  const taken = new Set<number>();
  const next = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const ports = [];
  for (let i = 0; i < size; i++)
    ports.push({ client: await next(), route: await next(), monitor: await next() });
  return ports;
}

/** Tries with fresh ports when a node cannot start: a free port may be taken before the node binds it. */
const START_ATTEMPTS = 3;

/**
 * Starts a clustered JetStream (`server_name`, `cluster { name, listen, routes }`, a store
 * dir per node, removed on stop) and waits until it has elected a meta leader, so a stream
 * can be created at once. Nodes start together: each waits for its peers before JetStream is
 * ready. A port picked as free can be taken before its node binds it (by another node's
 * outgoing route, say): then every node is stopped and the cluster starts again on new ports.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-cluster-'));
  const clusterName = options.name ?? 'flotilla';
  const startNode = async (
    p: { client: number; route: number; monitor: number },
    i: number,
    routes: string[],
  ): Promise<NatsClusterNode> => {
    const name = `n${i + 1}`;
    const server = await startNatsServer({
      port: p.client,
      config: [
        `server_name: ${name}`,
        `http: 127.0.0.1:${p.monitor}`,
        `cluster { name: ${clusterName}, listen: 127.0.0.1:${p.route}, routes: [${routes.filter((_, j) => j !== i).join(', ')}] }`,
        (options.config ?? '').replace(
          /(resolver:\s*\{[^}]*\bdir:\s*)"[^"]*"/,
          `$1${JSON.stringify(join(dir, name, 'resolver'))}`,
        ),
      ].join('\n'),
    });
    return Object.assign(server, {
      name,
      monitorUrl: `http://127.0.0.1:${p.monitor}`,
      async kill() {
        server.process.kill('SIGKILL');
        await server.process.exited;
      },
    });
  };
  let nodes: NatsClusterNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  for (let attempt = 1; ; attempt++) {
    const ports = await clusterPorts(size);
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`);
    const started = await Promise.allSettled(ports.map((p, i) => startNode(p, i, routes)));
    nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (!failed) break;
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];
    if (attempt >= START_ATTEMPTS) {
      await stop();
      throw new Error(`nats cluster: a node did not start (${attempt} attempts): ${String(failed.reason)}`, {
        cause: failed.reason,
      });
    }
  }
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    async ready(timeoutMs = 30_000) {
      await eventually(
        async () => {
          for (const node of nodes.filter((n) => n.process.alive)) {
            const health = await fetch(`${node.monitorUrl}/healthz?js-enabled-only=true`);
            if (!health.ok) throw new Error(`${node.name}: /healthz answered ${health.status}`);
            const jsz = (await (await fetch(`${node.monitorUrl}/jsz`)).json()) as Jsz;
            if (!jsz.meta_cluster?.leader) throw new Error(`${node.name}: no JetStream meta leader yet`);
          }
        },
        { timeoutMs, intervalMs: 200, message: `nats cluster ${clusterName} ready` },
      );
    },
    stop,
  };
  try {
    await cluster.ready();
  } catch (err) {
    await stop();
    throw err;
  }
  return cluster;
}
