import { Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { InvalidError } from '../errors.js';

/** A new age X25519 identity (`AGE-SECRET-KEY-1…`), the kind every age and sops reads. */
export function generateAgeIdentity(): Promise<string> {
  return generateX25519Identity();
}

/** The public recipient (`age1…`) of an identity. */
export function ageRecipientOf(identity: string): Promise<string> {
  return identityToRecipient(identity);
}

/**
 * The identities of an age identity file (`age-keygen` output, or sops' `keys.txt`): one
 * `AGE-SECRET-KEY-1…` per line, `#` comments and blank lines ignored. `where` names the file
 * in errors; a line is never quoted.
 */
export function parseAgeIdentities(text: string, where: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (!/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(line))
      throw new InvalidError(`${where}:${i + 1}`, 'is not an age X25519 identity (AGE-SECRET-KEY-1…)');
    out.push(line);
  }
  if (out.length === 0) throw new InvalidError(where, 'holds no age identity');
  return out;
}

/** Throws an InvalidError naming `field` unless `recipient` is an age public key. */
export function assertAgeRecipient(recipient: string, field: string): void {
  if (!/^age1[0-9a-z]+$/.test(recipient)) throw new InvalidError(field, 'is not an age recipient (age1…)');
  try {
    new Encrypter().addRecipient(recipient);
  } catch (cause) {
    throw new InvalidError(field, 'is not a valid age recipient', { cause });
  }
}
