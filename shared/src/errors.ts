/** Every error code Flotilla raises; map to gRPC or HTTP status at the edge only. */
export const ErrorCode = {
  Invalid: 'invalid',
  NotFound: 'not-found',
  Conflict: 'conflict',
  Unauthenticated: 'unauthenticated',
  PermissionDenied: 'permission-denied',
  Verify: 'verify',
  Render: 'render',
  Source: 'source',
  Apply: 'apply',
  Unavailable: 'unavailable',
  Internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base error: a code from a string union, a message that starts with its subject, and the cause kept. */
export class FlotillaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlotillaError';
    this.code = code;
  }
}

/** Bad input: names the field (or file, or object) at fault. */
export class InvalidError extends FlotillaError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Invalid, `${field}: ${message}`, options);
    this.name = 'InvalidError';
    this.field = field;
  }
}

/** Renders any thrown value as one line, without a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
