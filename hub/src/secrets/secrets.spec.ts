import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { secretHashKey } from '@flotilla/shared';
import {
  ageRecipientOf,
  encryptSopsDocument,
  generateAgeIdentity,
  KUBERNETES_ENCRYPTED_REGEX,
} from '@flotilla/shared/sops';
import { eq } from 'drizzle-orm';
import { stringify } from 'yaml';
import { clusters } from '../db/schema.js';
import { openTestDatabase, TEST_DATABASE_KINDS } from '../db/testing.js';
import { redactSecrets } from '../promotion/env-diff.js';
import { createRecipientStore, createSecretValues } from './index.js';

const values = createSecretValues(secretHashKey('test key'));

const recipient = async () => ageRecipientOf(await generateAgeIdentity());

for (const kind of TEST_DATABASE_KINDS) {
  describe(`age recipients (${kind})`, () => {
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const d of opened) await d.close();
    });

    test('lists the recipients of an environment’s clusters, the ones missing, and the recovery ones; a rejoined cluster’s old key is gone', async () => {
      const database = await openTestDatabase(kind);
      opened.push(database);
      const { db } = database;
      const recovery = await recipient();
      const store = createRecipientStore({ db, recovery: [recovery] });
      await db.insert(clusters).values([
        { name: 'dev-1', environment: 'dev' },
        { name: 'dev-2', environment: 'dev' },
        { name: 'prod-1', environment: 'prod' },
      ]);
      const [r1, r2, rp] = [await recipient(), await recipient(), await recipient()];
      await store.record('dev-1', r1);
      await store.record('prod-1', rp);
      const dev = await store.forEnvironments(['dev']);
      assert.deepEqual(
        dev.clusters.map((c) => [c.cluster, c.recipient]),
        [['dev-1', r1]],
      );
      assert.deepEqual(dev.missing, ['dev-2']);
      assert.deepEqual(dev.recipients, [r1, recovery]);
      // A rotation registers it again, or a new one.
      await store.record('dev-1', r2);
      assert.deepEqual((await store.forEnvironments(['dev', 'prod'])).recipients, [r2, rp, recovery]);
      // Removed and added again: the old agent's key no longer counts until the new agent joins.
      await db.delete(clusters).where(eq(clusters.name, 'dev-1'));
      await db
        .insert(clusters)
        .values({ name: 'dev-1', environment: 'dev', createdAt: new Date(Date.now() + 60_000) });
      assert.deepEqual((await store.forEnvironments(['dev'])).missing, ['dev-1', 'dev-2']);
      await assert.rejects(store.record('dev-2', 'age1notakey'), /age_recipient: /);
      assert.throws(() => createRecipientStore({ db, recovery: ['nope'] }), /recovery recipient 1/);
    });
  });
}

test('env diff shows which encrypted values of a SOPS document differ by a hash of their ciphertext, never the ciphertext', async () => {
  const recipients = [await recipient()];
  const secret = (v: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'shop' },
    stringData: { password: v, user: 'app' },
  });
  const a = stringify(
    await encryptSopsDocument(secret('one'), { recipients, encryptedRegex: KUBERNETES_ENCRYPTED_REGEX }),
    { lineWidth: 0 },
  );
  const shown = redactSecrets(a, values);
  assert.match(shown, /password: "?\[encrypted [0-9a-f]{12}\]/);
  assert.match(shown, /\[SOPS metadata: data key for\s+age1/);
  assert.doesNotMatch(shown, /ENC\[AES256_GCM|BEGIN AGE/);
  assert.equal(redactSecrets(a, values), shown, 'the same ciphertext shows the same');
  const b = stringify(
    await encryptSopsDocument(secret('one'), { recipients, encryptedRegex: KUBERNETES_ENCRYPTED_REGEX }),
    { lineWidth: 0 },
  );
  assert.notEqual(redactSecrets(b, values), shown, 'encrypted again: the values show as differing');
});
