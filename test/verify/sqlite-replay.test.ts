/**
 * Issue 11, class 7 (verifier side): replays do not come back after a restart.
 * `SqliteReplayStore` (and the `replayStorePath` option) keep nonces in a
 * SQLite file: a verifier process that accepted a request and stopped is
 * followed by one that refuses it (`replayed`); two verifier processes on the
 * same file accept each nonce exactly once between them; expired nonces are
 * pruned; a store that cannot answer refuses (fail closed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { before, describe, test } from 'node:test';
import { ReplayStoreError, SqliteReplayStore, verifyParts, VerifyError, type RequestParts } from '../../src/verify/index.ts';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { generateTestKey, NOW_MS, ORIGIN, signedRequest, type TestKey } from './helpers.ts';

let key: TestKey;
before(async () => {
  key = await generateTestKey();
});

/**
 * A verifier process: verifies each request with `{keys, origin, replayStorePath, now}`
 * (the options a tool server would write) and prints one result per request:
 * `ok` or the VerifyError code. With `startAt` (epoch ms) it waits until then.
 */
const VERIFIER = `
import { verifyParts, VerifyError } from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/verify/index.ts')).href)};
const input = JSON.parse(process.env.VERIFY_INPUT);
const opts = { keys: input.keys, origin: input.origin, replayStorePath: input.path, now: () => input.now };
if (input.startAt) await new Promise((r) => setTimeout(r, Math.max(0, input.startAt - Date.now())));
const out = [];
for (const r of input.requests) {
  try {
    await verifyParts({ ...r, body: Buffer.from(r.body, 'base64') }, opts);
    out.push('ok');
  } catch (err) {
    out.push(err instanceof VerifyError ? err.code : 'error:' + String(err));
  }
}
process.stdout.write(JSON.stringify(out));
`;

let script: string | undefined;
function verifierScript(): string {
  if (script === undefined) {
    script = join(tempDir(), 'verifier.mjs');
    writeFileSync(script, VERIFIER);
  }
  return script;
}

/** Runs one verifier process over `requests` with the replay file `path`; resolves with its results. */
function runVerifier(path: string, requests: readonly RequestParts[], startAt?: number): Promise<string[]> {
  const input = {
    keys: [key.jwk],
    origin: ORIGIN,
    path,
    now: NOW_MS,
    startAt,
    requests: requests.map((r) => ({ method: r.method, url: r.url, headers: r.headers, body: Buffer.from(r.body).toString('base64') })),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [verifierScript()], { env: { ...process.env, VERIFY_INPUT: JSON.stringify(input) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`verifier exited ${String(code)}: ${err}`));
      else resolve(JSON.parse(out) as string[]);
    });
  });
}

describe('a restart does not bring replays back', () => {
  test('verifier processes one after the other on the same replayStorePath: accepted, then replayed', async () => {
    const path = join(tempDir(), 'nonces.db');
    const req = await signedRequest(key);
    const other = await signedRequest(key);
    assert.deepEqual(await runVerifier(path, [req]), ['ok']);
    // A new process: nothing in memory, only the file. Before issue 11 this accepted the request again.
    assert.deepEqual(await runVerifier(path, [req, other]), ['replayed', 'ok']);
    assert.deepEqual(await runVerifier(path, [other]), ['replayed']);
  });

  test('SqliteReplayStore closed and reopened on the same file remembers the nonce; the file is owner-only', async () => {
    const path = join(tempDir(), 'nonces.db');
    const req = await signedRequest(key);
    const first = new SqliteReplayStore({ path });
    await verifyParts(req, { keys: [key.jwk], origin: ORIGIN, now: () => NOW_MS, replayStore: first });
    first.close();
    const second = new SqliteReplayStore({ path });
    try {
      await assert.rejects(verifyParts(req, { keys: [key.jwk], origin: ORIGIN, now: () => NOW_MS, replayStore: second }), (e) => e instanceof VerifyError && e.code === 'replayed');
    } finally {
      second.close();
    }
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });
});

