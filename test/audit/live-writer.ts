// Worker for append.test.ts: an audit log on its own connection appending batches until told to stop.
import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog } from '../../src/audit/log.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent } from './fixtures.ts';

const { path, every } = workerData as { path: string; every: number };
const store = await openSqliteStore(path, { auditWorker: false });
const log = await AuditLog.open(store, { checkpointEvery: every });
let stop = false;
parentPort?.once('message', () => {
  stop = true;
});
let i = 0;
parentPort?.postMessage('started');
while (!stop) {
  await Promise.all(Array.from({ length: 7 }, () => log.append(sampleEvent(++i))));
  await new Promise((resolve) => setImmediate(resolve));
}
await log.close();
await store.close();
parentPort?.postMessage(i);
