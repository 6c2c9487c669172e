import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appFiles } from '../fleet/demo-repo.js';
import { type Fleet, startFleet } from '../fleet/fleet.js';

const SECRET = 'e2e-webhook-secret-5b1f';

/**
 * Git host webhooks against a real hub started with --webhook-secret-file: polling is an hour,
 * so only an accepted webhook makes the hub fetch the commit the cluster then runs.
 */
describe('webhooks from git hosts are verified against the hub’s secret', { timeout: 600_000 }, () => {
  let fleet: Fleet;
  const secretFile = join(process.env.TMPDIR ?? '/tmp', `flotilla-webhook-secret-${process.pid}`);

  before(async () => {
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    fleet = await startFleet({
      repoFiles: {
        'flotilla.yaml': 'environments:\n  - {name: dev, path: environments/dev}\n',
        ...appFiles('dev'),
      },
      clusters: [{ name: 'dev-1', environment: 'dev' }],
      poll: '1h',
      hubArgs: ['--webhook-secret-file', secretFile],
    });
    await fleet.waitSynced();
  });
  after(() => fleet?.stop());

  const deliver = (body: string, headers: Record<string, string>) =>
    fetch(`${fleet.hub.http}/api/v1/webhooks/git`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', ...headers },
      body,
    });

  test('a forged GitHub webhook is refused (401, audited); a GitHub-signed one is accepted and the cluster follows', async () => {
    const rev = await fleet.work.commit(appFiles('dev', { replicas: 4 }), 'dev: 4 replicas');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: rev });
    const forged = await deliver(body, {
      'x-hub-signature-256': `sha256=${createHmac('sha256', 'a-guess').update(body).digest('hex')}`,
    });
    assert.equal(forged.status, 401, await forged.clone().text());
    const unsigned = await deliver(body, {});
    assert.equal(unsigned.status, 401);
    const refused = (
      await fleet.flotillaJson<{ audit: { action: string; outcome: string; detail: string }[] }>('audit')
    ).audit.filter((e) => e.action === 'webhook.refused');
    assert.deepEqual(
      refused.map((e) => e.detail),
      [
        'unsigned: no X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token header',
        'github: X-Hub-Signature-256 does not match the body',
      ],
    );
    const before = (await fleet.fleetStatus()).find((r) => r.name === 'dev-1')!;
    assert.notEqual(before.revision, rev, 'the refused calls made the hub fetch nothing');
    const signed = await deliver(body, {
      'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
    });
    assert.equal(signed.status, 202, await signed.clone().text());
    await fleet.waitSynced(['dev-1'], { revision: { 'dev-1': rev }, timeoutMs: 60_000 });
  });
});
