import { fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import { type ReportStatusRequest, ReportStatusRequestSchema } from '@flotilla/proto';
import {
  decodeEnvelope,
  type Envelope,
  signEnvelope,
  VerifyError,
  VerifyErrorCode,
  verifyEnvelope,
} from './envelope.js';
import type { SigningKey, TrustedKeys } from './keys.js';

export const STATUS_PAYLOAD_TYPE = 'application/vnd.flotilla.status.v1+json';

/** gRPC metadata key that carries `Bearer <agent credential>` on every call but Register. */
export const AGENT_AUTH_METADATA = 'authorization';

/**
 * Status carried out of an air-gapped cluster by hand: the agent's unacknowledged reports,
 * signed with the agent key whose public half the hub stored at registration, so the hub
 * can tell the file came from that cluster and was not edited on the way.
 */
export interface StatusExport {
  cluster: string;
  exportedAt: string;
  reports: ReportStatusRequest[];
}

export function signStatusExport(data: StatusExport, key: SigningKey): Envelope {
  const payload = {
    cluster: data.cluster,
    exportedAt: data.exportedAt,
    reports: data.reports.map((r) => toJson(ReportStatusRequestSchema, r)),
  };
  return signEnvelope(STATUS_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(payload)), key);
}

/** Verifies a status file against the agent keys of the cluster it claims to be from. */
export function verifyStatusExport(
  bytes: Uint8Array,
  keysOf: (cluster: string) => TrustedKeys | undefined,
): StatusExport {
  const envelope = decodeEnvelope(bytes);
  let claimed: { cluster?: unknown; exportedAt?: unknown; reports?: unknown };
  try {
    claimed = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
  } catch (err) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'status payload is not JSON', { cause: err });
  }
  if (typeof claimed?.cluster !== 'string' || !Array.isArray(claimed.reports)) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'status payload lacks cluster or reports');
  }
  const keys = keysOf(claimed.cluster);
  if (!keys)
    throw new VerifyError(
      VerifyErrorCode.UnknownKey,
      `no agent key known for cluster ${JSON.stringify(claimed.cluster)}`,
    );
  const payload = JSON.parse(new TextDecoder().decode(verifyEnvelope(envelope, keys, STATUS_PAYLOAD_TYPE)));
  try {
    return {
      cluster: payload.cluster,
      exportedAt: String(payload.exportedAt),
      reports: (payload.reports as JsonValue[]).map((r) => fromJson(ReportStatusRequestSchema, r)),
    };
  } catch (err) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'a status report does not parse', { cause: err });
  }
}
