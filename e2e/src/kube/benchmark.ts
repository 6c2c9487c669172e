/**
 * How fast the test API server serves what hundreds of tests ask of it: server-side apply of N
 * Deployments over HTTP, the time until all are Available, and a rolling update of all of them
 * to completion. Prints one JSON line. Run: `node --import tsx e2e/src/kube/benchmark.ts [N]`.
 */
import type { Json } from './json.js';
import { startKubeServer } from './server.js';

const n = Number(process.argv[2] ?? 200);
const server = await startKubeServer({ readyDelayMs: 50 });
const deployment = (i: number, image: string) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `web-${i}`, namespace: 'default' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: `web-${i}` } },
      template: {
        metadata: { labels: { app: `web-${i}` } },
        spec: {
          containers: [{ name: 'web', image, resources: { requests: { cpu: '100m', memory: '64Mi' } } }],
        },
      },
    },
  });

const applyAll = async (image: string) => {
  for (let i = 0; i < n; i++) {
    const res = await fetch(
      `${server.url}/apis/apps/v1/namespaces/default/deployments/web-${i}?fieldManager=bench&force=true`,
      {
        method: 'PATCH',
        headers: { 'content-type': 'application/apply-patch+yaml' },
        body: deployment(i, image),
      },
    );
    if (!res.ok)
      throw new Error(
        `apps/v1 Deployment default/web-${i}: apply failed: HTTP ${res.status} ${await res.text()}`,
      );
  }
};

/** Resolves when every Deployment has rolled out its latest generation (checked on each change, not polled). */
const rolledOut = () =>
  new Promise<void>((resolve) => {
    const done = (d: Json) => {
      const s = d.status ?? {};
      return (
        s.observedGeneration === d.metadata.generation &&
        s.updatedReplicas === 3 &&
        s.replicas === 3 &&
        s.availableReplicas === 3
      );
    };
    const pending = new Set(
      server.api.store
        .values('apps/deployments', 'default')
        .filter((d) => !done(d))
        .map((d) => d.metadata.name as string),
    );
    if (pending.size === 0) return resolve();
    const unsubscribe = server.api.store.subscribe((ev) => {
      if (ev.typeKey !== 'apps/deployments') return;
      if (done(ev.object)) pending.delete(ev.object.metadata.name);
      else pending.add(ev.object.metadata.name);
      if (pending.size === 0) {
        unsubscribe();
        resolve();
      }
    });
  });

const t0 = performance.now();
await applyAll('nginx:1.25');
const t1 = performance.now();
await rolledOut();
const t2 = performance.now();
await applyAll('nginx:1.26');
await rolledOut();
const t3 = performance.now();
await server.stop();
process.stdout.write(
  `${JSON.stringify({
    deployments: n,
    applyMs: Math.round(t1 - t0),
    appliesPerSecond: Math.round((n * 1000) / (t1 - t0)),
    availableMs: Math.round(t2 - t0),
    rollingUpdateMs: Math.round(t3 - t2),
  })}\n`,
);
