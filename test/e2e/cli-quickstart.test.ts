/**
 * The quickstart as a user meets it, with real processes: `bastion serve` on a
 * copy of examples/quickstart (port 0), the generated key printed once, an MCP
 * client through it, an approval decided by `bastion approvals` from another
 * process, a clean stop with a final checkpoint, `bastion audit verify`, a
 * restart that does not print the key again, and `bastion stdio`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ROOT, connect, tempDir } from '../helpers/gateway.ts';

const CLI = join(ROOT, 'src/cli/main.ts');

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Served {
  child: ChildProcess;
  url: URL;
  output: () => string;
  stop: () => Promise<number | null>;
}

/** Starts `bastion serve` and resolves once it prints its URL (and, on first start, the key). */
function serve(config: string, env: Record<string, string | undefined>): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config], { env: { ...process.env, ...env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr?.on('data', () => undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      out += `${line}\n`;
      const m = /serving MCP at (\S+)/.exec(line);
      if (m) {
        // The key block follows the URL line on first start; give it a moment to arrive.
        setTimeout(() => {
          clearTimeout(timer);
          resolve({
            child,
            url: new URL(m[1] as string),
            output: () => out,
            stop: () =>
              new Promise((res) => {
                child.once('exit', (code) => res(code));
                child.kill('SIGINT');
              }),
          });
        }, 200);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code}:\n${out}`));
    });
  });
}

describe('quickstart through the CLI', () => {
  let dir: string;
  let config: string;
  let key: string;

  before(() => {
    dir = tempDir();
    cpSync(join(ROOT, 'examples/quickstart/workspace'), join(dir, 'workspace'), { recursive: true });
    const yaml = readFileSync(join(ROOT, 'examples/quickstart/bastion.yaml'), 'utf8').replace('listen: 127.0.0.1:8790', 'listen: 127.0.0.1:0\n  egress: 127.0.0.1:0');
    config = join(dir, 'bastion.yaml');
    writeFileSync(config, yaml);
    writeFileSync(join(dir, 'workspace/move-me.txt'), 'move me\n');
  });

  test('config check accepts the quickstart config', () => {
    const r = cli(['config', 'check', '--config', config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ok: /);
  });

  test('first start generates the key, prints it once, and serves the filesystem tools', async () => {
    const s = await serve(config, { BASTION_DEMO_KEY: undefined });
    try {
      const m = /^\s+(bst_ak_[A-Za-z0-9_-]+)\s*$/m.exec(s.output());
      assert.ok(m, s.output());
      key = m[1] as string;
      assert.match(s.output(), /Authorization: Bearer/);
      const client = await connect(s.url, key);
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      assert.ok(names.includes('files__read_text_file'));
      assert.ok(!names.includes('files__write_file'));

      // A held call, decided from another process through the store.
      const held = client.callTool({ name: 'files__move_file', arguments: { source: join(dir, 'workspace/move-me.txt'), destination: join(dir, 'workspace/moved.txt') } });
      let id: string | undefined;
      for (let i = 0; i < 100 && !id; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const list = cli(['approvals', 'list', '--json', '--config', config]);
        assert.equal(list.status, 0, list.stderr);
        id = (JSON.parse(list.stdout) as { approvals: { id: string; tool: string }[] }).approvals.find((a) => a.tool === 'files__move_file')?.id;
      }
      assert.ok(id, 'the held call appears in approvals list');
      const human = cli(['approvals', 'list', '--config', config]);
      assert.match(human.stdout, /files__move_file/);
      const approve = cli(['approvals', 'approve', id, '--config', config]);
      assert.equal(approve.status, 0, approve.stderr);
      const result = await held;
      assert.equal((result as { isError?: boolean }).isError ?? false, false, JSON.stringify(result));
      assert.equal(readFileSync(join(dir, 'workspace/moved.txt'), 'utf8'), 'move me\n');
      // Deciding it again, or an unknown id, is exit 5.
      assert.equal(cli(['approvals', 'deny', id, '--config', config]).status, 5);
      assert.equal(cli(['approvals', 'approve', 'no-such-id', '--config', config]).status, 5);
      await client.close();
    } finally {
      assert.equal(await s.stop(), 0, 'SIGINT stops cleanly');
    }
  });

  test('audit verify passes after shutdown, with a checkpoint over the last record', () => {
    const r = cli(['audit', 'verify', '--config', config, '--json']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const v = JSON.parse(r.stdout) as { ok: boolean; count: number; lastSeq: number; checkpoints: number };
    assert.equal(v.ok, true);
    assert.ok(v.checkpoints >= 1);
    const tail = cli(['audit', 'tail', '-n', '3', '--json', '--config', config]);
    const last = tail.stdout.trim().split('\n').map((l) => JSON.parse(l) as { method: string; seq: number }).at(-1);
    assert.equal(last?.method, 'serve.stop');
    assert.equal(last?.seq, v.lastSeq);
    assert.ok(!tail.stdout.includes(key), 'the key is never in the audit log');
  });

  test('a restart does not print the key again, and the key still works', async () => {
    const s = await serve(config, { BASTION_DEMO_KEY: undefined });
    try {
      assert.ok(!s.output().includes(key), 'key printed again');
      assert.ok(!/bst_ak_/.test(s.output()));
      assert.match(s.output(), /using the key generated on first start/);
      const client = await connect(s.url, key);
      assert.ok((await client.listTools()).tools.length > 0);
      await client.close();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  test('bastion stdio serves the same tool door to a stdio client', async () => {
    const client = new Client({ name: 'stdio-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'stdio', '--agent', 'demo', '--config', config], stderr: 'ignore' }));
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('files__read_text_file'));
      assert.ok(!names.includes('files__edit_file'));
      const r = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(dir, 'workspace/.env') } });
      assert.equal((r as { _meta?: Record<string, { code: string }> })._meta?.['bastion/error']?.code, 'ERR_PATH_DENIED');
      const rel = await client.callTool({ name: 'files__read_text_file', arguments: { path: 'notes/hello.txt' } });
      assert.match(JSON.stringify(rel), /Hello|hello/, 'relative paths resolve in the workspace, as the server resolves them');
    } finally {
      await client.close();
    }
  });

  test('usage errors and version', () => {
    assert.equal(cli(['version']).status, 0);
    assert.match(cli(['version']).stdout, /^bastion \d+\.\d+\.\d+/);
    assert.equal(cli(['frobnicate']).status, 2);
    assert.equal(cli(['audit', 'frobnicate']).status, 2);
    assert.equal(cli(['stdio', '--config', config]).status, 2, '--agent is required');
    assert.equal(cli(['stdio', '--agent', 'nobody', '--config', config]).status, 3);
    assert.equal(cli(['serve', '--config', join(dir, 'missing.yaml')]).status, 3);
    for (const c of [['serve'], ['stdio'], ['config', 'check'], ['policy', 'explain'], ['approvals'], ['audit', 'verify'], ['audit', 'tail'], ['audit', 'key']]) {
      const r = cli([...c, '--help']);
      assert.equal(r.status, 0, `${c.join(' ')} --help`);
      assert.match(r.stdout, /Usage/, c.join(' '));
    }
  });

  after(() => undefined);
});
