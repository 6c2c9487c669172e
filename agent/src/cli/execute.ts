/**
 * What each `flotilla-agent` command does, given its checked arguments (args.ts). Loaded by
 * commands.ts only when a valid command runs: this module and what it imports are the agent.
 */
import { readFileSync } from 'node:fs';
import {
  createLogger,
  errorMessage,
  FlotillaError,
  InvalidError,
  type Logger,
  secretHashKey,
} from '@flotilla/shared';
import { KubeConfig } from '@kubernetes/client-node';
import type { ApplyEventWriter } from '../events/index.js';
import type { Reconciler, ReconcilerOptions } from '../reconcile/index.js';
import { runAgent } from '../run.js';
import { createSopsDecoder, newAgeKey, readAgeKeyFile } from '../secrets/index.js';
import {
  type AgentIdentity,
  createFileIdentityStore,
  createSecretIdentityStore,
  type IdentityStore,
  inClusterNamespace,
  rememberedKubeconfig,
  rememberKubeconfig,
} from '../state.js';
import { AGENT_VERSION } from '../version.js';
import type { CliCommand, CliEnvironment, CommonArgs, LogFormat } from './args.js';
import type { CliIo } from './commands.js';

/** The clock windows are read against: the clock file's time while it holds one, else the system clock. */
function windowClock(env: CliEnvironment): (() => Date) | undefined {
  const file = env.clockFile;
  if (!file) return undefined;
  return () => {
    try {
      const at = new Date(readFileSync(file, 'utf8').trim());
      if (!Number.isNaN(at.getTime())) return at;
    } catch {
      // no file: the system clock
    }
    return new Date();
  };
}

/** The flags every command shares, with the kubeconfig a `join` or `run` remembered in the state dir. */
interface Common extends CommonArgs {
  /** Whether `--kubeconfig` was given (then it is remembered for later commands). */
  kubeconfigGiven: boolean;
}

function withRemembered(c: CommonArgs): Common {
  const kubeconfig = c.kubeconfig ?? rememberedKubeconfig(c.stateDir);
  return { ...c, ...(kubeconfig ? { kubeconfig } : {}), kubeconfigGiven: c.kubeconfig !== undefined };
}

function remember(c: Common): void {
  if (c.kubeconfigGiven && c.kubeconfig) rememberKubeconfig(c.stateDir, c.kubeconfig);
}

async function loadKubeConfig(c: Common): Promise<KubeConfig> {
  const kc = new KubeConfig();
  try {
    if (c.inCluster) kc.loadFromCluster();
    else if (c.kubeconfig) kc.loadFromFile(c.kubeconfig);
    else {
      kc.loadFromDefault();
      // client-node falls back to http://localhost:8080 when it finds nothing: never guess a cluster.
      if (kc.getCurrentCluster()?.server === 'http://localhost:8080') {
        throw new Error(
          'none found (no --kubeconfig, no KUBECONFIG, no ~/.kube/config); pass --kubeconfig FILE or --in-cluster',
        );
      }
    }
  } catch (err) {
    throw new InvalidError(c.kubeconfig ? `--kubeconfig ${c.kubeconfig}` : 'kubeconfig', errorMessage(err), {
      cause: err,
    });
  }
  return kc;
}

async function identityStore(c: Common): Promise<IdentityStore> {
  if (!c.inCluster) return createFileIdentityStore(c.stateDir);
  return createSecretIdentityStore({ kubeConfig: await loadKubeConfig(c), namespace: inClusterNamespace() });
}

async function loadIdentity(c: Common): Promise<AgentIdentity> {
  const store = await identityStore(c);
  const identity = await store.load();
  if (!identity) {
    throw new FlotillaError(
      'not-found',
      `${store.location}: no agent identity; run \`flotilla-agent join\` first`,
    );
  }
  return identity;
}

async function reconcilerFor(
  c: Common,
  identity: AgentIdentity,
  logger: Logger,
  extra: Pick<ReconcilerOptions, 'watchTimeoutMs' | 'onApplied'> = {},
  moreAgeIdentities: string[] = [],
): Promise<Reconciler> {
  const kubeConfig = await loadKubeConfig(c);
  const { createReconciler } = await import('../reconcile/index.js');
  const identities = [...(identity.ageIdentities ?? []), ...moreAgeIdentities];
  // Drifted Secret values show as an HMAC under a key only this agent holds (from its private key).
  return createReconciler({
    kubeConfig,
    cluster: identity.cluster,
    logger,
    secretHashKey: secretHashKey(identity.agentKey),
    ...extra,
    decoder: createSopsDecoder(() => identities),
  });
}

/** Kubernetes Events on what each apply did (loaded only by the commands that apply). */
async function eventsFor(c: Common, logger: Logger): Promise<ApplyEventWriter> {
  const { createApplyEventWriter } = await import('../events/index.js');
  return createApplyEventWriter({ kubeConfig: await loadKubeConfig(c), logger });
}

/**
 * An identity from before age keys gets one now, kept in its store and registered with the
 * hub by a credential rotation that this makes due at once.
 */
async function withAgeKey(
  identity: AgentIdentity,
  store: IdentityStore,
  log: Logger,
): Promise<AgentIdentity> {
  if (identity.ageIdentities?.length) return identity;
  const key = await newAgeKey();
  const next: AgentIdentity = {
    ...identity,
    ageIdentities: key.identities,
    ageRecipient: key.recipient,
    ageRecipientRegistered: false,
  };
  await store.save(next);
  log.info(
    { recipient: key.recipient, stored: store.location },
    'age key created; registering it with the hub',
  );
  return next;
}

