import { homedir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './run.js';

// The only place the CLI reads the environment.
const argv = process.argv.slice(2);
// A watch runs until Ctrl-C, which ends it cleanly (exit 0). Other commands keep node's default
// (Ctrl-C stops them at once), and `hub start` installs its own handlers to stop the hub.
const stop = new AbortController();
if (argv.includes('--watch') || argv.includes('-w'))
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
const code = await runCli(
  argv,
  {
    hubUrl: process.env.FLOTILLA_HUB,
    token: process.env.FLOTILLA_TOKEN,
    repoPassword: process.env.FLOTILLA_REPO_PASSWORD,
    repoToken: process.env.FLOTILLA_REPO_TOKEN,
    webhookSecret: process.env.FLOTILLA_WEBHOOK_SECRET || undefined,
    oidcClientSecret: process.env.FLOTILLA_OIDC_CLIENT_SECRET || undefined,
    caFile: process.env.FLOTILLA_CA_FILE || undefined,
    configDir: join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'flotilla'),
  },
  { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), stop: stop.signal },
);
process.exitCode = code;
// A stopped hub may leave idle handles (database, sockets) behind: do not hang on them.
if (argv[0] === 'hub' && argv[1] === 'start') setTimeout(() => process.exit(code), 500).unref();
