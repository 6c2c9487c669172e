import { errorMessage, FlotillaError } from '@flotilla/shared';

const HTTP_STATUS: Record<string, number> = {
  invalid: 400,
  verify: 400,
  render: 422,
  source: 502,
  unauthenticated: 401,
  'permission-denied': 403,
  'not-found': 404,
  conflict: 409,
  unavailable: 503,
};

/** The one place hub errors become HTTP statuses; unexpected errors are a terse 500. */
export function httpErrorOf(err: unknown): { status: number; body: { error: string; code: string } } {
  if (err instanceof FlotillaError) {
    return { status: HTTP_STATUS[err.code] ?? 500, body: { error: err.message, code: err.code } };
  }
  return {
    status: 500,
    body: { error: `internal error: ${errorMessage(err).slice(0, 200)}`, code: 'internal' },
  };
}