/** Runs one checked command; the exit code as runCli returns it. */
export async function execute(
  command: Exclude<CliCommand, { name: 'version' }>,
  format: LogFormat,
  env: CliEnvironment,
  io: CliIo,
): Promise<number> {
  // Pretty printing is for a person at a terminal: pino-pretty loads only then.
  const destination =
    format === 'pretty'
      ? (await import('pino-pretty')).default({ destination: io.stderr, colorize: false, sync: true })
      : io.stderr;
  const log = createLogger({ name: 'agent', level: env.logLevel ?? 'info', destination });
  const say = (line: string) => io.stdout.write(`${line}\n`);
  try {
    const c = withRemembered(command.common);
    switch (command.name) {
      case 'join': {
        // Join, import and export load only when they run (the bundle keeps them in chunks of their own).
        const { join } = await import('../join.js');
        const identity = await join({
          ...(command.ageKeyFile
            ? { ageIdentities: readAgeKeyFile(command.ageKeyFile, '--age-key-file') }
            : {}),
          hub: command.hub,
          token: command.token,
          caHash: command.caHash,
          store: await identityStore(c),
          logger: log,
        });
        remember(c);
        say(
          `joined: cluster ${identity.cluster} (environment ${identity.environment}); identity stored in ` +
            `${(await identityStore(c)).location}; start with: flotilla-agent run --state-dir ${c.stateDir}`,
        );
        return 0;
      }
      case 'run': {
        const { metricsAddr } = command;
        // The health endpoints and prom-client load only when asked for. They listen before the
        // agent starts, so that a port already taken fails the command before anything runs.
        const healthModule = metricsAddr ? await import('../health/index.js') : undefined;
        const store = await identityStore(c);
        const identity = await withAgeKey(await loadIdentity(c), store, log);
        remember(c);
        // Every watch stream ends within half the stall timeout, so a quiet one still shows progress.
        const events = await eventsFor(c, log);
        const reconciler = await reconcilerFor(
          c,
          identity,
          log,
          {
            ...(healthModule ? { watchTimeoutMs: command.stallTimeoutMs / 4 } : {}),
            onApplied: events.onApplied,
          },
          command.ageKeyFile ? readAgeKeyFile(command.ageKeyFile, '--age-key-file') : [],
        );
        const health = healthModule?.createAgentHealth({
          cluster: identity.cluster,
          version: AGENT_VERSION,
          stallTimeoutMs: command.stallTimeoutMs,
          logger: log,
        });
        const server =
          healthModule && health && metricsAddr
            ? await healthModule.startHealthServer({ address: metricsAddr, health, logger: log })
            : undefined;
        const now = windowClock(env);
        const running = await runAgent({
          identity,
          saveIdentity: (next) => store.save(next),
          stateDir: c.stateDir,
          reconciler,
          logger: log,
          heartbeatMs: command.heartbeatMs,
          healResetMs: command.healResetMs,
          windowCheckMs: command.windowCheckMs,
          ...(now ? { now } : {}),
          nats: {
            servers: command.natsUrls,
            ...(command.natsDomain ? { jsDomain: command.natsDomain } : {}),
          },
          ...(health ? { health } : {}),
        }).catch(async (err) => {
          await server?.close();
          throw err;
        });
        const signal = await io.stopSignal;
        log.info({ signal }, 'stop requested');
        await running.stop();
        await events.flush(5000);
        await server?.close();
        return 0;
      }
      case 'import': {
        const identity = await loadIdentity(c);
        const { file } = command;
        const { importBundleFile, verifyBundleFile } = await import('../air-gap.js');
        // Refuse a bad file before touching the cluster at all.
        verifyBundleFile({ file, identity, stateDir: c.stateDir });
        const events = await eventsFor(c, log);
        const now = windowClock(env);
        const { bundle, result } = await importBundleFile({
          file,
          identity,
          stateDir: c.stateDir,
          reconciler: await reconcilerFor(c, identity, log, { onApplied: events.onApplied }),
          logger: log,
          ...(now ? { now } : {}),
        });
        await events.flush(5000);
        say(
          `imported: generation ${bundle.generation} (revision ${bundle.revision}) for cluster ${bundle.cluster}: ` +
            `${result.phase}, ${result.health}${result.error ? `; ${result.error}` : ''}`,
        );
        return result.phase === 'Failed' ? 1 : 0;
      }
      case 'status-export': {
        const identity = await loadIdentity(c);
        let reconciler: Reconciler | undefined;
        try {
          reconciler = await reconcilerFor(c, identity, log);
        } catch (err) {
          log.warn({ err: errorMessage(err) }, 'no Kubernetes access: exporting queued reports only');
        }
        const { exportStatusFile } = await import('../air-gap.js');
        const { reports } = await exportStatusFile({
          file: command.output,
          identity,
          stateDir: c.stateDir,
          reconciler,
          logger: log,
        });
        say(
          `status exported: ${reports.length} report(s) for cluster ${identity.cluster} to ${command.output}`,
        );
        return 0;
      }
    }
  } catch (err) {
    const name = command.name === 'status-export' ? 'status' : command.name;
    io.stderr.write(`flotilla-agent ${name}: ${errorMessage(err)}\n`);
    return err instanceof InvalidError ? 2 : 1;
  }
}
