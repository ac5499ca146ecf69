// Child process for recovery.test.ts: an audit log (instance `A`, file witness) that appends `count` records,
// waits for the witness, prints `ready <tip seq>`, then idles until the test kills it with SIGKILL (a crash:
// no close, no final checkpoint). Exits when its stdin closes, so a dying test leaves no process behind.
import { AuditLog } from '../../src/audit/log.ts';
import { FileWitness } from '../../src/audit/witness.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent } from './fixtures.ts';

const [path, witnessPath, count, every] = process.argv.slice(2) as [string, string, string, string];
const store = await openSqliteStore(path);
const log = await AuditLog.open(store, { checkpointEvery: Number(every), instance: 'A', witness: await FileWitness.open(witnessPath) });
let last = 0;
for (let i = 1; i <= Number(count); i++) last = (await log.append(sampleEvent(i))).seq;
await log.flushWitness();
process.stdout.write(`ready ${last}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
setInterval(() => undefined, 60_000);
