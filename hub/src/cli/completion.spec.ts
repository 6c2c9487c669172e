import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/flotilla.js', import.meta.url));

function has(shell: string): boolean {
  try {
    execFileSync(shell, ['-c', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * What completing the last of `words` offers, by the script `flotilla completion SHELL`
 * prints, loaded into a real shell the way its header says (zsh runs the function as its
 * bashcompinit does: in sh emulation).
 */
async function complete(shell: 'bash' | 'zsh', words: string[]): Promise<string[]> {
  const array = words.map((w) => `'${w}'`).join(' ');
  const call = `COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _flotilla; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const script =
    shell === 'bash'
      ? `source <("${process.execPath}" "${BIN}" completion bash) && ${call}`
      : `source <("${process.execPath}" "${BIN}" completion zsh) && [[ "\${_comps[flotilla]}" == *_flotilla* ]] && emulate sh -c '${call.replaceAll("'", "'\\''")}'`;
  const { stdout } = await run(shell, ['-c', script]);
  const offered = stdout.split('\n').filter(Boolean);
  // zsh's compgen stand-in may hand back every word; zsh itself (compadd) then shows only
  // those that start with what was typed.
  return shell === 'zsh' ? offered.filter((w) => w.startsWith(words.at(-1)!)) : offered;
}

for (const shell of ['bash', 'zsh'] as const) {
  describe(`flotilla completion ${shell}`, { skip: !has(shell) && `${shell} is not installed here` }, () => {
    test('completes command groups, their subcommands and fixed arguments', async () => {
      const top = await complete(shell, ['flotilla', '']);
      for (const c of ['hub', 'cluster', 'fleet', 'promote', 'rollback', 'sync', 'audit', 'completion'])
        assert.ok(top.includes(c), `${c} in ${top.join(' ')}`);
      assert.deepEqual(await complete(shell, ['flotilla', 'cluster', '']), [
        'add',
        'list',
        'show',
        'token',
        'remove',
        'pause',
        'resume',
      ]);
      assert.deepEqual(await complete(shell, ['flotilla', 'fleet', 'd']), ['drift']);
      assert.deepEqual(await complete(shell, ['flotilla', 'completion', '']), ['bash', 'zsh']);
    });

    test("completes each command's own flags and the global ones, and json after -o", async () => {
      const watch = await complete(shell, ['flotilla', 'fleet', 'status', '--']);
      for (const f of ['--watch', '--interval', '--hub', '--output', '--help'])
        assert.ok(watch.includes(f), `${f} in ${watch.join(' ')}`);
      assert.ok(!watch.includes('--history'), 'fleet drift flags are not offered for fleet status');
      assert.deepEqual(await complete(shell, ['flotilla', 'hub', 'start', '--repo-']), [
        '--repo-password',
        '--repo-token',
        '--repo-username',
      ]);
      assert.deepEqual(await complete(shell, ['flotilla', 'cluster', 'add', '--l']), ['--label']);
      assert.deepEqual(await complete(shell, ['flotilla', 'cluster', 'list', '-o', '']), ['json']);
    });
  });
}

test('completion for another shell is a usage error naming the shells there are', async () => {
  const err = await run(process.execPath, [BIN, 'completion', 'fish']).then(
    () => assert.fail('fish must be refused'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(err.code, 2);
  assert.match(err.stderr, /completion: no completion for shell "fish"; choose bash or zsh/);
});
