// `store` in the config (sqlite or postgres, exactly one), openStore dispatching on it, and
// `bastion audit verify` on a PostgreSQL store, by --config (env: reference) and by --store URL.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { AuditLog } from '../../src/audit/log.ts';
import { auditVerify } from '../../src/cli/commands/audit.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { loadConfig } from '../../src/config/load.ts';
import { isBastionError } from '../../src/errors.ts';
import { openStore } from '../../src/store/open.ts';
import { sampleEvent, tempDir } from '../audit/fixtures.ts';
import { connect, startGateway, tempDir as gatewayDir, TEST_KEY } from '../helpers/gateway.ts';
import { freshSchema } from '../helpers/postgres.ts';
import { verifyAudit } from '../../src/audit/log.ts';

const tmp = tempDir();
const drops: (() => Promise<void>)[] = [];
after(async () => {
  tmp.cleanup();
  await Promise.all(drops.map((d) => d()));
});

let n = 0;
function configFile(store: string): string {
  const file = join(tmp.dir, `c${n++}.yaml`);
  writeFileSync(file, `version: 1\nstore:\n${store}\n`);
  return file;
}

function capture(env: Record<string, string | undefined>) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, cwd: tmp.dir };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

test('store takes exactly one of sqlite and postgres; postgres is a URL or a reference to one', async () => {
  const both = configFile('  sqlite: ./a.db\n  postgres: env:DB');
  await assert.rejects(loadConfig(both, { env: { DB: 'postgres://h/d' } }), (err) => isBastionError(err, 'ERR_CONFIG_INVALID') && /exactly one of sqlite and postgres/.test(err.message));
  const neither = configFile('  {}');
  await assert.rejects(loadConfig(neither, { env: {} }), (err) => isBastionError(err, 'ERR_CONFIG_INVALID'));
  const literalWrongScheme = configFile('  postgres: mysql://u:p@h/d');
  await assert.rejects(loadConfig(literalWrongScheme, { env: {} }), (err) => isBastionError(err, 'ERR_CONFIG_INVALID') && !err.message.includes('u:p@'));

  const ref = configFile('  postgres: env:BASTION_DATABASE_URL');
  const { config } = await loadConfig(ref, { env: { BASTION_DATABASE_URL: 'postgresql://u:secretpw@db.internal:5432/bastion' } });
  assert.equal(config.store.kind, 'postgres');
  assert.equal(config.storePath, undefined);
  assert.ok(config.store.kind === 'postgres' && config.store.url?.reveal() === 'postgresql://u:secretpw@db.internal:5432/bastion');
  assert.ok(!JSON.stringify(config.store).includes('secretpw'), 'the URL is a Secret');
  await assert.rejects(loadConfig(ref, { env: {} }), (err) => isBastionError(err, 'ERR_CONFIG_SECRET_REF'));
  await assert.rejects(loadConfig(ref, { env: { BASTION_DATABASE_URL: 'mysql://u:secretpw@h/d' } }), (err) => isBastionError(err, 'ERR_CONFIG_SECRET_REF') && !err.message.includes('secretpw'));
  // Lenient loading (CLI commands) keeps going; opening the store then names the reference.
  const lenient = await loadConfig(ref, { env: {}, secrets: 'lenient' });
  await assert.rejects(openStore(lenient.config.store), (err) => isBastionError(err, 'ERR_CONFIG_SECRET_REF') && err.message.includes('env:BASTION_DATABASE_URL'));

  const sqlite = configFile('  sqlite: ./state/b.db');
  const s = await loadConfig(sqlite, { env: {} });
  assert.deepEqual(s.config.store, { kind: 'sqlite', path: join(tmp.dir, 'state/b.db') });
  assert.equal(s.config.storePath, join(tmp.dir, 'state/b.db'));
  await (await openStore(s.config.store)).close();
});

test('bastion audit verify on a PostgreSQL store: by --config with an env: reference and by --store URL', async () => {
  const schema = await freshSchema('pgopen');
  drops.push(schema.drop);
  const env = { BASTION_DATABASE_URL: schema.url };
  const file = configFile('  postgres: env:BASTION_DATABASE_URL');
  const { config } = await loadConfig(file, { env });
  const store = await openStore(config.store);
  const log = await AuditLog.open(store, { checkpointEvery: 10 });
  for (let i = 1; i <= 25; i++) await log.append(sampleEvent(i));
  await log.close();
  await store.close();

  const byConfig = capture(env);
  assert.equal(await auditVerify(['--config', file, '--checkpoint-every', '10'], byConfig.io), EXIT.OK, byConfig.stderr());
  assert.equal(byConfig.stdout(), 'ok: 25 records, 4 checkpoints, chain intact\n');
  const byUrl = capture({});
  assert.equal(await auditVerify(['--store', schema.url, '--checkpoint-every', '10', '--json'], byUrl.io), EXIT.OK, byUrl.stderr());
  assert.deepEqual(JSON.parse(byUrl.stdout()), { ok: true, records: 25, checkpoints: 4, lastSeq: 25 });

  // Tampering with a stored record is found the same way as on SQLite.
  const c = new pg.Client({ connectionString: schema.url });
  await c.connect();
  assert.equal((await c.query(`UPDATE audit SET json = replace(json, '"n":7,', '"n":70,') WHERE seq = 7`)).rowCount, 1);
  await c.end();
  const broken = capture({});
  assert.equal(await auditVerify(['--store', `postgres:${schema.url}`, '--checkpoint-every', '10'], broken.io), EXIT.FAILED);

  // An unreachable database: the store exit code, and no password in what is printed.
  const down = capture({});
  assert.equal(await auditVerify(['--store', 'postgres://postgres:pw-not-printed@127.0.0.1:1/test'], down.io), EXIT.STORE);
  assert.ok(!down.stderr().includes('pw-not-printed'), down.stderr());
});

test('two gateways on one PostgreSQL store serve agents and write one verifiable audit chain', async () => {
  const schema = await freshSchema('pggw');
  drops.push(schema.drop);
  const yaml = `version: 1\nstore:\n  postgres: env:BASTION_DATABASE_URL\nagents:\n  demo:\n    keys: [env:AGENT_KEY]\n`;
  const env = { BASTION_DATABASE_URL: schema.url, AGENT_KEY: TEST_KEY };
  const gateways = [await startGateway(gatewayDir(), yaml, env), await startGateway(gatewayDir(), yaml, env)];
  try {
    await Promise.all(
      gateways.map(async (g) => {
        const client = await connect(g.url, TEST_KEY);
        for (let i = 0; i < 5; i++) await client.listTools();
        await client.close();
      }),
    );
  } finally {
    for (const g of gateways) await g.close();
  }
  const { config } = await loadConfig(configFile('  postgres: env:BASTION_DATABASE_URL'), { env });
  const store = await openStore(config.store);
  const result = await verifyAudit(store);
  await store.close();
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.ok(result.ok && result.count >= 10, `records: ${result.ok ? result.count : 0}`);
});
