import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const protoDir = new URL('..', import.meta.url).pathname;

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

test('generated code in src/gen is what buf generates from the .proto files now', () => {
  const out = mkdtempSync(join(tmpdir(), 'flotilla-gen-'));
  try {
    const buf = join(protoDir, '..', 'node_modules', '.bin', 'buf');
    execFileSync(buf, ['generate', '-o', out], { cwd: protoDir, stdio: 'pipe' });
    const fresh = files(join(out, 'src', 'gen'));
    const committed = files(join(protoDir, 'src', 'gen'));
    assert.deepEqual(
      [...committed.keys()].sort(),
      [...fresh.keys()].sort(),
      'generated file set differs: run `npm run generate`',
    );
    for (const [name, text] of fresh) {
      assert.equal(committed.get(name), text, `proto/src/gen/${name} is stale: run \`npm run generate\``);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
