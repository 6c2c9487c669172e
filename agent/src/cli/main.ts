/**
 * The `flotilla-agent` entry point: the one place that reads the process's arguments,
 * environment and signals. Everything else receives them.
 */
import { runCli } from './commands.js';

const stopSignal = new Promise<string>((resolve) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve(signal));
});

const code = await runCli(
  process.argv.slice(2),
  {
    logLevel: process.env.FLOTILLA_AGENT_LOG_LEVEL,
    logFormat: process.env.FLOTILLA_AGENT_LOG_FORMAT,
    stateDir: process.env.FLOTILLA_AGENT_STATE_DIR,
    clockFile: process.env.FLOTILLA_AGENT_CLOCK_FILE,
  },
  { stdout: process.stdout, stderr: process.stderr, stopSignal },
);
process.exit(code);
