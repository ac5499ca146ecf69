/**
 * Config reload of a real `bastion serve` child process (SIGHUP and `bastion reload`):
 * a changed tool policy takes effect for new sessions while a session in flight (with a
 * held call) finishes on the config it started with; an invalid file and a restart-only
 * change keep the running config, each logged and audited (`config.reload`); a successful
 * reload is audited with the file's digest and the generation number.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BAD_UPSTREAM_YAML, connect, tempDir, TEST_KEY } from '../helpers/gateway.ts';
import { CLI, runCli, startProcess, stopAll, type Started } from '../helpers/processes.ts';
import { pidFilePath, restartOnlyChanges } from '../../src/server/reload.ts';
import { loadConfig } from '../../src/config/load.ts';

const ADMIN_KEY = 'admin-key-0123456789abcdef-reload';
const ENV = { RELOAD_KEY: TEST_KEY, RELOAD_ADMIN: ADMIN_KEY };

function yaml(opts: { deny?: string[]; store?: string }): string {
  return `version: 1
server:
  listen: 127.0.0.1:0
  egress: false
store:
  sqlite: ${opts.store ?? './.bastion/bastion.db'}
agents:
  demo:
    keys: [env:RELOAD_KEY]
    tools: ["bad__*"]
    deny: ${JSON.stringify(opts.deny ?? [])}
    approve: ["bad__echo_any"]
approvals:
  timeoutMs: 60000
admin:
  keys: [env:RELOAD_ADMIN]
${BAD_UPSTREAM_YAML}`;
}

/** Waits (bounded) until a line of the process matches `re`, counting from line `from`. */
async function waitLine(p: Started, re: RegExp, from = 0): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const hit = p.lines.slice(from).find((l) => re.test(l));
    if (hit !== undefined) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no line matching ${re}:\n${p.lines.join('\n')}`);
}

function errorCode(result: unknown): string | undefined {
  return (result as { _meta?: Record<string, { code?: string }> })._meta?.['bastion/error']?.code;
}

describe('config reload of bastion serve', () => {
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  let served: Started;
  let url: URL;
  const clients: Client[] = [];

  before(async () => {
    writeFileSync(file, yaml({}));
    served = await startProcess([CLI, 'serve', '--config', file], ENV, /serving MCP at (\S+)/);
    url = new URL(served.match[1] as string);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await stopAll([served?.child]);
  });

  test('a new tool policy applies to new sessions; a session in flight finishes on its own config', async () => {
    const old = await connect(url, TEST_KEY);
    clients.push(old);
    assert.ok((await old.listTools()).tools.some((t) => t.name === 'bad__echo'));
    // A held call in flight across the reload.
    const held = old.callTool({ name: 'bad__echo_any', arguments: { text: 'held' } }, undefined, { timeout: 60_000 });
    const admin = { Authorization: `Bearer ${ADMIN_KEY}` };
    let id: string | undefined;
    for (let i = 0; i < 200 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const list = (await (await fetch(new URL('/api/approvals?status=pending', url), { headers: admin })).json()) as { approvals: { id: string; tool: string }[] };
      id = list.approvals.find((a) => a.tool === 'bad__echo_any')?.id;
    }
    assert.ok(id, 'the call is held');

    writeFileSync(file, yaml({ deny: ['bad__echo', 'bad__echo_any'] }));
    const mark = served.lines.length;
    served.child.kill('SIGHUP');
    await waitLine(served, /config reloaded from .*: generation 2/, mark);

    const fresh = await connect(url, TEST_KEY);
    clients.push(fresh);
    assert.ok(!(await fresh.listTools()).tools.some((t) => t.name === 'bad__echo'), 'denied for the new session');
    assert.equal(errorCode(await fresh.callTool({ name: 'bad__echo', arguments: { text: 'x' } })), 'ERR_POLICY_DENIED');
    // The old session still has its config: echo allowed, and the held call completes once approved.
    const r = await old.callTool({ name: 'bad__echo', arguments: { text: 'still' } });
    assert.equal(errorCode(r), undefined, JSON.stringify(r));
    const approve = await fetch(new URL(`/api/approvals/${id}/approve`, url), { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(approve.status, 200);
    const done = await held;
    assert.equal(errorCode(done), undefined, JSON.stringify(done));
  });

  test('an invalid file keeps the running config, logged on stderr', async () => {
    writeFileSync(file, 'version: 1\nagents:\n  demo:\n    toolz: []\n');
    const mark = served.lines.length;
    served.child.kill('SIGHUP');
    const line = await waitLine(served, /config reload failed/, mark);
    assert.match(line, /\(ERR_CONFIG_INVALID\).*toolz.*keeping generation 2/);
    const c = await connect(url, TEST_KEY);
    clients.push(c);
    assert.equal(errorCode(await c.callTool({ name: 'bad__echo', arguments: { text: 'x' } })), 'ERR_POLICY_DENIED', 'generation 2 still in force');
  });

  test('a restart-only field is refused by name (bastion reload, through the pid file)', async () => {
    assert.equal(readFileSync(pidFilePath(file), 'utf8').trim(), String(served.child.pid));
    writeFileSync(file, yaml({ deny: ['bad__echo'], store: './.bastion/other.db' }));
    const mark = served.lines.length;
    const r = await runCli(['reload', '--config', file], { env: ENV });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Sent SIGHUP/);
    const line = await waitLine(served, /config reload failed/, mark);
    assert.match(line, /store: changing it needs a restart/);
    // `bastion reload` refuses a file that does not load, without signalling.
    writeFileSync(file, 'version: 1\nnope: 1\n');
    const bad = await runCli(['reload', '--config', file], { env: ENV });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not asked to reload/);
  });

  test('every attempt is audited: digest and generation on success, the reason on failure', async () => {
    writeFileSync(file, yaml({ deny: ['bad__echo'] }));
    const digest = createHash('sha256').update(readFileSync(file)).digest('hex');
    const mark = served.lines.length;
    served.child.kill('SIGHUP');
    await waitLine(served, /config reloaded from .*: generation 3/, mark);
    await stopAll([served.child]);
    const tail = await runCli(['audit', 'tail', '-n', '50', '--json', '--config', file], { env: ENV });
    assert.equal(tail.code, 0, tail.stderr);
    const records = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { method: string; door: string; outcome: string; decision: { reason: string }; detail: Record<string, unknown> })
      .filter((r) => r.method === 'config.reload');
    assert.deepEqual(
      records.map((r) => [r.door, r.outcome, r.decision.reason, r.detail.generation]),
      [
        ['system', 'ok', 'system', 2],
        ['system', 'error', 'config.invalid', 2],
        ['system', 'error', 'config.restart_required', 2],
        ['system', 'ok', 'system', 3],
      ],
    );
    assert.equal(records.at(-1)?.detail.digest, digest);
    assert.equal(records[2]?.detail.code, 'ERR_CONFIG_INVALID');
  });
});

describe('restartOnlyChanges', () => {
  test('names each field that needs a restart, and nothing for policy changes', async () => {
    const dir = tempDir();
    const write = (name: string, text: string): string => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const load = async (text: string, name: string) => (await loadConfig(write(name, text), { env: ENV })).config;
    const base = await load(yaml({}), 'a.yaml');
    assert.deepEqual(restartOnlyChanges(base, await load(yaml({ deny: ['bad__echo'] }), 'b.yaml')), []);
    assert.deepEqual(restartOnlyChanges(base, await load(yaml({ store: './x.db' }), 'c.yaml')), ['store']);
    assert.deepEqual(restartOnlyChanges(base, await load(yaml({}).replace('127.0.0.1:0', '127.0.0.1:9'), 'd.yaml')), ['server.listen']);
    assert.deepEqual(restartOnlyChanges(base, await load(`${yaml({})}redis:\n  url: redis://127.0.0.1:6379\n`, 'e.yaml')), ['redis']);
  });
});
