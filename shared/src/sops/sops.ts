import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { armor, Decrypter, Encrypter } from 'age-encryption';
import { ErrorCode, FlotillaError } from '../errors.js';

/**
 * The SOPS document format (getsops/sops), for documents whose data key is wrapped for age
 * recipients. Written from the format as sops reads and writes it, so that files made by the
 * real `sops` decrypt here and files made here decrypt with `sops`:
 *
 * - each encrypted leaf is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM under the
 *   document's 32-byte data key with a 32-byte IV, its additional data the path of mapping
 *   keys that leads to it joined by `:` plus a trailing `:` (list items add nothing to it);
 * - the MAC is SHA-512, in upper-case hex, over the leaves in document order (clear values as
 *   sops prints them: `True`/`False`, numbers without exponent; null is skipped), of every
 *   leaf or, with `mac_only_encrypted`, of the encrypted ones after a fixed prefix; it is
 *   stored encrypted like a leaf with `lastmodified` as its additional data;
 * - the data key is age-encrypted (armored) once per recipient under `sops.age`.
 *
 * Documents arrive here as parsed JSON/YAML values, so comments are gone: rules that depend
 * on comments (`*_comment_regex`) are refused, and so is Shamir splitting over several key
 * groups. Mapping keys that look like array indexes ("0", "12") are refused too: JavaScript
 * objects list them first, which would change the order the MAC depends on.
 */

export const SopsErrorReason = {
  /** Not a SOPS document, or a part of it that is not of the format. */
  Malformed: 'malformed',
  /** The MAC does not match the values: changed after it was encrypted. */
  MacMismatch: 'mac-mismatch',
  /** None of the identities held here opens the data key. */
  NoIdentity: 'no-identity',
  /** A valid document using a feature this reader does not support. */
  Unsupported: 'unsupported',
} as const;
export type SopsErrorReason = (typeof SopsErrorReason)[keyof typeof SopsErrorReason];

