/**
 * Worker thread that owns a second connection to the store's SQLite file and
 * performs audit appends on it. `node:sqlite` is synchronous: a commit with
 * `synchronous=FULL` waits for fsync, and on the main thread that wait would
 * stall every request. Here it stalls only this thread; the main thread keeps
 * serving, and appends arriving meanwhile form the next batch.
 *
 * Protocol: in `{id, events}`; out `{id, records}` or `{id, error: {code, message}}`;
 * events and records travel as JSON text (cheaper than a structured clone).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AuditEvent } from '../audit/types.ts';
import { BastionError } from '../errors.ts';
import { appendAuditTx, openConnection } from './sqlite-audit.ts';
import { quietSqliteExperimentalWarning } from '../util/warnings.ts';

quietSqliteExperimentalWarning();
const port = parentPort;
if (!port) throw new Error('sqlite-audit-worker must run as a worker thread');
const db = openConnection((workerData as { file: string }).file);

port.on('message', (msg: { id: number; events: string } | { close: true }) => {
  if ('close' in msg) {
    db.close();
    port.close();
    return;
  }
  try {
    port.postMessage({ id: msg.id, records: JSON.stringify(appendAuditTx(db, JSON.parse(msg.events) as AuditEvent[])) });
  } catch (err) {
    const code = err instanceof BastionError ? err.code : err instanceof TypeError ? 'TypeError' : 'ERR_STORE';
    port.postMessage({ id: msg.id, error: { code, message: err instanceof Error ? err.message : 'append failed' } });
  }
});
