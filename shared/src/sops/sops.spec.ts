import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  ageRecipientOf,
  assertAgeRecipient,
  decryptSopsDocument,
  encryptSopsDocument,
  formatSopsNumber,
  generateAgeIdentity,
  isSopsDocument,
  KUBERNETES_ENCRYPTED_REGEX,
  parseAgeIdentities,
  rekeySopsDocument,
  type SopsDocument,
  SopsError,
  sopsEncryptedLeaves,
  sopsRecipients,
} from './index.js';
import { ageCli, SOPS_FIXTURES_MISSING, sopsFixturesDir } from './testing.js';

// biome-ignore lint/suspicious/noExplicitAny: decrypted fixtures are read field by field in assertions.
type Loose = any;

const fixtures = sopsFixturesDir();
const read = (name: string) => readFileSync(join(fixtures ?? '', name), 'utf8');
const keys = (name: string) => parseAgeIdentities(read(name), name);
const doc = (name: string) => parse(read(name)) as SopsDocument;

async function refused(promise: Promise<unknown>, reason: SopsError['reason'], message?: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SopsError, `a SopsError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('SOPS documents made by the real sops', { skip: SOPS_FIXTURES_MISSING }, () => {
  test('Flux test Secrets (sops 3.9.0 and 3.10.2, encrypted_regex data|stringData) decrypt with their published age keys', async () => {
    const a = await decryptSopsDocument(doc('flux-age-secret.yaml'), keys('flux-age.txt'));
    assert.deepEqual(a, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'age' },
      stringData: { key: 'value' },
    });
    const g = await decryptSopsDocument(doc('flux-global-secret.yaml'), keys('flux-age-global.txt'));
    assert.deepEqual(g.stringData, { key: 'global-value' });
    assert.deepEqual(g.metadata, { name: 'global-age-secret', namespace: 'default' });
  });

  test("sops' own example.yaml and example.json (sops 3.7.1: floats, bools, lists, unencrypted_suffix) decrypt with its keys.txt", async () => {
    const y = (await decryptSopsDocument(doc('sops-example.yaml'), keys('sops-keys.txt'))) as Loose;
    assert.equal(y.app2.db.password, 'c4r1b0u');
    assert.deepEqual(y.somebooleans, [true, false]);
    assert.equal(typeof y.number, 'number');
    assert.deepEqual(y.nested_unencrypted, { this: { is: { all: 'going to remain in clear text' } } });
    const j = (await decryptSopsDocument(doc('sops-example.json'), keys('sops-keys.txt'))) as Loose;
    assert.equal(j.firstName, 'John');
    assert.equal(j.age, 25.4);
    assert.equal(j.anEmptyValue, '');
  });

  test('a changed clear value covered by the MAC, a changed ciphertext and two swapped ciphertexts are refused', async () => {
    const renamed = doc('flux-global-secret.yaml') as Loose;
    renamed.metadata.namespace = 'elsewhere';
    await refused(decryptSopsDocument(renamed, keys('flux-age-global.txt')), 'mac-mismatch', /MAC mismatch/);

    const example = doc('sops-example.yaml') as Loose;
    example.nested_unencrypted.this.is.all = 'changed';
    await refused(decryptSopsDocument(example, keys('sops-keys.txt')), 'mac-mismatch');

    const flipped = doc('flux-age-secret.yaml') as Loose;
    flipped.stringData.key = flipped.stringData.key.replace(/data:([^,]+)/, (_: string, d: string) => {
      const bytes = Buffer.from(d, 'base64');
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      return `data:${bytes.toString('base64')}`;
    });
    await refused(decryptSopsDocument(flipped, keys('flux-age.txt')), 'mac-mismatch', /^stringData\.key: /);

    const swapped = doc('sops-example.yaml') as Loose;
    [swapped.app2.db.user, swapped.app2.db.password] = [swapped.app2.db.password, swapped.app2.db.user];
    await refused(decryptSopsDocument(swapped, keys('sops-keys.txt')), 'mac-mismatch', /app2\.db\.user/);

    const dropped = doc('sops-example.yaml') as Loose;
    dropped.an_array.pop();
    await refused(decryptSopsDocument(dropped, keys('sops-keys.txt')), 'mac-mismatch', /MAC mismatch/);
  });

  test('a document for other recipients is refused naming its recipients, never a value', async () => {
    const other = [await generateAgeIdentity()];
    await refused(
      decryptSopsDocument(doc('flux-age-secret.yaml'), other),
      'no-identity',
      /encrypted for age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29/,
    );
    await refused(decryptSopsDocument(doc('flux-age-secret.yaml'), []), 'no-identity');
  });
});

describe('SOPS documents made here', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-sops-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'shop', labels: { app: 'shop' } },
    type: 'Opaque',
    stringData: { password: 'hunter2-correct-horse', empty: '' },
    data: { token: Buffer.from('t0ken').toString('base64') },
  };

  test('encrypt leaves metadata clear, encrypts data and stringData, and decrypts back for every recipient', async () => {
    const ids = [await generateAgeIdentity(), await generateAgeIdentity()];
    const recipients = await Promise.all(ids.map(ageRecipientOf));
    const enc = await encryptSopsDocument(secret, { recipients, encryptedRegex: KUBERNETES_ENCRYPTED_REGEX });
    assert.ok(isSopsDocument(enc));
    assert.deepEqual(sopsRecipients(enc), recipients);
    assert.deepEqual(enc.metadata, secret.metadata);
    assert.doesNotMatch(JSON.stringify(enc), /hunter2|t0ken|dDBrZW4/);
    assert.equal(
      (enc.stringData as Record<string, string>).empty,
      '',
      'sops leaves empty strings as they are',
    );
    for (const id of ids) assert.deepEqual(await decryptSopsDocument(enc, [id]), secret);
    // mac_only_encrypted: a renderer may set the namespace without breaking the MAC.
    const moved = { ...enc, metadata: { ...secret.metadata, namespace: 'other' } };
    assert.equal(
      ((await decryptSopsDocument(moved, [ids[0]!])).metadata as { namespace: string }).namespace,
      'other',
    );
    const full = await encryptSopsDocument(secret, {
      recipients,
      macOnlyEncrypted: false,
      encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
    });
    await refused(
      decryptSopsDocument({ ...full, metadata: { ...secret.metadata, namespace: 'other' } }, [ids[0]!]),
      'mac-mismatch',
    );
  });

  test('the data key of a document made here opens with the Debian age CLI and an age-keygen identity, which also decrypts the document', async () => {
    const { age, keygen } = ageCli();
    const keyFile = join(dir, 'agent.txt');
    execFileSync(keygen, ['-o', keyFile], { stdio: 'pipe' });
    const identities = parseAgeIdentities(readFileSync(keyFile, 'utf8'), keyFile);
    const recipient = execFileSync(keygen, ['-y', keyFile], { encoding: 'utf8' }).trim();
    assert.equal(await ageRecipientOf(identities[0]!), recipient);
    const enc = await encryptSopsDocument(secret, {
      recipients: [recipient],
      encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
    });
    const armored = ((enc.sops as Record<string, unknown>).age as { enc: string }[])[0]!.enc;
    const dataKey = execFileSync(age, ['-d', '-i', keyFile], { input: armored });
    assert.equal(dataKey.length, 32, 'the age CLI opens a 32-byte data key');
    assert.deepEqual(await decryptSopsDocument(enc, identities), secret);
    // And the other way: a file the age CLI encrypts opens with this side's identities.
    const mine = await generateAgeIdentity();
    const out = execFileSync(age, ['-a', '-r', await ageRecipientOf(mine)], { input: 'hello' }).toString();
    assert.match(out, /BEGIN AGE ENCRYPTED FILE/);
  });

  test('rekey wraps the same data key for new recipients: values and MAC unchanged, the old-only recipient left out', async () => {
    const recovery = await generateAgeIdentity();
    const oldAgent = await generateAgeIdentity();
    const newAgent = await generateAgeIdentity();
    const enc = await encryptSopsDocument(secret, {
      recipients: [await ageRecipientOf(recovery), await ageRecipientOf(oldAgent)],
      encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
    });
    const rekeyed = await rekeySopsDocument(enc, {
      identities: [recovery],
      recipients: [await ageRecipientOf(recovery), await ageRecipientOf(newAgent)],
    });
    assert.deepEqual(rekeyed.stringData, enc.stringData);
    assert.equal((rekeyed.sops as { mac: string }).mac, (enc.sops as { mac: string }).mac);
    assert.deepEqual(await decryptSopsDocument(rekeyed, [newAgent]), secret);
    await refused(decryptSopsDocument(rekeyed, [oldAgent]), 'no-identity');
    await refused(rekeySopsDocument(enc, { identities: [newAgent], recipients: [] }), 'no-identity');
  });

  test('malformed documents are refused naming the field, never quoting a value', async () => {
    const id = await generateAgeIdentity();
    const enc = await encryptSopsDocument(secret, {
      recipients: [await ageRecipientOf(id)],
      encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
    });
    const meta = enc.sops as Record<string, unknown>;
    await refused(
      decryptSopsDocument({ ...enc, sops: { ...meta, lastmodified: undefined } }, [id]),
      'malformed',
      /sops\.lastmodified/,
    );
    await refused(
      decryptSopsDocument({ ...enc, sops: { ...meta, age: 'x' } }, [id]),
      'malformed',
      /sops\.age/,
    );
    const bad = { ...enc, stringData: { password: 'ENC[AES256_GCM,nonsense]', empty: '' } };
    await refused(decryptSopsDocument(bad, [id]), 'malformed', /^stringData\.password: /);
    const clear = { ...enc, stringData: { password: 'in clear', empty: '' } };
    await refused(decryptSopsDocument(clear, [id]), 'malformed', /stringData\.password/);
    await refused(
      decryptSopsDocument({ ...enc, sops: { ...meta, encrypted_comment_regex: 'x' } }, [id]),
      'unsupported',
    );
    await refused(
      encryptSopsDocument({ data: { '1': 'a', b: 'c' } }, { recipients: [await ageRecipientOf(id)] }),
      'unsupported',
      /data\.1/,
    );
    assert.doesNotMatch(
      await decryptSopsDocument(bad, [id]).then(
        () => 'decrypted',
        (e: Error) => e.message,
      ),
      /hunter2|nonsense/,
    );
  });

  test('encrypted leaves are listed by path with their ciphertext, for a diff that never decrypts', async () => {
    const id = await generateAgeIdentity();
    const enc = await encryptSopsDocument(secret, {
      recipients: [await ageRecipientOf(id)],
      encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
    });
    assert.deepEqual(
      [...sopsEncryptedLeaves(enc).keys()],
      ['stringData.password', 'stringData.empty', 'data.token'],
    );
  });
});

test('numbers are written as Go strconv.FormatFloat(f, "f", -1, 64) writes them', () => {
  assert.equal(formatSopsNumber(1234.5678), '1234.5678');
  assert.equal(formatSopsNumber(1e21), '1000000000000000000000');
  assert.equal(formatSopsNumber(1.5e-7), '0.00000015');
  assert.equal(formatSopsNumber(-2.5e22), '-25000000000000000000000');
  assert.equal(formatSopsNumber(3), '3');
  assert.equal(formatSopsNumber(Number.POSITIVE_INFINITY), '+Inf');
});

test('recipients are checked before use', () => {
  assert.throws(() => assertAgeRecipient('age1nope', 'ageRecipient'), /ageRecipient: /);
  assert.throws(() => assertAgeRecipient('ssh-ed25519 AAAA', 'ageRecipient'), /not an age recipient/);
  assertAgeRecipient('age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29', 'ageRecipient');
});
