import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, type Logger } from '@flotilla/shared';
import { eq } from 'drizzle-orm';
import { parse } from 'yaml';
import type { Db } from '../db/database.js';
import { chartPins } from '../db/schema.js';
import { type ChartRef, chartRefKey, chartRefText } from '../render/chart-ref.js';
import { RenderError } from '../render/render-error.js';

/** Credentials for charts under one URL prefix (`https://charts.example.com/private`, `oci://registry.example.com`). */
export interface ChartCredential {
  url: string;
  username?: string;
  password?: string;
  /** A bearer token, sent as is (instead of username and password). */
  token?: string;
}

/** A chart on this hub's disk, verified against its pinned digest. */
export interface ResolvedChart {
  /** `sha256:…` of the packaged chart (.tgz). */
  digest: string;
  /** The packaged chart, in the hub's cache. */
  file: string;
}

export interface ChartStore {
  /**
   * The chart `ref` names, from the cache when it holds the pinned digest, else fetched and
   * verified: the first fetch records the digest (shared by every hub replica); a later fetch
   * that finds other bytes under the same version is refused with a RenderError.
   */
  resolve(ref: ChartRef, where: string): Promise<ResolvedChart>;
}

export interface ChartStoreOptions {
  db: Db;
  /** Packaged charts, by digest. */
  cacheDir: string;
  credentials?: ChartCredential[];
  logger?: Logger;
  /** Largest chart (and index.yaml) fetched; default 32 MiB. */
  maxBytes?: number;
  /** Per request; default 60 s. */
  timeoutMs?: number;
  /**
   * How long a failed fetch (or a refused chart) is answered from memory before the next try;
   * default 30 s. Every cluster that renders the chart asks in every pass: without this, a
   * registry that is down would be asked (and waited for) once per cluster.
   */
  retryAfterMs?: number;
  now?: () => number;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const HELM_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Loopback registries are reached over plain HTTP (a registry on the hub's own host, tests); others over HTTPS. */
function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/**
 * Fetches charts from Helm repositories and OCI registries on the hub, pins each (repository,
 * chart, version) to the digest of its first fetch in the database, and keeps the packages in
 * a cache so renders run offline. Credentials are sent only to the origin they are configured
 * for, never logged, and never reach a render or a bundle.
 */
export function createChartStore(options: ChartStoreOptions): ChartStore {
  const { db, logger } = options;
  const maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 60_000;
  mkdirSync(options.cacheDir, { recursive: true, mode: 0o700 });
  /** Pins read this process's lifetime: a pin never changes once recorded. */
  const pins = new Map<string, string>();
  const inflight = new Map<string, Promise<ResolvedChart>>();
  const failures = new Map<string, { at: number; error: unknown }>();
  const retryAfterMs = options.retryAfterMs ?? 30_000;
  const now = options.now ?? Date.now;
  const fileOf = (digest: string) => join(options.cacheDir, `${digest.replace(':', '-')}.tgz`);

  const credentialFor = (url: string): ChartCredential | undefined =>
    (options.credentials ?? [])
      .filter((c) => url === c.url || url.startsWith(c.url.endsWith('/') ? c.url : `${c.url}/`))
      .sort((a, b) => b.url.length - a.url.length)[0];

  const authHeader = (c: ChartCredential | undefined): Record<string, string> => {
    if (!c) return {};
    if (c.token) return { authorization: `Bearer ${c.token}` };
    if (c.username !== undefined)
      return {
        authorization: `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`,
      };
    return {};
  };

  /** GET with a size cap; errors name the URL (never its credentials) and the status. */
  const get = async (url: string, headers: Record<string, string>, what: string): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    } catch (err) {
      throw new Error(`${what}: ${url}: ${errorMessage((err as Error).cause ?? err)}`);
    }
    return res;
  };

