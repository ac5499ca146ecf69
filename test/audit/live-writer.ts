// Worker for append.test.ts: an audit log on its own connection appending batches until told to stop.
import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog } from '../../src/audit/log.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent } from './fixtures.ts';

const { path, every } = workerData as { path: string; every: number };
const store = await openSqliteStore(path, { auditWorker: false });
const log = await AuditLog.open(store, { checkpointEvery: every });
let stop = false;
let stopped: () => void = () => undefined;
const told = new Promise<void>((resolve) => (stopped = resolve));
parentPort?.once('message', () => {
  stop = true;
  stopped();
});
let i = 0;
parentPort?.postMessage('started');
// Bounded: on a loaded machine an unbounded writer outgrows the verifier (each pass reads the whole chain).
const MAX_RECORDS = 2100;
while (!stop && i < MAX_RECORDS) {
  await Promise.all(Array.from({ length: 7 }, () => log.append(sampleEvent(++i))));
  await new Promise((resolve) => setTimeout(resolve, 1));
}
await told;
await log.close();
await store.close();
parentPort?.postMessage(i);
