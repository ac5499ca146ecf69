// Audit retention on the PostgreSQL store, each store in its own schema: the AuditPrunePort contract
// (./contracts/audit-retention.ts). Needs the local PostgreSQL (test/helpers/postgres.ts starts it).
import { after } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { freshSchema } from '../helpers/postgres.ts';
import { runAuditRetentionContract } from './contracts/audit-retention.ts';

const drops: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(drops.map((d) => d()));
});

runAuditRetentionContract('postgres', async () => {
  const s = await freshSchema('retention');
  drops.push(s.drop);
  const store = await openPostgresStore(s.url, { poolMax: 2 });
  const client = new pg.Client({ connectionString: s.url });
  await client.connect();
  return {
    store,
    raw: {
      async setJson(seq, json) {
        await client.query('UPDATE audit SET json = $1 WHERE seq = $2', [json, seq]);
      },
      async remove(seq) {
        await client.query('DELETE FROM audit WHERE seq = $1', [seq]);
      },
      async close() {
        await client.end();
      },
    },
  };
});
