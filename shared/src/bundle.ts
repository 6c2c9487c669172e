import { canonicalJson } from './canonical-json.js';
import { sha256Digest } from './digest.js';
import {
  decodeEnvelope,
  type Envelope,
  signEnvelope,
  VerifyError,
  VerifyErrorCode,
  verifyEnvelope,
} from './envelope.js';
import type { KubeObject } from './identity.js';
import type { SigningKey, TrustedKeys } from './keys.js';
import type { MaintenanceWindow } from './maintenance-window.js';

export const BUNDLE_PAYLOAD_TYPE = 'application/vnd.flotilla.bundle.v1+json';

/** How an agent treats a bundle; declared per environment in flotilla.yaml. */
export interface SyncPolicy {
  /** Re-apply when live objects drift from the bundle. */
  selfHeal: boolean;
  /** Delete objects the agent applied earlier that the bundle no longer holds. */
  prune: boolean;
  /** `auto` applies each new bundle; `manual` holds it until `flotilla sync`. */
  sync: 'auto' | 'manual';
  /** Let a bundle with zero objects prune everything (off: an empty render prunes nothing). */
  allowEmpty: boolean;
  /**
   * Take over objects that exist but were not created by Flotilla. Off (absent): such an object
   * is reported as a conflict and left alone unless its manifest is annotated
   * `flotilla.dev/adopt: "true"`. Optional so that bundles without it keep their digest.
   */
  adopt?: boolean;
  /** Fields left to another controller: never applied over, never reported as drift. */
  ignoreDifferences?: IgnoreDifferences[];
  /**
   * Maintenance windows that apply to this cluster: outside all of them the agent holds a new
   * bundle (drift healing goes on). Absent: apply at any time. Optional so that bundles without
   * windows keep their digest.
   */
  windows?: MaintenanceWindow[];
}

/**
 * Fields of matching objects that another controller owns (an HPA's `/spec/replicas`), as Argo
 * CD's ignoreDifferences: group and kind must match, namespace and name when given.
 */
export interface IgnoreDifferences {
  /** API group, `''` (or absent) for the core group. */
  group?: string;
  kind: string;
  namespace?: string;
  name?: string;
  /** RFC 6901 JSON pointers into the object, e.g. `/spec/replicas`. */
  jsonPointers: string[];
}

export const DEFAULT_SYNC_POLICY: SyncPolicy = {
  selfHeal: true,
  prune: true,
  sync: 'auto',
  allowEmpty: false,
};

/** Immutable desired state of one cluster at one generation. The payload of a bundle envelope. */
export interface Bundle {
  cluster: string;
  environment: string;
  /** Per-cluster counter, +1 for every bundle whose content differs from the last. */
  generation: number;
  /** The git commit the content was rendered from. */
  revision: string;
  /** Where in the source it came from (URL without credentials). */
  source: { url: string; branch: string; path: string };
  createdAt: string;
  policy: SyncPolicy;
  /** contentDigest(objects, policy): equal content has an equal digest. */
  contentDigest: string;
  objects: KubeObject[];
}

/** The digest that decides whether a render is a new generation: objects and policy only. */
export function contentDigest(objects: readonly KubeObject[], policy: SyncPolicy): string {
  return sha256Digest(canonicalJson({ objects, policy }));
}

export function signBundle(bundle: Bundle, key: SigningKey): Envelope {
  return signEnvelope(BUNDLE_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(bundle)), key);
}

export interface VerifyBundleOptions {
  keys: TrustedKeys;
  /** The cluster this agent is; a bundle for another cluster is refused. */
  cluster: string;
  /** The generation already applied; the bundle's must be greater. */
  appliedGeneration?: number;
}

/**
 * Verifies envelope bytes as a bundle for this cluster: signature by a trusted key, then
 * the payload's shape, cluster, content digest and generation. Throws a VerifyError whose
 * `reason` says which check failed; nothing in a refused bundle should be used.
 */
export function verifyBundle(bytes: Uint8Array | Envelope, options: VerifyBundleOptions): Bundle {
  const envelope = bytes instanceof Uint8Array ? decodeEnvelope(bytes) : bytes;
  const payload = verifyEnvelope(envelope, options.keys, BUNDLE_PAYLOAD_TYPE);
  let bundle: Bundle;
  try {
    bundle = JSON.parse(new TextDecoder().decode(payload)) as Bundle;
  } catch (err) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'payload is not JSON', { cause: err });
  }
  if (
    !bundle ||
    typeof bundle !== 'object' ||
    !Array.isArray(bundle.objects) ||
    typeof bundle.generation !== 'number'
  ) {
    throw new VerifyError(VerifyErrorCode.Malformed, 'payload is not a bundle');
  }
  if (bundle.cluster !== options.cluster) {
    throw new VerifyError(
      VerifyErrorCode.WrongCluster,
      `bundle is for cluster ${JSON.stringify(bundle.cluster)}, this is ${JSON.stringify(options.cluster)}`,
    );
  }
  if (contentDigest(bundle.objects, bundle.policy) !== bundle.contentDigest) {
    throw new VerifyError(
      VerifyErrorCode.DigestMismatch,
      `content does not match its digest ${bundle.contentDigest}`,
    );
  }
  if (options.appliedGeneration !== undefined && bundle.generation <= options.appliedGeneration) {
    throw new VerifyError(
      VerifyErrorCode.StaleGeneration,
      `generation ${bundle.generation} is not newer than the applied generation ${options.appliedGeneration}`,
    );
  }
  return bundle;
}
