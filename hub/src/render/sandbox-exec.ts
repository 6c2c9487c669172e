import { execFile, execFileSync } from 'node:child_process';

export interface SandboxRun {
  bin: string;
  args: string[];
  cwd: string;
  /** Becomes HOME (and the helm dirs): the only writable place the tool is told about. */
  home: string;
  timeoutMs: number;
  maxOutputBytes: number;
  extraEnv?: Record<string, string>;
}

let unshareWorks: boolean | undefined;

/**
 * Whether `unshare -rn` (a user namespace with an empty network namespace) works here.
 * When it does, renderers run with no network at all; when it does not (no user
 * namespaces), they still get no credentials and remote references are refused before running.
 */
export function networkIsolationAvailable(): boolean {
  if (unshareWorks === undefined) {
    try {
      execFileSync('unshare', ['-rn', 'true'], { stdio: 'ignore', timeout: 5000 });
      unshareWorks = true;
    } catch {
      unshareWorks = false;
    }
  }
  return unshareWorks;
}

export type SandboxOutcome =
  | { ok: true; stdout: string }
  | { ok: false; reason: 'timeout' | 'output-too-large' | 'failed' | 'not-found'; detail: string };

/**
 * Runs a renderer binary with a time limit, an output cap, an environment holding only
 * PATH and HOME (no tokens, no kubeconfig, no proxies) and, where available, no network.
 */
export function runSandboxed(run: SandboxRun): Promise<SandboxOutcome> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: run.home,
    ...run.extraEnv,
  };
  const isolate = networkIsolationAvailable();
  const bin = isolate ? 'unshare' : run.bin;
  const args = isolate ? ['-rn', '--', run.bin, ...run.args] : run.args;
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      {
        cwd: run.cwd,
        env,
        timeout: run.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: run.maxOutputBytes,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ ok: true, stdout });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string; code?: unknown };
        if (e.code === 'ENOENT')
          return resolve({ ok: false, reason: 'not-found', detail: `${run.bin} not found` });
        if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
          return resolve({
            ok: false,
            reason: 'output-too-large',
            detail: `output exceeds ${run.maxOutputBytes} bytes`,
          });
        if (e.killed || e.signal === 'SIGKILL')
          return resolve({ ok: false, reason: 'timeout', detail: `timed out after ${run.timeoutMs} ms` });
        resolve({ ok: false, reason: 'failed', detail: firstErrorLine(String(stderr), run.cwd) });
      },
    );
  });
}

/**
 * The first meaningful stderr line, cut short and with the sandbox path removed: enough to
 * name the problem, too short to carry a file's content.
 */
function firstErrorLine(stderr: string, sandbox: string): string {
  const line =
    stderr
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? 'failed without output';
  const clean = line
    .split(`${sandbox}/`)
    .join('')
    .split(sandbox)
    .join('.')
    // kubectl's klog prefix (`E1122 05:11:35.28 27277 run.go:72] "command failed" err="…"`) says nothing useful.
    .replace(/^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] (?:"command failed" err=)?/, '')
    .replace(/^"(.*)"$/, '$1')
    .replace(/^Error: /, '');
  return clean.length > 240 ? `${clean.slice(0, 240)}…` : clean;
}