/** A SOPS document refused; the message never carries a value, clear or encrypted. */
export class SopsError extends FlotillaError {
  readonly reason: SopsErrorReason;
  constructor(reason: SopsErrorReason, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Invalid, message, options);
    this.name = 'SopsError';
    this.reason = reason;
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type SopsDocument = { [key: string]: unknown };

/** The `sops:` metadata of a document, as far as this reader uses it. */
export interface SopsMetadata {
  age: { recipient: string; enc: string }[];
  lastmodified: string;
  mac: string;
  macOnlyEncrypted: boolean;
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: string;
  encryptedRegex?: string;
  version?: string;
}

const ENC = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;
const NONCE_BYTES = 32;
/** sha256("sops"): the prefix of a MAC computed only over encrypted values. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from(
  '8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69',
  'hex',
);
/** The metadata key of a SOPS document. */
export const SOPS_KEY = 'sops';
/** The version written into documents this module encrypts: the first sops that reads `mac_only_encrypted`. */
export const SOPS_FORMAT_VERSION = '3.9.0';
/** What `flotilla secret encrypt` encrypts in a Kubernetes object by default. */
export const KUBERNETES_ENCRYPTED_REGEX = '^(data|stringData)$';

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a parsed document carries SOPS metadata (a `sops` mapping with a `mac`). */
export function isSopsDocument(doc: unknown): doc is SopsDocument {
  return isMapping(doc) && isMapping(doc[SOPS_KEY]) && typeof doc[SOPS_KEY].mac === 'string';
}

/** Whether a string is a SOPS-encrypted value. */
export function isSopsValue(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('ENC[AES256_GCM,');
}

/** Reads the metadata of a SOPS document; a SopsError names the field at fault. */
export function sopsMetadata(doc: SopsDocument): SopsMetadata {
  const raw = doc[SOPS_KEY];
  if (!isMapping(raw)) throw new SopsError('malformed', 'sops: is not a mapping');
  const str = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new SopsError('malformed', `sops.${key}: must be a string`);
    return v;
  };
  for (const key of ['unencrypted_comment_regex', 'encrypted_comment_regex'])
    if (str(key))
      throw new SopsError(
        'unsupported',
        `sops.${key}: rules on comments are not supported (comments do not survive rendering)`,
      );
  if (Array.isArray(raw.key_groups) && raw.key_groups.length > 1)
    throw new SopsError('unsupported', 'sops.key_groups: Shamir key groups are not supported');
  const groups = Array.isArray(raw.key_groups) ? raw.key_groups : [raw];
  const age: SopsMetadata['age'] = [];
  for (const group of groups) {
    if (!isMapping(group)) throw new SopsError('malformed', 'sops.key_groups: an entry is not a mapping');
    const list = group.age;
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new SopsError('malformed', 'sops.age: must be a list');
    for (const [i, entry] of list.entries()) {
      if (!isMapping(entry) || typeof entry.recipient !== 'string' || typeof entry.enc !== 'string')
        throw new SopsError('malformed', `sops.age[${i}]: needs recipient and enc`);
      age.push({ recipient: entry.recipient.trim(), enc: entry.enc });
    }
  }
  const lastmodified = str('lastmodified');
  if (!lastmodified) throw new SopsError('malformed', 'sops.lastmodified: is missing');
  const mac = str('mac');
  if (!mac) throw new SopsError('malformed', 'sops.mac: is missing (sops files without a MAC are refused)');
  const m: SopsMetadata = {
    age,
    lastmodified,
    mac,
    macOnlyEncrypted: raw.mac_only_encrypted === true,
  };
  const optional = [
    ['unencrypted_suffix', 'unencryptedSuffix'],
    ['encrypted_suffix', 'encryptedSuffix'],
    ['unencrypted_regex', 'unencryptedRegex'],
    ['encrypted_regex', 'encryptedRegex'],
    ['version', 'version'],
  ] as const;
  for (const [key, field] of optional) {
    const v = str(key);
    if (v !== undefined) m[field] = v;
  }
  for (const key of ['unencryptedRegex', 'encryptedRegex'] as const) {
    const pattern = m[key];
    if (pattern !== undefined) regex(pattern, key);
  }
  return m;
}

const regexCache = new Map<string, RegExp>();
/** Go's RE2 and JavaScript agree on the patterns sops files use (`^(data|stringData)$`). */
function regex(pattern: string, field: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    try {
      re = new RegExp(pattern);
    } catch (cause) {
      throw new SopsError('malformed', `sops.${field}: is not a regular expression`, { cause });
    }
    regexCache.set(pattern, re);
  }
  return re;
}

/** sops' shouldBeEncrypted, less the comment rules. */
function shouldBeEncrypted(m: SopsMetadata, path: readonly string[]): boolean {
  let encrypted = true;
  if (m.unencryptedSuffix) {
    const suffix = m.unencryptedSuffix;
    if (path.some((p) => p.endsWith(suffix))) encrypted = false;
  }
  if (m.encryptedSuffix) {
    const suffix = m.encryptedSuffix;
    encrypted = path.some((p) => p.endsWith(suffix));
  }
  if (m.unencryptedRegex) {
    const re = regex(m.unencryptedRegex, 'unencrypted_regex');
    if (path.some((p) => re.test(p))) encrypted = false;
  }
  if (m.encryptedRegex) {
    const re = regex(m.encryptedRegex, 'encrypted_regex');
    encrypted = path.some((p) => re.test(p));
  }
  return encrypted;
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest decimal that reads back, never an exponent. */
export function formatSopsNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  const text = Object.is(n, -0) ? '-0' : String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) return text;
  const [, sign, int, frac = '', exp] = m;
  const digits = int! + frac;
  const point = int!.length + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** sops' ToBytes: what a clear leaf contributes to the MAC. */
function macBytes(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return formatSopsNumber(value);
  if (typeof value === 'bigint') return value.toString();
  throw new SopsError('malformed', `a value of type ${typeof value} cannot be part of a SOPS document`);
}

const INDEX_LIKE = /^(0|[1-9]\d*)$/;

