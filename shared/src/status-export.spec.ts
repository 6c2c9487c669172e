import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Phase, ReportStatusRequestSchema } from '@flotilla/proto';
import { encodeEnvelope, VerifyError } from './envelope.js';
import { generateSigningKey, trustedKeys } from './keys.js';
import { signStatusExport, verifyStatusExport } from './status-export.js';

test('a status export signed by the agent key verifies, and an edited one is refused', () => {
  const agent = generateSigningKey();
  const report = create(ReportStatusRequestSchema, {
    seq: 7n,
    body: { case: 'status', value: { appliedGeneration: 3n, revision: 'abc', phase: Phase.SYNCED } },
  });
  const env = signStatusExport(
    { cluster: 'edge-1', exportedAt: '2026-01-01T00:00:00Z', reports: [report] },
    agent,
  );
  const keysOf = (c: string) =>
    c === 'edge-1' ? trustedKeys([{ keyId: agent.keyId, publicKey: agent.publicKey }]) : undefined;
  const out = verifyStatusExport(encodeEnvelope(env), keysOf);
  assert.equal(out.cluster, 'edge-1');
  assert.equal(out.reports[0]?.seq, 7n);
  assert.equal(out.reports[0]?.body.case, 'status');

  const edited = JSON.parse(Buffer.from(env.payload, 'base64').toString());
  edited.reports[0].status.phase = 'PHASE_FAILED';
  env.payload = Buffer.from(JSON.stringify(edited)).toString('base64');
  assert.throws(
    () => verifyStatusExport(encodeEnvelope(env), keysOf),
    (e: unknown) => e instanceof VerifyError && e.reason === 'bad-signature',
  );
});
