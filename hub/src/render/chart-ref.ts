import { isMap, LineCounter, parseDocument } from 'yaml';
import { RenderError } from './render-error.js';

/**
 * The file that makes a directory render a chart from a Helm repository or an OCI registry,
 * with the directory's values files: it lives beside those values, so a version bump is a git
 * change that promotion moves like any other.
 */
export const CHART_REF_FILE = 'flotilla-chart.yaml';

/** A chart named by repository, name and exact version. */
export interface ChartRef {
  /** `https://…` (a Helm repository serving index.yaml) or `oci://host/path` (a registry). */
  repository: string;
  chart: string;
  /** Exact SemVer: a range would let the same commit render different charts. */
  version: string;
}

/** A chart reference in a directory: what to fetch, and the release name to render it as. */
export interface ChartSpec extends ChartRef {
  /** Default: the chart's name. */
  releaseName?: string;
}

const SEMVER = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const CHART_NAME = /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/;
const RELEASE_NAME = /^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/;

/** A reference as the pin table and messages name it (no credentials: they never live in a URL here). */
export function chartRefKey(ref: ChartRef): string {
  return `${ref.repository.replace(/\/+$/, '')}|${ref.chart}|${ref.version}`;
}

export function chartRefText(ref: ChartRef): string {
  return `chart ${ref.chart} ${ref.version} from ${ref.repository}`;
}

/** Why `repository` cannot be fetched from, or undefined. */
export function repositoryProblem(repository: string): string | undefined {
  let url: URL;
  try {
    url = new URL(repository);
  } catch {
    return 'must be an https://, http:// or oci:// URL';
  }
  if (!['https:', 'http:', 'oci:'].includes(url.protocol))
    return 'must be an https://, http:// or oci:// URL';
  if (url.username || url.password)
    return 'must not carry credentials (configure them on the hub: --chart-auth-file)';
  if (url.search || url.hash) return 'must not have a query or fragment';
  if (url.protocol === 'oci:' && !url.host) return 'must name a registry host: oci://HOST/PATH';
  return undefined;
}

/** Parses `flotilla-chart.yaml`; errors name the file, the line and the field. */
export function parseChartSpec(text: string, file: string): ChartSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors[0])
    throw new RenderError(file, `is not valid YAML (${doc.errors[0].code})`, {
      line: doc.errors[0].linePos?.[0]?.line ?? 1,
    });
  const root = doc.contents;
  const lineOf = (node: unknown) => {
    const range = (node as { range?: [number] } | undefined)?.range;
    return range ? lines.linePos(range[0]).line : 1;
  };
  if (!isMap(root)) throw new RenderError(file, 'must be a mapping with repository, chart and version');
  const fail = (node: unknown, field: string, message: string): never => {
    throw new RenderError(file, `${field}: ${message}`, { line: lineOf(node) });
  };
  const known = ['repository', 'chart', 'version', 'releaseName'];
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (!known.includes(key)) fail(pair.key, key, 'is not a known field');
  }
  const field = (key: string, required: boolean): string | undefined => {
    const node = root.get(key, true);
    const value = (node as { value?: unknown } | undefined)?.value;
    if (node === undefined) return required ? fail(root, key, 'is required') : undefined;
    if (typeof value !== 'string' || !value) return fail(node, key, 'must be a non-empty string');
    return value;
  };
  const repository = field('repository', true)!;
  const problem = repositoryProblem(repository);
  if (problem) fail(root.get('repository', true), 'repository', problem);
  const chart = field('chart', true)!;
  if (!CHART_NAME.test(chart)) fail(root.get('chart', true), 'chart', 'is not a chart name');
  const version = field('version', true)!;
  if (!SEMVER.test(version))
    fail(
      root.get('version', true),
      'version',
      'must be an exact version such as 1.2.3 (a range could render a different chart from the same commit)',
    );
  const releaseName = field('releaseName', false);
  if (releaseName !== undefined && !RELEASE_NAME.test(releaseName))
    fail(root.get('releaseName', true), 'releaseName', 'must be a DNS-1123 label of at most 53 characters');
  return {
    repository: repository.replace(/\/+$/, ''),
    chart,
    version,
    ...(releaseName ? { releaseName } : {}),
  };
}
