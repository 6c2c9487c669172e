import {
  formatIdentity,
  identityKey,
  identityOf,
  type KubeObject,
  type Logger,
  type ObjectIdentity,
} from '@flotilla/shared';
import { apiMessage, type Cluster, type WatchStream } from './cluster.js';
import type { DriftClock } from './diff.js';
import { reportFor } from './report.js';
import { sleep } from './retry.js';
import type { ResourceReport, WatchHandle } from './types.js';

export interface WatchContext {
  cluster: Cluster;
  clock: DriftClock;
  logger: Logger;
  /** Changes within this window are reported together. */
  debounceMs: number;
}

/** One list+watch stream: a kind in one namespace ('' for cluster scope or all of a kind). */
interface Target {
  apiVersion: string;
  kind: string;
  namespace: string;
  /** The bundle's objects this stream covers, by name. */
  names: Map<string, string>;
}

/** What a report change means to a listener: sync, health or the drift itself. */
function signature(r: ResourceReport): string {
  return JSON.stringify([r.sync, r.health, r.drift.map((d) => [d.path, d.desired, d.live]), r.error ?? '']);
}

/**
 * Watches every object of a bundle with one list+watch per kind and namespace, and calls
 * `onChange` with the reports of all of the bundle's objects whenever one of them changes
 * sync, health or drift. The first list is compared with `known` (what the caller last saw,
 * such as the apply's reports) and is reported only where it differs; a stream that ends
 * (timeout, 410 Gone, network) relists and reports what changed while it was away.
 */
export function watchObjects(
  objects: readonly KubeObject[],
  ctx: WatchContext,
  onChange: (resources: ResourceReport[]) => void,
  known: readonly ResourceReport[] = [],
): WatchHandle {
  const desired = new Map<string, { id: ObjectIdentity; obj: KubeObject }>();
  const reports = new Map<string, ResourceReport>();
  const targets = new Map<string, Target>();
  for (const obj of objects) {
    let id: ObjectIdentity;
    try {
      id = identityOf(obj);
    } catch {
      continue;
    }
    const key = identityKey(id);
    desired.set(key, { id, obj });
    const tkey = `${obj.apiVersion}|${id.kind}|${id.namespace}`;
    let t = targets.get(tkey);
    if (!t) {
      t = { apiVersion: obj.apiVersion, kind: id.kind, namespace: id.namespace, names: new Map() };
      targets.set(tkey, t);
    }
    t.names.set(id.name, key);
  }

  for (const r of known) if (desired.has(identityKey(r.id))) reports.set(identityKey(r.id), r);

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const controllers = new Set<WatchStream>();
  const wakers = new Set<AbortController>();

  const emit = () => {
    timer = undefined;
    if (stopped) return;
    const all = [...desired.keys()].map((k) => reports.get(k)).filter((r): r is ResourceReport => !!r);
    try {
      onChange(all);
    } catch (err) {
      ctx.logger.error({ err: apiMessage(err) }, 'drift listener failed');
    }
  };

  const update = (key: string, live: KubeObject | undefined, baseline: boolean) => {
    const d = desired.get(key);
    if (!d) return;
    const next = reportFor(d.id, d.obj, live, ctx.clock);
    const before = reports.get(key);
    reports.set(key, next);
    if ((baseline && !before) || (before && signature(before) === signature(next))) return;
    ctx.logger.debug({ object: formatIdentity(d.id), sync: next.sync, health: next.health }, 'live change');
    if (!timer) timer = setTimeout(emit, ctx.debounceMs);
  };

  async function run(t: Target): Promise<void> {
    let first = true;
    let failures = 0;
    while (!stopped) {
      try {
        const info = await ctx.cluster.resource(t.apiVersion, t.kind);
        if (!info) throw new Error(`the API server does not serve ${t.apiVersion} ${t.kind}`);
        const ns = info.namespaced ? t.namespace : '';
        const list = await ctx.cluster.list(t.apiVersion, t.kind, ns || undefined);
        for (const [name, key] of t.names) {
          const live = list.items.find(
            (i) =>
              i.metadata.name === name &&
              (!info.namespaced || i.metadata.namespace === (t.namespace || 'default')),
          );
          update(key, live, first);
        }
        first = false;
        const path = `${t.apiVersion} ${info.name}${ns ? ` in ${ns}` : ''}`;
        await new Promise<void>((resolve) => {
          let controller: WatchStream | undefined;
          const finish = (err: unknown) => {
            if (controller) controllers.delete(controller);
            if (err && !stopped) ctx.logger.debug({ path, err: apiMessage(err) }, 'watch ended');
            resolve();
          };
          ctx.cluster
            .watch(
              {
                apiVersion: t.apiVersion,
                kind: t.kind,
                resource: info,
                ...(ns ? { namespace: ns } : {}),
                resourceVersion: list.resourceVersion,
              },
              (type: string, obj: KubeObject) => {
                if (type === 'ERROR') {
                  // 410 Gone and friends: end this stream and relist.
                  controller?.abort();
                  return;
                }
                if (type === 'BOOKMARK' || !obj?.metadata?.name) return;
                if (info.namespaced && (obj.metadata.namespace ?? '') !== (t.namespace || 'default')) return;
                const key = t.names.get(obj.metadata.name);
                if (!key) return;
                failures = 0;
                update(
                  key,
                  type === 'DELETED'
                    ? undefined
                    : { ...obj, apiVersion: obj.apiVersion ?? t.apiVersion, kind: obj.kind ?? t.kind },
                  false,
                );
              },
              finish,
            )
            .then((c) => {
              controller = c;
              controllers.add(c);
              if (stopped) c.abort();
            }, finish);
        });
      } catch (err) {
        failures++;
        ctx.logger.debug({ kind: t.kind, namespace: t.namespace, err: apiMessage(err) }, 'list failed');
      }
      if (stopped) break;
      const waker = new AbortController();
      wakers.add(waker);
      await sleep(Math.min(200 * 2 ** Math.min(failures, 5), 5000), waker.signal).catch(() => {});
      wakers.delete(waker);
    }
  }

  const loops = [...targets.values()].map((t) => run(t));
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const c of controllers) c.abort();
      for (const w of wakers) w.abort();
      await Promise.all(loops);
    },
  };
}
