import { readFileSync, writeFileSync } from 'node:fs';
import { errorMessage } from '@flotilla/shared';
import {
  encryptSopsDocument,
  isSopsDocument,
  KUBERNETES_ENCRYPTED_REGEX,
  parseAgeIdentities,
  rekeySopsDocument,
  type SopsDocument,
} from '@flotilla/shared/sops';
import { parseAllDocuments, stringify } from 'yaml';
import type { EnvironmentRecipients } from '../secrets/recipients.js';
import { CliError } from './client.js';
import { table } from './format.js';
import { type Ctx, clientFor, jsonOutput } from './run.js';

/**
 * `flotilla secret …`: SOPS files for an environment's agents, made on the user's machine.
 * The hub hands out public keys only; the clear value never leaves this process.
 */

const ENV_FLAG = { env: { type: 'string', multiple: true } } as const;

function environments(values: Record<string, unknown>, command: string): string[] {
  const envs = ((values.env as string[] | undefined) ?? []).flatMap((e) => e.split(',')).filter(Boolean);
  if (envs.length === 0) throw new CliError(`${command}: --env ENV is required (repeat it for several)`, 2);
  return envs;
}

async function fetchRecipients(ctx: Ctx, values: Record<string, unknown>, envs: string[]) {
  const query = envs.map((e) => `env=${encodeURIComponent(e)}`).join('&');
  return clientFor(ctx.env, { values }).json<EnvironmentRecipients>(
    'GET',
    `/api/v1/secrets/recipients?${query}`,
  );
}

/** The recipients to encrypt to; refuses an empty list and says which clusters cannot decrypt. */
function usableRecipients(r: EnvironmentRecipients, ctx: Ctx, command: string): string[] {
  if (r.missing.length > 0)
    ctx.io.err(
      `flotilla ${command}: warning: no age recipient yet for ${r.missing.join(', ')} (not joined, or its agent has not registered one): ` +
        'it cannot decrypt this file; run `flotilla secret rekey` once it has\n',
    );
  if (r.clusters.length === 0)
    throw new CliError(
      `${command}: no cluster of ${r.environments.join(', ')} has an age recipient yet: no agent could decrypt the file`,
      1,
    );
  return r.recipients;
}

function readDocuments(file: string, command: string): unknown[] {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${command}: -f ${file}: ${errorMessage(err)}`, 1);
  }
  const docs = parseAllDocuments(text, { prettyErrors: false });
  const out: unknown[] = [];
  for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
    if (doc.errors.length > 0) throw new CliError(`${command}: ${file}: document ${i}: invalid YAML`, 1);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  if (out.length === 0) throw new CliError(`${command}: ${file}: no document`, 1);
  return out;
}

function writeDocuments(docs: SopsDocument[], out: string | undefined, ctx: Ctx): void {
  // No folding: an ENC[…] value stays on one line, as sops writes it.
  const text = docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
  if (out) writeFileSync(out, text, { mode: 0o644 });
  else ctx.io.out(text);
}

function secretName(doc: unknown): string {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const ns = typeof d.metadata?.namespace === 'string' ? `${d.metadata.namespace}/` : '';
  return `${String(d.kind)} ${ns}${String(d.metadata?.name)}`;
}

export async function secretRecipients(ctx: Ctx): Promise<number> {
  const { values } = ctx.parse(ENV_FLAG);
  const json = jsonOutput(values);
  const r = await fetchRecipients(ctx, values, environments(values, 'secret recipients'));
  if (json) ctx.io.out(`${JSON.stringify(r, null, 2)}\n`);
  else
    ctx.io.out(
      table(
        ['CLUSTER', 'ENVIRONMENT', 'RECIPIENT', 'REGISTERED'],
        [
          ...r.clusters.map((c) => [c.cluster, c.environment, c.recipient, c.registeredAt]),
          ...r.missing.map((m) => [m, '', '(none yet)', '']),
          ...r.recovery.map((k) => ['(recovery)', '', k, '']),
        ],
      ),
    );
  return 0;
}

export async function secretEncrypt(ctx: Ctx): Promise<number> {
  const { values } = ctx.parse({ ...ENV_FLAG, file: { type: 'string', short: 'f' } });
  const envs = environments(values, 'secret encrypt');
  const file = values.file as string | undefined;
  if (!file) throw new CliError('secret encrypt: -f FILE is required (- for standard input)', 2);
  const docs = readDocuments(file, 'secret encrypt');
  for (const [i, doc] of docs.entries()) {
    const d = doc as { apiVersion?: unknown; kind?: unknown };
    if (d.apiVersion !== 'v1' || d.kind !== 'Secret')
      throw new CliError(`secret encrypt: ${file}: document ${i} (${secretName(doc)}) is not a v1 Secret`, 1);
    if (isSopsDocument(doc))
      throw new CliError(
        `secret encrypt: ${file}: document ${i} (${secretName(doc)}) is already SOPS-encrypted; use flotilla secret rekey`,
        1,
      );
  }
  const recipients = usableRecipients(await fetchRecipients(ctx, values, envs), ctx, 'secret encrypt');
  const out: SopsDocument[] = [];
  for (const doc of docs)
    out.push(
      await encryptSopsDocument(doc as SopsDocument, {
        recipients,
        encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
      }),
    );
  writeDocuments(out, values.output as string | undefined, ctx);
  return 0;
}

export async function secretRekey(ctx: Ctx): Promise<number> {
  const { values } = ctx.parse({
    ...ENV_FLAG,
    file: { type: 'string', short: 'f' },
    identity: { type: 'string', short: 'i' },
  });
  const envs = environments(values, 'secret rekey');
  const file = values.file as string | undefined;
  if (!file) throw new CliError('secret rekey: -f FILE is required (- for standard input)', 2);
  const keyFile = values.identity as string | undefined;
  if (!keyFile)
    throw new CliError(
      'secret rekey: --identity KEYFILE is required: an age identity that opens the file now (e.g. a recovery key)',
      2,
    );
  let identities: string[];
  try {
    identities = parseAgeIdentities(readFileSync(keyFile, 'utf8'), `--identity ${keyFile}`);
  } catch (err) {
    throw new CliError(`secret rekey: ${errorMessage(err)}`, 1);
  }
  const docs = readDocuments(file, 'secret rekey');
  const recipients = usableRecipients(await fetchRecipients(ctx, values, envs), ctx, 'secret rekey');
  const out: SopsDocument[] = [];
  for (const [i, doc] of docs.entries()) {
    if (!isSopsDocument(doc))
      throw new CliError(
        `secret rekey: ${file}: document ${i} (${secretName(doc)}) is not SOPS-encrypted`,
        1,
      );
    try {
      out.push(await rekeySopsDocument(doc, { identities, recipients }));
    } catch (err) {
      throw new CliError(
        `secret rekey: ${file}: document ${i} (${secretName(doc)}): ${errorMessage(err)}`,
        1,
      );
    }
  }
  writeDocuments(out, values.output as string | undefined, ctx);
  return 0;
}
