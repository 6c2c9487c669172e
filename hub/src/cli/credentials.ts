import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '@flotilla/shared';
import { writeFileAtomic } from '../util/files.js';
import { CliError } from './client.js';

/** One hub's `flotilla login`: the provider it came from and the tokens, as kept on disk. */
export interface StoredLogin {
  issuer: string;
  clientId: string;
  /** The issuer is `http:`, as the hub announced (a provider on localhost). */
  allowHttp: boolean;
  /** The ID token the CLI sends as its bearer token. */
  idToken: string;
  /** When given by the provider: how the CLI gets a new ID token when this one expires. */
  refreshToken?: string;
  /** The ID token's `exp`, ISO. */
  expiresAt: string;
  /** The identity the hub answered at login, for `logout` and messages. */
  actor: string;
}

/** The credentials file: logins keyed by hub URL. */
interface CredentialsFile {
  hubs: Record<string, StoredLogin>;
}

export const CREDENTIALS_FILE = 'credentials.json';

/** The key of a hub in the credentials file: its URL without trailing slashes. */
export function hubKey(hubUrl: string): string {
  return hubUrl.replace(/\/+$/, '');
}

/**
 * The CLI's logins (`$XDG_CONFIG_HOME/flotilla/credentials.json`, else `~/.config/flotilla/`):
 * bearer and refresh tokens, so the file is the user's alone (0600, in a 0700 directory) and
 * is replaced whole by a rename, never left torn.
 */
export function createCredentials(configDir: string) {
  const file = join(configDir, CREDENTIALS_FILE);
  const read = (): CredentialsFile => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { hubs: {} };
      throw new CliError(`${file}: ${errorMessage(err)}`);
    }
    try {
      const parsed = JSON.parse(text) as Partial<CredentialsFile>;
      if (!parsed || typeof parsed.hubs !== 'object' || parsed.hubs === null)
        throw new Error('no "hubs" object');
      return { hubs: parsed.hubs };
    } catch (err) {
      throw new CliError(
        `${file}: not a Flotilla credentials file (${errorMessage(err)}); delete it and log in again`,
      );
    }
  };
  const write = (data: CredentialsFile) => writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`, true);
  return {
    file,
    get(hubUrl: string): StoredLogin | undefined {
      return read().hubs[hubKey(hubUrl)];
    },
    put(hubUrl: string, login: StoredLogin): void {
      const data = read();
      data.hubs[hubKey(hubUrl)] = login;
      write(data);
    },
    /** Forgets the hub's login; whether there was one. The file goes when it holds none. */
    remove(hubUrl: string): StoredLogin | undefined {
      const data = read();
      const login = data.hubs[hubKey(hubUrl)];
      if (!login) return undefined;
      delete data.hubs[hubKey(hubUrl)];
      if (Object.keys(data.hubs).length === 0) rmSync(file, { force: true });
      else write(data);
      return login;
    },
  };
}

export type Credentials = ReturnType<typeof createCredentials>;
