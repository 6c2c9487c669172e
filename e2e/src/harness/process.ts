import { type ChildProcess, spawn } from 'node:child_process';

/** Every process a test starts, so that all of them are stopped even when the test fails. */
const running = new Set<ManagedProcess>();

function killAll(): void {
  for (const p of running) p.kill('SIGKILL');
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve once a line of stdout or stderr matches. */
  ready?: RegExp;
  /** How long to wait for `ready`. */
  timeoutMs?: number;
  /** Label for errors and logs. */
  name?: string;
  /** Print the process's output to this process's stderr (debugging). */
  echo?: boolean;
}

/** A child process in its own process group, with its output kept for error messages. */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  private output = '';
  readonly exited: Promise<number | null>;

  constructor(command: string, args: string[], options: StartOptions) {
    this.name = options.name ?? command;
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-64_000);
      if (options.echo || process.env.FLOTILLA_E2E_ECHO) process.stderr.write(`[${this.name}] ${chunk}`);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        running.delete(this);
        resolve(code);
      }),
    );
  }

  /** What it printed lately (stdout and stderr interleaved). */
  get log(): string {
    return this.output;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.output.match(pattern);
        if (m) {
          done();
          resolve(m);
        }
      };
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited before printing ${pattern}:\n${this.output}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.child.stdout!.off('data', check);
        this.child.stderr!.off('data', check);
        this.child.off('exit', onExit);
      };
      this.child.stdout!.on('data', check);
      this.child.stderr!.on('data', check);
      this.child.once('exit', onExit);
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.alive || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      this.child.kill(signal);
    }
  }

  /**
   * SIGTERM to the whole process group, then SIGKILL to whatever of it is left after
   * graceMs. Waits for the group, not only its leader: a child that outlives its parent
   * (or ignores SIGTERM) would otherwise keep ports and files of the next test.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive && !this.groupAlive()) return;
    const deadline = Date.now() + graceMs;
    this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    await this.exited;
    while (this.groupAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    clearTimeout(timer);
    if (this.groupAlive()) this.signalGroup('SIGKILL');
  }

  /** Whether any process of its group is left (the group's id is the leader's pid). */
  private groupAlive(): boolean {
    if (this.child.pid === undefined) return false;
    try {
      process.kill(-this.child.pid, 0);
      return true;
    } catch (err) {
      // EPERM: members run as another user (PostgreSQL under runuser) and are still there.
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      if (this.alive) this.child.kill(signal);
    }
  }
}

export async function startProcess(
  command: string,
  args: string[],
  options: StartOptions = {},
): Promise<ManagedProcess> {
  const p = new ManagedProcess(command, args, options);
  if (options.ready) {
    try {
      await p.waitFor(options.ready, options.timeoutMs);
    } catch (err) {
      await p.stop(1000);
      throw err;
    }
  }
  return p;
}
