import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { ReportStatusRequest } from '@flotilla/proto';
import {
  type Bundle,
  createLogger,
  encodeEnvelope,
  errorMessage,
  FlotillaError,
  type Logger,
  MAX_ENVELOPE_BYTES,
  sha256Digest,
  signStatusExport,
  VerifyError,
  verifyBundle,
} from '@flotilla/shared';
import { createOutbox, outboxPath, replayOutbox, seqFloorNow } from './outbox.js';
import type { ReconcileResult, Reconciler } from './reconcile/index.js';
import {
  type AgentIdentity,
  createBundleStore,
  identitySigningKey,
  identityTrustedKeys,
  lockStateDir,
  stateDirHolder,
  writeFileDurable,
} from './state.js';
import { statusBody } from './status-report.js';

/** The stored last good bundle, if it still verifies. */
function storedBundle(identity: AgentIdentity, stateDir: string): Bundle | undefined {
  const bytes = createBundleStore(stateDir).read();
  if (!bytes) return undefined;
  try {
    return verifyBundle(bytes, { keys: identityTrustedKeys(identity), cluster: identity.cluster });
  } catch {
    return undefined;
  }
}

export interface ImportOptions {
  file: string;
  identity: AgentIdentity;
  stateDir: string;
  reconciler: Reconciler;
  logger?: Logger;
}

/**
 * Verifies a bundle file exactly as a NATS-delivered bundle: pinned hub keys, this
 * cluster, a generation newer than the stored one (or the stored bundle itself, byte for
 * byte, to enforce it again). Throws a VerifyError naming the file.
 */
export function verifyBundleFile(options: Omit<ImportOptions, 'reconciler' | 'logger'>): {
  bundle: Bundle;
  bytes: Uint8Array;
} {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(options.file));
    // A gzip'd envelope (as it travels over NATS) is accepted too; the envelope is what is verified.
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      bytes = new Uint8Array(gunzipSync(bytes, { maxOutputLength: MAX_ENVELOPE_BYTES }));
    }
  } catch (err) {
    throw new FlotillaError('invalid', `${options.file}: cannot read: ${errorMessage(err)}`, { cause: err });
  }
  const applied = storedBundle(options.identity, options.stateDir);
  // The applied bundle itself may be imported again (to re-enforce it on site); any other
  // content must carry a newer generation.
  const reimport =
    applied !== undefined &&
    sha256Digest(bytes) === sha256Digest(createBundleStore(options.stateDir).read()!);
  try {
    const bundle = verifyBundle(bytes, {
      keys: identityTrustedKeys(options.identity),
      cluster: options.identity.cluster,
      appliedGeneration: applied ? applied.generation - (reimport ? 1 : 0) : undefined,
    });
    return { bundle, bytes };
  } catch (err) {
    if (err instanceof VerifyError) {
      throw new VerifyError(err.reason, `${options.file}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Imports a bundle file carried into an air-gapped cluster: verified (verifyBundleFile),
 * applied, then stored as the last good bundle, where a running `run` process picks it
 * up too. A tampered, foreign or older file throws and is never applied.
 */
export async function importBundleFile(
  options: ImportOptions,
): Promise<{ bundle: Bundle; result: ReconcileResult }> {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const { bundle, bytes } = verifyBundleFile(options);
  log.info(
    { file: options.file, generation: bundle.generation, digest: sha256Digest(bytes) },
    'bundle file verified',
  );
  const result = await options.reconciler.apply(bundle);
  createBundleStore(options.stateDir).write(bytes);
  log.info(
    { generation: bundle.generation, phase: result.phase, health: result.health },
    'bundle file applied',
  );
  // Queue the outcome for the next status export, unless a running agent owns the outbox
  // (it adopts the stored bundle and reports by itself).
  if (stateDirHolder(options.stateDir) === undefined) {
    const lock = lockStateDir(options.stateDir);
    const outbox = createOutbox({ dir: options.stateDir, logger: log, seqFloor: seqFloorNow() });
    try {
      outbox.append(
        statusBody({
          bundle,
          bundleDigest: sha256Digest(bytes),
          phase: result.phase,
          health: result.health,
          resources: result.resources,
          error: result.error,
        }),
      );
    } finally {
      outbox.close();
      lock.release();
    }
  }
  return { bundle, result };
}

export interface StatusExportOptions {
  file: string;
  identity: AgentIdentity;
  stateDir: string;
  /** When given (and no `run` holds the state dir), a fresh full status is assessed and included. */
  reconciler?: Reconciler;
  logger?: Logger;
}

/**
 * Writes the unacknowledged outbox reports as a status file signed with the agent key,
 * for `flotilla status import` on the hub side. The reports stay in the outbox: an export
 * is not an acknowledgement, and the hub tolerates seeing a seq twice.
 */
export async function exportStatusFile(
  options: StatusExportOptions,
): Promise<{ reports: ReportStatusRequest[] }> {
  const log = options.logger ?? createLogger({ name: 'agent', level: 'silent' });
  const holder = stateDirHolder(options.stateDir);
  let reports: ReportStatusRequest[];
  if (holder !== undefined) {
    // A running agent owns the outbox: read it without taking it over.
    log.warn(
      { pid: holder },
      'an agent is running on this state dir; exporting its queued reports as they are',
    );
    reports = replayOutbox(outboxPath(options.stateDir), log).reports;
  } else {
    const lock = lockStateDir(options.stateDir);
    const outbox = createOutbox({ dir: options.stateDir, logger: log, seqFloor: seqFloorNow() });
    try {
      const bundle = storedBundle(options.identity, options.stateDir);
      if (bundle && options.reconciler) {
        try {
          const assessed = await options.reconciler.assess(bundle);
          outbox.append(
            statusBody({
              bundle,
              bundleDigest: sha256Digest(createBundleStore(options.stateDir).read() ?? new Uint8Array()),
              phase: assessed.phase,
              health: assessed.health,
              resources: assessed.resources,
              error: assessed.error,
            }),
          );
        } catch (err) {
          log.warn({ err: errorMessage(err) }, 'no fresh status: the cluster could not be assessed');
        }
      }
      reports = [...outbox.pending()];
    } finally {
      outbox.close();
      lock.release();
    }
  }
  const envelope = signStatusExport(
    { cluster: options.identity.cluster, exportedAt: new Date().toISOString(), reports },
    identitySigningKey(options.identity),
  );
  writeFileDurable(options.file, encodeEnvelope(envelope), 0o644);
  log.info({ file: options.file, reports: reports.length }, 'status exported');
  return { reports };
}
