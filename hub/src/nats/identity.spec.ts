import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decode } from '@nats-io/jwt';
import { loadNatsIdentity, revokeNatsUser } from './identity.js';

test('hub replicas sharing a data dir never drop each other’s NATS revocations', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-nats-identity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Two replicas load the same identity, then each revokes a different agent user.
  const a = await loadNatsIdentity(dir);
  const b = await loadNatsIdentity(dir);
  await revokeNatsUser(dir, a, 'UAGENTONE');
  const jwt = await revokeNatsUser(dir, b, 'UAGENTTWO');
  const claims = decode<{ revocations?: Record<string, number> }>(jwt);
  assert.deepEqual(Object.keys(claims.nats.revocations ?? {}).sort(), ['UAGENTONE', 'UAGENTTWO']);
  const onDisk = JSON.parse(readFileSync(join(dir, 'nats', 'revocations.json'), 'utf8'));
  assert.deepEqual(Object.keys(onDisk).sort(), ['UAGENTONE', 'UAGENTTWO']);
});