type Leaf = string | number | boolean | bigint;
/**
 * Walks every leaf of the document but its `sops` key, in document order, the way sops' tree
 * walk does: mapping keys extend the path, list items do not; null is kept and skipped.
 */
function mapLeaves(
  value: unknown,
  path: string[],
  visit: (leaf: Leaf, path: readonly string[]) => unknown,
): unknown {
  if (value === null || value === undefined) return value;
  if (Array.isArray(value)) return value.map((item) => mapLeaves(item, path, visit));
  if (isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (path.length === 0 && key === SOPS_KEY) continue;
      if (INDEX_LIKE.test(key))
        throw new SopsError(
          'unsupported',
          `${[...path, key].join('.')}: a key that looks like an array index cannot keep its place in the order the MAC covers`,
        );
      out[key] = mapLeaves(v, [...path, key], visit);
    }
    return out;
  }
  if (
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    typeof value === 'bigint'
  )
    return visit(value, path);
  throw new SopsError('malformed', `${path.join('.') || '(root)'}: is not a JSON value`);
}

function aad(path: readonly string[]): string {
  return `${path.join(':')}:`;
}

function decryptValue(
  text: string,
  key: Uint8Array,
  additional: string,
  where: string,
): string | number | boolean {
  if (text === '') return '';
  const m = ENC.exec(text);
  if (!m) throw new SopsError('malformed', `${where}: is not a SOPS-encrypted value`);
  const [, data, iv, tag, type] = m as unknown as [string, string, string, string, string];
  let clear: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
    decipher.setAAD(Buffer.from(additional, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    clear = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]);
  } catch (_cause) {
    throw new SopsError(
      'mac-mismatch',
      `${where}: does not decrypt under this document's data key at this path (changed, or moved from elsewhere)`,
      { cause: new Error('authentication failed') },
    );
  }
  const s = clear.toString('utf8');
  switch (type) {
    case 'str':
    case 'bytes':
    case 'time':
      return s;
    case 'int': {
      if (!/^[+-]?\d+$/.test(s)) throw new SopsError('malformed', `${where}: an int that is not one`);
      const n = Number(s);
      if (!Number.isSafeInteger(n))
        throw new SopsError('unsupported', `${where}: an int beyond 2^53 cannot be carried exactly`);
      return n;
    }
    case 'float': {
      const n = Number(s);
      if (s.trim() === '' || Number.isNaN(n))
        throw new SopsError('malformed', `${where}: a float that is not one`);
      return n;
    }
    case 'bool': {
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
      throw new SopsError('malformed', `${where}: a bool that is not one`);
    }
    default:
      throw new SopsError(
        'unsupported',
        `${where}: values of type ${JSON.stringify(type)} are not supported`,
      );
  }
}

