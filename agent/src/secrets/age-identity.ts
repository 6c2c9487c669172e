import { readFileSync } from 'node:fs';
import { errorMessage, InvalidError } from '@flotilla/shared';
import { ageRecipientOf, generateAgeIdentity, parseAgeIdentities } from '@flotilla/shared/sops';

/**
 * The agent's age key: the identity that opens SOPS files of its environment. It is made at
 * join (or given by the operator) and kept with the rest of the agent's identity (mode 0600
 * file, or the agent's Secret in its own namespace); only its recipient goes to the hub.
 */
export interface AgeKey {
  /** `AGE-SECRET-KEY-1…`; the first is the agent's own, registered with the hub. */
  identities: string[];
  /** The first identity's recipient, `age1…`. */
  recipient: string;
}

/** A new age key for an agent. */
export async function newAgeKey(): Promise<AgeKey> {
  const identity = await generateAgeIdentity();
  return { identities: [identity], recipient: await ageRecipientOf(identity) };
}

/** Identities from an age identity file (`age-keygen -o FILE`); `flag` names it in errors. */
export function readAgeKeyFile(path: string, flag: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidError(`${flag} ${path}`, `cannot be read: ${errorMessage(err)}`);
  }
  return parseAgeIdentities(text, `${flag} ${path}`);
}

/** The age key of identities an operator supplies: the first one's recipient is registered. */
export async function ageKeyOf(identities: string[]): Promise<AgeKey> {
  return { identities, recipient: await ageRecipientOf(identities[0]!) };
}
