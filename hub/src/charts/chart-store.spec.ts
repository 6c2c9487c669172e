import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type ChartFiles,
  type ChartRepository,
  type OciRegistry,
  startChartRepository,
  startOciRegistry,
} from '@flotilla/e2e/harness';
import type { Database } from '../db/database.js';
import { chartPins } from '../db/schema.js';
import { openTestDatabase } from '../db/testing.js';
import { createChartStore } from './chart-store.js';

const chart = (version: string, data = 'one'): ChartFiles => ({
  name: 'hello',
  version,
  templates: {
    'cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\ndata:\n  v: "${data}"\n`,
  },
});

describe('chart store: Helm repositories and OCI registries, pinned by digest', { timeout: 120_000 }, () => {
  let database: Database;
  let repo: ChartRepository;
  let privateRepo: ChartRepository;
  let registry: OciRegistry;
  const dirs: string[] = [];
  const cacheDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'flotilla-charts-'));
    dirs.push(d);
    return d;
  };

  before(async () => {
    database = await openTestDatabase('pglite');
    repo = await startChartRepository();
    privateRepo = await startChartRepository({ auth: { username: 'ci', password: 'chart-s3cret' } });
    registry = await startOciRegistry();
    await repo.publish(chart('1.0.0'));
    await privateRepo.publish(chart('2.0.0'));
    await registry.push(chart('3.0.0'));
  });
  after(async () => {
    await repo?.stop();
    await privateRepo?.stop();
    await registry?.stop();
    await database?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('fetches from a Helm repository once, pins its digest, and serves it from the cache after', async () => {
    const store = createChartStore({ db: database.db, cacheDir: cacheDir() });
    const ref = { repository: repo.url, chart: 'hello', version: '1.0.0' };
    const first = await store.resolve(ref, 'envs/dev/flotilla-chart.yaml');
    assert.match(first.digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(existsSync(first.file));
    const [pin] = await database.db.select().from(chartPins);
    assert.deepEqual([pin?.ref, pin?.digest], [`${repo.url}|hello|1.0.0`, first.digest]);
    const fetched = repo.requests.length;
    assert.deepEqual(await store.resolve(ref, 'x'), first);
    assert.equal(repo.requests.length, fetched, 'the second resolve reads no network');
    await assert.rejects(
      store.resolve({ ...ref, version: '9.9.9' }, 'envs/dev/flotilla-chart.yaml'),
      /^RenderError: envs\/dev\/flotilla-chart\.yaml: chart hello 9\.9\.9 from http:\/\/127\.0\.0\.1:\d+: fetch failed: .*has no hello at version 9\.9\.9/,
    );
  });

  test('a failed fetch is answered from memory until the retry interval has passed', async () => {
    let clock = 1_000_000;
    const store = createChartStore({ db: database.db, cacheDir: cacheDir(), now: () => clock });
    const missing = { repository: repo.url, chart: 'hello', version: '7.7.7' };
    const indexFetches = () => repo.requests.filter((p) => p === '/index.yaml').length;
    const before = indexFetches();
    await assert.rejects(
      store.resolve(missing, 'a/flotilla-chart.yaml'),
      /^RenderError: a\/flotilla-chart\.yaml: /,
    );
    await assert.rejects(
      store.resolve(missing, 'b/flotilla-chart.yaml'),
      /^RenderError: b\/flotilla-chart\.yaml: chart hello 7\.7\.7 .*has no hello at version 7\.7\.7/,
    );
    assert.equal(indexFetches(), before + 1, 'asked the repository once');
    clock += 30_000;
    await assert.rejects(store.resolve(missing, 'a/flotilla-chart.yaml'));
    assert.equal(indexFetches(), before + 2, 'asked again after the interval');
  });

  test('fetches from an OCI registry by the distribution API', async () => {
    const store = createChartStore({ db: database.db, cacheDir: cacheDir() });
    const got = await store.resolve({ repository: registry.url, chart: 'hello', version: '3.0.0' }, 'x');
    assert.match(got.digest, /^sha256:/);
    await assert.rejects(
      store.resolve({ repository: registry.url, chart: 'hello', version: '3.0.1' }, 'x'),
      /no tag 3\.0\.1|HTTP 404/,
    );
  });

  test('a chart that changes under the same version is refused by a hub that fetches it again', async () => {
    const ref = { repository: registry.url, chart: 'hello', version: '3.0.0' };
    await registry.push(chart('3.0.0', 'changed'));
    // A replica with an empty cache (or this hub after its cache was lost) fetches again.
    const replica = createChartStore({ db: database.db, cacheDir: cacheDir() });
    await assert.rejects(
      replica.resolve(ref, 'apps/hello/flotilla-chart.yaml'),
      /^RenderError: apps\/hello\/flotilla-chart\.yaml: chart hello 3\.0\.0 from oci:\/\/127\.0\.0\.1:\d+\/charts: changed under the same version \(pinned sha256:[0-9a-f]{64} at its first fetch, now sha256:[0-9a-f]{64}\); refused/,
    );
  });

  test('sends configured credentials to a private repository, and never shows them', async () => {
    const ref = { repository: privateRepo.url, chart: 'hello', version: '2.0.0' };
    const anonymous = createChartStore({ db: database.db, cacheDir: cacheDir() });
    const refused = await anonymous.resolve(ref, 'x').then(
      () => assert.fail('fetched without credentials'),
      (err: Error) => err,
    );
    assert.match(refused.message, /HTTP 401/);
    const store = createChartStore({
      db: database.db,
      cacheDir: cacheDir(),
      credentials: [{ url: privateRepo.url, username: 'ci', password: 'chart-s3cret' }],
    });
    const got = await store.resolve(ref, 'x');
    assert.match(got.digest, /^sha256:/);
    assert.ok(!refused.message.includes('chart-s3cret'));
  });
});
