/**
 * WorkerClient (src/util/worker-client.ts): replies reach their request, error
 * replies and a dead worker reject (every pending request, so a caller that
 * fails closed stays closed), the next request starts a new worker, and an
 * idle worker never keeps the process alive.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WorkerClient } from '../../src/util/worker-client.ts';

const url = new URL('../fixtures/echo-worker.ts', import.meta.url);
const client = (): WorkerClient =>
  new WorkerClient({
    url,
    replyError: (e) => Object.assign(new Error(e.message), { code: e.code }),
    stopped: (cause) => Object.assign(new Error('stopped'), { code: 'E_STOPPED', cause }),
  });

test('WorkerClient: each reply resolves its own request, in any order; error replies map through replyError', async () => {
  const c = client();
  try {
    const slow = c.request({ op: 'slow', value: 'first' });
    const fast = c.request({ op: 'echo', value: { n: 2 } });
    assert.deepEqual(await fast, { n: 2 });
    assert.equal(await slow, 'first');
    await assert.rejects(c.request({ op: 'fail' }), { code: 'E_TEST', message: 'failed as asked' });
    await assert.rejects(c.request({ op: 'echo', value: () => 1 }), TypeError, 'an uncloneable message is a TypeError, not a hang');
    assert.equal(await c.request({ op: 'echo', value: 3 }), 3, 'still serving after both');
  } finally {
    await c.close();
  }
});

test('WorkerClient: a worker that dies rejects every pending request with the stopped error; the next request starts a new worker', async () => {
  const c = client();
  try {
    const hung = c.request({ op: 'hang' });
    const dying = c.request({ op: 'die' });
    await assert.rejects(dying, { code: 'E_STOPPED' });
    await assert.rejects(hung, { code: 'E_STOPPED' }, 'a request the dead worker never answered');
    assert.equal(await c.request({ op: 'echo', value: 'again' }), 'again');
  } finally {
    await c.close();
  }
});

test('WorkerClient: close waits for pending replies; close after the worker died returns', async () => {
  const c = client();
  const slow = c.request({ op: 'slow', value: 'kept' });
  await c.close();
  assert.equal(await slow, 'kept');
  await c.close();
  const d = client();
  await assert.rejects(d.request({ op: 'die' }), { code: 'E_STOPPED' });
  await d.close();
});

test('WorkerClient: an idle worker does not keep the process alive; a pending request does', () => {
  const mod = new URL('../../src/util/worker-client.ts', import.meta.url).href;
  const script = (op: string): string =>
    `import { WorkerClient } from ${JSON.stringify(mod)};
     const c = new WorkerClient({ url: new URL(${JSON.stringify(url.href)}), replyError: (e) => new Error(e.message), stopped: () => new Error('stopped') });
     c.request({ op: ${JSON.stringify(op)}, value: 1 }).then((v) => console.log('reply', v));`;
  const dir = mkdtempSync(join(tmpdir(), 'bastion-worker-'));
  try {
    const run = (op: string, timeout: number): SpawnSyncReturns<string> => {
      const file = join(dir, `${op}.mjs`);
      writeFileSync(file, script(op));
      return spawnSync(process.execPath, [file], { encoding: 'utf8', timeout });
    };
    const idle = run('slow', 20_000);
    assert.equal(idle.status, 0, idle.stderr);
    assert.match(idle.stdout, /reply 1/, 'the pending request kept the process alive until its reply, then the idle worker let it exit');
    const hang = run('hang', 3_000);
    assert.equal(hang.signal, 'SIGTERM', 'a request never answered keeps the process alive (it is pending, not idle)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
