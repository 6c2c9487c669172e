import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/shared';
import { eq } from 'drizzle-orm';
import { type AuditLog, createAuditLog } from '../audit/audit.js';
import type { Database } from '../db/database.js';
import { agentCredentials, bootstrapTokens } from '../db/schema.js';
import { openTestDatabase, TEST_DATABASE_KINDS } from '../db/testing.js';
import { loadNatsIdentity } from '../nats/identity.js';
import { hashSecret } from '../pki/secrets.js';
import { ensureSigningKeys } from '../pki/signing-keys.js';
import { type ClusterService, type ClusterServiceOptions, createClusterService } from './cluster-service.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const agentKey = () => new Uint8Array(randomBytes(32));

for (const kind of TEST_DATABASE_KINDS) {
  describe(`cluster registration on ${kind}`, () => {
    let database: Database;
    let dir: string;
    let clusters: ClusterService;
    let audit: AuditLog;
    let service: (extra?: Partial<ClusterServiceOptions>) => ClusterService;
    const accountUpdates: string[] = [];

    before(async () => {
      database = await openTestDatabase(kind);
      dir = mkdtempSync(join(tmpdir(), 'flotilla-hub-clusters-'));
      const identity = await loadNatsIdentity(dir);
      const { ring } = ensureSigningKeys(dir);
      audit = createAuditLog(database.db);
      service = (extra = {}) =>
        createClusterService({
          db: database.db,
          audit,
          logger,
          nats: {
            identity,
            dataDir: dir,
            agentServers: ['nats://127.0.0.1:4222'],
            updateAccount: async (jwt) => {
              accountUpdates.push(jwt);
            },
          },
          signingKeys: () => ring,
          grpcAddress: () => '127.0.0.1:7443',
          caHash: 'sha256:abc',
          ...extra,
        });
      clusters = service();
    });
    after(async () => {
      await database?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('cluster add prints a join command and stores only the token hash', async () => {
      const added = await clusters.add(
        { name: 'dev-1', environment: 'dev', labels: { region: 'eu' } },
        'admin',
      );
      assert.equal(added.name, 'dev-1');
      assert.equal(
        added.joinCommand,
        `npx flotilla-agent join --hub 127.0.0.1:7443 --token ${added.token} --ca-hash sha256:abc`,
      );
      const rows = await database.db
        .select()
        .from(bootstrapTokens)
        .where(eq(bootstrapTokens.cluster, 'dev-1'));
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.tokenHash, hashSecret(added.token));
      assert.ok(!JSON.stringify(rows).includes(added.token));
      await assert.rejects(clusters.add({ name: 'dev-1', environment: 'dev' }, 'admin'), /already exists/);
      await assert.rejects(clusters.add({ name: 'Bad.Name', environment: 'dev' }, 'admin'), /DNS-1123/);
    });

    test('two concurrent Registers with one token: exactly one succeeds, the other is refused and audited', async () => {
      const { token } = await clusters.add({ name: 'race', environment: 'dev' }, 'admin');
      const attempts = await Promise.allSettled(
        Array.from({ length: 4 }, () =>
          clusters.register({ token, agentPublicKey: agentKey(), agentVersion: 't', peer: 'test' }),
        ),
      );
      const ok = attempts.filter((a) => a.status === 'fulfilled');
      assert.equal(ok.length, 1);
      for (const a of attempts.filter((x) => x.status === 'rejected'))
        assert.match(String((a as PromiseRejectedResult).reason), /invalid, already used or expired/);
      const reg = (ok[0] as PromiseFulfilledResult<Awaited<ReturnType<ClusterService['register']>>>).value;
      assert.equal(reg.cluster, 'race');
      assert.equal(reg.environment, 'dev');
      assert.equal(reg.nats.inboxPrefix, '_INBOX_AG.race');
      assert.ok(reg.nats.jwt && reg.nats.seed.startsWith('SU'));
      assert.equal(reg.hubKeys.length, 1);
      assert.equal(await clusters.authenticate(reg.agentCredential), 'race');
      const stored = await database.db
        .select()
        .from(agentCredentials)
        .where(eq(agentCredentials.cluster, 'race'));
      assert.equal(
        stored[0]?.credentialHash,
        hashSecret(reg.agentCredential),
        'the agent credential is stored hashed',
      );
      assert.ok(!JSON.stringify(stored).includes(reg.agentCredential), 'and never in clear');
      const refused = (await audit.list({ cluster: 'race' })).filter((e) => e.outcome === 'refused');
      assert.equal(refused.length, 3);
      assert.ok(refused.every((e) => e.detail === 'token already used'));
    });

    test('an expired token is refused and audited as expired', async () => {
      const { token } = await clusters.add({ name: 'late', environment: 'dev', ttlMs: 1 }, 'admin');
      await new Promise((r) => setTimeout(r, 20));
      await assert.rejects(
        clusters.register({ token, agentPublicKey: agentKey(), agentVersion: 't', peer: 'test' }),
        /invalid, already used or expired/,
      );
      const [last] = await audit.list({ cluster: 'late' });
      assert.equal(last?.detail, 'token expired');
    });

    test('an unknown token is refused and audited', async () => {
      await assert.rejects(
        clusters.register({
          token: 'flt_join_nope',
          agentPublicKey: agentKey(),
          agentVersion: 't',
          peer: 'test',
        }),
        /invalid, already used or expired/,
      );
      const entries = await audit.list();
      assert.ok(entries.some((e) => e.action === 'agent.register' && e.detail === 'unknown token'));
    });

    test('labels come from the hub only', async () => {
      const { token } = await clusters.add(
        { name: 'labelled', environment: 'prod', labels: { tier: 'gold' } },
        'admin',
      );
      const reg = await clusters.register({
        token,
        agentPublicKey: agentKey(),
        agentVersion: 't',
        peer: 'test',
      });
      assert.deepEqual(reg.labels, { tier: 'gold' });
    });

    test('cluster label sets and removes labels, is audited with the change, and asks for a render', async () => {
      const changed: { name: string; labels: Record<string, string> }[] = [];
      const svc = service({ onChanged: (c) => changed.push({ name: c.name, labels: c.labels }) });
      await svc.add(
        { name: 'relabel', environment: 'prod', labels: { region: 'eu', tier: 'gold' } },
        'admin',
      );
      const after = await svc.label(
        'relabel',
        { set: { gpu: 'true', tier: 'silver' }, remove: ['region'] },
        'ops',
      );
      assert.deepEqual(after.labels, { tier: 'silver', gpu: 'true' });
      assert.deepEqual((await svc.get('relabel'))?.labels, { tier: 'silver', gpu: 'true' });
      assert.deepEqual(changed, [{ name: 'relabel', labels: { tier: 'silver', gpu: 'true' } }]);
      const [entry] = await audit.list({ cluster: 'relabel' });
      assert.equal(entry?.action, 'cluster.label');
      assert.equal(entry?.actor, 'ops');
      assert.equal(entry?.detail, '+gpu=true; -region (was eu); tier=silver (was gold)');
      // Setting what is already there renders nothing again.
      await svc.label('relabel', { set: { gpu: 'true' } }, 'ops');
      assert.equal(changed.length, 1);
      await assert.rejects(svc.label('relabel', { set: { 'bad key': 'x' } }, 'ops'), /not a valid label key/);
      await assert.rejects(svc.label('nobody', { set: { a: 'b' } }, 'ops'), /cluster nobody: not found/);
      assert.equal((await audit.list({ cluster: 'nobody' }))[0]?.outcome, 'refused');
    });

    test('cluster move changes the environment, is audited, and asks for a render', async () => {
      const changed: string[] = [];
      const svc = service({ onChanged: (c) => changed.push(`${c.name}:${c.environment}`) });
      await svc.add({ name: 'mover', environment: 'dev' }, 'admin');
      assert.equal((await svc.move('mover', 'staging', 'ops')).environment, 'staging');
      assert.equal((await svc.get('mover'))?.environment, 'staging');
      assert.deepEqual(changed, ['mover:staging']);
      const [entry] = await audit.list({ cluster: 'mover' });
      assert.equal(entry?.action, 'cluster.move');
      assert.equal(entry?.detail, 'environment dev → staging');
      await assert.rejects(svc.move('mover', 'Bad_Env', 'ops'), /DNS-1123/);
      await assert.rejects(svc.move('ghost', 'dev', 'ops'), /not found/);
    });

    test('cluster remove revokes the agent credential and the NATS user, and is audited', async () => {
      const { token } = await clusters.add({ name: 'gone', environment: 'dev' }, 'admin');
      const reg = await clusters.register({
        token,
        agentPublicKey: agentKey(),
        agentVersion: 't',
        peer: 'test',
      });
      const before = accountUpdates.length;
      await clusters.remove('gone', 'admin');
      assert.equal(await clusters.authenticate(reg.agentCredential), undefined);
      assert.equal(accountUpdates.length, before + 1);
      assert.equal(await clusters.get('gone'), undefined);
      const [last] = await audit.list({ cluster: 'gone' });
      assert.equal(last?.action, 'cluster.remove');
      assert.equal(last?.outcome, 'ok');
      await assert.rejects(clusters.remove('gone', 'admin'), /not found/);
    });

    test('a new token joins an existing cluster again and replaces its agent: the old credential and NATS user are revoked', async () => {
      const { token } = await clusters.add({ name: 'rejoin', environment: 'dev' }, 'admin');
      const first = await clusters.register({
        token,
        agentPublicKey: agentKey(),
        agentVersion: 't',
        peer: 'test',
      });
      await assert.rejects(clusters.issueToken('nope', {}, 'admin'), /not found/);
      const issued = await clusters.issueToken('rejoin', { ttlMs: 60_000 }, 'admin');
      assert.match(issued.joinCommand, new RegExp(`--token ${issued.token} `));
      assert.equal(
        await clusters.authenticate(first.agentCredential),
        'rejoin',
        'nothing changes until the join',
      );
      const pushes = accountUpdates.length;
      const second = await clusters.register({
        token: issued.token,
        agentPublicKey: agentKey(),
        agentVersion: 't',
        peer: 'test',
      });
      assert.equal(second.cluster, 'rejoin');
      assert.equal(await clusters.authenticate(first.agentCredential), undefined, 'the earlier agent is out');
      assert.equal(await clusters.authenticate(second.agentCredential), 'rejoin');
      assert.equal(accountUpdates.length, pushes + 1, "the earlier agent's NATS user is revoked");
      await assert.rejects(
        clusters.register({
          token: issued.token,
          agentPublicKey: agentKey(),
          agentVersion: 't',
          peer: 'test',
        }),
        /invalid, already used or expired/,
      );
      const actions = (await audit.list({ cluster: 'rejoin' })).map((e) => `${e.action}:${e.outcome}`);
      assert.ok(actions.includes('cluster.token:ok'), actions.join(' '));
    });

    test('an agent credential expires, and rotation issues a new one that replaces the old at its first use', async () => {
      let now = new Date('2026-01-01T00:00:00Z');
      const timed = service({ credentialTtlMs: 90 * 86_400_000, now: () => now });
      const { token } = await timed.add({ name: 'rot', environment: 'dev' }, 'admin');
      const reg = await timed.register({
        token,
        agentPublicKey: agentKey(),
        agentVersion: 't',
        peer: 'test',
      });
      assert.equal(reg.credentialExpiresAt.toISOString(), '2026-04-01T00:00:00.000Z');
      const old = reg.agentCredential;

      now = new Date('2026-02-01T00:00:00Z');
      const lost = await timed.rotateCredential(old, 'test');
      // Its answer was lost: the agent asks again with the old credential; the first is void.
      const next = await timed.rotateCredential(old, 'test');
      assert.equal(next.expiresAt.toISOString(), '2026-05-02T00:00:00.000Z');
      assert.equal(await timed.authenticate(lost.agentCredential), undefined, 'the unused successor is void');
      assert.equal(await timed.authenticate(old), 'rot', 'the old one works until the new one is used');
      assert.notEqual(next.nats.seed, reg.nats.seed, 'a new NATS user comes with the new credential');
      const natsUsers = async () =>
        (await database.db.select().from(agentCredentials).where(eq(agentCredentials.cluster, 'rot'))).map(
          (r) => r.natsUser,
        );
      const [firstUser] = await natsUsers();
      const revoked = () => JSON.parse(readFileSync(join(dir, 'nats', 'revocations.json'), 'utf8'));
      assert.ok(!(firstUser! in revoked()), 'the old NATS user works until the new credential is used');
      const pushes = accountUpdates.length;
      assert.equal(await timed.authenticate(next.agentCredential), 'rot');
      assert.equal(await timed.authenticate(old), undefined, 'first use of the new one revokes the old');
      assert.ok(firstUser! in revoked(), 'and the old NATS user with it');
      assert.equal(accountUpdates.length, pushes + 1, 'the revocation is pushed to NATS');
      await assert.rejects(timed.rotateCredential(old, 'test'), /unknown, revoked or expired/);
      const stored = await database.db
        .select()
        .from(agentCredentials)
        .where(eq(agentCredentials.cluster, 'rot'));
      assert.ok(!JSON.stringify(stored).includes(next.agentCredential), 'stored as a hash only');

      now = new Date('2026-05-02T00:00:01Z');
      assert.equal(await timed.authenticate(next.agentCredential), undefined, 'expired');
      await assert.rejects(timed.rotateCredential(next.agentCredential, 'test'), /join again/);
      const entries = (await audit.list({ cluster: 'rot' })).filter(
        (e) => e.action === 'agent.rotate-credential',
      );
      assert.equal(entries.length, 2);
      assert.ok(
        (await audit.list()).some((e) => e.action === 'agent.rotate-credential' && e.outcome === 'refused'),
      );
    });
  });
}
