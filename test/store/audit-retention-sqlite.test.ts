// Audit retention on the SQLite store (file): the AuditPrunePort contract (./contracts/audit-retention.ts).
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../audit/fixtures.ts';
import { runAuditRetentionContract } from './contracts/audit-retention.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;

runAuditRetentionContract('sqlite (file)', async () => {
  const path = join(tmp.dir, `r${n++}`, 'bastion.db');
  const store = await openSqliteStore(path);
  const db = new DatabaseSync(path, { timeout: 5000 });
  return {
    store,
    raw: {
      async setJson(seq, json) {
        db.prepare('UPDATE audit SET json = ? WHERE seq = ?').run(json, seq);
      },
      async remove(seq) {
        db.prepare('DELETE FROM audit WHERE seq = ?').run(seq);
      },
      async close() {
        db.close();
      },
    },
  };
});
