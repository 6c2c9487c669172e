import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ageRecipientOf,
  encryptSopsDocument,
  generateAgeIdentity,
  KUBERNETES_ENCRYPTED_REGEX,
} from '@flotilla/shared/sops';
import { ageCli, SOPS_FIXTURES_MISSING, sopsFixturesDir } from '@flotilla/shared/sops/testing';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { runCli, splitCommand } from '../fleet/cli.js';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';
import { eventually } from '../harness/eventually.js';
import { type PostgresServer, startPostgresServer } from '../harness/postgres.js';
import { kubectl, kubectlJson } from '../journeys/kubectl.js';
import { captureOutput, connectAsHub, peekBundle, readPublishedBundle } from './support.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Clear values that must reach the clusters and nowhere else. */
const APP_TOKEN = 'sops-CLEAR-token-7q2w';
const APP_TOKEN_NEXT = 'sops-NEXT-token-9k4e';
const LIVE_TOKEN = 'sops-LIVE-drift-3m8r';
const STRANGER_TOKEN = 'sops-STRANGER-5z1x';
/** The clear value of the real sops-made fixture (fluxcd/kustomize-controller test data). */
const FIXTURE_VALUE = 'global-value';
const SECRET_VALUES = [APP_TOKEN, APP_TOKEN_NEXT, LIVE_TOKEN, STRANGER_TOKEN, FIXTURE_VALUE];
/** A plain Secret's value: it travels in clear, and the searches below must find it (they can fail). */
const PLAIN_VALUE = 'plain-IN-CLEAR-4h6t';
const needlesOf = (values: string[]) => values.flatMap((v) => [v, b64(v).replace(/=+$/, '')]);
const NEEDLES = needlesOf(SECRET_VALUES);

const FLOTILLA_YAML = `environments:
  - name: dev
    path: environments/dev
    policy: {selfHeal: false}
  - name: staging
    path: environments/staging
pipeline: [dev, staging]
`;

const clearSecret = (token: string) => `apiVersion: v1
kind: Secret
metadata:
  name: app-creds
  namespace: shop
type: Opaque
stringData:
  token: ${token}
`;

const PLAIN_SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: plain-db
  namespace: shop
stringData:
  password: ${PLAIN_VALUE}
