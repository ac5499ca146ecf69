/**
 * `bastion detect secrets`, run as a real process with the input on stdin.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MAX_DETECT_INPUT_BYTES, maskSecret } from '../../src/cli/commands/detect.ts';
import { EXIT } from '../../src/cli/io.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

function run(args: string[], input: string | Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'detect', 'secrets', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => {}); // the child may stop reading early (input too large)
    child.stdin.end(input);
  });
}

// Assembled at run time so no credential-shaped literal sits in the repository.
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
let seed = 7;
const pick = (n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    s += ALNUM[seed % ALNUM.length];
  }
  return s;
};
const GH = ['gh', 'p_', pick(36)].join('');
const ANTHROPIC = ['sk-', 'ant-api03-', pick(93), 'AA'].join('');

describe('bastion detect secrets', () => {
  test('lists findings as line:col rule and a masked preview; exit 1', async () => {
    const r = await run([], `first line\nexport GITHUB_TOKEN=${GH}\n  key: ${ANTHROPIC}\n`);
    assert.equal(r.code, EXIT.FAILED, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`2:21 github-token ${maskSecret(GH)}`, `3:8 anthropic-api-key ${maskSecret(ANTHROPIC)}`]);
    assert.ok(!r.stdout.includes(GH) && !r.stdout.includes(ANTHROPIC.slice(10)), 'the secret is never printed');
    assert.equal(maskSecret(GH), 'ghp_…(40 chars)');
  });

  test('--json: rule, line, column, offsets and hosts, no value', async () => {
    const text = `x ${GH}\n`;
    const r = await run(['--json'], text);
    assert.equal(r.code, EXIT.FAILED);
    const out = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.equal(out.length, 1);
    assert.deepEqual(Object.keys(out[0] ?? {}).sort(), ['column', 'end', 'hosts', 'line', 'rule', 'start']);
    assert.equal(out[0]?.rule, 'github-token');
    assert.equal(out[0]?.line, 1);
    assert.equal(out[0]?.column, 3);
    assert.equal(text.slice(out[0]?.start as number, out[0]?.end as number), GH);
    assert.ok((out[0]?.hosts as string[]).includes('github.com'));
    assert.ok(!r.stdout.includes(GH));
  });

  test('nothing found: no output, exit 0 (and [] with --json)', async () => {
    const r = await run([], 'just some prose, a sha 3f2a9c1e and an id 42\n');
    assert.equal(r.code, EXIT.OK);
    assert.equal(r.stdout, '');
    const j = await run(['--json'], '');
    assert.equal(j.code, EXIT.OK);
    assert.equal(j.stdout.trim(), '[]');
  });

  test('an unknown flag or a positional argument is a usage error (exit 2)', async () => {
    const r = await run(['--nope'], 'x');
    assert.equal(r.code, EXIT.USAGE);
    assert.match(r.stderr, /--nope/);
    const p = await run(['file.txt'], 'x');
    assert.equal(p.code, EXIT.USAGE);
  });

  test('input over the limit is refused with exit 2 and a clear message', async () => {
    const r = await run([], Buffer.alloc(MAX_DETECT_INPUT_BYTES + 1, 0x61));
    assert.equal(r.code, EXIT.USAGE);
    assert.match(r.stderr, /larger than 64 MiB/);
    assert.equal(r.stdout, '');
  });

  test('--help prints usage, exit 0', async () => {
    const r = await run(['--help'], '');
    assert.equal(r.code, EXIT.OK);
    assert.match(r.stdout, /bastion detect secrets/);
  });
});
