import { formatIdentity, identityOf, type KubeObject } from '@flotilla/shared';
import { isSopsDocument } from '@flotilla/shared/sops';

/**
 * One warning per Secret that travels in clear: not SOPS-encrypted, so its values sit in the
 * hub's database, NATS and bundle files. Plain Secrets keep working; this says so per object,
 * in the render log and in fleet status. Never a value.
 */
export function plainSecretWarnings(objects: readonly KubeObject[]): string[] {
  const out: string[] = [];
  for (const obj of objects) {
    if (obj.kind !== 'Secret' || obj.apiVersion !== 'v1' || isSopsDocument(obj)) continue;
    const hasValues = ['data', 'stringData'].some((k) => {
      const v = (obj as Record<string, unknown>)[k];
      return typeof v === 'object' && v !== null && Object.keys(v).length > 0;
    });
    if (!hasValues) continue;
    let subject: string;
    try {
      subject = formatIdentity(identityOf(obj));
    } catch {
      continue;
    }
    out.push(
      `${subject}: travels in clear through the hub, NATS and bundle files (not SOPS-encrypted); encrypt it with \`flotilla secret encrypt\``,
    );
  }
  return out;
}