`;

/** Where in a text a needle shows up, for a failure message that says where without printing much. */
function found(text: string, needles: string[]): string | undefined {
  return needles.find((n) => text.includes(n));
}

/** A bundle envelope as text: itself and its decoded payload (objects travel base64 inside it). */
function envelopeText(bytes: Uint8Array): string {
  const raw = Buffer.from(bytes).toString('latin1');
  try {
    return `${raw}\n${JSON.stringify(peekBundle(bytes))}`;
  } catch {
    return raw;
  }
}

/** Every file under a directory, as bytes read as latin1 (PGlite pages, keys, git cache, scratch). */
function dirFiles(dir: string): [string, string][] {
  const out: [string, string][] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...dirFiles(path));
    else if (st.isFile()) out.push([path, readFileSync(path).toString('latin1')]);
  }
  return out;
}

/** Every row of every table of the hub's database as text, bundle envelopes decoded. */
async function databaseText(query: (sql: string) => Promise<Record<string, unknown>[]>): Promise<string> {
  const tables = await query(
    "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
  );
  assert.ok(
    tables.some((t) => t.table_name === 'bundles'),
    'the hub database has its tables',
  );
  let text = '';
  for (const { table_name } of tables) {
    const rows = await query(`select t::text as row from "${String(table_name)}" t`);
    text += rows.map((r) => String(r.row)).join('\n');
  }
  for (const r of await query('select envelope from bundles')) {
    const e = r.envelope as Uint8Array;
    text += envelopeText(e instanceof Uint8Array ? e : new Uint8Array(Buffer.from(String(e))));
  }
  return text;
}

for (const database of ['pglite', 'postgres'] as const) {
  describe(`security: SOPS Secrets, decrypted only by the agent (hub on ${database})`, {
    timeout: 600_000,
    skip: SOPS_FIXTURES_MISSING,
  }, () => {
    const fixtures = sopsFixturesDir() ?? '';
    const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
    let pgServer: PostgresServer | undefined;
    let fleet: Fleet;
    let hubOut: () => string;
    const agentOut = new Map<string, () => string>();
    let stagingKeyFile: string;
    let devKube: string;
    let stagingKube: string;
    const { age, keygen } = ageCli();

    /** `flotilla-agent join` as `cluster add` printed it, with more flags. */
    const joinWith = async (cluster: string, extra: string[] = []) => {
      const c = fleet.clusters.get(cluster)!;
      const [cmd, ...args] = splitCommand(c.joinCommand);
      const r = await runCli(cmd!, [
        ...args,
        '--state-dir',
        c.stateDir,
        '--kubeconfig',
        c.kubeconfig,
        ...extra,
      ]);
      assert.equal(r.code, 0, `join ${cluster}: ${r.stderr}`);
    };

    before(async () => {
      if (database === 'postgres') pgServer = await startPostgresServer();
      fleet = await startFleet({
        repoFiles: {
          'flotilla.yaml': FLOTILLA_YAML,
          ...appFiles('dev'),
          ...appFiles('staging'),
          // Made by the real sops (3.10.2), for the published test key flux-age-global.txt.
          'environments/dev/global-secret.yaml': fixture('flux-global-secret.yaml'),
          'environments/dev/plain-secret.yaml': PLAIN_SECRET,
        },
        clusters: [
          { name: 'dev-1', environment: 'dev' },
          { name: 'staging-1', environment: 'staging' },
        ],
        startAgents: false,
        ...(pgServer ? { database: pgServer.url } : {}),
      });
      hubOut = captureOutput(fleet.hub.process);
      // staging-1's age key is made by the Debian age CLI and handed to the agent by its operator.
      stagingKeyFile = join(fleet.baseDir, 'staging-1-age.txt');
      execFileSync(keygen, ['-o', stagingKeyFile], { stdio: 'pipe' });
      await joinWith('dev-1');
      await joinWith('staging-1', ['--age-key-file', stagingKeyFile]);
      // Both may also open the fixture: its test key is given as an extra identity at run.
      const more = ['--age-key-file', join(fixtures, 'flux-age-global.txt')];
      for (const name of ['dev-1', 'staging-1']) {
        const p = await fleet.startAgent(name, more);
        agentOut.set(name, captureOutput(p));
      }
      devKube = fleet.clusters.get('dev-1')!.kubeconfig;
      stagingKube = fleet.clusters.get('staging-1')!.kubeconfig;
      await fleet.waitSynced();
    });
    after(async () => {
      await fleet?.stop();
      await pgServer?.destroy();
    });

    test('each agent registers its age recipient at join; staging-1 the one the Debian age-keygen made', async () => {
      const r = await fleet.flotillaJson<{
        clusters: { cluster: string; recipient: string }[];
        missing: string[];
        recipients: string[];
      }>('secret', 'recipients', '--env', 'dev', '--env', 'staging');
      const byCluster = new Map(r.clusters.map((c) => [c.cluster, c.recipient]));
      assert.deepEqual([...byCluster.keys()].sort(), ['dev-1', 'staging-1']);
      assert.deepEqual(r.missing, []);
      const fromKeygen = execFileSync(keygen, ['-y', stagingKeyFile], { encoding: 'utf8' }).trim();
      assert.equal(byCluster.get('staging-1'), fromKeygen);
      assert.match(byCluster.get('dev-1')!, /^age1[0-9a-z]+$/);
      const identity = JSON.parse(
        readFileSync(join(fleet.clusters.get('dev-1')!.stateDir, 'identity.json'), 'utf8'),
      );
      assert.equal(identity.ageRecipient, byCluster.get('dev-1'), "dev-1's key stays in its own state");
    });

    test('flotilla secret encrypt writes a SOPS file the Debian age CLI opens with staging-1’s identity; dev-1 and staging-1 decrypt what git holds', async () => {
      const clearFile = join(fleet.baseDir, 'app-creds.clear.yaml');
      const encFile = join(fleet.baseDir, 'app-creds.enc.yaml');
      writeFileSync(clearFile, clearSecret(APP_TOKEN));
      const r = await fleet.flotilla(
        'secret',
        'encrypt',
        '--env',
        'dev',
        '--env',
        'staging',
        '-f',
        clearFile,
        '-o',
        encFile,
      );
      assert.equal(r.code, 0, r.stderr);
      const enc = readFileSync(encFile, 'utf8');
      assert.equal(found(enc, NEEDLES), undefined, 'the encrypted file holds no clear value');
      const doc = parse(enc);
      assert.deepEqual(doc.metadata, { name: 'app-creds', namespace: 'shop' });
      const fromKeygen = execFileSync(keygen, ['-y', stagingKeyFile], { encoding: 'utf8' }).trim();
      const stanza = doc.sops.age.find((a: { recipient: string }) => a.recipient === fromKeygen);
      assert.ok(stanza, 'encrypted for staging-1');
      const dataKey = execFileSync(age, ['-d', '-i', stagingKeyFile], { input: stanza.enc });
      assert.equal(dataKey.length, 32, 'the Debian age CLI opens the data key');

      const rev = await fleet.work.commit({ 'environments/dev/app-creds.yaml': enc }, 'dev: app credentials');
      await fleet.poke();
      await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
      const app = await kubectlJson(devKube, ['-n', 'shop', 'get', 'secret', 'app-creds']);
      assert.equal(
        Buffer.from(app.data.token, 'base64').toString(),
        APP_TOKEN,
        'the cluster holds the clear value',
      );
      assert.equal(app.sops, undefined);
      const real = await kubectlJson(devKube, ['-n', 'default', 'get', 'secret', 'global-age-secret']);
      assert.equal(
        Buffer.from(real.data.key, 'base64').toString(),
        FIXTURE_VALUE,
        'the real sops file decrypts',
      );
    });

    test('a plain Secret is warned of, per object, in fleet status and the render log', async () => {
      const row = await eventually(
        async () => {
          const out = await fleet.flotillaJson<{ clusters: { name: string; warnings?: string[] }[] }>(
            'fleet',
            'status',
          );
          const r = out.clusters.find((c) => c.name === 'dev-1');
          assert.ok(r?.warnings?.length, 'dev-1 has warnings');
          return r;
        },
        { timeoutMs: 30_000, message: 'the plain Secret warning reaches fleet status' },
      );
      assert.deepEqual(
        row.warnings?.map((w) => w.split(':')[0]),
        ['v1 Secret shop/plain-db'],
        'only the plain Secret, not the SOPS ones',
      );
      const human = await fleet.flotilla('fleet', 'status');
      assert.match(human.stdout, /warning: dev-1: v1 Secret shop\/plain-db: travels in clear/);
      assert.match(hubOut(), /plain-db: travels in clear/);
    });

    test('promotion carries the encrypted file unchanged and staging-1 decrypts it with its age-keygen identity', async () => {
      const p = await fleet.flotilla('promote', 'dev', 'staging');
      assert.equal(p.code, 0, p.stderr);
      await eventually(
        async () => {
          const s = await kubectlJson(stagingKube, ['-n', 'shop', 'get', 'secret', 'app-creds']);
          assert.equal(
            Buffer.from(s.data.token, 'base64').toString(),
            APP_TOKEN,
            'staging-1 holds the clear value',
          );
        },
        { timeoutMs: 90_000, message: 'staging-1 decrypts the promoted Secret' },
      );
      await fleet.work.git('pull', '-q');
      const blob = (path: string) => fleet.work.git('rev-parse', `HEAD:${path}`);
      assert.equal(
        (await blob('environments/staging/app-creds.yaml')).trim(),
        (await blob('environments/dev/app-creds.yaml')).trim(),
        'the same blob: copied as it is',
      );
    });

    test('env diff says which encrypted value differs, without decrypting it', async () => {
      const clearFile = join(fleet.baseDir, 'app-creds.next.yaml');
      writeFileSync(clearFile, clearSecret(APP_TOKEN_NEXT));
      const enc = await fleet.flotilla(
        'secret',
        'encrypt',
        '--env',
        'dev',
        '--env',
        'staging',
        '-f',
        clearFile,
      );
      assert.equal(enc.code, 0, enc.stderr);
      const rev = await fleet.work.commit(
        { 'environments/dev/app-creds.yaml': enc.stdout },
        'dev: next token',
      );
      await fleet.poke();
      await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev } });
      const diff = await fleet.flotilla('env', 'diff', 'dev', 'staging');
      assert.equal(diff.code, 0, diff.stderr);
      assert.match(diff.stdout, /app-creds\.yaml/);
      assert.match(diff.stdout, /^-\s+token: "?\[encrypted [0-9a-f]{12}\]/m);
      assert.match(diff.stdout, /^\+\s+token: "?\[encrypted [0-9a-f]{12}\]/m);
      assert.match(diff.stdout, /SOPS metadata: data key for\s+age1/);
      assert.doesNotMatch(diff.stdout, /ENC\[AES256_GCM/, 'ciphertext is summarised, not shown');
      assert.equal(found(diff.stdout + diff.stderr, NEEDLES), undefined);
    });

    test('a tampered file and a file for other recipients are refused, each named, while the rest of the bundle applies', async () => {
      const tampered = parse(fixture('flux-global-secret.yaml'));
      tampered.metadata.name = 'tampered';
      const stranger = await encryptSopsDocument(
        parse(clearSecret(STRANGER_TOKEN).replace('app-creds', 'stranger')),
        {
          recipients: [await ageRecipientOf(await generateAgeIdentity())],
          encryptedRegex: KUBERNETES_ENCRYPTED_REGEX,
        },
      );
      const rev = await fleet.work.commit(
        {
          'environments/dev/tampered.yaml': stringify(tampered, { lineWidth: 0 }),
          'environments/dev/stranger.yaml': stringify(stranger, { lineWidth: 0 }),
          'environments/dev/after.yaml':
            'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-refusal, namespace: shop}\ndata: {applied: "yes"}\n',
        },
        'dev: a tampered and a foreign SOPS file',
      );
      await fleet.poke();
      const detail = await eventually(
        async () => {
          const d = await fleet.flotillaJson<{
            cluster: { revision: string; error: string | null };
            resources: { kind: string; name: string; error: string | null }[];
          }>('cluster', 'show', 'dev-1');
          assert.equal(d.cluster.revision, rev, 'dev-1 applied the commit');
          assert.ok(
            d.resources.some((r) => r.name === 'stranger' && r.error),
            'stranger reported',
          );
          return d;
        },
        { timeoutMs: 90_000, message: 'dev-1 reports the refused Secrets' },
      );
      const errorOf = (name: string) => detail.resources.find((r) => r.name === name)?.error ?? '';
      assert.match(errorOf('tampered'), /^v1 Secret default\/tampered: SOPS document refused: MAC mismatch/);
      assert.match(
        errorOf('stranger'),
        /^v1 Secret shop\/stranger: SOPS document refused: no age identity held here opens it; it is encrypted for age1/,
      );
      assert.match(detail.cluster.error ?? '', /SOPS document refused/, 'fleet status shows the refusal');
      const cm = await kubectlJson(devKube, ['-n', 'shop', 'get', 'configmap', 'after-refusal']);
      assert.equal(cm.data.applied, 'yes', 'the rest of the bundle applied');
      const app = await kubectlJson(devKube, ['-n', 'shop', 'get', 'secret', 'app-creds']);
      assert.equal(Buffer.from(app.data.token, 'base64').toString(), APP_TOKEN_NEXT);
      await assert.rejects(kubectl(devKube, ['-n', 'shop', 'get', 'secret', 'stranger']), 'never applied');
    });

    test('drift of a decrypted Secret’s value shows as changed with the keyed hash, never the value', async () => {
      await kubectl(devKube, [
        '-n',
        'shop',
        'patch',
        'secret',
        'app-creds',
        '--type=merge',
        '-p',
        JSON.stringify({ data: { token: b64(LIVE_TOKEN) } }),
      ]);
      const d = await eventually(
        async () => {
          const all = await fleet.flotillaJson<{
            drift: { cluster: string; name: string; field: string; desired: string; live: string }[];
          }>('fleet', 'drift');
          const hit = all.drift.find((x) => x.cluster === 'dev-1' && x.name === 'app-creds');
          assert.ok(hit, 'app-creds drift is listed');
          return hit;
        },
        { timeoutMs: 60_000, message: 'the drift of the decrypted Secret reaches fleet drift' },
      );
      assert.equal(d.field, 'data.token');
      assert.match(d.desired, /^\[redacted [0-9a-f]{12}\]$/);
      assert.match(d.live, /^\[redacted [0-9a-f]{12}\]$/);
      assert.notEqual(d.desired, d.live, 'shown as changed');
    });

    test('no clear value in API responses, the dashboard, the NATS stream, an exported bundle file, logs, the hub data dir or its database', async () => {
      const bad: string[] = [];
      const check = (where: string, text: string) => {
        const n = found(text, NEEDLES);
        if (n) bad.push(`${where} holds ${JSON.stringify(n)}`);
      };
      const plainSeen: string[] = [];
      const control = (where: string, text: string) => {
        if (found(text, needlesOf([PLAIN_VALUE]))) plainSeen.push(where);
      };

      // Every view of the CLI and the admin API.
      for (const args of [
        ['fleet', 'status', '-o', 'json'],
        ['fleet', 'status'],
        ['fleet', 'drift', '--history', '-o', 'json'],
        ['cluster', 'show', 'dev-1', '-o', 'json'],
        ['cluster', 'show', 'staging-1', '-o', 'json'],
        ['cluster', 'list', '-o', 'json'],
        ['audit', '-o', 'json'],
        ['promote', '--history', '-o', 'json'],
        ['env', 'diff', 'dev', 'staging', '-o', 'json'],
        ['secret', 'recipients', '--env', 'dev', '-o', 'json'],
      ]) {
        const r = await fleet.flotilla(...args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        check(`flotilla ${args.join(' ')}`, r.stdout + r.stderr);
      }
      for (const path of [
        '/api/v1/clusters',
        '/api/v1/clusters/dev-1',
        '/api/v1/fleet/status',
        '/api/v1/fleet/drift?history=true',
        '/api/v1/audit',
        '/api/v1/promotions',
        '/api/v1/environments/dev/diff/staging',
        '/api/v1/secrets/recipients?env=dev&env=staging',
        '/metrics',
      ]) {
        const res = await fetch(`${fleet.hub.http}${path}`, {
          headers: { authorization: `Bearer ${fleet.adminToken}` },
        });
        assert.equal(res.status, 200, path);
        check(`GET ${path}`, await res.text());
      }

      // The dashboard, logged in with the admin token.
      const login = await fetch(`${fleet.hub.http}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: fleet.adminToken }).toString(),
        redirect: 'manual',
      });
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.match(cookie, /=/, 'the dashboard opened a session');
      for (const path of [
        '/ui',
        '/ui/clusters/dev-1',
        '/ui/clusters/staging-1',
        '/ui/drift',
        '/ui/promotions',
      ]) {
        const res = await fetch(`${fleet.hub.http}${path}`, { headers: { cookie }, redirect: 'manual' });
        assert.equal(res.status, 200, path);
        const page = await res.text();
        if (path === '/ui/clusters/dev-1') assert.match(page, /app-creds/, 'the dashboard lists the Secret');
        check(`dashboard ${path}`, page);
      }

      // The NATS stream, as the hub's own user reads it, and an exported bundle file.
      const nc = await connectAsHub(fleet);
      try {
        for (const cluster of ['dev-1', 'staging-1']) {
          const text = envelopeText((await readPublishedBundle(nc, cluster)).envelope);
          check(`the NATS stream (${cluster})`, text);
          control(`the NATS stream (${cluster})`, text);
        }
      } finally {
        await nc.close();
      }
      const file = join(fleet.baseDir, 'dev-1.bundle');
      const ex = await fleet.flotilla('bundle', 'export', '--cluster', 'dev-1', '-o', file);
      assert.equal(ex.code, 0, ex.stderr);
      const exported = envelopeText(readFileSync(file));
      assert.match(exported, /ENC\[AES256_GCM/, 'the exported bundle carries the encrypted Secrets');
      check('the exported bundle file', exported);
      control('the exported bundle file', exported);

      // Logs of the hub and the agents.
      check('the hub log', hubOut());
      for (const [name, out] of agentOut) {
        assert.match(out(), /bundle applied/, `${name}'s output was captured`);
        check(`agent ${name}'s log`, out());
      }

      // The database: every row of every table, bundle envelopes decoded.
      let dbText: string;
      if (pgServer) {
        const client = new pg.Client({ connectionString: pgServer.url });
        await client.connect();
        try {
          dbText = await databaseText(async (sql) => (await client.query(sql)).rows);
        } finally {
          await client.end();
        }
      } else {
        // PGlite is the hub's own: read it once the hub has let go of it.
        await fleet.stopHub();
        const { PGlite } = await import('@electric-sql/pglite');
        const db = new PGlite(join(fleet.hubDataDir, 'pglite'));
        try {
          dbText = await databaseText(async (sql) => (await db.query<Record<string, unknown>>(sql)).rows);
        } finally {
          await db.close();
        }
      }
      check(`the hub database (${database})`, dbText);
      control(`the hub database (${database})`, dbText);

      // The hub's data dir, byte for byte (keys, git cache, render scratch and, on PGlite, its pages).
      for (const [path, text] of dirFiles(fleet.hubDataDir)) check(`hub data dir ${path}`, text);

      assert.deepEqual(bad, [], 'no clear value of a SOPS Secret outside the clusters');
      assert.ok(
        plainSeen.includes(`the hub database (${database})`) &&
          plainSeen.includes('the exported bundle file'),
        `the same searches find the plain Secret's value (they would find a SOPS one): ${plainSeen.join(', ')}`,
      );
    });
  });
}
