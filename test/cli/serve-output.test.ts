/**
 * `bastion serve` outlives the reader of its output. A gateway started with its
 * stdout and stderr on pipes (a supervisor, `| tee`, a log shipper) must keep
 * serving when the reader goes away: the next write fails with EPIPE, which
 * used to arrive as an unheard 'error' event on process.stdout and end the
 * process. The audit chain, not the console, is the record.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { ROOT } from '../helpers/gateway.ts';

test('serve keeps serving after the reader of its stdout and stderr closes the pipes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-epipe-'));
  writeFileSync(
    join(dir, 'bastion.yaml'),
    `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./bastion.db }
agents:
  demo:
    keys: [env:EPIPE_AGENT_KEY]
`,
  );
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'serve', '--config', 'bastion.yaml'], {
    cwd: dir,
    env: { ...process.env, EPIPE_AGENT_KEY: 'epipe-agent-key-0123456789abcdefghij', BASTION_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('serve did not start within 30 s')), 30_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const m = /serving MCP at (\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    // The reader goes away: both pipes' read ends close.
    child.stdout!.destroy();
    child.stderr!.destroy();
    // Requests that write access lines (stderr), and a reload that reports on stdout.
    for (let i = 0; i < 20; i++) {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(r.status, 401);
      await r.arrayBuffer();
    }
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    const health = await fetch(new URL('/healthz', url));
    assert.equal(health.status, 200, 'still serving');
    assert.equal(exit, undefined, 'still running');
    child.kill('SIGTERM');
    await exited;
    assert.deepEqual(exit, { code: 0, signal: null }, 'a clean shutdown despite the closed pipes');
  } finally {
    if (exit === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
