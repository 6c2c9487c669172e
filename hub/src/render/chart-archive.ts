import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { RenderLimits } from './limits.js';
import { RenderError } from './render-error.js';

/**
 * Reads a packaged chart (.tgz) into memory: regular files only, by their path in the archive.
 * No tool unpacks it onto disk, so nothing in it can write outside the sandbox: absolute
 * paths, `..`, `.git`, links and devices are refused, and the file, byte and depth caps of a
 * render apply. Subcharts packaged under `charts/` are unpacked too (as `charts/NAME/…`), so
 * the sandbox checks (no `lookup`) see every template helm will run.
 */
export function readChartArchive(
  data: Uint8Array,
  where: string,
  limits: RenderLimits,
  depth = 0,
): Map<string, Uint8Array> {
  if (depth > 4) throw new RenderError(where, 'subcharts nested deeper than 4');
  let tar: Buffer;
  try {
    tar = gunzipSync(data, { maxOutputLength: limits.maxBytes });
  } catch {
    throw new RenderError(where, `is not a gzip archive, or unpacks to more than ${limits.maxBytes} bytes`);
  }
  const files = new Map<string, Uint8Array>();
  let longName: string | undefined;
  let paxPath: string | undefined;
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new RenderError(where, 'is not a valid tar archive');
    const type = String.fromCharCode(header[156] ?? 0);
    const prefix = field(345, 155);
    const body = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'x') {
      for (const m of body.toString('utf8').matchAll(/\d+ path=([^\n]*)\n/g)) paxPath = m[1];
      continue;
    }
    if (type === 'g') continue;
    const name = paxPath ?? longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    paxPath = undefined;
    longName = undefined;
    if (type === '5') continue;
    if (type !== '0' && type !== '\0' && type !== '7')
      throw new RenderError(where, `${safeName(name)}: links and special files are refused in a chart`);
    const path = posix.normalize(name);
    if (
      path.startsWith('/') ||
      path === '..' ||
      path.startsWith('../') ||
      path.split('/').some((p) => p === '..' || p.toLowerCase() === '.git')
    )
      throw new RenderError(where, `${safeName(name)}: leaves the chart`);
    if (path.split('/').length > limits.maxDepth)
      throw new RenderError(where, `${safeName(name)}: nested too deep`);
    files.set(path, new Uint8Array(body));
    if (files.size > limits.maxFiles) throw new RenderError(where, `more than ${limits.maxFiles} files`);
  }
  // Packaged subcharts become directories, unpacked and checked like the chart itself.
  for (const [path, bytes] of [...files]) {
    const m = /^(.*\/)?charts\/([^/]+)\.tgz$/.exec(path);
    if (!m) continue;
    files.delete(path);
    for (const [sub, subBytes] of readChartArchive(bytes, `${where}: ${path}`, limits, depth + 1)) {
      const inner = sub.split('/').slice(1).join('/');
      if (inner) files.set(`${m[1] ?? ''}charts/${sub.split('/')[0]}/${inner}`, subBytes);
    }
  }
  return files;
}

/** The single top-level directory a packaged chart holds (its name). */
export function chartRoot(files: Map<string, Uint8Array>, where: string): string {
  const roots = new Set([...files.keys()].map((p) => p.split('/')[0]!));
  const root = [...roots][0];
  if (roots.size !== 1 || !root || !files.has(`${root}/Chart.yaml`))
    throw new RenderError(where, 'is not a packaged chart (one directory holding Chart.yaml)');
  return root;
}

function safeName(name: string): string {
  const clean = name.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 100 ? `${clean.slice(0, 100)}…` : clean;
}
