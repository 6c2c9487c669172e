import { errorMessage, FlotillaError } from '@flotilla/shared';
import { PermissionDeniedError } from '../access/roles.js';

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

/** Connection-level failures of the database (node-postgres and PGlite), as opposed to a bad query. */
function databaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const message = errorMessage(e);
    if (
      typeof code === 'string' &&
      ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006'].includes(code)
    )
      return true;
    if (
      /Connection terminated|connect ECONNREFUSED|the database system is (starting up|shutting down)/.test(
        message,
      )
    )
      return true;
  }
  return false;
}

/** The one place hub errors become HTTP statuses; unexpected errors are a terse 500. */
export function httpErrorOf(err: unknown): {
  status: number;
  body: { error: string; code: string; permission?: string; environment?: string };
} {
  if (err instanceof PermissionDeniedError) {
    return {
      status: 403,
      body: {
        error: err.message,
        code: err.code,
        permission: err.permission,
        ...(err.environment ? { environment: err.environment } : {}),
      },
    };
  }
  if (err instanceof FlotillaError) {
    return { status: HTTP_STATUS[err.code] ?? 500, body: { error: err.message, code: err.code } };
  }
  if (databaseUnavailable(err)) {
    // Never the query or its parameters: they may hold a cluster's data.
    return {
      status: 503,
      body: { error: "the hub's database is unavailable; try again shortly", code: 'unavailable' },
    };
  }
  return {
    status: 500,
    body: { error: `internal error: ${errorMessage(err).slice(0, 200)}`, code: 'internal' },
  };
}
