import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { connect, RetentionPolicy, StringCodec } from 'nats';
import { eventually } from './eventually.js';
import { startGitServer } from './git-server.js';
import { startNatsServer } from './nats.js';
import { startProcess } from './process.js';

/**
 * The live processes whose process group is `pgid` (zombies count as gone: they have
 * exited and only wait to be reaped), read from /proc.
 */
function processGroup(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // After "pid (comm) ": state, ppid, pgrp, …; comm may itself hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(entry));
  }
  return members.sort((a, b) => a - b);
}

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
    // A parent with three children: a plain one, a grandchild under a subshell, and one that ignores SIGTERM.
    const p = await startProcess(
      'bash',
      ['-c', 'sleep 300 & (sleep 301; true) & (trap "" TERM; sleep 302; true) & echo ready; wait'],
      { ready: /ready/ },
    );
    const group = p.pid!;
    const before = await eventually(() => {
      const members = processGroup(group);
      assert.ok(members.length >= 6, `the parent, two subshells and three sleeps, got ${members.join(' ')}`);
      return members;
    });
    await p.stop(1000);
    assert.equal(p.alive, false);
    await eventually(() => assert.deepEqual(processGroup(group), [], `left of ${before.join(' ')}`), {
      timeoutMs: 10_000,
      message: 'every process of the group is gone',
    });
  });
});
