import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  AgentService,
  addGrpcService,
  RegisterResponseSchema,
  type ReportStatusRequest,
  ReportStatusResponseSchema,
  RotateCredentialResponseSchema,
} from '@flotilla/proto';
import { AGENT_AUTH_METADATA, errorMessage, FlotillaError, type Logger } from '@flotilla/shared';
import * as grpc from '@grpc/grpc-js';
import type { ApplyRequests } from '../apply-request/apply-request.js';
import type { ClusterService } from '../clusters/cluster-service.js';
import type { HubTls } from '../pki/tls.js';
import type { StatusIngest } from '../status/ingest.js';
import type { AgentStreams } from './agent-streams.js';
import { toGrpcError } from './errors.js';

export interface GrpcServerOptions {
  /** `host:port` to listen on; port 0 picks a free one. */
  listen: string;
  tls: HubTls;
  clusters: ClusterService;
  ingest: StatusIngest;
  streams: AgentStreams;
  applyRequests: ApplyRequests;
  logger: Logger;
  /** Told to every agent when its stream opens; default 10 s (a third of the default window). */
  heartbeatSeconds?: number;
  /** Counts for /metrics. */
  onReport?: (outcome: ReportOutcome) => void;
  /** Where agents' age recipients go (at Register and RotateCredential); none: not kept. */
  recipients?: { record(cluster: string, recipient: string): Promise<void> };
}

export type ReportOutcome = 'stored' | 'duplicate' | 'failed';

export interface GrpcServer {
  /** `host:port` actually bound. */
  address: string;
  close(): Promise<void>;
}

/** The agent credential from `authorization: Bearer <credential>` metadata. */
function bearer(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get(AGENT_AUTH_METADATA)[0];
  const match = /^Bearer\s+(\S+)$/i.exec(typeof value === 'string' ? value : '');
  return match?.[1];
}

