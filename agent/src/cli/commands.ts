import { type CliEnvironment, parseCliArgs, VERSION_LINE } from './args.js';

export type { CliEnvironment } from './args.js';
export { USAGE } from './args.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT); `run` waits on it. */
  stopSignal: Promise<string>;
}

/**
 * Runs one CLI invocation and returns its exit code: 0 done, 1 failed (the message says
 * why), 2 usage error. `run` returns only when stopped.
 *
 * Help, `version` and usage errors are answered from the parsed arguments alone; the agent
 * itself (execute.ts: NATS, gRPC, the Kubernetes client, pino) loads only for a valid command.
 */
export async function runCli(cliArgs: string[], env: CliEnvironment, io: CliIo): Promise<number> {
  const parsed = parseCliArgs(cliArgs, env);
  switch (parsed.kind) {
    case 'usage':
      (parsed.exitCode === 0 ? io.stdout : io.stderr).write(parsed.text);
      return parsed.exitCode;
    case 'invalid':
      io.stderr.write(`flotilla-agent${parsed.command ? ` ${parsed.command}` : ''}: ${parsed.message}\n`);
      return 2;
    case 'command':
      if (parsed.command.name === 'version') {
        io.stdout.write(`${VERSION_LINE}\n`);
        return 0;
      }
      return (await import('./execute.js')).execute(parsed.command, parsed.logFormat, env, io);
  }
}
