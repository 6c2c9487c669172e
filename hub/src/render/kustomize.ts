import { parse } from 'yaml';
import { type InputSet, resolveRepoPath } from './inputs.js';
import type { RenderLimits } from './limits.js';
import { RenderError } from './render-error.js';

export const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/** References that would make kustomize reach outside the materialised repository. */
const REMOTE = [
  /^[a-z][a-z0-9+.-]*:/i, // any scheme: https:, http:, git:, ssh:, file:, git::…
  /^git@/i,
  /^(github\.com|gitlab\.com|bitbucket\.org)\//i,
  /\?ref=|\?version=|\/\/[^/]/, // go-getter style pinning and `repo//subdir`
];

function isRemote(ref: string): boolean {
  return REMOTE.some((r) => r.test(ref));
}

/** The kustomization file in repository directory `dir`, if any. */
export async function findKustomization(inputs: InputSet, dir: string): Promise<string | null> {
  for (const name of KUSTOMIZATION_FILES) {
    const path = dir ? `${dir}/${name}` : name;
    const entry = await inputs.entryAt(path);
    if (entry && entry.type !== 'tree') return path;
  }
  return null;
}

/**
 * Collects a kustomization directory and everything it references (bases, components,
 * resources, patches, generator files) into `inputs`, refusing remote, `file://`,
 * absolute and repository-escaping references before kustomize ever runs.
 */
export async function collectKustomization(
  inputs: InputSet,
  dir: string,
  limits: RenderLimits,
): Promise<void> {
  const seen = new Set<string>();
  const visit = async (kdir: string, depth: number): Promise<void> => {
    if (seen.has(kdir)) return;
    seen.add(kdir);
    if (depth > limits.maxDepth)
      throw new RenderError(kdir, `kustomize bases nested deeper than ${limits.maxDepth}`);
    await inputs.addDir(kdir);
    const file = await findKustomization(inputs, kdir);
    if (!file) return;
    const entry = inputs.files.get(file);
    if (!entry) return;
    const text = Buffer.from(await readSmall(inputs, entry.oid, file, limits)).toString('utf8');
    let k: Record<string, unknown>;
    try {
      k = (parse(text, { maxAliasCount: limits.maxAliases, prettyErrors: false }) ?? {}) as Record<
        string,
        unknown
      >;
    } catch {
      throw new RenderError(file, 'is not valid YAML');
    }
    if (typeof k !== 'object' || Array.isArray(k)) throw new RenderError(file, 'is not a mapping');
    if (k.helmCharts || k.helmChartInflationGenerator)
      throw new RenderError(
        file,
        'helmCharts in a kustomization are not supported (use a Chart.yaml directory)',
      );

    for (const [field, ref] of references(k)) {
      if (isRemote(ref))
        throw new RenderError(file, `${field}: remote or file:// reference "${safeRef(ref)}" is refused`);
      if (ref.startsWith('/'))
        throw new RenderError(file, `${field}: absolute path "${safeRef(ref)}" is refused`);
      const target = resolveRepoPath(kdir, ref);
      if (target === null) throw new RenderError(file, `${field}: "${safeRef(ref)}" leaves the repository`);
      const found = await inputs.entryAt(target);
      if (!found) continue; // kustomize reports the missing file itself, with its own message
      if (found.type === 'tree') await visit(target, depth + 1);
      else await inputs.addFile(target);
    }
  };
  await visit(dir, 0);
}

/** A reference as shown in errors: a path, never a long string that could be inline content. */
function safeRef(ref: string): string {
  return ref.length > 120 ? `${ref.slice(0, 120)}…` : ref;
}

async function readSmall(
  inputs: InputSet,
  oid: string,
  file: string,
  limits: RenderLimits,
): Promise<Uint8Array> {
  const blob = await inputs.readBlob(oid);
  if (blob.byteLength > Math.min(limits.maxBytes, 1024 * 1024))
    throw new RenderError(file, 'kustomization is too large');
  return blob;
}

/** Every path-like string of a kustomization, with the field it came from. */
function references(k: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  const strings = (field: string, v: unknown) => {
    if (!Array.isArray(v)) return;
    v.forEach((s, i) => {
      // Inline patches (multi-line strings) are content, not references.
      if (typeof s === 'string' && !s.includes('\n')) out.push([`${field}[${i}]`, s]);
    });
  };
  const objPath = (field: string, v: unknown) => {
    if (!Array.isArray(v)) return;
    v.forEach((o, i) => {
      if (o && typeof o === 'object' && typeof (o as { path?: unknown }).path === 'string')
        out.push([`${field}[${i}].path`, (o as { path: string }).path]);
    });
  };
  for (const f of ['resources', 'bases', 'components', 'crds', 'patchesStrategicMerge', 'configurations'])
    strings(f, k[f]);
  for (const f of ['transformers', 'generators', 'validators']) strings(f, k[f]);
  for (const f of ['patches', 'patchesJson6902', 'replacements']) objPath(f, k[f]);
  for (const g of ['configMapGenerator', 'secretGenerator']) {
    const list = k[g];
    if (!Array.isArray(list)) continue;
    list.forEach((gen, i) => {
      if (!gen || typeof gen !== 'object') return;
      const o = gen as Record<string, unknown>;
      const files = Array.isArray(o.files) ? o.files : [];
      files.forEach((f, j) => {
        if (typeof f === 'string')
          out.push([`${g}[${i}].files[${j}]`, f.includes('=') ? f.slice(f.indexOf('=') + 1) : f]);
      });
      const envs = [...(Array.isArray(o.envs) ? o.envs : []), ...(typeof o.env === 'string' ? [o.env] : [])];
      envs.forEach((e, j) => {
        if (typeof e === 'string') out.push([`${g}[${i}].envs[${j}]`, e]);
      });
    });
  }
  const openapi = k.openapi as { path?: unknown } | undefined;
  if (openapi && typeof openapi.path === 'string') out.push(['openapi.path', openapi.path]);
  return out;
}
