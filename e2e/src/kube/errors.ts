/** A Kubernetes `metav1.Status` cause, as the real API server puts it in `details.causes`. */
export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
  type?: string;
}

/**
 * An error the API answers with a `Status` body. Shaped like the real server's so that kubectl and
 * client-node print and classify it (IsNotFound, IsConflict, IsInvalid, IsGone) as they do on a cluster.
 */
export class KubeStatusError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'KubeStatusError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  /** The `Status` object sent over the wire. */
  toStatus(): Record<string, unknown> {
    const status: Record<string, unknown> = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
    };
    if (this.details) status.details = this.details;
    status.code = this.code;
    return status;
  }
}

/** The resource as the real server names it in messages: `deployments.apps`, `configmaps`. */
export function qualifiedResource(plural: string, group: string): string {
  return group ? `${plural}.${group}` : plural;
}

export function notFound(plural: string, group: string, name: string): KubeStatusError {
  return new KubeStatusError(404, 'NotFound', `${qualifiedResource(plural, group)} "${name}" not found`, {
    name,
    ...(group ? { group } : {}),
    kind: plural,
  });
}

export function alreadyExists(plural: string, group: string, name: string): KubeStatusError {
  return new KubeStatusError(
    409,
    'AlreadyExists',
    `${qualifiedResource(plural, group)} "${name}" already exists`,
    { name, ...(group ? { group } : {}), kind: plural },
  );
}

export function staleConflict(plural: string, group: string, name: string): KubeStatusError {
  return new KubeStatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(plural, group)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, ...(group ? { group } : {}), kind: plural },
  );
}

/** 422 Invalid, message as `Deployment.apps "web" is invalid: spec.selector: Required value`. */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): KubeStatusError {
  const what = group ? `${kind}.${group}` : kind;
  const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const message =
    list.length === 1
      ? `${what} "${name}" is invalid: ${list[0]}`
      : `${what} "${name}" is invalid: [${list.join(', ')}]`;
  return new KubeStatusError(422, 'Invalid', message, {
    name,
    ...(group ? { group } : {}),
    kind,
    causes,
  });
}

export function badRequest(message: string): KubeStatusError {
  return new KubeStatusError(400, 'BadRequest', message);
}

export function gone(message: string): KubeStatusError {
  return new KubeStatusError(410, 'Expired', message);
}

export function methodNotAllowed(): KubeStatusError {
  return new KubeStatusError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

export function unsupportedMediaType(contentType: string): KubeStatusError {
  return new KubeStatusError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${contentType})`,
  );
}

export function pageNotFound(): KubeStatusError {
  return new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource', {});
}
