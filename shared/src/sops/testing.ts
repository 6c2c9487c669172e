import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Test support (not product code): where the real sops-made files live, and the Debian `age`
 * CLI. Without the `age` CLI the compatibility tests fail. The real sops-made files are data
 * from public repositories, kept in `shared/testdata/sops/` (its README names each source);
 * where they are not found (a copy of the sources without them), the tests that read them are
 * reported as skipped, with `SOPS_FIXTURES_MISSING` saying where they were looked for (never
 * passed).
 */

const FIXTURES = join('shared', 'testdata', 'sops');

/**
 * The folder of real sops-made files and their published test keys (see its README.md):
 * `shared/testdata/sops/` of this repository, found by looking for `shared/testdata/sops` in
 * every folder above this one, or at `FLOTILLA_SOPS_FIXTURES`.
 */
export function sopsFixturesDir(): string | undefined {
  const override = process.env.FLOTILLA_SOPS_FIXTURES;
  if (override) {
    if (!existsSync(join(override, 'README.md')))
      throw new Error(`FLOTILLA_SOPS_FIXTURES=${override}: no README.md of the sops fixtures there`);
    return override;
  }
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, FIXTURES);
    if (existsSync(join(candidate, 'README.md'))) return candidate;
    const up = resolve(dir, '..');
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** Why a test that reads the real sops-made files is skipped, or false when they are here. */
export const SOPS_FIXTURES_MISSING: string | false =
  sopsFixturesDir() === undefined &&
  `the real sops-made test files were not found: no ${FIXTURES}/README.md in any folder above ${fileURLToPath(import.meta.url)}, and FLOTILLA_SOPS_FIXTURES is not set`;

/** The Debian `age` and `age-keygen` binaries; throws (the test fails) when they are not installed. */
export function ageCli(): { age: string; keygen: string } {
  const find = (name: string) => {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      throw new Error(
        `${name} is not installed: the age compatibility tests need the Debian package age (apt-get install age; .ci/run installs it)`,
      );
    }
  };
  return { age: find('age'), keygen: find('age-keygen') };
}
