// Audit witnesses (issue 11, class 4): checkpoints are also written outside the store, to an
// append-only file and/or a webhook; a witness failure is counted and reported, never blocks an append.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import type { AuditCheckpoint } from '../../src/audit/types.ts';
import { FileWitness, WebhookWitness, openWitness, readWitnessFile, witnessLine, type AuditWitness } from '../../src/audit/witness.ts';
import { isBastionError, type BastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const freshPath = (ext: string): string => join(tmp.dir, `w${n++}.${ext}`);

const cp = (seq: number): AuditCheckpoint => ({ seq, hash: 'ab'.repeat(32), time: '2026-01-01T00:00:00.000Z', keyId: 'k1', signature: 'sig' });

/** A webhook receiver on 127.0.0.1: records bodies, answers `status()` (or never, when it returns 0). */
async function receiver(status: () => number): Promise<{ url: string; bodies: unknown[]; server: Server }> {
  const bodies: unknown[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push({ method: req.method, type: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
      const code = status();
      if (code === 0) return; // never answers
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${port}/witness`, bodies, server };
}

test('FileWitness: appends one JSON line per checkpoint; reopening appends after what is there', async () => {
  const path = freshPath('log');
  const w = await FileWitness.open(path);
  await w.write([cp(1), cp(10)]);
  await w.close();
  const w2 = await FileWitness.open(path);
  assert.equal(await w2.lastSeq(), 10);
  await w2.write([cp(20)]);
  await w2.close();
  assert.equal(readFileSync(path, 'utf8'), `${witnessLine(cp(1))}\n${witnessLine(cp(10))}\n${witnessLine(cp(20))}\n`);
  assert.deepEqual((await readWitnessFile(path)).checkpoints, [cp(1), cp(10), cp(20)]);
});

test('FileWitness: a partial last line (a crash mid-write) is cut off on open, and skipped by the reader', async () => {
  const path = freshPath('log');
  writeFileSync(path, `${witnessLine(cp(1))}\n${witnessLine(cp(10)).slice(0, 30)}`);
  const torn = await readWitnessFile(path);
  assert.deepEqual(torn, { checkpoints: [cp(1)], tornTail: true });
  const w = await FileWitness.open(path);
  assert.equal(await w.lastSeq(), 1);
  await w.write([cp(10)]);
  await w.close();
  assert.deepEqual(await readWitnessFile(path), { checkpoints: [cp(1), cp(10)], tornTail: false });
});

test('readWitnessFile: a line that is not a checkpoint is ERR_AUDIT_WITNESS naming the line, never its content', async () => {
  const path = freshPath('log');
  writeFileSync(path, `${witnessLine(cp(1))}\n{"seq":"two","secret":"hunter2"}\n${witnessLine(cp(10))}\n`);
  await assert.rejects(readWitnessFile(path), (err: unknown) => {
    assert.ok(isBastionError(err, 'ERR_AUDIT_WITNESS'));
    assert.equal(err.detail?.['line'], 2);
    assert.match(err.message, /line 2/);
    assert.doesNotMatch(err.message, /hunter2/);
    return true;
  });
  for (const bad of ['[]', '{"seq":0,"hash":"' + 'ab'.repeat(32) + '","time":"t","keyId":"k","signature":"s"}', '{"seq":1,"hash":"XYZ","time":"t","keyId":"k","signature":"s"}']) {
    const p = freshPath('log');
    writeFileSync(p, `${bad}\n`);
    await assert.rejects(readWitnessFile(p), (err: unknown) => isBastionError(err, 'ERR_AUDIT_WITNESS'));
  }
  await assert.rejects(readWitnessFile(join(tmp.dir, 'missing.log')), (err: unknown) => isBastionError(err, 'ERR_AUDIT_WITNESS') && err.detail?.['reason'] === 'unreadable');
});

test('FileWitness.open on a path that cannot be opened is ERR_AUDIT_WITNESS', async () => {
  await assert.rejects(FileWitness.open(join(tmp.dir, 'no', 'such', 'dir', 'w.log')), (err: unknown) => isBastionError(err, 'ERR_AUDIT_WITNESS'));
});

test('AuditLog + file witness: the witness holds exactly the store\'s checkpoints, and verify --witness accepts it', async () => {
  const store = await openSqliteStore(':memory:');
  const path = freshPath('log');
  const log = await AuditLog.open(store, { checkpointEvery: 10, witness: await FileWitness.open(path) });
  for (let i = 1; i <= 35; i++) await log.append(sampleEvent(i));
  await log.close();
  const stored = await store.listCheckpoints();
  assert.deepEqual(stored.map((c) => c.seq), [1, 10, 20, 30, 35]);
  const { checkpoints } = await readWitnessFile(path);
  assert.deepEqual(checkpoints, stored);
  assert.deepEqual(await verifyAudit(store, { checkpointEvery: 10, witness: checkpoints }), { ok: true, count: 35, lastSeq: 35, checkpoints: 5 });
  await store.close();
});

test('AuditLog: a checkpoint the witness missed (a crash between the two writes) is resent when the log opens', async () => {
  const store = await openSqliteStore(':memory:');
  const path = freshPath('log');
  const log = await AuditLog.open(store, { checkpointEvery: 10, witness: await FileWitness.open(path) });
  for (let i = 1; i <= 20; i++) await log.append(sampleEvent(i));
  await log.flushWitness();
  // Lose the last witness line, as a crash before the witness write would.
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  writeFileSync(path, `${lines.slice(0, -1).join('\n')}\n`);
  const log2 = await AuditLog.open(store, { checkpointEvery: 10, witness: await FileWitness.open(path) });
  await log2.flushWitness();
  assert.deepEqual((await readWitnessFile(path)).checkpoints.map((c) => c.seq), [1, 10, 20]);
  await log2.close();
  await store.close();
});

test('AuditLog: a failing witness never fails or blocks an append; failures are counted, reported and retried', async () => {
  const store = await openSqliteStore(':memory:');
  let fail = true;
  const written: number[] = [];
  const witness: AuditWitness = {
    write: async (cps) => {
      if (fail) throw new Error('disk full');
      written.push(...cps.map((c) => c.seq));
    },
    close: async () => undefined,
  };
  const reports: [string, number][] = [];
  const log = await AuditLog.open(store, { checkpointEvery: 5, witness, onWitnessFailure: (err: BastionError, count) => reports.push([err.code, count]) });
  for (let i = 1; i <= 10; i++) await log.append(sampleEvent(i));
  await log.flushWitness();
  assert.equal((await store.lastAudit())?.seq, 10);
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 5, 10], 'the store has them all');
  assert.equal(log.witnessFailures, 3);
  assert.deepEqual(reports, [['ERR_AUDIT_WITNESS', 1], ['ERR_AUDIT_WITNESS', 2], ['ERR_AUDIT_WITNESS', 3]]);
  fail = false;
  for (let i = 11; i <= 15; i++) await log.append(sampleEvent(i));
  await log.flushWitness();
  assert.deepEqual(written, [1, 5, 10, 15], 'the missed checkpoints are sent with the next one');
  await log.close();
  await store.close();
});

test('WebhookWitness: POSTs {checkpoints} as JSON to a real server; an error status and a timeout are ERR_AUDIT_WITNESS', async () => {
  let status = 204;
  const r = await receiver(() => status);
  const w = new WebhookWitness({ url: r.url, timeoutMs: 300 });
  await w.write([cp(1), cp(10)]);
  assert.deepEqual(r.bodies, [{ method: 'POST', type: 'application/json', body: { checkpoints: [cp(1), cp(10)] } }]);
  status = 500;
  await assert.rejects(w.write([cp(20)]), (err: unknown) => isBastionError(err, 'ERR_AUDIT_WITNESS') && err.detail?.['reason'] === 'http_status');
  status = 0;
  await assert.rejects(w.write([cp(30)]), (err: unknown) => isBastionError(err, 'ERR_AUDIT_WITNESS') && err.detail?.['reason'] === 'timeout');
  assert.throws(() => new WebhookWitness({ url: 'ftp://127.0.0.1/' }), (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID'));
  assert.throws(() => new WebhookWitness({ url: 'http://user:pw@127.0.0.1/' }), (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && !err.message.includes('pw'));
});

test('AuditLog + webhook that never answers: appends are not held; the timeout is reported', async () => {
  const r = await receiver(() => 0);
  const store = await openSqliteStore(':memory:');
  const reports: string[] = [];
  const witness = await openWitness({ webhook: { url: r.url, timeoutMs: 200 } });
  assert.ok(witness);
  const log = await AuditLog.open(store, { checkpointEvery: 2, witness, onWitnessFailure: (err) => reports.push(String(err.detail?.['reason'])) });
  // Each append resolves once durable in the store, while the webhook hangs.
  for (let i = 1; i <= 4; i++) assert.equal((await log.append(sampleEvent(i))).seq, i);
  await log.flushWitness();
  assert.ok(reports.length >= 1 && reports.every((x) => x === 'timeout'), reports.join());
  await log.close();
  await store.close();
});

test('openWitness: none configured is undefined; file and webhook together write to both', async () => {
  assert.equal(await openWitness(undefined), undefined);
  assert.equal(await openWitness({}), undefined);
  const r = await receiver(() => 200);
  const path = freshPath('log');
  const both = await openWitness({ file: path, webhook: { url: r.url } });
  assert.ok(both);
  await both.write([cp(1)]);
  assert.equal(await both.lastSeq?.(), 1);
  await both.close();
  assert.equal(r.bodies.length, 1);
  assert.deepEqual((await readWitnessFile(path)).checkpoints, [cp(1)]);
});
