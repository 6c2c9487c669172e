import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../harness/eventually.js';
import { startProcess } from '../harness/process.js';
import type { Json } from './json.js';
import { type KubeServer, startKubeServer } from './server.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('real kubectl against the test API server', () => {
  let server: KubeServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const kubectl = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Result> =>
    new Promise((resolve) => {
      execFile('kubectl', args, { env: { ...env, ...extraEnv }, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });

  /** Runs kubectl and fails the test with its stderr when it fails. */
  const ok = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<string> => {
    const r = await kubectl(args, extraEnv);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  const getJson = async (args: string[]): Promise<Json> => JSON.parse(await ok([...args, '-o', 'json']));

  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  const deployment = (name: string, image: string, replicas = 2) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: {app: ${name}}
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: app
        image: ${image}
        ports:
        - containerPort: 8080
        env:
        - {name: MODE, value: one}
`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubectl-spec-'));
    server = await startKubeServer({ readyDelayMs: 200 });
    const kubeconfig = join(dir, 'kubeconfig');
    server.writeKubeconfig(kubeconfig);
    env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache'), HOME: dir };
  });

  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl apply --server-side creates a Deployment with server defaults, and kubectl wait sees it Available', async () => {
    const file = write('ssa.yaml', deployment('ssa-web', 'nginx:1.25'));
    const out = await ok(['apply', '--server-side', '-f', file]);
    assert.match(out, /deployment.apps\/ssa-web serverside-applied/);
    await ok(['wait', '--for=condition=Available', 'deployment/ssa-web', '--timeout=30s']);
    const live = await getJson(['get', 'deployment', 'ssa-web', '--show-managed-fields']);
    assert.equal(live.spec.strategy.type, 'RollingUpdate');
    assert.equal(live.spec.revisionHistoryLimit, 10);
    assert.equal(live.spec.progressDeadlineSeconds, 600);
    const c = live.spec.template.spec.containers[0];
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.equal(c.terminationMessagePath, '/dev/termination-log');
    assert.equal(c.ports[0].protocol, 'TCP');
    assert.equal(live.status.readyReplicas, 2);
    assert.equal(live.status.observedGeneration, 1);
    const apply = live.metadata.managedFields.find(
      (m: Json) => m.manager === 'kubectl' && m.operation === 'Apply',
    );
    assert.ok(apply, 'kubectl owns the applied fields');
    assert.ok(apply.fieldsV1['f:spec']['f:replicas'], 'kubectl owns .spec.replicas');
  });

  test('client-side kubectl apply stores last-applied, kubectl diff shows a change before the second apply makes it', async () => {
    const file = write('csa.yaml', deployment('csa-web', 'nginx:1.25'));
    await ok(['apply', '-f', file]);
    const first = await getJson(['get', 'deployment', 'csa-web']);
    assert.ok(
      first.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'],
      'last-applied is stored',
    );
    const unchanged = await kubectl(['diff', '-f', file]);
    assert.equal(
      unchanged.code,
      0,
      `no diff expected against an unchanged manifest:\n${unchanged.stdout}${unchanged.stderr}`,
    );
    const changed = write('csa2.yaml', deployment('csa-web', 'nginx:1.26'));
    const diff = await kubectl(['diff', '-f', changed]);
    assert.equal(diff.code, 1, diff.stderr);
    assert.match(diff.stdout, /-\s+image: nginx:1\.25/);
    assert.match(diff.stdout, /\+\s+image: nginx:1\.26/);
    assert.equal(
      (await getJson(['get', 'deployment', 'csa-web'])).spec.template.spec.containers[0].image,
      'nginx:1.25',
    );
    await ok(['apply', '-f', changed]);
    const second = await getJson(['get', 'deployment', 'csa-web']);
    assert.equal(second.spec.template.spec.containers[0].image, 'nginx:1.26');
    assert.equal(second.metadata.generation, 2);
    const again = await ok(['apply', '-f', changed]);
    assert.match(again, /unchanged/);
  });

  test('kubectl apply --server-side takes over an object made by client-side apply, and diff --server-side shows the next change', async () => {
    const file = write('upgrade.yaml', deployment('upgrade-web', 'nginx:1.25'));
    await ok(['apply', '-f', file]);
    await ok(['apply', '--server-side', '-f', file]);
    const live = await getJson(['get', 'deployment', 'upgrade-web', '--show-managed-fields']);
    const managers = live.metadata.managedFields.map((m: Json) => `${m.manager}/${m.operation}`);
    assert.ok(managers.includes('kubectl/Apply'), `managers: ${managers}`);
    assert.ok(!managers.includes('kubectl-client-side-apply/Update'), `managers: ${managers}`);
    const changed = write('upgrade2.yaml', deployment('upgrade-web', 'nginx:1.25', 4));
    const diff = await kubectl(['diff', '--server-side', '-f', changed]);
    assert.equal(diff.code, 1, diff.stderr);
    assert.match(diff.stdout, /-\s+replicas: 2/);
    assert.match(diff.stdout, /\+\s+replicas: 4/);
    await ok(['apply', '--server-side', '-f', changed]);
    assert.equal((await getJson(['get', 'deployment', 'upgrade-web'])).spec.replicas, 4);
  });

  test('kubectl get -o yaml prints the object; list and table output work', async () => {
    write(
      'cm.yaml',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, labels: {tier: a}}\ndata: {k: v}\n',
    );
    await ok(['apply', '-f', join(dir, 'cm.yaml')]);
    const yaml = await ok(['get', 'configmap', 'plain', '-o', 'yaml']);
    assert.match(yaml, /kind: ConfigMap/);
    assert.match(yaml, /resourceVersion: "\d+"/);
    assert.match(yaml, /uid: [0-9a-f-]{36}/);
    const table = await ok(['get', 'configmaps', '-l', 'tier in (a,b)']);
    assert.match(table, /^NAME\s+DATA\s+AGE/m);
    assert.match(table, /^plain\s+1\s+/m);
    const none = await ok(['get', 'configmaps', '-l', 'tier=zzz']);
    assert.doesNotMatch(none, /plain/);
  });

  test('kubectl patch (strategic, merge, json), scale and label; generation moves on spec changes only', async () => {
    await ok(['apply', '--server-side', '-f', write('p.yaml', deployment('patch-web', 'nginx:1.25'))]);
    await ok([
      'patch',
      'deployment',
      'patch-web',
      '-p',
      '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"EXTRA","value":"2"}],"ports":[{"containerPort":9090}]}]}}}}',
    ]);
    let live = await getJson(['get', 'deployment', 'patch-web']);
    const c = live.spec.template.spec.containers[0];
    assert.deepEqual(
      c.env.map((e: Json) => e.name),
      ['MODE', 'EXTRA'],
      'env merged by name',
    );
    assert.deepEqual(
      c.ports.map((p: Json) => p.containerPort),
      [8080, 9090],
      'ports merged by containerPort',
    );
    assert.equal(live.metadata.generation, 2);
    await ok(['label', 'deployment', 'patch-web', 'team=blue']);
    await ok([
      'patch',
      'deployment',
      'patch-web',
      '--type=merge',
      '-p',
      '{"metadata":{"annotations":{"note":"x"}}}',
    ]);
    live = await getJson(['get', 'deployment', 'patch-web']);
    assert.equal(live.metadata.labels.team, 'blue');
    assert.equal(live.metadata.annotations.note, 'x');
    assert.equal(live.metadata.generation, 2, 'metadata changes do not bump generation');
    await ok(['scale', 'deployment', 'patch-web', '--replicas=4']);
    await ok([
      'patch',
      'deployment',
      'patch-web',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]',
    ]);
    live = await getJson(['get', 'deployment', 'patch-web']);
    assert.equal(live.spec.replicas, 4);
    assert.equal(live.spec.revisionHistoryLimit, 3);
    assert.equal(live.metadata.generation, 4);
    await eventually(async () => {
      const d = await getJson(['get', 'deployment', 'patch-web']);
      assert.equal(d.status.observedGeneration, 4);
      assert.equal(d.status.readyReplicas, 4);
    });
  });

  test('kubectl edit with KUBE_EDITOR as a script updates the object', async () => {
    await ok(['apply', '-f', write('e.yaml', deployment('edit-web', 'nginx:1.25'))]);
    const editor = write('editor.sh', '#!/bin/sh\nsed -i "s/value: one/value: edited/" "$1"\n');
    chmodSync(editor, 0o755);
    const out = await ok(['edit', 'deployment', 'edit-web'], { KUBE_EDITOR: editor, EDITOR: editor });
    assert.match(out, /edited/);
    const live = await getJson(['get', 'deployment', 'edit-web']);
    assert.equal(live.spec.template.spec.containers[0].env[0].value, 'edited');
  });

  test('kubectl get --watch prints a row for each change', async () => {
    await ok(['create', 'configmap', 'watched', '--from-literal=a=1']);
    const watch = await startProcess(
      'kubectl',
      ['get', 'configmap', 'watched', '--watch', '--request-timeout=60s'],
      {
        env,
        name: 'kubectl watch',
        ready: /^watched\s+1\s+/m,
      },
    );
    try {
      await ok(['patch', 'configmap', 'watched', '--type=merge', '-p', '{"data":{"b":"2"}}']);
      await watch.waitFor(/^watched\s+2\s+/m, 20_000);
      await ok(['delete', 'configmap', 'watched']);
      const watchesBefore = server.openWatches('configmaps');
      const json = await startProcess(
        'kubectl',
        ['get', 'configmaps', '--watch-only', '-o', 'json', '--output-watch-events', '--request-timeout=60s'],
        { env, name: 'kubectl watch json' },
      );
      try {
        // --watch-only prints nothing until an event: its watch request reaching the server is the ready signal
        await eventually(() =>
          assert.ok(server.openWatches('configmaps') > watchesBefore, 'watch not open yet'),
        );
        await ok(['create', 'configmap', 'watched-2', '--from-literal=a=1']);
        await json.waitFor(/"type":\s*"ADDED".*"name":\s*"watched-2"/, 20_000);
      } finally {
        await json.stop();
      }
    } finally {
      await watch.stop();
    }
  });

  test('kubectl delete removes the object, and get then reports NotFound in the real server words', async () => {
    await ok(['create', 'configmap', 'doomed', '--from-literal=a=1']);
    assert.match(await ok(['delete', 'configmap', 'doomed']), /configmap "doomed" deleted/);
    const r = await kubectl(['get', 'configmap', 'doomed']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(NotFound\): configmaps "doomed" not found/);
  });

  test('server-side apply by a second manager conflicts on a field the first owns, naming both; --force-conflicts takes it', async () => {
    const file = write('own.yaml', deployment('owned', 'nginx:1.25', 2));
    await ok(['apply', '--server-side', '--field-manager=team-a', '-f', file]);
    const other = write('own-b.yaml', deployment('owned', 'nginx:1.25', 5));
    const r = await kubectl(['apply', '--server-side', '--field-manager=team-b', '-f', other]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /Apply failed with 1 conflict: conflict with "team-a" using apps\/v1: \.spec\.replicas/,
    );
    await ok(['apply', '--server-side', '--field-manager=team-b', '--force-conflicts', '-f', other]);
    const live = await getJson(['get', 'deployment', 'owned', '--show-managed-fields']);
    assert.equal(live.spec.replicas, 5);
    const a = live.metadata.managedFields.find((m: Json) => m.manager === 'team-a');
    assert.equal(a.fieldsV1['f:spec']['f:replicas'], undefined, 'team-a lost .spec.replicas');
    // same value by both managers is shared ownership, not a conflict
    await ok([
      'apply',
      '--server-side',
      '--field-manager=team-a',
      '-f',
      write('own-a2.yaml', deployment('owned', 'nginx:1.25', 5)),
    ]);
  });

  test('a custom resource is refused before its CRD exists and served once the CRD is Established', async () => {
    const cr = write(
      'cr.yaml',
      'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n',
    );
    const before = await kubectl(['apply', '-f', cr]);
    assert.notEqual(before.code, 0);
    assert.match(before.stderr, /no matches for kind "Widget" in version "example.com\/v1"/);
    const crd = write(
      'crd.yaml',
      `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
`,
    );
    await ok(['apply', '-f', crd]);
    await ok(['wait', '--for=condition=Established', 'crd/widgets.example.com', '--timeout=30s']);
    await ok(['apply', '--server-side', '-f', cr]);
    await ok(['patch', 'wd', 'w1', '--type=merge', '-p', '{"spec":{"size":4}}']);
    const live = await getJson(['get', 'widget', 'w1']);
    assert.equal(live.spec.size, 4);
    assert.equal(live.metadata.generation, 2);
    await ok(['delete', 'crd', 'widgets.example.com']);
    const gone = await kubectl(['get', 'widgets.example.com']);
    assert.notEqual(gone.code, 0);
  });

  test('kubectl delete namespace removes everything in it, and creating into a missing namespace is refused', async () => {
    await ok(['create', 'namespace', 'doomed-ns']);
    await ok(['create', 'configmap', 'inside', '-n', 'doomed-ns', '--from-literal=a=1']);
    await ok(['apply', '-n', 'doomed-ns', '-f', write('ns-d.yaml', deployment('inside', 'nginx:1.25'))]);
    await ok(['delete', 'namespace', 'doomed-ns', '--timeout=60s']);
    const all = await getJson(['get', 'configmaps,deployments', '--all-namespaces']);
    assert.equal(all.items.filter((i: Json) => i.metadata.namespace === 'doomed-ns').length, 0);
    const r = await kubectl(['apply', '-n', 'doomed-ns', '-f', join(dir, 'ns-d.yaml')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /namespaces "doomed-ns" not found/);
  });

  const withDeadline = (yaml: string, seconds: number) =>
    yaml.replace(/^spec:\n/m, `spec:\n  progressDeadlineSeconds: ${seconds}\n`);

  test('a new Deployment with an image tagged :fail never becomes Available, and reports ProgressDeadlineExceeded after progressDeadlineSeconds', async () => {
    await ok([
      'apply',
      '--server-side',
      '-f',
      write('fail.yaml', withDeadline(deployment('broken', 'nginx:fail'), 2)),
    ]);
    await ok([
      'wait',
      '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=ProgressDeadlineExceeded',
      'deployment/broken',
      '--timeout=30s',
    ]);
    const r = await kubectl(['wait', '--for=condition=Available', 'deployment/broken', '--timeout=2s']);
    assert.notEqual(r.code, 0);
    const live = await getJson(['get', 'deployment', 'broken']);
    assert.equal(live.status.readyReplicas, undefined);
    assert.equal(live.status.unavailableReplicas, 2);
    const progressing = live.status.conditions.find((c: Json) => c.type === 'Progressing');
    assert.equal(progressing.status, 'False');
    assert.match(progressing.message, /^ReplicaSet "broken-[a-z0-9]+" has timed out progressing\.$/);
    // the deadline counts from the last progress, as the real controller's does
    const elapsed = Date.parse(progressing.lastUpdateTime) - Date.parse(live.metadata.creationTimestamp);
    assert.ok(
      elapsed >= 2000,
      `ProgressDeadlineExceeded ${elapsed} ms after creation, before the 2 s deadline`,
    );
  });

  test('kubectl set image to a broken image: rollout status fails, the old ReplicaSet keeps serving, updatedReplicas stays below replicas; a good image then rolls out', async () => {
    await ok([
      'apply',
      '--server-side',
      '-f',
      write('roll.yaml', withDeadline(deployment('roll', 'nginx:1.25', 4), 3)),
    ]);
    await ok(['rollout', 'status', 'deployment/roll', '--timeout=30s']);
    const first = await getJson(['get', 'replicasets', '-l', 'app=roll']);
    assert.equal(first.items.length, 1, 'one ReplicaSet per pod template');
    const oldRs = first.items[0];
    assert.equal(oldRs.metadata.ownerReferences[0].kind, 'Deployment');
    assert.equal(oldRs.metadata.ownerReferences[0].controller, true);
    assert.equal(oldRs.metadata.name, `roll-${oldRs.metadata.labels['pod-template-hash']}`);
    assert.equal(oldRs.metadata.annotations['deployment.kubernetes.io/revision'], '1');

    await ok(['set', 'image', 'deployment/roll', 'app=nginx:fail']);
    const broken = await kubectl(['rollout', 'status', 'deployment/roll', '--timeout=5s']);
    assert.notEqual(broken.code, 0, `rollout status succeeded on a broken image:\n${broken.stdout}`);
    assert.doesNotMatch(broken.stdout, /successfully rolled out/);
    await ok([
      'wait',
      '--for=jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=ProgressDeadlineExceeded',
      'deployment/roll',
      '--timeout=30s',
    ]);
    const stuck = await getJson(['get', 'deployment', 'roll']);
    assert.ok(stuck.status.updatedReplicas < 4, `updatedReplicas ${stuck.status.updatedReplicas} of 4`);
    // 4 replicas at 25%: maxUnavailable 1, so 3 old pods keep serving
    assert.equal(stuck.status.availableReplicas, 3);
    assert.equal(
      stuck.status.conditions.find((c: Json) => c.type === 'Available').status,
      'True',
      'the old pods keep the Deployment available',
    );
    const serving = await getJson(['get', 'replicaset', oldRs.metadata.name]);
    assert.equal(serving.status.readyReplicas, 3);
    assert.match(
      (await kubectl(['rollout', 'status', 'deployment/roll', '--timeout=2s'])).stderr,
      /deployment "roll" exceeded its progress deadline/,
    );

    await ok(['set', 'image', 'deployment/roll', 'app=nginx:1.26']);
    assert.match(
      await ok(['rollout', 'status', 'deployment/roll', '--timeout=60s']),
      /deployment "roll" successfully rolled out/,
    );
    const done = await getJson(['get', 'deployment', 'roll']);
    assert.equal(done.metadata.annotations['deployment.kubernetes.io/revision'], '3');
    assert.equal(done.status.updatedReplicas, 4);
    assert.equal(done.status.availableReplicas, 4);
    assert.equal(done.status.unavailableReplicas, undefined);
    const progressing = done.status.conditions.find((c: Json) => c.type === 'Progressing');
    assert.equal(progressing.reason, 'NewReplicaSetAvailable');
    const sets = await getJson(['get', 'replicasets', '-l', 'app=roll']);
    assert.deepEqual(
      sets.items.map((rs: Json) => rs.spec.replicas).sort(),
      [0, 0, 4],
      'old ReplicaSets are scaled to zero and kept as history',
    );
  });

  test('a rolling update never runs more than replicas + maxSurge pods, nor fewer than replicas - maxUnavailable available', async () => {
    const yaml = deployment('surge', 'nginx:1.25', 4).replace(
      /^spec:\n/m,
      'spec:\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n',
    );
    await ok(['apply', '--server-side', '-f', write('surge.yaml', yaml)]);
    await ok(['rollout', 'status', 'deployment/surge', '--timeout=30s']);
    const seen: { pods: number; available: number }[] = [];
    const unsubscribe = server.api.store.subscribe((ev) => {
      if (ev.typeKey !== 'apps/replicasets' || ev.object.metadata.labels?.app !== 'surge') return;
      const sets = server.api.store
        .list('apps/replicasets', 'default')
        .filter((rs) => rs.metadata.labels?.app === 'surge');
      seen.push({
        pods: sets.reduce((n, rs) => n + (rs.spec.replicas ?? 0), 0),
        available: sets.reduce((n, rs) => n + (rs.status?.availableReplicas ?? 0), 0),
      });
    });
    try {
      await ok(['set', 'image', 'deployment/surge', 'app=nginx:1.26']);
      await ok(['rollout', 'status', 'deployment/surge', '--timeout=60s']);
    } finally {
      unsubscribe();
    }
    assert.ok(seen.length > 0, 'the rollout changed ReplicaSets');
    assert.ok(
      seen.every((s) => s.pods <= 5),
      `more than 5 pods at some point: ${JSON.stringify(seen)}`,
    );
    assert.ok(
      seen.every((s) => s.available >= 4),
      `fewer than 4 available at some point: ${JSON.stringify(seen)}`,
    );
    assert.ok(
      seen.some((s) => s.pods === 5),
      'the surge was used',
    );
  });

  test('kubectl create deployment, service clusterip, job, cronjob, secret generic and role send protobuf, and the server stores what they asked for', async () => {
    await ok(['create', 'deployment', 'pb-web', '--image=nginx:1.25', '--port=8080', '--replicas=3']);
    const d = await getJson(['get', 'deployment', 'pb-web']);
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.selector, { matchLabels: { app: 'pb-web' } });
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.name, 'nginx');
    assert.equal(c.image, 'nginx:1.25');
    assert.deepEqual(c.ports, [{ containerPort: 8080, protocol: 'TCP' }]);
    assert.equal(d.spec.template.spec.hostNetwork, undefined, 'zero fields Go omits are not stored');
    assert.equal(d.spec.paused, undefined);
    assert.equal(d.metadata.creationTimestamp !== undefined, true);
    await ok(['rollout', 'status', 'deployment/pb-web', '--timeout=30s']);

    await ok(['create', 'deployment', 'pb-zero', '--image=nginx:1.25', '--replicas=0']);
    assert.equal(
      (await getJson(['get', 'deployment', 'pb-zero'])).spec.replicas,
      0,
      'an explicit zero is kept',
    );

    await ok(['create', 'service', 'clusterip', 'pb-svc', '--tcp=53:5353']);
    const svc = await getJson(['get', 'service', 'pb-svc']);
    assert.deepEqual(svc.spec.ports, [{ name: '53-5353', port: 53, protocol: 'TCP', targetPort: 5353 }]);
    assert.deepEqual(svc.spec.selector, { app: 'pb-svc' });

    await ok(['create', 'job', 'pb-job', '--image=busybox:1.36', '--', 'echo', 'hi']);
    const job = await getJson(['get', 'job', 'pb-job']);
    assert.deepEqual(job.spec.template.spec.containers[0].command, ['echo', 'hi']);
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    await ok(['wait', '--for=condition=Complete', 'job/pb-job', '--timeout=30s']);

    await ok(['create', 'cronjob', 'pb-cron', '--image=busybox:1.36', '--schedule=*/5 * * * *']);
    assert.equal((await getJson(['get', 'cronjob', 'pb-cron'])).spec.schedule, '*/5 * * * *');
    await ok(['create', 'job', 'pb-from-cron', '--from=cronjob/pb-cron']);
    const fromCron = await getJson(['get', 'job', 'pb-from-cron']);
    assert.equal(fromCron.metadata.ownerReferences[0].kind, 'CronJob');
    assert.equal(fromCron.metadata.annotations['cronjob.kubernetes.io/instantiate'], 'manual');

    await ok(['create', 'secret', 'generic', 'pb-secret', '--from-literal=password=s3cret']);
    const secret = await getJson(['get', 'secret', 'pb-secret']);
    assert.equal(Buffer.from(secret.data.password, 'base64').toString(), 's3cret');
    assert.equal(secret.type, 'Opaque');

    await ok(['create', 'role', 'pb-role', '--verb=get,list', '--resource=pods']);
    const role = await getJson(['get', 'role', 'pb-role']);
    assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }]);
  });

  test('the server stores quantities canonically, drops omitempty zeros, keeps 53/TCP beside 53/UDP, and a second server-side apply of the same manifest writes nothing', async () => {
    const manifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: dns}
spec:
  replicas: 1
  paused: false
  selector: {matchLabels: {app: dns}}
  template:
    metadata: {labels: {app: dns}}
    spec:
      hostNetwork: false
      hostPID: false
      nodeSelector: {}
      containers:
      - name: dns
        image: coredns:1.11
        tty: false
        env:
        - {name: EMPTY, value: ""}
        resources:
          requests: {cpu: 1000m, memory: 1024Mi}
          limits: {cpu: "0.5", memory: 1.5Mi}
        ports:
        - {containerPort: 53, protocol: TCP, name: dns-tcp}
        - {containerPort: 53, protocol: UDP, name: dns-udp}
---
apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  selector: {app: dns}
  publishNotReadyAddresses: false
  ports:
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: dns-udp, port: 53, protocol: UDP}
`;
    const file = write('dns.yaml', manifest);
    await ok(['apply', '--server-side', '-f', file]);
    const d = await getJson(['get', 'deployment', 'dns', '--show-managed-fields']);
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    assert.deepEqual(c.resources, {
      requests: { cpu: '1', memory: '1Gi' },
      limits: { cpu: '500m', memory: '1536Ki' },
    });
    assert.equal(pod.hostNetwork, undefined);
    assert.equal(pod.hostPID, undefined);
    assert.equal(pod.nodeSelector, undefined);
    assert.equal(c.tty, undefined);
    assert.equal(d.spec.paused, undefined);
    assert.deepEqual(c.env, [{ name: 'EMPTY' }]);
    assert.deepEqual(
      c.ports.map((p: Json) => `${p.containerPort}/${p.protocol}`),
      ['53/TCP', '53/UDP'],
    );
    // as on a real server, the applier owns what it applied, stored or not
    const applied = d.metadata.managedFields.find((m: Json) => m.operation === 'Apply');
    const ports =
      applied.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"dns"}']['f:ports'];
    assert.deepEqual(Object.keys(ports).sort(), [
      'k:{"containerPort":53,"protocol":"TCP"}',
      'k:{"containerPort":53,"protocol":"UDP"}',
    ]);
    assert.ok(applied.fieldsV1['f:spec']['f:template']['f:spec']['f:hostNetwork']);
    const svc = await getJson(['get', 'service', 'dns']);
    assert.deepEqual(
      svc.spec.ports.map((p: Json) => `${p.port}/${p.protocol}`),
      ['53/TCP', '53/UDP'],
    );
    assert.equal(svc.spec.publishNotReadyAddresses, undefined);

    // once the rollout is done nothing else writes these objects: any new resourceVersion is the apply's
    await ok(['rollout', 'status', 'deployment/dns', '--timeout=30s']);
    const versions = async () => [
      (await getJson(['get', 'deployment', 'dns'])).metadata.resourceVersion,
      (await getJson(['get', 'service', 'dns'])).metadata.resourceVersion,
    ];
    const before = await versions();
    await ok(['apply', '--server-side', '-f', file]);
    const diff = await kubectl(['diff', '--server-side', '-f', file]);
    assert.equal(diff.code, 0, `server-side diff of the applied manifest:\n${diff.stdout}${diff.stderr}`);
    assert.deepEqual(await versions(), before, 're-applying the same manifest wrote an object');
  });

  test('garbage collection: a dependent goes only when all its owners are gone, waits for its own finalizers, and foreground deletion keeps the owner until blocking dependents are gone', async () => {
    await ok(['create', 'configmap', 'gc-owner-a', '--from-literal=a=1']);
    await ok(['create', 'configmap', 'gc-owner-b', '--from-literal=a=1']);
    const uidOf = async (what: string) => (await getJson(['get', what])).metadata.uid as string;
    const ownerRef = (name: string, uid: string, block = false) =>
      `{apiVersion: v1, kind: ConfigMap, name: ${name}, uid: ${uid}${block ? ', blockOwnerDeletion: true' : ''}}`;
    const [a, b] = [await uidOf('configmap/gc-owner-a'), await uidOf('configmap/gc-owner-b')];
    await ok([
      'apply',
      '-f',
      write(
        'gc-child.yaml',
        `apiVersion: v1
kind: ConfigMap
metadata:
  name: gc-child
  ownerReferences: [${ownerRef('gc-owner-a', a)}, ${ownerRef('gc-owner-b', b)}]
  finalizers: [example.com/hold]
data: {k: v}
`,
      ),
    ]);
    await ok(['delete', 'configmap', 'gc-owner-a']);
    await eventually(async () => {
      const child = await getJson(['get', 'configmap', 'gc-child']);
      assert.equal(child.metadata.deletionTimestamp, undefined, 'deleted while another owner exists');
      assert.deepEqual(
        child.metadata.ownerReferences.map((r: Json) => r.name),
        ['gc-owner-b'],
        'the dangling reference is removed',
      );
    });
    await ok(['delete', 'configmap', 'gc-owner-b']);
    await eventually(async () => {
      const child = await getJson(['get', 'configmap', 'gc-child']);
      assert.ok(child.metadata.deletionTimestamp, 'the last owner is gone: the dependent is deleted');
    });
    assert.equal((await getJson(['get', 'configmap', 'gc-child'])).data.k, 'v', 'its finalizer holds it');
    await ok(['patch', 'configmap', 'gc-child', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    await eventually(async () => {
      const r = await kubectl(['get', 'configmap', 'gc-child']);
      assert.match(r.stderr, /NotFound/);
    });

    // foreground: the Deployment waits for its ReplicaSet (blockOwnerDeletion), held here by a finalizer
    await ok(['apply', '--server-side', '-f', write('gc-fg.yaml', deployment('gc-fg', 'nginx:1.25'))]);
    await ok(['rollout', 'status', 'deployment/gc-fg', '--timeout=30s']);
    const rs = (await getJson(['get', 'replicasets', '-l', 'app=gc-fg'])).items[0];
    assert.equal(rs.metadata.ownerReferences[0].blockOwnerDeletion, true);
    await ok([
      'patch',
      'replicaset',
      rs.metadata.name,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":["example.com/hold"]}}',
    ]);
    await ok(['delete', 'deployment', 'gc-fg', '--cascade=foreground', '--wait=false']);
    await eventually(async () => {
      const d = await getJson(['get', 'deployment', 'gc-fg']);
      assert.ok(d.metadata.deletionTimestamp, 'not yet: d.metadata.deletionTimestamp');
      assert.deepEqual(d.metadata.finalizers, ['foregroundDeletion']);
      const held = await getJson(['get', 'replicaset', rs.metadata.name]);
      assert.ok(held.metadata.deletionTimestamp, 'the dependent is being deleted');
    });
    await ok([
      'patch',
      'replicaset',
      rs.metadata.name,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]);
    await eventually(async () => {
      assert.match((await kubectl(['get', 'deployment', 'gc-fg'])).stderr, /NotFound/);
      assert.match((await kubectl(['get', 'replicaset', rs.metadata.name])).stderr, /NotFound/);
    });
  });

  test('metadata.generation of custom resources: with a status subresource status writes keep it; without one any change but metadata bumps it', async () => {
    const crd = (plural: string, kind: string, status: boolean) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ${plural}.gen.example.com}
spec:
  group: gen.example.com
  scope: Namespaced
  names: {plural: ${plural}, singular: ${kind.toLowerCase()}, kind: ${kind}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
${status ? '    subresources: {status: {}}\n' : ''}`;
    await ok([
      'apply',
      '-f',
      write('gen-crds.yaml', `${crd('withs', 'WithS', true)}---\n${crd('withouts', 'WithoutS', false)}`),
    ]);
    await ok([
      'wait',
      '--for=condition=Established',
      'crd/withs.gen.example.com',
      'crd/withouts.gen.example.com',
      '--timeout=30s',
    ]);
    const cr = (kind: string) =>
      `apiVersion: gen.example.com/v1\nkind: ${kind}\nmetadata: {name: one}\nspec: {size: 1}\n`;
    await ok(['apply', '--server-side', '-f', write('gen-with.yaml', cr('WithS'))]);
    await ok(['apply', '--server-side', '-f', write('gen-without.yaml', cr('WithoutS'))]);
    const gen = async (plural: string) =>
      (await getJson(['get', `${plural}.gen.example.com`, 'one'])).metadata.generation;

    await ok([
      'patch',
      'withs.gen.example.com',
      'one',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Ready"}}',
    ]);
    assert.equal((await getJson(['get', 'withs.gen.example.com', 'one'])).status.phase, 'Ready');
    assert.equal(await gen('withs'), 1, 'a status write does not bump generation');
    await ok([
      'patch',
      'withs.gen.example.com',
      'one',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Ignored"}}',
    ]);
    assert.equal(
      (await getJson(['get', 'withs.gen.example.com', 'one'])).status.phase,
      'Ready',
      'the main resource does not write status',
    );
    await ok(['patch', 'withs.gen.example.com', 'one', '--type=merge', '-p', '{"spec":{"size":2}}']);
    assert.equal(await gen('withs'), 2);

    await ok([
      'patch',
      'withouts.gen.example.com',
      'one',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Ready"}}',
    ]);
    assert.equal(await gen('withouts'), 2, 'without a status subresource a status change bumps generation');
    await ok([
      'patch',
      'withouts.gen.example.com',
      'one',
      '--type=merge',
      '-p',
      '{"metadata":{"labels":{"x":"y"}}}',
    ]);
    assert.equal(await gen('withouts'), 2, 'a metadata change does not');
    await ok(['patch', 'withouts.gen.example.com', 'one', '--type=merge', '-p', '{"other":{"field":true}}']);
    assert.equal(await gen('withouts'), 3, 'any other top-level field does');
  });

  test('the OpenAPI v3 documents kubectl reads carry the list keys the server merges by: containers by name, container ports by containerPort+protocol, Service ports by port+protocol', async () => {
    const apps = JSON.parse(await ok(['get', '--raw', '/openapi/v3/apis/apps/v1']));
    const deploySchema = Object.values(apps.components.schemas as Record<string, Json>).find((s: Json) =>
      (s['x-kubernetes-group-version-kind'] ?? []).some((g: Json) => g.kind === 'Deployment'),
    );
    assert.ok(deploySchema, 'a Deployment schema');
    const pod = deploySchema.properties.spec.properties.template.properties.spec.properties;
    assert.equal(pod.containers['x-kubernetes-list-type'], 'map');
    assert.deepEqual(pod.containers['x-kubernetes-list-map-keys'], ['name']);
    assert.deepEqual(pod.containers.items.properties.ports['x-kubernetes-list-map-keys'], [
      'containerPort',
      'protocol',
    ]);
    assert.equal(pod.containers.items.properties.ports['x-kubernetes-patch-merge-key'], 'containerPort');
    assert.deepEqual(pod.containers.items.properties.env['x-kubernetes-list-map-keys'], ['name']);
    assert.equal(deploySchema.properties.spec.properties.selector['x-kubernetes-map-type'], 'atomic');
    assert.equal(deploySchema.properties.metadata.properties.finalizers['x-kubernetes-list-type'], 'set');
    const core = JSON.parse(await ok(['get', '--raw', '/openapi/v3/api/v1']));
    const svc = Object.values(core.components.schemas as Record<string, Json>).find((s: Json) =>
      (s['x-kubernetes-group-version-kind'] ?? []).some((g: Json) => g.kind === 'Service'),
    );
    assert.deepEqual(svc.properties.spec.properties.ports['x-kubernetes-list-map-keys'], [
      'port',
      'protocol',
    ]);
  });

  test("Events: kubectl get events prints the real columns, kubectl describe lists the events of the object by its uid, and the server refuses a field it does not index and a namespace that is not the object's", async () => {
    await ok(['create', 'namespace', 'evts']);
    await ok(['create', 'configmap', 'web', '-n', 'evts', '--from-literal=a=b']);
    const uid = (await getJson(['get', 'configmap', 'web', '-n', 'evts'])).metadata.uid;
    const event = (name: string, namespace: string, extra = '') =>
      write(
        `${name}.yaml`,
        `apiVersion: v1
kind: Event
metadata: {name: ${name}, namespace: ${namespace}}
involvedObject: {apiVersion: v1, kind: ConfigMap, name: web, namespace: evts, uid: ${uid}}
reason: Configured
message: "configured: bundle generation 3"
type: Normal
source: {component: flotilla-agent, host: east}
firstTimestamp: "${new Date(Date.now() - 300_000).toISOString()}"
lastTimestamp: "${new Date().toISOString()}"
count: 4
${extra}`,
      );
    await ok(['create', '-f', event('web.1', 'evts')]);
    // Same name and object, another uid: a former object of that name, which describe leaves out.
    await ok([
      'create',
      '-f',
      write('old.yaml', readFileSync(event('web.2', 'evts'), 'utf8').replace(uid, 'gone')),
    ]);

    const table = (await ok(['get', 'events', '-n', 'evts'])).split('\n');
    assert.match(table[0]!, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    assert.match(
      table[1]!,
      /^\d+s\s+Normal\s+Configured\s+configmap\/web\s+configured: bundle generation 3$/,
    );
    const wide = (await ok(['get', 'events', '-n', 'evts', '-o', 'wide'])).split('\n');
    assert.match(wide[0]!, /SUBOBJECT\s+SOURCE\s+MESSAGE\s+FIRST SEEN\s+COUNT\s+NAME$/);
    // A first event 5 minutes old prints as 5m, or 5m1s once the clock has moved on a busy machine.
    assert.match(
      wide[1]!,
      /flotilla-agent, east\s+configured: bundle generation 3\s+5m(\d+s)?\s+4\s+web\.1$/,
    );

    const described = await ok(['describe', 'configmap', 'web', '-n', 'evts']);
    const events = described.slice(described.indexOf('Events:'));
    assert.match(
      events,
      /Normal\s+Configured\s+\d+s \(x4 over 5m(\d+s)?\)\s+flotilla-agent\s+configured: bundle generation 3/,
    );
    assert.equal(
      events.match(/Configured/g)?.length,
      1,
      `describe lists only the event of this uid:\n${events}`,
    );

    const selected = await ok([
      'get',
      'events',
      '-n',
      'evts',
      '--field-selector',
      'source=flotilla-agent,reason=Configured',
      '-o',
      'name',
    ]);
    assert.deepEqual(selected.trim().split('\n').sort(), ['event/web.1', 'event/web.2']);
    const unsupported = await kubectl(['get', 'events', '-n', 'evts', '--field-selector', 'message=x']);
    assert.notEqual(unsupported.code, 0);
    assert.match(unsupported.stderr, /field label not supported: message/);

    const elsewhere = await kubectl(['create', '-f', event('web.3', 'default')]);
    assert.notEqual(elsewhere.code, 0);
    assert.match(
      elsewhere.stderr,
      /involvedObject\.namespace: Invalid value: "evts": does not match event\.namespace/,
    );
    const strict = await kubectl([
      'create',
      '-f',
      event('web.4', 'evts', 'eventTime: "2026-01-01T00:00:00.000000Z"'),
    ]);
    assert.notEqual(
      strict.code,
      0,
      'an event with eventTime needs reportingComponent, reportingInstance and action',
    );
    assert.match(strict.stderr, /reportingComponent: Required value/);
  });
});
