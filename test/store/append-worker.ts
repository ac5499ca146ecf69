// Worker for sqlite.test.ts: appends batches to the store at workerData.path from its own connection.
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent } from '../audit/fixtures.ts';

const { path, id, batches } = workerData as { path: string; id: number; batches: number };
const store = await openSqliteStore(path);
let count = 0;
for (let i = 0; i < batches; i++) {
  const records = await store.appendAudit([sampleEvent(id * 10_000 + i), sampleEvent(id * 10_000 + i + 1), sampleEvent(id * 10_000 + i + 2)]);
  count += records.length;
  // Yield so the threads interleave.
  await new Promise((resolve) => setImmediate(resolve));
}
await store.close();
parentPort?.postMessage(count);
