import { createHash } from 'node:crypto';
import type { Json } from './json.js';

/** A timestamp as the API server writes one (RFC 3339, whole seconds). */
export function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * A status condition as controllers write them: lastTransitionTime kept while the status stays,
 * lastUpdateTime (Deployments only) kept while status and reason stay.
 */
export function condition(
  existing: Json[] | undefined,
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
  withUpdateTime = false,
): Json {
  const old = (existing ?? []).find((c) => c.type === type);
  const same = old && old.status === status;
  const c: Json = { type, status };
  if (withUpdateTime) c.lastUpdateTime = same && old.reason === reason ? old.lastUpdateTime : now();
  c.lastTransitionTime = same ? old.lastTransitionTime : now();
  c.reason = reason;
  c.message = message;
  return c;
}

function podTemplateImages(obj: Json): string[] {
  const spec = obj.spec?.template?.spec ?? obj.spec?.jobTemplate?.spec?.template?.spec ?? obj.spec;
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])].map((c: Json) =>
    String(c.image ?? ''),
  );
}

/**
 * Whether the workload runs an image that never becomes ready: one whose tag starts with `fail`
 * (`nginx:fail`, `registry/app:fail-2`). Its pods stay in ImagePullBackOff, as pods of an image
 * that cannot be pulled do on a real cluster.
 */
export function isFailingImage(obj: Json): boolean {
  return podTemplateImages(obj).some((i) => i.includes(':fail'));
}

/**
 * The `pod-template-hash` of a pod template: stable for equal templates, different for different
 * ones, in the alphabet the real controller uses (it hashes with FNV; only the properties matter).
 */
export function templateHash(template: Json): string {
  const h = createHash('sha256')
    .update(JSON.stringify(template ?? {}))
    .digest();
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let out = '';
  for (let i = 0; i < 10; i++) out += alphabet[h[i]! % alphabet.length];
  return out;
}
