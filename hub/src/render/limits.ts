import { InvalidError } from '@flotilla/shared';

/** Caps on one render; a breach fails that render only, with an error naming the path. */
export interface RenderLimits {
  /** Total bytes of input files read from git, and of renderer output. */
  maxBytes: number;
  /** Files materialised for one render. */
  maxFiles: number;
  /** Kubernetes objects (YAML documents) one render may produce. */
  maxDocuments: number;
  /** Nesting depth of a parsed document, and of directories. */
  maxDepth: number;
  /** YAML alias expansions per document (the billion-laughs guard). */
  maxAliases: number;
  /** Wall-clock limit for kustomize or helm. */
  timeoutMs: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = {
  maxBytes: 32 * 1024 * 1024,
  maxFiles: 5000,
  maxDocuments: 10_000,
  maxDepth: 64,
  maxAliases: 100,
  timeoutMs: 60_000,
};

/** Fills defaults and validates: every limit is a positive integer. */
export function parseRenderLimits(limits: Partial<RenderLimits> = {}): RenderLimits {
  const out = { ...DEFAULT_RENDER_LIMITS, ...limits };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v <= 0) throw new InvalidError(`limits.${k}`, 'must be a positive integer');
  }
  return out;
}
