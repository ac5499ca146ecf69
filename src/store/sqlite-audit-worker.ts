/**
 * Worker thread that owns a second connection to the store's SQLite file and
 * performs audit appends on it. `node:sqlite` is synchronous: a commit with
 * `synchronous=FULL` waits for fsync, and on the main thread that wait would
 * stall every request. Here it stalls only this thread; the main thread keeps
 * serving, and appends arriving meanwhile form the next batch.
 *
 * Protocol (util/worker-client.ts): in `{id, rows}` (JSON text of
 * `{records, checkpoints}`, chained and signed by the audit module); out `{id}`
 * or `{id, error: {code, message}}`. Rows travel as JSON text (cheaper than a
 * structured clone).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AuditCheckpoint, AuditRecord } from '../audit/types.ts';
import { BastionError } from '../errors.ts';
import { appendAuditRowsTx, openConnection } from './sqlite-audit.ts';
import { quietSqliteExperimentalWarning } from '../util/warnings.ts';

quietSqliteExperimentalWarning();
const port = parentPort;
if (!port) throw new Error('sqlite-audit-worker must run as a worker thread');
const db = openConnection((workerData as { file: string }).file);

port.on('message', (msg: { id: number; rows: string } | { close: true }) => {
  if ('close' in msg) {
    db.close();
    port.close();
    return;
  }
  try {
    const { records, checkpoints } = JSON.parse(msg.rows) as { records: AuditRecord[]; checkpoints: AuditCheckpoint[] };
    appendAuditRowsTx(db, records, checkpoints);
    port.postMessage({ id: msg.id });
  } catch (err) {
    const code = err instanceof BastionError ? err.code : err instanceof TypeError ? 'TypeError' : 'ERR_STORE';
    port.postMessage({ id: msg.id, error: { code, message: err instanceof Error ? err.message : 'append failed' } });
  }
});
