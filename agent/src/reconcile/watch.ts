import {
  backoffDelay,
  formatIdentity,
  identityKey,
  identityOf,
  type KubeObject,
  type Logger,
  type ObjectIdentity,
} from '@flotilla/shared';
import { apiMessage, type Cluster, type WatchStream } from './cluster.js';
import { sleep } from './retry.js';
import type { ResourceReport, WatchHandle } from './types.js';

export interface WatchContext {
  cluster: Cluster;
  /**
   * The report of one object from its live state: the server's dry run decides drift (see
   * drift-check.ts); `fresh` skips the cached verdict. Never rejects.
   */
  report(
    id: ObjectIdentity,
    desired: KubeObject,
    live: KubeObject | undefined,
    fresh: boolean,
  ): Promise<ResourceReport>;
  logger: Logger;
  /** Changes within this window are reported together. */
  debounceMs: number;
  /** How often every object is checked again without an event; 0: never. */
  resyncMs: number;
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
 * sync, health or drift. The watch is what makes it fast; what counts as drift is the server's
 * dry run, made per event (coalesced per object: only the newest state is checked). The first
 * list is compared with `known` (what the caller last saw, such as the apply's reports) and is
 * reported only where it differs; a stream that ends (timeout, 410 Gone, network) relists and
 * reports what changed while it was away.
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

  /** Per object: a counter of events, the newest state not yet checked, and the chain of checks. */
  const seq = new Map<string, number>();
  const latest = new Map<string, { live: KubeObject | undefined; baseline: boolean; fresh: boolean }>();
  const chains = new Map<string, Promise<void>>();

  /** Checks the newest state of one object after any check of it in flight; resolves when done. */
  const update = (
    key: string,
    live: KubeObject | undefined,
    baseline: boolean,
    fresh = false,
  ): Promise<void> => {
    const d = desired.get(key);
    if (!d) return Promise.resolve();
    const n = (seq.get(key) ?? 0) + 1;
    seq.set(key, n);
    const unchecked = latest.get(key);
    latest.set(key, {
      live,
      baseline: baseline && (unchecked?.baseline ?? true),
      fresh: fresh || (unchecked?.fresh ?? false),
    });
    const run = (chains.get(key) ?? Promise.resolve()).then(async () => {
      // A newer event for this object is queued behind: only that one is worth a check.
      if (stopped || seq.get(key) !== n) return;
      const item = latest.get(key);
      latest.delete(key);
      if (!item) return;
      let next: ResourceReport;
      try {
        next = await ctx.report(d.id, d.obj, item.live, item.fresh);
      } catch (err) {
        ctx.logger.error({ object: formatIdentity(d.id), err: apiMessage(err) }, 'drift check failed');
        return;
      }
      if (stopped) return;
      const before = reports.get(key);
      reports.set(key, next);
      if ((item.baseline && !before) || (before && signature(before) === signature(next))) return;
      ctx.logger.debug({ object: formatIdentity(d.id), sync: next.sync, health: next.health }, 'live change');
      if (!timer) timer = setTimeout(emit, ctx.debounceMs);
    });
    const settled = run.catch(() => {});
    chains.set(key, settled);
    return settled;
  };

  /** The live object of one of a target's names in a list, if there. */
  const find = (items: KubeObject[], t: Target, name: string, namespaced: boolean) =>
    items.find(
      (i) => i.metadata.name === name && (!namespaced || i.metadata.namespace === (t.namespace || 'default')),
    );

  async function run(t: Target, connected: () => void): Promise<void> {
    let first = true;
    let failures = 0;
    while (!stopped) {
      try {
        const info = await ctx.cluster.resource(t.apiVersion, t.kind);
        if (!info) throw new Error(`the API server does not serve ${t.apiVersion} ${t.kind}`);
        const ns = info.namespaced ? t.namespace : '';
        const list = await ctx.cluster.list(t.apiVersion, t.kind, ns || undefined);
        const checks = [...t.names].map(([name, key]) =>
          update(key, find(list.items, t, name, info.namespaced), first),
        );
        // The baseline is taken before the watch counts as connected.
        if (first) await Promise.all(checks);
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
                void update(
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
              connected();
              if (stopped) c.abort();
            }, finish);
        });
      } catch (err) {
        failures++;
        ctx.logger.debug({ kind: t.kind, namespace: t.namespace, err: apiMessage(err) }, 'list failed');
        // A kind the server does not serve (yet) must not hold `ready` back for the others.
        connected();
      }
      if (stopped) break;
      const waker = new AbortController();
      wakers.add(waker);
      await sleep(backoffDelay(failures, { baseMs: 200, maxMs: 5000, maxDoublings: 5 }), waker.signal).catch(
        () => {},
      );
      wakers.delete(waker);
    }
  }

  /** Lists every target again and checks each object with a fresh dry run. */
  async function resync(): Promise<void> {
    await Promise.all(
      [...targets.values()].map(async (t) => {
        try {
          const info = await ctx.cluster.resource(t.apiVersion, t.kind);
          if (!info) return;
          const list = await ctx.cluster.list(
            t.apiVersion,
            t.kind,
            info.namespaced ? t.namespace || undefined : undefined,
          );
          await Promise.all(
            [...t.names].map(([name, key]) =>
              update(key, find(list.items, t, name, info.namespaced), false, true),
            ),
          );
        } catch (err) {
          ctx.logger.debug(
            { kind: t.kind, namespace: t.namespace, err: apiMessage(err) },
            'resync list failed',
          );
        }
      }),
    );
  }

  let readyNow: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    readyNow = resolve;
  });
  const waiting = new Set(targets.keys());
  if (waiting.size === 0) readyNow();
  const loops = [...targets.entries()].map(([tkey, t]) =>
    run(t, () => {
      if (waiting.delete(tkey) && waiting.size === 0) readyNow();
    }),
  );
  const resyncTimer = ctx.resyncMs > 0 ? setInterval(() => void resync(), ctx.resyncMs) : undefined;
  resyncTimer?.unref?.();
  return {
    ready,
    resync,
    async stop() {
      stopped = true;
      readyNow();
      if (resyncTimer) clearInterval(resyncTimer);
      if (timer) clearTimeout(timer);
      for (const c of controllers) c.abort();
      for (const w of wakers) w.abort();
      await Promise.all(loops);
      await Promise.all(chains.values());
    },
  };
}
