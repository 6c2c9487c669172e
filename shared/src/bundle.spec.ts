import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Bundle, contentDigest, DEFAULT_SYNC_POLICY, signBundle, verifyBundle } from './bundle.js';
import { decodeEnvelope, encodeEnvelope, VerifyError, type VerifyErrorCode } from './envelope.js';
import { generateSigningKey, rawPublicKey, trustedKeys } from './keys.js';

const hubKey = generateSigningKey();
const keys = trustedKeys([{ keyId: hubKey.keyId, publicKey: rawPublicKey(hubKey.publicKey) }]);

function bundle(over: Partial<Bundle> = {}): Bundle {
  const objects = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'web-config', namespace: 'shop' },
      data: { a: '1' },
    },
  ];
  return {
    cluster: 'dev-1',
    environment: 'dev',
    generation: 3,
    revision: 'abc123',
    source: { url: 'http://git/repo.git', branch: 'main', path: 'environments/dev' },
    createdAt: new Date(0).toISOString(),
    policy: DEFAULT_SYNC_POLICY,
    contentDigest: contentDigest(objects, DEFAULT_SYNC_POLICY),
    objects,
    ...over,
  };
}

function refusal(fn: () => unknown): VerifyErrorCode {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VerifyError, `expected a VerifyError, got ${err}`);
    return err.reason;
  }
  assert.fail('expected the bundle to be refused');
}

describe('bundle envelope', () => {
  test('a signed bundle verifies and round-trips through its encoded bytes', () => {
    const bytes = encodeEnvelope(signBundle(bundle(), hubKey));
    const out = verifyBundle(bytes, { keys, cluster: 'dev-1', appliedGeneration: 2 });
    assert.deepEqual(out, bundle());
  });

  test('a tampered payload is refused as bad-signature', () => {
    const env = signBundle(bundle(), hubKey);
    const tampered = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Bundle;
    tampered.objects[0]!.data = { a: 'evil' };
    tampered.contentDigest = contentDigest(tampered.objects, tampered.policy);
    env.payload = Buffer.from(JSON.stringify(tampered)).toString('base64');
    assert.equal(
      refusal(() => verifyBundle(env, { keys, cluster: 'dev-1' })),
      'bad-signature',
    );
  });

  test('a bundle signed by a key that is not trusted is refused as unknown-key', () => {
    const other = generateSigningKey();
    assert.equal(
      refusal(() => verifyBundle(signBundle(bundle(), other), { keys, cluster: 'dev-1' })),
      'unknown-key',
    );
  });

  test('a signature by another key under the trusted key id is refused as bad-signature', () => {
    const other = generateSigningKey();
    const env = signBundle(bundle(), { ...other, keyId: hubKey.keyId });
    assert.equal(
      refusal(() => verifyBundle(env, { keys, cluster: 'dev-1' })),
      'bad-signature',
    );
  });

  test('a bundle for another cluster is refused as wrong-cluster', () => {
    assert.equal(
      refusal(() =>
        verifyBundle(signBundle(bundle({ cluster: 'prod-1' }), hubKey), { keys, cluster: 'dev-1' }),
      ),
      'wrong-cluster',
    );
  });

  test('a generation not newer than the applied one is refused as stale-generation', () => {
    const env = signBundle(bundle({ generation: 3 }), hubKey);
    assert.equal(
      refusal(() => verifyBundle(env, { keys, cluster: 'dev-1', appliedGeneration: 3 })),
      'stale-generation',
    );
    assert.equal(
      refusal(() => verifyBundle(env, { keys, cluster: 'dev-1', appliedGeneration: 7 })),
      'stale-generation',
    );
  });

  test('signed content that does not match its digest is refused as digest-mismatch', () => {
    const env = signBundle(bundle({ contentDigest: 'sha256:00' }), hubKey);
    assert.equal(
      refusal(() => verifyBundle(env, { keys, cluster: 'dev-1' })),
      'digest-mismatch',
    );
  });

  test('a payload type other than a bundle is refused even when validly signed', async () => {
    const { signEnvelope } = await import('./envelope.js');
    const env = signEnvelope(
      'application/vnd.other+json',
      new TextEncoder().encode(JSON.stringify(bundle())),
      hubKey,
    );
    assert.equal(
      refusal(() => verifyBundle(env, { keys, cluster: 'dev-1' })),
      'wrong-payload-type',
    );
  });

  test('malformed envelopes are refused as malformed', () => {
    for (const text of [
      '',
      'null',
      '[]',
      '{}',
      '{"payloadType":"x","payload":"!!","signatures":[]}',
      '\u00ff',
    ]) {
      assert.equal(
        refusal(() => verifyBundle(new TextEncoder().encode(text), { keys, cluster: 'dev-1' })),
        'malformed',
        text,
      );
    }
  });

  test('fuzz: the envelope decoder either returns an envelope or throws a VerifyError, for any bytes', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          fc.json().map((j) => new TextEncoder().encode(j)),
        ),
        (bytes) => {
          try {
            const env = decodeEnvelope(bytes);
            assert.equal(typeof env.payloadType, 'string');
          } catch (err) {
            assert.ok(err instanceof VerifyError, String(err));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('fuzz: verifying arbitrary envelope-shaped input never accepts it and never throws anything but VerifyError', () => {
    const b64 = fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u).toString('base64'));
    fc.assert(
      fc.property(
        fc.record({
          payloadType: fc.string(),
          payload: b64,
          signatures: fc.array(fc.record({ keyid: fc.constantFrom(hubKey.keyId, 'x'), sig: b64 }), {
            maxLength: 3,
          }),
        }),
        (env) => {
          assert.throws(
            () => verifyBundle(new TextEncoder().encode(JSON.stringify(env)), { keys, cluster: 'dev-1' }),
            VerifyError,
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