function encryptValue(value: Leaf, key: Uint8Array, additional: string): string {
  let type: string;
  let clear: string;
  if (typeof value === 'string') {
    if (value === '') return '';
    type = 'str';
    clear = value;
  } else if (typeof value === 'boolean') {
    type = 'bool';
    clear = value ? 'True' : 'False';
  } else if (typeof value === 'bigint' || Number.isInteger(value)) {
    type = 'int';
    clear = value.toString();
  } else {
    type = 'float';
    clear = formatSopsNumber(value);
  }
  const iv = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(additional, 'utf8'));
  const data = Buffer.concat([cipher.update(clear, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${tag.toString('base64')},type:${type}]`;
}

/** Go's time.Format(time.RFC3339) of a parsed `lastmodified`: fractional seconds dropped. */
function lastModifiedAad(lastmodified: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(lastmodified);
  if (!m) throw new SopsError('malformed', 'sops.lastmodified: is not an RFC 3339 time');
  return `${m[1]}${m[2] === '+00:00' ? 'Z' : m[2]}`;
}

function macOf(chunks: string[], onlyEncrypted: boolean): string {
  const hash = createHash('sha512');
  if (onlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  for (const c of chunks) hash.update(c, 'utf8');
  return hash.digest('hex').toUpperCase();
}

/** Identities that may open a document's data key: `AGE-SECRET-KEY-1…` strings. */
export type AgeIdentities = readonly string[];

async function openDataKey(m: SopsMetadata, identities: AgeIdentities): Promise<Uint8Array> {
  if (m.age.length === 0)
    throw new SopsError(
      'no-identity',
      'sops.age: the document names no age recipient (other key types are not supported)',
    );
  if (identities.length === 0)
    throw new SopsError('no-identity', 'no age identity is configured to open SOPS documents');
  const decrypter = new Decrypter();
  for (const id of identities) decrypter.addIdentity(id);
  for (const entry of m.age) {
    let file: Uint8Array;
    try {
      file = armor.decode(entry.enc);
    } catch (cause) {
      throw new SopsError('malformed', `sops.age (${entry.recipient}): enc is not an armored age file`, {
        cause,
      });
    }
    try {
      const key = await decrypter.decrypt(file);
      if (key.length !== 32)
        throw new SopsError('malformed', `sops.age (${entry.recipient}): the data key is not 32 bytes`);
      return key;
    } catch (err) {
      if (err instanceof SopsError) throw err;
      // Not for one of our identities: try the next recipient.
    }
  }
  throw new SopsError(
    'no-identity',
    `no age identity held here opens it; it is encrypted for ${m.age.map((a) => a.recipient).join(', ')}`,
  );
}

/**
 * Decrypts a SOPS document with age identities and checks its MAC. Returns the document
 * without its `sops` key, every value in clear. Throws a SopsError whose message names the
 * path at fault and never a value.
 */
export async function decryptSopsDocument(
  doc: SopsDocument,
  identities: AgeIdentities,
): Promise<SopsDocument> {
  if (!isSopsDocument(doc)) throw new SopsError('malformed', 'not a SOPS document (no sops.mac)');
  const m = sopsMetadata(doc);
  const key = await openDataKey(m, identities);
  const chunks: string[] = [];
  const clear = mapLeaves(doc, [], (leaf, path) => {
    const encrypted = shouldBeEncrypted(m, path);
    let value: unknown = leaf;
    if (encrypted) {
      if (typeof leaf !== 'string')
        throw new SopsError('malformed', `${path.join('.')}: should be encrypted but is a ${typeof leaf}`);
      value = decryptValue(leaf, key, aad(path), path.join('.'));
    }
    if (!m.macOnlyEncrypted || encrypted) chunks.push(macBytes(value));
    return value;
  }) as SopsDocument;
  let stored: unknown;
  try {
    stored = decryptValue(m.mac, key, lastModifiedAad(m.lastmodified), 'sops.mac');
  } catch (err) {
    if (err instanceof SopsError && err.reason === 'mac-mismatch')
      throw new SopsError('mac-mismatch', 'sops.mac: does not decrypt (the MAC or lastmodified was changed)');
    throw err;
  }
  if (stored !== macOf(chunks, m.macOnlyEncrypted))
    throw new SopsError('mac-mismatch', 'MAC mismatch: the document was changed after it was encrypted');
  return clear;
}

export interface EncryptOptions {
  /** age recipients (`age1…`) to wrap the data key for; at least one. */
  recipients: readonly string[];
  /** Leaves under a key matching it are encrypted; default: every leaf. */
  encryptedRegex?: string;
  /** MAC only the encrypted values, so that renderers may change the rest; default true. */
  macOnlyEncrypted?: boolean;
  now?: Date;
}

async function wrapDataKey(dataKey: Uint8Array, recipients: readonly string[]): Promise<SopsMetadata['age']> {
  const unique = [...new Set(recipients.map((r) => r.trim()))];
  if (unique.length === 0) throw new SopsError('no-identity', 'no age recipient to encrypt for');
  const out: SopsMetadata['age'] = [];
  for (const recipient of unique) {
    const e = new Encrypter();
    try {
      e.addRecipient(recipient);
    } catch (cause) {
      throw new SopsError(
        'malformed',
        `age recipient ${JSON.stringify(recipient)}: is not an age public key`,
        {
          cause,
        },
      );
    }
    out.push({ recipient, enc: armor.encode(await e.encrypt(dataKey)) });
  }
  return out;
}

function rfc3339(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Encrypts a document (one without `sops`) for age recipients, as `sops encrypt` would with
 * these settings. The `sops` key goes last.
 */
export async function encryptSopsDocument(doc: SopsDocument, options: EncryptOptions): Promise<SopsDocument> {
  if (!isMapping(doc)) throw new SopsError('malformed', 'a SOPS document must be a mapping');
  if (SOPS_KEY in doc)
    throw new SopsError('malformed', 'the document is already SOPS-encrypted (it has sops:)');
  const dataKey = randomBytes(32);
  const macOnlyEncrypted = options.macOnlyEncrypted ?? true;
  const m: SopsMetadata = {
    age: [],
    lastmodified: rfc3339(options.now ?? new Date()),
    mac: '',
    macOnlyEncrypted,
    ...(options.encryptedRegex ? { encryptedRegex: options.encryptedRegex } : {}),
  };
  if (m.encryptedRegex) regex(m.encryptedRegex, 'encrypted_regex');
  const chunks: string[] = [];
  const encrypted = mapLeaves(doc, [], (leaf, path) => {
    const enc = shouldBeEncrypted(m, path);
    if (!macOnlyEncrypted || enc) chunks.push(macBytes(leaf));
    return enc ? encryptValue(leaf, dataKey, aad(path)) : leaf;
  }) as SopsDocument;
  const age = await wrapDataKey(dataKey, options.recipients);
  const mac = encryptValue(macOf(chunks, macOnlyEncrypted), dataKey, lastModifiedAad(m.lastmodified));
  return {
    ...encrypted,
    [SOPS_KEY]: {
      age,
      lastmodified: m.lastmodified,
      mac,
      ...(m.encryptedRegex ? { encrypted_regex: m.encryptedRegex } : {}),
      ...(macOnlyEncrypted ? { mac_only_encrypted: true } : {}),
      version: SOPS_FORMAT_VERSION,
    },
  };
}

/**
 * Wraps a document's data key for a new set of recipients (what `sops updatekeys` does for
 * age): values, MAC and lastmodified stay as they are, so the result differs from the input
 * only in `sops.age`. Needs an identity that opens the data key now.
 */
export async function rekeySopsDocument(
  doc: SopsDocument,
  options: { identities: AgeIdentities; recipients: readonly string[] },
): Promise<SopsDocument> {
  if (!isSopsDocument(doc)) throw new SopsError('malformed', 'not a SOPS document (no sops.mac)');
  // Opens and checks it first: never re-wrap a key for a document that does not verify.
  await decryptSopsDocument(doc, options.identities);
  const m = sopsMetadata(doc);
  const key = await openDataKey(m, options.identities);
  const age = await wrapDataKey(key, options.recipients);
  const meta = { ...(doc[SOPS_KEY] as Record<string, unknown>) };
  delete meta.key_groups;
  meta.age = age;
  return { ...doc, [SOPS_KEY]: meta };
}

/** The recipients a SOPS document's data key is wrapped for. */
export function sopsRecipients(doc: SopsDocument): string[] {
  return sopsMetadata(doc).age.map((a) => a.recipient);
}

/**
 * The paths (dotted, mapping keys only) of a SOPS document's encrypted leaves, with their
 * ciphertext: enough to say which encrypted values differ between two documents without
 * decrypting either.
 */
export function sopsEncryptedLeaves(doc: SopsDocument): Map<string, string[]> {
  const m = sopsMetadata(doc);
  const out = new Map<string, string[]>();
  mapLeaves(doc, [], (leaf, path) => {
    if (!shouldBeEncrypted(m, path)) return leaf;
    const key = path.join('.');
    out.set(key, [...(out.get(key) ?? []), String(leaf)]);
    return leaf;
  });
  return out;
}

export type { Json as SopsJson };
