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

/**
 * Starts a clustered JetStream (`server_name`, `cluster { name, listen, routes }`, a store
 * dir per node, removed on stop) and waits until it has elected a meta leader, so a stream can be created at
 * once. Nodes start together: each waits for its peers before JetStream is ready.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-cluster-'));
  const clusterName = options.name ?? 'flotilla';
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    })),
  );
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`);
  const started = await Promise.allSettled(
    ports.map(async (p, i) => {
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
      const node: NatsClusterNode = Object.assign(server, {
        name,
        monitorUrl: `http://127.0.0.1:${p.monitor}`,
        async kill() {
          server.process.kill('SIGKILL');
          await server.process.exited;
        },
      });
      return node;
    }),
  );
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stop();
    throw new Error(`nats cluster: a node did not start: ${String(failed.reason)}`, { cause: failed.reason });
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
