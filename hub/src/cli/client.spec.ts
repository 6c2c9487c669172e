import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import { createAccess } from '../access/access.js';
import { type ApiServer, startApiServer } from '../api/server.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashSecret, newSecret } from '../pki/secrets.js';
import { ensureTls } from '../pki/tls.js';
import { CliError, createHubClient } from './client.js';
import { isLoopback } from './hub-commands.js';

const TOKEN = newSecret('flt_admin');

describe('the CLI client against an admin API served over TLS', () => {
  let dir: string;
  let api: ApiServer;
  let caFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-client-'));
    const tls = await ensureTls(dir);
    caFile = join(dir, 'tls', 'ca.pem');
    api = await startApiServer({
      listen: '127.0.0.1:0',
      tls: { certPem: tls.chainPem, keyPem: tls.keyPem },
      access: createAccess({ bootstrapTokenHash: hashSecret(TOKEN) }),
      routes: [
        {
          method: 'GET',
          path: '/api/v1/whoami',
          permission: 'read',
          handle: async (req) => ({ json: { actor: req.actor } }),
        },
      ],
      metrics: createMetrics(),
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
  });
  after(async () => {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const refusal = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CliError, String(err));
    return err.message;
  };

  test('the hub serves https and the CLI trusts it through the CA file of its data dir', async () => {
    assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await createHubClient(api.url, TOKEN, caFile).json<{ actor: string }>(
      'GET',
      '/api/v1/whoami',
    );
    assert.equal(res.actor, 'admin', 'the bootstrap token is the admin');
  });

  test('without the CA file, or with another CA, the certificate is refused with a message that says what to set', async () => {
    const message = await refusal(createHubClient(api.url, TOKEN).json('GET', '/api/v1/whoami'));
    assert.match(message, /does not trust .*FLOTILLA_CA_FILE/);
    const other = mkdtempSync(join(tmpdir(), 'flotilla-other-ca-'));
    try {
      await ensureTls(other);
      const wrong = await refusal(
        createHubClient(api.url, TOKEN, join(other, 'tls', 'ca.pem')).json('GET', '/api/v1/whoami'),
      );
      assert.match(wrong, /does not trust/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
    assert.ok(!message.includes(TOKEN));
  });

  test('a CA file that cannot be read, and plain http to the TLS port, are clear one-line errors', async () => {
    const missing = await refusal((async () => createHubClient(api.url, TOKEN, join(dir, 'nope.pem')))());
    assert.match(missing, /FLOTILLA_CA_FILE .*nope\.pem: ENOENT/);
    const plain = await refusal(
      createHubClient(api.url.replace('https:', 'http:'), TOKEN).json('GET', '/api/v1/whoami'),
    );
    assert.match(plain, /cannot reach the hub at http:/);
  });

  test('loopback addresses are told apart from ones other machines reach', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) assert.ok(isLoopback(h), h);
    for (const h of ['0.0.0.0', '10.0.0.5', '::', 'hub.example.com']) assert.ok(!isLoopback(h), h);
  });
});
