import { errorMessage, FlotillaError } from '@flotilla/shared';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';

const GRPC_STATUS: Record<string, status> = {
  invalid: status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  conflict: status.ALREADY_EXISTS,
  unauthenticated: status.UNAUTHENTICATED,
  'permission-denied': status.PERMISSION_DENIED,
  unavailable: status.UNAVAILABLE,
};

/** The one place hub errors become gRPC statuses; internal errors do not leak details. */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  if (err instanceof FlotillaError && GRPC_STATUS[err.code] !== undefined) {
    return { code: GRPC_STATUS[err.code], details: err.message, metadata: new Metadata() };
  }
  return {
    code: status.INTERNAL,
    details: `internal error: ${errorMessage(err).slice(0, 200)}`,
    metadata: new Metadata(),
  };
}