/**
 * The hub's gRPC endpoint over TLS: Register (bootstrap token → credentials) and the
 * ReportStatus stream, on which each report is stored before its Ack is sent. The cluster
 * a stream speaks for comes from its credential only, never from a report.
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { clusters, ingest, streams, logger } = options;
  /**
   * Keeps the age recipient an agent sent. A bad or unstorable one is logged, never fails the
   * call: the agent sends it again with its next rotation, and SOPS files are then encrypted to it.
   */
  const recordRecipient = async (cluster: string, recipient: string, peer: string) => {
    if (!recipient || !options.recipients) return;
    await options.recipients
      .record(cluster, recipient)
      .catch((err) => logger.warn({ cluster, peer, err: errorMessage(err) }, 'age recipient not recorded'));
  };
  const count = (outcome: ReportOutcome) => options.onReport?.(outcome);
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  addGrpcService(server, AgentService, {
    register(call, callback) {
      const peer = call.getPeer();
      clusters
        .register({
          token: call.request.token,
          agentPublicKey: call.request.agentPublicKey,
          agentVersion: call.request.agentVersion,
          peer,
        })
        .then(async (r) => {
          await recordRecipient(r.cluster, call.request.ageRecipient, peer);
          return r;
        })
        .then((r) =>
          callback(
            null,
            create(RegisterResponseSchema, {
              cluster: r.cluster,
              environment: r.environment,
              labels: r.labels,
              agentCredential: r.agentCredential,
              credentialExpiresAt: timestampFromDate(r.credentialExpiresAt),
              nats: r.nats,
              hubKeys: r.hubKeys,
            }),
          ),
        )
        .catch((err) => {
          if (!(err instanceof FlotillaError))
            logger.error({ err: errorMessage(err), peer }, 'register failed');
          callback(toGrpcError(err) as grpc.ServiceError);
        });
    },

    rotateCredential(call, callback) {
      const peer = call.getPeer();
      const credential = bearer(call.metadata);
      (credential
        ? clusters.rotateCredential(credential, peer)
        : Promise.reject(new FlotillaError('unauthenticated', 'agent credential missing'))
      )
        .then(async (r) => {
          await recordRecipient(r.cluster, call.request.ageRecipient, peer);
          return r;
        })
        .then((r) =>
          callback(
            null,
            create(RotateCredentialResponseSchema, {
              agentCredential: r.agentCredential,
              expiresAt: timestampFromDate(r.expiresAt),
              nats: r.nats,
            }),
          ),
        )
        .catch((err) => {
          if (!(err instanceof FlotillaError))
            logger.error({ err: errorMessage(err), peer }, 'credential rotation failed');
          callback(toGrpcError(err) as grpc.ServiceError);
        });
    },

    reportStatus(call) {
      const credential = bearer(call.metadata);
      let cluster: string | undefined;
      let failed = false;
      /**
       * The highest seq stored and not yet acknowledged. Acks are cumulative (Ack{seq}: every
       * report up to seq is stored), so the reports of a stream stored in one batch are answered
       * by one Ack, written once the batch's answers have all run: one message instead of one per
       * report, for the hub to write and the agent to record in its outbox.
       */
      let ackDue: bigint | undefined;
      /** Reports that arrived on this stream, and how many of them are stored so far. */
      let arrived = 0;
      let storedCount = 0;
      /**
       * An Ack that fell due while more of the stream's reports had already arrived waits until
       * those are stored too (they are queued or being written), then answers them all at once:
       * an agent's queued reports often span two or three batches. It waits once, for the
       * reports there were when it fell due, never for later ones, so a busy stream is still
       * answered about once a batch.
       */
      let ackAfter: number | undefined;
      let flushDue = false;
      const flushAck = (now = false) => {
        if (ackDue === undefined) return;
        if (!now) {
          if (ackAfter === undefined && arrived > storedCount) ackAfter = arrived;
          if (ackAfter !== undefined && storedCount < ackAfter) return;
        }
        const seq = ackDue;
        ackDue = undefined;
        ackAfter = undefined;
        if (!failed)
          call.write(create(ReportStatusResponseSchema, { body: { case: 'ack', value: { seq } } }));
      };
      const ack = (seq: bigint) => {
        ackDue = seq;
        storedCount++;
        if (flushDue) return;
        flushDue = true;
        setImmediate(() => {
          flushDue = false;
          flushAck();
        });
      };
      const fail = (err: unknown) => {
        if (failed) return;
        // What was stored before the failure is still acknowledged.
        flushAck(true);
        failed = true;
        if (cluster) streams.detach(cluster, call);
        call.emit('error', toGrpcError(err));
      };
      // The stream's work in order: authentication first, then each report's storage and Ack.
      let chain: Promise<void> = (async () => {
        cluster = credential ? await clusters.authenticate(credential) : undefined;
        if (!cluster) {
          logger.warn(
            { peer: call.getPeer() },
            'status stream refused: unknown, revoked or expired agent credential',
          );
          throw new FlotillaError(
            'unauthenticated',
            'agent credential is unknown, revoked or expired: join again with a new token',
          );
        }
        streams.attach(cluster, call);
        call.write(
          create(ReportStatusResponseSchema, {
            body: { case: 'settings', value: { heartbeatSeconds: options.heartbeatSeconds ?? 10 } },
          }),
        );
        await ingest.touch(cluster);
        await options.applyRequests.deliverPending(cluster);
        logger.info({ cluster }, 'agent connected');
      })();
      chain.catch(fail);
      /** The reports of a stream that arrived in one turn of the event loop, and their shared credential check. */
      interface Arrival {
        reports: ReportStatusRequest[];
        stillValid: Promise<string | undefined>;
        /** Settles once the arrival was handed to the ingest: each report's storage, in order. */
        handed?: Promise<Array<{ stored: Promise<void> }>>;
      }
      /**
       * Hands the reports of one arrival to the ingest, together and in order, and returns their
       * storage as values, not awaited: the stream's next reports are handed over at once, so the
       * reports an agent queued while away are stored in a few batches instead of one batch
       * round each; and handed over together, they sit side by side in the ingest's queue, so they
       * mostly land in one batch (one row lock, one status update, one Ack for the lot).
       */
      const submit = async (arrival: Arrival): Promise<Array<{ stored: Promise<void> }>> => {
        // Checked again at every arrival: a credential revoked through any hub replica ends this
        // stream at its next message (heartbeats keep that within seconds). The check of an
        // arrival starts once it closed, after each of its reports came in; the checks run side
        // by side, only the hand-over to the ingest is in order.
        const valid = await arrival.stillValid;
        if (current === arrival) current = undefined;
        if (failed || !cluster) return arrival.reports.map(() => ({ stored: Promise.resolve() }));
        if (valid !== cluster) {
          logger.warn({ cluster }, 'status stream ended: the agent credential was revoked or expired');
          throw new FlotillaError('unauthenticated', 'agent credential revoked or expired');
        }
        const name = cluster;
        return arrival.reports.map((report) => {
          const stored = ingest.ingest(name, report, 'stream').then(
            (outcome) => {
              count(outcome.stored ? 'stored' : 'duplicate');
            },
            (err) => {
              count('failed');
              logger.error(
                { cluster: name, err: errorMessage(err) },
                'status report not stored; the agent will resend it',
              );
              throw new FlotillaError('unavailable', `status report ${report.seq} not stored: try again`, {
                cause: err,
              });
            },
          );
          // Awaited below, in order; a failure after the stream already failed is not unhandled.
          stored.catch(() => {});
          return { stored };
        });
      };
      /** Arrivals handed to the ingest so far, in order (waits on authentication, not on storage). */
      const opened = chain;
      let submitted: Promise<unknown> = opened;
      /** The arrival that reports coming in now join; closed at the end of this turn. */
      let current: Arrival | undefined;
      call.on('data', (report: ReportStatusRequest) => {
        let arrival = current;
        if (!arrival) {
          const opening: Arrival = {
            reports: [],
            // Its lookup starts in a later turn than this one, after the arrival closed.
            stillValid: opened.then(() => clusters.authenticate(credential!)),
          };
          opening.stillValid.catch(() => {});
          current = arrival = opening;
          setImmediate(() => {
            if (current === opening) current = undefined;
          });
          opening.handed = submitted.then(() => submit(opening));
          submitted = opening.handed.catch(() => {});
        }
        const index = arrival.reports.push(report) - 1;
        arrived++;
        const handed = arrival.handed!;
        // Acks go strictly in order: an Ack{seq} means every report up to seq is stored.
        chain = chain
          .then(() => handed)
          .then((all) => all[index]!.stored)
          .then(() => {
            if (!failed) ack(report.seq);
          });
        chain.catch(fail);
      });
      call.on('end', () => {
        void chain
          .then(() => {
            flushAck(true);
            if (!failed) call.end();
          })
          .catch(() => {});
      });
      const gone = () => {
        if (cluster) {
          streams.detach(cluster, call);
          logger.info({ cluster }, 'agent disconnected');
        }
      };
      call.on('cancelled', gone);
      call.on('close', gone);
      call.on('error', () => {});
    },
  });

  const credentials = grpc.ServerCredentials.createSsl(
    null,
    [{ cert_chain: Buffer.from(options.tls.chainPem), private_key: Buffer.from(options.tls.keyPem) }],
    false,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = options.listen.slice(0, options.listen.lastIndexOf(':'));
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        streams.closeAll();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 3000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
