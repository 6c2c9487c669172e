import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { connectAsAgent, readIdentity } from './support.js';

/**
 * Identity row: agent credentials expire, and a running agent rotates its own well before. The
 * hub here issues credentials that live 9 s, so the agent (rotating at a third of the lifetime)
 * trades its credential every 3 s; the fleet must not notice.
 */
describe('security: agent credentials expire and agents rotate them', { timeout: 360_000 }, () => {
  let fleet: Fleet;

  before(async () => {
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': 'environments:\n  - {name: dev, path: environments/dev}\n',
        ...appFiles('dev'),
      },
      clusters: [{ name: 'dev-1', environment: 'dev' }],
      hubArgs: ['--agent-credential-ttl', '9s'],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  test('the agent trades its credential before it expires, keeps the new one, and stays connected past the first expiry', async () => {
    const stateDir = fleet.clusters.get('dev-1')!.stateDir;
    type Identity = ReturnType<typeof readIdentity> & {
      agentCredential: string;
      credentialExpiresAt?: string;
    };
    const seen = readIdentity(stateDir) as Identity;
    assert.ok(seen.credentialExpiresAt, 'the identity keeps when the credential expires');
    const firstExpiry = Date.parse(seen.credentialExpiresAt!);
    // Two more rotations, each kept in the state dir before it is used.
    let last = seen;
    for (let i = 0; i < 2; i++) {
      last = await eventually(
        () => {
          const now = readIdentity(stateDir) as Identity;
          assert.notEqual(now.agentCredential, last.agentCredential, 'rotated and kept in the state dir');
          assert.ok(
            Date.parse(now.credentialExpiresAt!) > Date.parse(last.credentialExpiresAt!),
            'not yet: Date.parse(now.credentialExpiresAt!) > Date.parse(last.credentialExpiresAt!)',
          );
          return now;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
    }
    assert.notEqual(last.nats.seed, seen.nats.seed, 'a new NATS user came with the new credential');
    // The NATS user the agent had before is revoked: the server refuses it.
    await eventually(
      () =>
        assert.rejects(
          connectAsAgent(seen).then((nc) => nc.close()),
          /Authorization Violation|authorization|revoked/i,
        ),
      { timeoutMs: 15_000 },
    );
    // Past the first credential's expiry, the fleet still hears from the agent and moves.
    await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry - Date.now()) + 1000));
    const revision = await fleet.work.commit(appFiles('dev', { replicas: 3 }), 'dev: 3 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': revision } });
    const audit = await fleet.flotillaJson<{ audit: { action: string; cluster: string; outcome: string }[] }>(
      'audit',
      '--cluster',
      'dev-1',
    );
    assert.ok(
      audit.audit.filter((e) => e.action === 'agent.rotate-credential' && e.outcome === 'ok').length >= 2,
      JSON.stringify(audit.audit),
    );
  });

  test('an agent from before age keys makes one when it starts and registers its recipient with a credential rotation', async () => {
    const c = fleet.clusters.get('dev-1')!;
    const recipientOnHub = async () =>
      (
        await fleet.flotillaJson<{ clusters: { cluster: string; recipient: string }[] }>(
          'secret',
          'recipients',
          '--env',
          'dev',
        )
      ).clusters.find((r) => r.cluster === 'dev-1')?.recipient;
    const joined = readIdentity(c.stateDir) as ReturnType<typeof readIdentity> & { ageRecipient?: string };
    assert.equal(await recipientOnHub(), joined.ageRecipient, 'registered at join');
    await c.agent!.stop();
    const file = join(c.stateDir, 'identity.json');
    const old = JSON.parse(readFileSync(file, 'utf8'));
    delete old.ageIdentities;
    delete old.ageRecipient;
    delete old.ageRecipientRegistered;
    writeFileSync(file, JSON.stringify(old), { mode: 0o600 });
    await fleet.startAgent('dev-1');
    const made = await eventually(
      () => {
        const now = readIdentity(c.stateDir) as typeof joined & { ageRecipientRegistered?: boolean };
        assert.ok(now.ageRecipient && now.ageRecipientRegistered, 'a new age key, registered by a rotation');
        return now.ageRecipient!;
      },
      // A busy hub may fail the first rotation: the agent tries again a minute later.
      {
        timeoutMs: 90_000,
        intervalMs: 200,
        message: 'the agent makes an age key and rotates to register it',
      },
    );
    assert.notEqual(made, joined.ageRecipient);
    await eventually(
      async () => assert.equal(await recipientOnHub(), made, 'the hub lists the new recipient'),
      {
        timeoutMs: 15_000,
        message: 'the hub lists the recipient the rotation carried',
      },
    );
  });

  test('a cluster whose agent lost its state joins again with `flotilla cluster token`; the old agent is shut out', async () => {
    const c = fleet.clusters.get('dev-1')!;
    const before = readIdentity(c.stateDir);
    await c.agent!.stop();
    rmSync(c.stateDir, { recursive: true, force: true });
    const issued = await fleet.flotillaJson<{ name: string; token: string; joinCommand: string }>(
      'cluster',
      'token',
      'dev-1',
    );
    assert.match(
      issued.joinCommand,
      /^npx flotilla-agent join --hub \S+ --token flt_join_\S+ --ca-hash sha256:/,
    );
    c.joinCommand = issued.joinCommand;
    await fleet.joinAgent('dev-1');
    await fleet.startAgent('dev-1');
    const revision = await fleet.work.commit(appFiles('dev', { replicas: 4 }), 'dev: 4 replicas');
    await fleet.poke();
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': revision } });
    await assert.rejects(
      connectAsAgent(before).then((nc) => nc.close()),
      /authori[sz]ation|revoked/i,
    );
    const used = await fleet.flotilla('cluster', 'token', 'no-such-cluster');
    assert.notEqual(used.code, 0);
    assert.match(used.stderr, /cluster no-such-cluster: not found/);
  });
});
