import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * bench:ingest's whole machinery at a tiny size, so CI proves it still runs. Rates are printed,
 * never asserted; the benchmark itself fails unless every Ack came in order and every report
 * sent was stored exactly once.
 */
test('bench:ingest at 3 clusters: every agent joins, and every queued report is acknowledged in order and stored once', {
  timeout: 300_000,
}, async () => {
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'hub/src/bench/ingest.ts',
      '--clusters',
      '3',
      '--reports',
      '4',
      '--rounds',
      '2',
      '--database',
      'pglite',
      '--json',
    ],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    clusters: number;
    joinPerSec: number;
    ingestRounds: Array<{ perSec: number }>;
  };
  assert.equal(result.clusters, 3);
  assert.ok(result.joinPerSec > 0, 'the Register calls were timed');
  assert.equal(result.ingestRounds.length, 2);
  assert.match(stdout, /every report stored once \(24 rows\)/);
});
