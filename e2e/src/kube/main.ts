import { parseArgs } from 'node:util';
import { createLogger } from '@flotilla/shared';
import { startKubeServer } from './server.js';

const USAGE =
  'usage: flotilla-kube --port PORT --kubeconfig FILE [--state FILE] [--ready-delay-ms N] [--name NAME] [--log-level LEVEL]\n  [--default-label KEY=VALUE]... [--default-annotation KEY=VALUE]...';

function intArg(name: string, value: string | undefined, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(
      `flotilla-kube: --${name} must be a non-negative integer, got ${JSON.stringify(value)}\n${USAGE}\n`,
    );
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    kubeconfig: { type: 'string' },
    state: { type: 'string' },
    'ready-delay-ms': { type: 'string' },
    name: { type: 'string' },
    'log-level': { type: 'string' },
    'default-label': { type: 'string', multiple: true },
    'default-annotation': { type: 'string', multiple: true },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!values.kubeconfig) {
  process.stderr.write(`flotilla-kube: --kubeconfig is required\n${USAGE}\n`);
  process.exit(2);
}

/** `KEY=VALUE` pairs of a repeated flag, as a map. */
function pairs(name: string, values: string[] | undefined): Record<string, string> | undefined {
  if (!values) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) {
      process.stderr.write(
        `flotilla-kube: --${name} must be KEY=VALUE, got ${JSON.stringify(v)}\n${USAGE}\n`,
      );
      process.exit(2);
    }
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

const defaultLabels = pairs('default-label', values['default-label']);
const defaultAnnotations = pairs('default-annotation', values['default-annotation']);

const logger = createLogger({
  name: 'flotilla-kube',
  level: values['log-level'] ?? process.env.FLOTILLA_KUBE_LOG_LEVEL ?? 'warn',
  destination: process.stderr,
});
const server = await startKubeServer({
  port: intArg('port', values.port, 0),
  readyDelayMs: intArg('ready-delay-ms', values['ready-delay-ms'], undefined),
  ...(values.state ? { statePath: values.state } : {}),
  ...(values.name ? { name: values.name } : {}),
  ...(defaultLabels ? { defaultLabels } : {}),
  ...(defaultAnnotations ? { defaultAnnotations } : {}),
  logger,
});
server.writeKubeconfig(values.kubeconfig);
process.stdout.write(
  `flotilla-kube ${values.name ?? 'flotilla-test'} ready at ${server.url} (kubeconfig ${values.kubeconfig})\n`,
);

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    server.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}