  const body = async (res: Response, url: string, what: string): Promise<Uint8Array> => {
    if (!res.ok) throw new Error(`${what}: ${url}: HTTP ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > maxBytes) throw new Error(`${what}: ${url}: larger than ${maxBytes} bytes`);
    const data = new Uint8Array(await res.arrayBuffer());
    if (data.byteLength > maxBytes) throw new Error(`${what}: ${url}: larger than ${maxBytes} bytes`);
    return data;
  };

  /** A Helm repository: its index.yaml names the package's URL and (usually) its digest. */
  async function fetchFromRepository(ref: ChartRef): Promise<Uint8Array> {
    const base = `${ref.repository}/`;
    const credential = credentialFor(ref.repository);
    const indexUrl = new URL('index.yaml', base).toString();
    const index = await body(await get(indexUrl, authHeader(credential), 'index'), indexUrl, 'index');
    type IndexEntry = { version?: string; urls?: string[]; digest?: string };
    let entries: Record<string, IndexEntry[]> | undefined;
    try {
      entries = (
        parse(Buffer.from(index).toString('utf8'), { maxAliasCount: 100 }) as {
          entries?: Record<string, IndexEntry[]>;
        } | null
      )?.entries;
    } catch {
      throw new Error(`${indexUrl}: is not valid YAML`);
    }
    const entry = (entries?.[ref.chart] ?? []).find(
      (e) => e.version === ref.version || e.version === ref.version.replace(/^v/, ''),
    );
    if (!entry) throw new Error(`${indexUrl}: has no ${ref.chart} at version ${ref.version}`);
    const first = entry.urls?.[0];
    if (!first) throw new Error(`${indexUrl}: ${ref.chart} ${ref.version} has no download URL`);
    const url = new URL(first, base);
    // Credentials go to the repository's own origin only, never to a host the index points at.
    const sameOrigin = url.origin === new URL(base).origin;
    const data = await body(
      await get(url.toString(), sameOrigin ? authHeader(credential) : {}, 'chart'),
      url.toString(),
      'chart',
    );
    if (entry.digest && `sha256:${entry.digest.replace(/^sha256:/, '')}` !== sha256(data))
      throw new Error(`${url}: does not match the digest in ${indexUrl}`);
    return data;
  }

  /** An OCI registry, by the distribution API: the manifest of tag VERSION, then its chart layer. */
  async function fetchFromRegistry(ref: ChartRef): Promise<Uint8Array> {
    const url = new URL(ref.repository.replace(/^oci:/, 'https:'));
    const scheme = isLoopback(url.host) ? 'http' : 'https';
    const name = `${url.pathname.replace(/^\/+|\/+$/g, '')}/${ref.chart}`.replace(/^\//, '');
    const api = `${scheme}://${url.host}/v2/${name}`;
    const credential = credentialFor(ref.repository);
    let auth = authHeader(credential);
    const request = async (path: string, accept?: string): Promise<Response> => {
      const headers = { ...auth, ...(accept ? { accept } : {}) };
      let res = await get(`${api}${path}`, headers, 'registry');
      const challenge = res.headers.get('www-authenticate') ?? '';
      if (res.status === 401 && /^bearer /i.test(challenge)) {
        // The registry's token service, asked with the configured credentials (anonymous without).
        const params = Object.fromEntries(
          [...challenge.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
        );
        if (!params.realm) throw new Error(`registry: ${api}: a bearer challenge without a realm`);
        const tokenUrl = new URL(params.realm);
        if (params.service) tokenUrl.searchParams.set('service', params.service);
        tokenUrl.searchParams.set('scope', params.scope ?? `repository:${name}:pull`);
        const tokenRes = await get(tokenUrl.toString(), authHeader(credential), 'registry token');
        const token = JSON.parse(
          Buffer.from(await body(tokenRes, tokenUrl.toString(), 'registry token')).toString('utf8'),
        ) as { token?: string; access_token?: string };
        auth = { authorization: `Bearer ${token.token ?? token.access_token ?? ''}` };
        res = await get(`${api}${path}`, { ...auth, ...(accept ? { accept } : {}) }, 'registry');
      }
      return res;
    };
    // OCI tags cannot hold `+`: helm push writes it as `_`.
    const tag = ref.version.replace(/\+/g, '_');
    const manifestRes = await request(`/manifests/${encodeURIComponent(tag)}`, OCI_MANIFEST);
    if (manifestRes.status === 404) throw new Error(`registry: ${api}: no tag ${tag}`);
    const manifest = JSON.parse(
      Buffer.from(await body(manifestRes, `${api}/manifests/${tag}`, 'registry')).toString('utf8'),
    ) as { layers?: { mediaType?: string; digest?: string }[] };
    const layer = manifest.layers?.find((l) => l.mediaType === HELM_LAYER);
    if (!layer?.digest || !/^sha256:[0-9a-f]{64}$/.test(layer.digest))
      throw new Error(`registry: ${api}:${tag} is not a Helm chart (no ${HELM_LAYER} layer)`);
    const data = await body(
      await request(`/blobs/${layer.digest}`),
      `${api}/blobs/${layer.digest}`,
      'registry',
    );
    if (sha256(data) !== layer.digest)
      throw new Error(`registry: ${api}/blobs/${layer.digest}: content does not match its digest`);
    return data;
  }

  async function resolveOnce(ref: ChartRef, where: string): Promise<ResolvedChart> {
    const key = chartRefKey(ref);
    let pinned = pins.get(key);
    if (!pinned) {
      const [row] = await db.select().from(chartPins).where(eq(chartPins.ref, key));
      if (row) {
        pinned = row.digest;
        pins.set(key, pinned);
      }
    }
    if (pinned && existsSync(fileOf(pinned))) return { digest: pinned, file: fileOf(pinned) };

    let data: Uint8Array;
    try {
      data = ref.repository.startsWith('oci://')
        ? await fetchFromRegistry(ref)
        : await fetchFromRepository(ref);
    } catch (err) {
      throw new RenderError(where, `${chartRefText(ref)}: fetch failed: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    const digest = sha256(data);
    if (!pinned) {
      // The first fetch anywhere pins it; a replica that raced us finds the other's pin here.
      await db.insert(chartPins).values({ ref: key, digest }).onConflictDoNothing();
      const [row] = await db.select().from(chartPins).where(eq(chartPins.ref, key));
      pinned = row?.digest ?? digest;
      pins.set(key, pinned);
      if (pinned === digest) logger?.info({ chart: ref.chart, version: ref.version, digest }, 'chart pinned');
    }
    if (digest !== pinned)
      throw new RenderError(
        where,
        `${chartRefText(ref)}: changed under the same version (pinned ${pinned} at its first fetch, now ${digest}); refused: publish a new version`,
      );
    const tmp = `${fileOf(digest)}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, fileOf(digest));
    return { digest, file: fileOf(digest) };
  }

  return {
    resolve(ref, where) {
      const key = chartRefKey(ref);
      const failed = failures.get(key);
      if (failed && now() - failed.at < retryAfterMs) {
        // The same answer, named for this caller's file.
        const error = failed.error as RenderError;
        const reason =
          error instanceof RenderError ? error.message.slice(error.file.length + 2) : String(error);
        return Promise.reject(new RenderError(where, reason, { cause: error }));
      }
      let pending = inflight.get(key);
      if (!pending) {
        pending = resolveOnce(ref, where)
          .then(
            (resolved) => {
              failures.delete(key);
              return resolved;
            },
            (error: unknown) => {
              failures.set(key, { at: now(), error });
              throw error;
            },
          )
          .finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return pending;
    },
  };
}
