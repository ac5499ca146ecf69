/**
 * Slow request heads on the main listener (Bastion issue 14): with
 * `server.headersTimeoutMs` the connection is answered 408 and closed within a
 * second of the value (Node's connectionsCheckingInterval no longer doubles
 * it), and one audit record names the timeout; a connection that sent nothing
 * is closed without a record. Over raw sockets.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { isBastionError } from '../../src/errors.ts';
import { clientErrorOutcome, connectionsCheckingIntervalMs } from '../../src/server/http.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { TEST_KEY, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const TIMEOUT_MS = 1500;

/**
 * Connects to `port`, writes `bytes` (if any), and resolves when the server closes the
 * connection: what it answered and how long after connecting. Fails after `deadlineMs`.
 */
function slowClient(port: number, bytes: string, deadlineMs: number): Promise<{ answer: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = netConnect({ host: '127.0.0.1', port }, () => {
      if (bytes.length > 0) socket.write(bytes);
    });
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined);
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`not closed within ${deadlineMs} ms`));
    }, deadlineMs);
    socket.on('close', () => {
      clearTimeout(deadline);
      resolve({ answer, elapsedMs: performance.now() - started });
    });
  });
}

async function records(gw: TestGateway): Promise<AuditRecord[]> {
  await gw.gateway.audit.flush();
  return gw.gateway.store.readAudit(1, 100_000);
}

describe('server.headersTimeoutMs on the main listener', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:0
  headersTimeoutMs: ${TIMEOUT_MS}
store:
  sqlite: ./bastion.db
agents:
  a:
    keys: [env:T_KEY]
`,
      { T_KEY: TEST_KEY },
    );
  });
  after(async () => gw?.close());

  test('a head sent in part is answered 408 and closed between the value and the value + 2 s, with one audit record', async () => {
    const port = Number(gw.url.port);
    const before = (await records(gw)).length;
    // Generous bounds (a loaded machine): not before the value, well before twice Node's default check interval.
    const r = await slowClient(port, `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: appl`, TIMEOUT_MS + 2_000);
    assert.ok(r.elapsedMs >= TIMEOUT_MS - 20, `closed after ${Math.round(r.elapsedMs)} ms, before the timeout`);
    assert.match(r.answer, /^HTTP\/1\.1 408 /);
    assert.match(r.answer, /"code":"ERR_BODY_TIMEOUT"/);
    assert.match(r.answer, /"reason":"request.header_timeout"/);
    const added = (await records(gw)).slice(before);
    const timedOut = added.filter((x) => x.decision.reason === 'request.header_timeout');
    assert.equal(timedOut.length, 1, 'one record per timed-out connection');
    const rec = timedOut[0] as AuditRecord;
    assert.equal(rec.outcome, 'timeout');
    assert.equal(rec.decision.effect, 'deny');
    assert.equal(rec.decision.rule, 'server.headersTimeoutMs');
    assert.equal(rec.agent, null);
    assert.equal(rec.detail?.status, 408);
    assert.equal(rec.detail?.listener, 'main');
  });

  test('a connection that sends nothing at all is closed, without a record (it started no request)', async () => {
    const port = Number(gw.url.port);
    const before = (await records(gw)).length;
    const r = await slowClient(port, '', TIMEOUT_MS + 2_000);
    assert.ok(r.elapsedMs >= TIMEOUT_MS - 20);
    assert.equal((await records(gw)).length, before);
  });

});

test('Node checks timeouts often enough to enforce them within a second', () => {
  assert.equal(connectionsCheckingIntervalMs(30_000), 1_000);
  assert.equal(connectionsCheckingIntervalMs(1_500), 375);
  assert.equal(connectionsCheckingIntervalMs(100), 100);
  for (const t of [1, 50, 999, 4_000, 86_400_000]) assert.ok(connectionsCheckingIntervalMs(t) <= 1_000);
});

test('what the listener records for a connection error', () => {
  assert.equal(clientErrorOutcome('ECONNRESET', 120, false), undefined, 'a reset is a client going away');
  assert.equal(clientErrorOutcome('EPIPE', 0, false), undefined);
  assert.equal(clientErrorOutcome('ERR_HTTP_REQUEST_TIMEOUT', 0, false), undefined, 'nothing sent, nothing recorded');
  assert.equal(clientErrorOutcome('ERR_HTTP_REQUEST_TIMEOUT', 10, true), undefined, 'a request in flight records itself');
  assert.equal(clientErrorOutcome('ERR_HTTP_REQUEST_TIMEOUT', 10, false)?.reason, 'request.header_timeout');
  assert.equal(clientErrorOutcome('HPE_HEADER_OVERFLOW', 20_000, false)?.reason, 'request.header_too_large');
  assert.equal(clientErrorOutcome('HPE_INVALID_METHOD', 5, false)?.reason, 'request.malformed');
});

test('server.requestTimeoutMs must be 0 or at least server.headersTimeoutMs', async () => {
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, 'version: 1\nserver: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 }\nstore: { sqlite: ./b.db }\n');
  await assert.rejects(loadConfig(file, { env: {}, secrets: 'strict' }), (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && /requestTimeoutMs/.test((err as Error).message));
  writeFileSync(file, 'version: 1\nserver: { headersTimeoutMs: 5000, requestTimeoutMs: 0 }\nstore: { sqlite: ./b.db }\n');
  const { config } = await loadConfig(file, { env: {}, secrets: 'strict' });
  assert.equal(config.server.requestTimeoutMs, 0);
  assert.equal(config.server.headersTimeoutMs, 5000);
});
