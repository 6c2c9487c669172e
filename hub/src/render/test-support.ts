import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SYNC_POLICY } from '@flotilla/shared';
import type { EnvironmentConfig } from '../config/index.js';
import { createGitSource, type GitSource } from '../source/index.js';
import type { ClusterVars } from './index.js';

/** An environment as flotilla.yaml would declare it, for tests. */
export function env(name: string, path: string): EnvironmentConfig {
  return { name, path, keep: [], promotion: { soakMs: 0, approve: false }, policy: DEFAULT_SYNC_POLICY };
}

export function cluster(name: string, environment: string, labels: Record<string, string> = {}): ClusterVars {
  return { name, environment, labels };
}

/** A fetched git source over `url` with its own temp cache; `cleanup` removes the temp dirs. */
export async function fetchedSource(
  url: string,
): Promise<{ source: GitSource; workDir: string; cleanup(): void }> {
  const base = mkdtempSync(join(tmpdir(), 'flotilla-render-'));
  const source = createGitSource({ url, cacheDir: join(base, 'cache') });
  await source.fetch();
  return {
    source,
    workDir: join(base, 'work'),
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
}
