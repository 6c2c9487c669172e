import { create } from '@bufbuild/protobuf';
import {
  type ReportStatusRequest,
  type ReportStatusResponse,
  ReportStatusResponseSchema,
} from '@flotilla/proto';
import type { ServerDuplexStream, ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';

type Call = ServerDuplexStream<ReportStatusRequest, ReportStatusResponse>;

/** The open status stream of each connected cluster: where commands to agents go. */
export interface AgentStreams {
  /** Registers a cluster's stream; an older stream of the same cluster is ended. */
  attach(cluster: string, call: Call): void;
  detach(cluster: string, call: Call): void;
  /** Sends a SyncCommand on the cluster's stream; false when it has none open. */
  sendSync(cluster: string, generation: number): boolean;
  /** Ends the cluster's stream with UNAUTHENTICATED (its credential was revoked). */
  revoke(cluster: string): void;
  connected(): string[];
  closeAll(): void;
}

export function createAgentStreams(): AgentStreams {
  const open = new Map<string, Call>();
  const end = (call: Call, code: status, details: string) => {
    call.emit('error', { code, details } satisfies Partial<ServiceError>);
  };
  return {
    attach(cluster, call) {
      const previous = open.get(cluster);
      if (previous && previous !== call)
        end(previous, status.ABORTED, 'superseded by a newer stream of this cluster');
      open.set(cluster, call);
    },
    detach(cluster, call) {
      if (open.get(cluster) === call) open.delete(cluster);
    },
    sendSync(cluster, generation) {
      const call = open.get(cluster);
      if (!call) return false;
      call.write(
        create(ReportStatusResponseSchema, {
          body: { case: 'sync', value: { generation: BigInt(generation) } },
        }),
      );
      return true;
    },
    revoke(cluster) {
      const call = open.get(cluster);
      if (!call) return;
      open.delete(cluster);
      end(call, status.UNAUTHENTICATED, 'agent credential revoked');
    },
    connected: () => [...open.keys()],
    closeAll() {
      for (const [cluster, call] of open) {
        open.delete(cluster);
        end(call, status.UNAVAILABLE, 'hub shutting down');
      }
    },
  };
}
