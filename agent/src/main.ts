/**
 * The container entry point (`node --import tsx agent/src/main.ts`): `flotilla-agent run
 * --in-cluster`, configured by environment only, as a Deployment sets it.
 *   FLOTILLA_AGENT_STATE_DIR  outbox and last good bundle (an emptyDir or a volume); default /var/lib/flotilla-agent
 *   FLOTILLA_AGENT_LOG_LEVEL  pino level; default info
 *   FLOTILLA_AGENT_HEARTBEAT  seconds between heartbeats; default 30
 *   FLOTILLA_AGENT_METRICS_ADDR  where to serve /healthz, /readyz and /metrics (`:8080`); default off
 */
import { runCli } from './cli/commands.js';

const stopSignal = new Promise<string>((resolve) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve(signal));
});

const args = [
  'run',
  '--in-cluster',
  '--state-dir',
  process.env.FLOTILLA_AGENT_STATE_DIR ?? '/var/lib/flotilla-agent',
];
if (process.env.FLOTILLA_AGENT_HEARTBEAT) args.push('--heartbeat', process.env.FLOTILLA_AGENT_HEARTBEAT);
if (process.env.FLOTILLA_AGENT_METRICS_ADDR)
  args.push('--metrics-addr', process.env.FLOTILLA_AGENT_METRICS_ADDR);
const code = await runCli(
  args,
  { logLevel: process.env.FLOTILLA_AGENT_LOG_LEVEL },
  { stdout: process.stdout, stderr: process.stderr, stopSignal },
);
process.exit(code);
