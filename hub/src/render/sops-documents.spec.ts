import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitServer, startGitServer } from '@flotilla/e2e/harness';
import {
  ageRecipientOf,
  decryptSopsDocument,
  encryptSopsDocument,
  generateAgeIdentity,
  KUBERNETES_ENCRYPTED_REGEX,
  parseAgeIdentities,
} from '@flotilla/shared/sops';
import { SOPS_FIXTURES_MISSING, sopsFixturesDir } from '@flotilla/shared/sops/testing';
import { parse, stringify } from 'yaml';
import { createRenderer, RenderError } from './index.js';
import { cluster, env, fetchedSource } from './test-support.js';

const fixtures = sopsFixturesDir();
const fixture = (name: string) => readFileSync(join(fixtures ?? '', name), 'utf8');

describe('SOPS documents through the hub render (never decrypted there)', () => {
  let server: GitServer;
  const cleanups: (() => void)[] = [];
  before(async () => {
    server = await startGitServer();
  });
  after(async () => {
    await server.stop();
    for (const c of cleanups) c();
  });

  async function render(files: Record<string, string>, dir = 'envs/dev') {
    const name = `s${Math.random().toString(36).slice(2, 10)}`;
    await server.createRepo(name, files);
    const { source, workDir, cleanup } = await fetchedSource(`${server.url}/${name}.git`);
    cleanups.push(cleanup);
    const renderer = createRenderer({ source, workDir });
    return renderer.render(await source.resolveBranch('main'), env('dev', dir), cluster('dev-1', 'dev'));
  }

  it('plain YAML: a file made by the real sops passes as written (no substitution) and still decrypts; a plain Secret is warned of', {
    skip: SOPS_FIXTURES_MISSING,
  }, async () => {
    const text = fixture('flux-global-secret.yaml');
    const out = await render({
      'envs/dev/secret.yaml': text,
      'envs/dev/plain.yaml':
        'apiVersion: v1\nkind: Secret\nmetadata: {name: plain, namespace: shop}\nstringData: {a: b}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: empty, namespace: shop}\n',
      'envs/dev/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {who: "$' +
        '{cluster.name}"}\n',
    });
    const sops = out.objects.find((o) => o.metadata.name === 'global-age-secret')!;
    assert.deepEqual(sops, parse(text), 'the document as the file has it, key order included');
    assert.deepEqual(Object.keys(sops), Object.keys(parse(text)));
    const keys = parseAgeIdentities(fixture('flux-age-global.txt'), 'key');
    assert.equal(((await decryptSopsDocument(sops, keys)).stringData as { key: string }).key, 'global-value');
    assert.deepEqual(out.warnings, [
      'v1 Secret shop/plain: travels in clear through the hub, NATS and bundle files (not SOPS-encrypted); encrypt it with `flotilla secret encrypt`',
    ]);
    assert.equal(
      (out.objects.find((o) => o.kind === 'ConfigMap')!.data as { who: string }).who,
      'dev-1',
      'other files are substituted',
    );
  });

  it('kustomize: the document comes out as its file has it, with kustomize’s namespace and labels, and decrypts', async () => {
    const id = await generateAgeIdentity();
    const doc = await encryptSopsDocument(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db' },
        type: 'Opaque',
        stringData: { zeta: 'z-value', alpha: 'a-value' },
      },
      { recipients: [await ageRecipientOf(id)], encryptedRegex: KUBERNETES_ENCRYPTED_REGEX },
    );
    const out = await render({
      'envs/dev/kustomization.yaml':
        'resources: [secret.yaml]\nnamespace: shop\nlabels:\n  - pairs: {team: a}\n',
      'envs/dev/secret.yaml': stringify(doc, { lineWidth: 0 }),
    });
    assert.equal(out.renderer, 'kustomize');
    const [secret] = out.objects;
    assert.deepEqual(secret!.metadata, { name: 'db', namespace: 'shop', labels: { team: 'a' } });
    // Kustomize sorts keys (alpha before zeta); the MAC needs the file's order back.
    assert.deepEqual(Object.keys(secret!.stringData as object), ['zeta', 'alpha']);
    const clear = await decryptSopsDocument(secret!, [id]);
    assert.deepEqual(clear.stringData, { zeta: 'z-value', alpha: 'a-value' });
  });

  it('kustomize: a real sops file whose MAC covers its metadata is refused, naming the file, when kustomize changes that metadata', {
    skip: SOPS_FIXTURES_MISSING,
  }, async () => {
    await assert.rejects(
      render({
        'envs/dev/kustomization.yaml': 'resources: [secret.yaml]\nnamespace: shop\n',
        'envs/dev/secret.yaml': fixture('flux-global-secret.yaml'),
      }),
      (err: unknown) =>
        err instanceof RenderError &&
        /envs\/dev\/secret\.yaml: kustomize changed the metadata .* MAC covers every value/.test(err.message),
    );
  });

  it('a Helm chart holding SOPS-encrypted values is refused, naming the file', async () => {
    await assert.rejects(
      render({
        'envs/dev/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\n',
        'envs/dev/values.yaml': `password: ${'ENC[AES256_GCM,data:abc=,iv:def=,tag:ghi=,type:str]'}\n`,
        'envs/dev/templates/secret.yaml':
          'apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {p: {{ .Values.password }}}\n',
      }),
      (err: unknown) =>
        err instanceof RenderError &&
        /^envs\/dev\/values\.yaml: holds SOPS-encrypted values: a Helm chart cannot template them/.test(
          err.message,
        ),
    );
  });

  it('a SOPS document whose identity fields are encrypted is refused, naming the file', async () => {
    const id = await generateAgeIdentity();
    const all = await encryptSopsDocument(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'x', namespace: 'shop' },
        stringData: { a: 'b' },
      },
      { recipients: [await ageRecipientOf(id)] },
    );
    await assert.rejects(
      render({ 'envs/dev/secret.yaml': stringify(all, { lineWidth: 0 }) }),
      (err: unknown) =>
        err instanceof RenderError &&
        /envs\/dev\/secret\.yaml: document 0: SOPS document with apiVersion encrypted/.test(err.message),
    );
  });
});