describe('synchronous: normal', () => {
  test('still survives a close and reopen (a process restart); an unknown mode is a TypeError', async () => {
    const path = join(tempDir(), 'nonces.db');
    const first = new SqliteReplayStore({ path, synchronous: 'normal' });
    assert.equal(await first.remember('k:n', 60_000), true);
    first.close();
    const second = new SqliteReplayStore({ path, synchronous: 'normal' });
    try {
      assert.equal(await second.remember('k:n', 60_000), false);
    } finally {
      second.close();
    }
    assert.throws(() => new SqliteReplayStore({ path, synchronous: 'off' as 'normal' }), TypeError);
  });
});

describe('two verifier processes on one SQLite file', () => {
  test('racing on the same 150 requests, each is accepted by exactly one of them', async () => {
    const path = join(tempDir(), 'nonces.db');
    const requests = await Promise.all(Array.from({ length: 150 }, () => signedRequest(key)));
    const startAt = Date.now() + 1500;
    const [a, b] = await Promise.all([runVerifier(path, requests, startAt), runVerifier(path, requests, startAt)]);
    for (let i = 0; i < requests.length; i++) {
      assert.deepEqual([a[i], b[i]].sort(), ['ok', 'replayed'], `request ${i}: ${a[i]} / ${b[i]}`);
    }
  });
});

describe('expiry and pruning', () => {
  test('a nonce is refused until its ttl passes; expired rows are pruned on a timer and by prune()', async () => {
    let now = 1_000_000;
    const store = new SqliteReplayStore({ path: join(tempDir(), 'nonces.db'), now: () => now, pruneIntervalMs: 10_000 });
    try {
      assert.equal(await store.remember('k:1', 1000), true);
      now += 999;
      assert.equal(await store.remember('k:1', 1000), false);
      now += 1;
      // Expired: the record is replaced, the nonce counts as new (a signature that old is refused as expired anyway).
      assert.equal(await store.remember('k:1', 1000), true);
      for (let i = 0; i < 20; i++) assert.equal(await store.remember(`short:${i}`, 500), true);
      assert.equal(await store.remember('long', 60_000), true);
      assert.equal(store.size, 22);
      now += 1000;
      assert.equal(store.prune(), 21, 'k:1 and the 20 short ones');
      assert.equal(store.size, 1);
      for (let i = 0; i < 5; i++) assert.equal(await store.remember(`later:${i}`, 100), true);
      // No prune before pruneIntervalMs has passed since the last one…
      now += 200;
      await store.remember('tick:1', 60_000);
      assert.equal(store.size, 7);
      // …then the next remember prunes.
      now += 10_000;
      await store.remember('tick:2', 60_000);
      assert.equal(store.size, 3, 'long, tick:1, tick:2');
    } finally {
      store.close();
    }
  });
});

describe('failures are refusals', () => {
  test('a file that is not a database: ReplayStoreError at construction; a closed store: replay_store_unavailable (503)', async () => {
    const bad = join(tempDir(), 'not-a-db');
    writeFileSync(bad, 'this is not sqlite '.repeat(100));
    assert.throws(() => new SqliteReplayStore({ path: bad }), ReplayStoreError);
    assert.throws(() => new SqliteReplayStore({ path: join(tempDir(), 'missing-dir', 'x.db') }), ReplayStoreError);
    assert.throws(() => new SqliteReplayStore({ path: join(tempDir(), 'x.db'), table: 'x; DROP TABLE y' }), TypeError);
    const store = new SqliteReplayStore({ path: join(tempDir(), 'nonces.db') });
    store.close();
    await assert.rejects(verifyParts(await signedRequest(key), { keys: [key.jwk], origin: ORIGIN, now: () => NOW_MS, replayStore: store }), (e) => {
      assert.ok(e instanceof VerifyError);
      assert.equal(e.code, 'replay_store_unavailable');
      assert.equal(e.status, 503);
      return true;
    });
  });

  test('replayStorePath together with replayStore is a TypeError', async () => {
    const store = new SqliteReplayStore({ path: join(tempDir(), 'nonces.db') });
    try {
      await assert.rejects(verifyParts(await signedRequest(key), { keys: [key.jwk], origin: ORIGIN, replayStore: store, replayStorePath: join(tempDir(), 'other.db') }), TypeError);
    } finally {
      store.close();
    }
  });
});
