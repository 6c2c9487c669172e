import { execFile } from 'node:child_process';
import { join } from 'node:path';

/** The project root, where `node_modules/.bin` holds the workspace bins. */
export const ROOT = new URL('../../../', import.meta.url).pathname;
export const bin = (name: 'flotilla' | 'flotilla-agent' | 'flotilla-kube') =>
  join(ROOT, 'node_modules', '.bin', name);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a Flotilla command to completion, as a user would from the project root. */
export function runCli(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Runs a command that must succeed and prints JSON; returns the parsed JSON. */
export async function runJson<T = unknown>(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<T> {
  const r = await runCli(command, args, env);
  if (r.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    throw new Error(`${command} ${args.join(' ')} did not print JSON:\n${r.stdout}\n${r.stderr}`, {
      cause: err,
    });
  }
}

/** Splits a printed shell command (as `cluster add` prints it) into argv. No quoting tricks are expected. */
export function splitCommand(command: string): string[] {
  return command.trim().split(/\s+/);
}
