/**
 * `bastion incident` on a SQLite store (in process, through the CLI's `main`):
 * help, usage and unknown-agent exits, isolate/list/restore with their audit
 * records, the snapshot file and its `.sha256`, and emergency rotation (marks,
 * the grace of old versions ended, one alert per secret).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { main } from '../../src/cli/main.ts';
import { incidentCommand } from '../../src/cli/commands/incident.ts';
import { verifySnapshot, type IncidentSnapshot } from '../../src/incidents/snapshot.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { sha256Hex } from '../../src/util/crypto.ts';
import { tempDir } from '../helpers/gateway.ts';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, runCli } from '../helpers/processes.ts';
import { loadConfig } from '../../src/config/load.ts';
import { allow } from '../../src/decision.ts';
import { Gateway } from '../../src/server/gateway.ts';

const KEY = 'incident-cli-key-0123456789abcdef';

describe('bastion incident', { timeout: 30_000 }, () => {
  let dir: string;
  let file: string;
  const env = { INC_KEY: KEY };

  before(async () => {
    dir = tempDir();
    file = join(dir, 'bastion.yaml');
    writeFileSync(
      file,
      `version: 1
store: { sqlite: ./bastion.db }
secrets:
  github: { hosts: [api.github.com] }
  absent: { hosts: [api.example.com] }
agents:
  demo:
    keys: [env:INC_KEY]
    secrets: [github, absent]
`,
    );
    // A gateway ran on this store once: the chain starts with a signed checkpoint, as in a deployment.
    const { config } = await loadConfig(file, { env, secrets: 'strict' });
    const { gateway } = await Gateway.open(config);
    await gateway.record({ time: new Date().toISOString(), door: 'tool', agent: 'demo', method: 'tools/list', decision: allow('policy.permit', 'test'), outcome: 'ok', durationMs: 1 });
    await gateway.close();
  });

  const run = async (argv: string[], opts: { alerts?: unknown[][] } = {}): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const io: CliIO = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, cwd: dir };
    const code =
      opts.alerts === undefined
        ? await main([...argv, '--config', file], io)
        : await incidentCommand({ alert: () => (...a) => void opts.alerts?.push(a) })([...argv.slice(1), '--config', file], io);
    return { code, stdout, stderr };
  };
  const withStore = async <T>(fn: (s: Store) => Promise<T>): Promise<T> => {
    const s = await openSqliteStore(join(dir, 'bastion.db'));
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  };

  test('--help, usage errors and an unknown agent', async () => {
    const help = await main(['incident', '--help'], { stdout: () => undefined, stderr: () => undefined, env, cwd: dir });
    assert.equal(help, EXIT.OK);
    assert.match((await run(['incident', 'isolate', '--help'])).stdout, /bastion incident isolate AGENT/);
    assert.equal((await run(['incident'])).code, EXIT.USAGE);
    assert.equal((await run(['incident', 'explode', 'demo'])).code, EXIT.USAGE);
    assert.equal((await run(['incident', 'isolate'])).code, EXIT.USAGE);
    assert.equal((await run(['incident', 'isolate', 'demo', '--reason', 'x'.repeat(501)])).code, EXIT.USAGE);
    assert.equal((await run(['incident', 'isolate', 'demo', '--out', 'x'])).code, EXIT.USAGE);
    const unknown = await run(['incident', 'isolate', 'nobody']);
    assert.equal(unknown.code, EXIT.CONFIG);
    assert.match(unknown.stderr, /no agent "nobody"/);
    const unknownRestore = await run(['incident', 'restore', 'nobody']);
    assert.equal(unknownRestore.code, EXIT.CONFIG);
    assert.match(unknownRestore.stderr, /nobody/);
  });

  test('isolate, list, restore; each audited on the admin door', async () => {
    const iso = await run(['incident', 'isolate', 'demo', '--reason', 'leaked key']);
    assert.equal(iso.code, EXIT.OK, iso.stderr);
    assert.match(iso.stdout, /^isolated demo/);
    assert.match((await run(['incident', 'isolate', 'demo'])).stdout, /^already isolated demo/);
    const list = await run(['incident', 'list', '--json']);
    const parsed = JSON.parse(list.stdout) as { isolations: { agent: string; reason: string; by: string }[] };
    assert.deepEqual(parsed.isolations.map((r) => [r.agent, r.reason]), [['demo', 'leaked key']]);
    assert.match(parsed.isolations[0]!.by, /^cli/);
    const restored = await run(['incident', 'restore', 'demo', '--reason', 'rotated']);
    assert.equal(restored.code, EXIT.OK, restored.stderr);
    const twice = await run(['incident', 'restore', 'demo']);
    assert.equal(twice.code, EXIT.NOT_FOUND);
    assert.match(twice.stderr, /ERR_AGENT_NOT_ISOLATED/);
    assert.match((await run(['incident', 'list'])).stdout, /demo {2}restored/);
    const recs = await withStore((s) => s.readAudit(1, 1000));
    assert.deepEqual(
      recs.filter((r) => r.door === 'admin' && r.method.startsWith('incident.')).map((r) => [r.method, r.target, (r.detail as { forAgent?: string }).forAgent]),
      [['incident.isolate', 'demo', 'demo'], ['incident.isolate', 'demo', 'demo'], ['incident.restore', 'demo', 'demo']],
    );
  });

  test('rotate: live secrets marked, the grace of old versions ended, one alert each; absent ones skipped', async () => {
    await withStore(async (s) => {
      await s.createSecret({ id: 'gh1', name: 'github', hosts: ['api.github.com'], header: null, format: null, createdAt: 1, sealed: '{}' });
      await s.rotateSecret('gh1', { version: 2, sealed: '{}', createdAt: 2 }, Date.now() + 3_600_000);
    });
    const alerts: unknown[][] = [];
    const r = await run(['incident', 'rotate', 'demo', '--reason', 'incident 7', '--json'], { alerts });
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      agent: 'demo',
      secrets: [
        { secret: 'absent', live: false, marked: false, graceEnded: 0 },
        { secret: 'github', live: true, marked: true, graceEnded: 1 },
      ],
    });
    assert.deepEqual(alerts.map((a) => [a[0], a[1], a[2]]), [['incident.rotate', 'critical', 'demo']]);
    const { marks, versions, recs } = await withStore(async (s) => ({ marks: await s.listRotationMarks(), versions: await s.listValidSecretVersions(Date.now()), recs: await s.readAudit(1, 1000) }));
    assert.deepEqual(marks.map((m) => [m.secret, m.agent, m.reason]), [['github', 'demo', 'incident 7']]);
    assert.deepEqual(versions.filter((v) => v.secretId === 'gh1').map((v) => v.version), [2], 'version 1 no longer valid');
    assert.ok(recs.some((x) => x.method === 'incident.rotate' && (x.detail as { secret?: string }).secret === 'github'));
    // The default alert of the CLI is a line on stderr.
    const plain = await run(['incident', 'rotate', 'demo']);
    assert.match(plain.stderr, /alert critical incident\.rotate demo/);
  });

  test('snapshot: one file, its SHA-256 printed and in FILE.sha256, owner-only, verifiable, no key value', async () => {
    const out = join(dir, 'snap.json');
    const r = await run(['incident', 'snapshot', 'demo', '--out', 'snap.json']);
    assert.equal(r.code, EXIT.OK, r.stderr);
    const text = readFileSync(out, 'utf8');
    const digest = sha256Hex(text);
    assert.equal(r.stdout, `${digest}  ${out}\n`);
    assert.equal(readFileSync(`${out}.sha256`, 'utf8'), `${digest}  snap.json\n`);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const bundle = JSON.parse(text) as IncidentSnapshot;
    assert.equal(bundle.agent, 'demo');
    assert.deepEqual(await verifySnapshot(bundle), { ok: true });
    assert.equal(bundle.isolations.length, 1);
    assert.deepEqual(bundle.rotationMarks.length, 1);
    assert.ok(!text.includes(KEY));
    assert.deepEqual(bundle.keys.configuredDigests, [sha256Hex(KEY)]);
    assert.equal((await run(['incident', 'snapshot', 'nobody'])).code, EXIT.CONFIG);
  });

  test('bastion stdio for the agent ends when it is isolated (store poll), and does not start while it is', async () => {
    const child = spawn(process.execPath, [CLI, 'stdio', '--agent', 'demo', '--config', file], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const exited = once(child, 'exit');
    // Ready once it answers an initialize.
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } })}\n`);
    await once(child.stdout, 'data');
    const t0 = performance.now();
    assert.equal((await run(['incident', 'isolate', 'demo', '--reason', 'stdio'])).code, EXIT.OK);
    const [code] = (await exited) as [number];
    assert.ok(performance.now() - t0 < 3_000);
    assert.equal(code, 0);
    assert.match(stderr, /was isolated \(ERR_AGENT_ISOLATED\)/);
    const again = await runCli(['stdio', '--agent', 'demo', '--config', file], { env });
    assert.equal(again.code, EXIT.FAILED);
    assert.match(again.stderr, /is isolated/);
    assert.equal((await run(['incident', 'restore', 'demo'])).code, EXIT.OK);
  });
});
