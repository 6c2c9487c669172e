import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, redactSecretValue, redactUrl, secretHashKey } from './logger.js';

test('secret-bearing fields never reach the log', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ name: 't', destination });
  log.info(
    {
      token: 'tok-123',
      nats: { seed: 'SUABC', jwt: 'eyJ' },
      req: { headers: { authorization: 'Bearer xyz' } },
      ok: 'visible',
    },
    'hello',
  );
  await new Promise((r) => setImmediate(r));
  const out = lines.join('');
  for (const secret of ['tok-123', 'SUABC', 'eyJ', 'Bearer xyz'])
    assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
  assert.ok(out.includes('visible'));
});

test('secrets deep in a record, in free text and in the message are scrubbed too', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ name: 't', destination });
  log.warn(
    {
      a: { b: { c: { d: { password: 'deep-pw-1' } } } },
      err: 'fetch https://bob:pw-in-url@git.example/r.git failed',
      list: [{ seed: 'SUDEEP' }],
    },
    'joined with flt_join_AbCdEf123, flt_tok_XyZ789 and Authorization Bearer abc.def',
  );
  await new Promise((r) => setImmediate(r));
  const out = lines.join('');
  for (const secret of [
    'deep-pw-1',
    'pw-in-url',
    'SUDEEP',
    'flt_join_AbCdEf123',
    'flt_tok_XyZ789',
    'abc.def',
  ])
    assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
  assert.ok(out.includes('git.example/r.git'), 'the rest of the text stays');
});

test('URL userinfo and secret values are redacted', () => {
  assert.equal(redactUrl('https://user:pw@git.example/repo.git'), 'https://git.example/repo.git');
  assert.equal(redactUrl('http://git.example/repo.git'), 'http://git.example/repo.git');
  const shown = redactSecretValue('hunter2');
  assert.ok(!shown.includes('hunter2'));
  assert.equal(shown, redactSecretValue('hunter2'));
});

test('a keyed secret hash is stable under its key, differs under another and from the plain hash', () => {
  const key = secretHashKey('agent private key');
  const shown = redactSecretValue('hunter2', key);
  assert.match(shown, /^\[redacted [0-9a-f]{12}\]$/);
  assert.equal(shown, redactSecretValue('hunter2', key));
  assert.notEqual(shown, redactSecretValue('hunter2'), 'not guessable with a plain sha256');
  assert.notEqual(shown, redactSecretValue('hunter2', secretHashKey('another key')));
  assert.notEqual(shown, redactSecretValue('hunter3', key));
});
