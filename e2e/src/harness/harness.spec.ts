import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { connect, RetentionPolicy, StringCodec } from 'nats';
import { startGitServer } from './git-server.js';
import { startNatsServer } from './nats.js';
import { startProcess } from './process.js';

describe('e2e harness', () => {
  test('a real nats-server with JetStream: publish, then read the latest message per subject back', async (t) => {
    const server = await startNatsServer();
    t.after(() => server.stop());
    const nc = await connect({ servers: server.url });
    t.after(() => nc.close());
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: 'T',
      subjects: ['t.>'],
      max_msgs_per_subject: 1,
      allow_direct: true,
      retention: RetentionPolicy.Limits,
    });
    const js = nc.jetstream();
    const sc = StringCodec();
    await js.publish('t.a', sc.encode('one'));
    await js.publish('t.a', sc.encode('two'));
    const msg = await jsm.streams.getMessage('T', { last_by_subj: 't.a' });
    assert.equal(sc.decode(msg.data), 'two');
    const info = await jsm.streams.info('T');
    assert.equal(info.state.messages, 1, 'only the latest message per subject is kept');
  });

  test('git over smart HTTP with auth: isomorphic-git clones what the git CLI pushed', async (t) => {
    const server = await startGitServer({ auth: { username: 'flotilla', password: 's3cret' } });
    t.after(() => server.stop());
    await server.createRepo('fleet', { 'flotilla.yaml': 'environments: []\n' });
    const work = await server.clone('fleet');
    const head = await work.commit({ 'environments/dev/cm.yaml': 'kind: ConfigMap\n' }, 'add dev');

    const dir = mkdtempSync(join(tmpdir(), 'flotilla-clone-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await assert.rejects(git.clone({ fs, http, dir, url: `${server.url}/fleet.git` }), /401|HttpError/);
    await git.clone({
      fs,
      http,
      dir,
      url: `${server.url}/fleet.git`,
      onAuth: () => ({ username: 'flotilla', password: 's3cret' }),
      singleBranch: true,
      depth: 1,
    });
    assert.equal(await git.resolveRef({ fs, dir, ref: 'HEAD' }), head);
    assert.equal(readFileSync(join(dir, 'environments/dev/cm.yaml'), 'utf8'), 'kind: ConfigMap\n');
  });

  test('a started process is stopped with its whole process group', async () => {
    const p = await startProcess('bash', ['-c', 'sleep 300 & echo ready; wait'], { ready: /ready/ });
    await p.stop(2000);
    assert.equal(p.alive, false);
  });
});
