// schema/audit-record.schema.json (draft 2020-12) against real records: a real gateway run (tool calls
// allowed and refused, a failed authentication), then a retention prune (tombstones and the audit.pruned
// manifest), each row validated with ajv; and records with a wrong field fail.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { AuditLog } from '../../src/audit/log.ts';
import { pruneAudit } from '../../src/audit/prune.ts';
import { isTombstone, type AuditRow } from '../../src/audit/retention.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { connect, ROOT, startGateway, TEST_KEY, OTHER_KEY, tempDir, twoAgentsYaml } from '../helpers/gateway.ts';

const schema = JSON.parse(readFileSync(join(ROOT, 'schema/audit-record.schema.json'), 'utf8')) as object;

function validator(): (row: unknown) => boolean & { errors?: unknown } {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(schema) as unknown as (row: unknown) => boolean & { errors?: unknown };
}

test('records of a real gateway run, and what a prune leaves, validate; a wrong field fails', async () => {
  const dir = tempDir();
  const gw = await startGateway(dir, twoAgentsYaml(''), { T_KEY: TEST_KEY, O_KEY: OTHER_KEY });
  try {
    const a = await connect(gw.url, TEST_KEY);
    await a.callTool({ name: 'bad__echo', arguments: { text: 'hi' } });
    // Not in a's tools: refused.
    await a.callTool({ name: 'bad__fingerprint', arguments: { text: 'x' } }).catch(() => undefined);
    await a.close();
    // A failed authentication: an http.request record with agent null.
    const res = await fetch(gw.url, { method: 'POST', headers: { authorization: 'Bearer wrong-key-0123456789abcdef', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    assert.equal(res.status, 401);
    await res.body?.cancel();
  } finally {
    await gw.close();
  }
  const store = await openSqliteStore(join(dir, 'bastion.db'));
  try {
    const validate = validator();
    const records = (await store.readAudit(1, 10_000)) as AuditRow[];
    assert.ok(records.length >= 4, `a few records (${records.length})`);
    assert.ok(records.some((r) => !isTombstone(r) && r.decision.effect === 'deny'), 'a refusal');
    assert.ok(records.some((r) => !isTombstone(r) && r.agent === null), 'a failed authentication');
    for (const r of records) assert.ok(validate(r), `seq ${r.seq}: ${JSON.stringify((validate as { errors?: unknown }).errors)}`);

    // Wrong fields fail: an unknown outcome, a missing hash, a stray field, a bad hash, seq 0.
    const sample = records.find((r) => !isTombstone(r) && r.door === 'tool')!;
    for (const bad of [
      { ...sample, outcome: 'maybe' },
      { ...sample, hash: undefined },
      { ...sample, extra: 1 },
      { ...sample, prevHash: 'XYZ' },
      { ...sample, seq: 0 },
      { ...sample, decision: { effect: 'allow', reason: 'x' } },
      { ...sample, time: 'yesterday' },
    ]) {
      assert.equal(validate(JSON.parse(JSON.stringify(bad))), false, JSON.stringify(bad).slice(0, 80));
    }

    // Prune everything but system records a year from now: tombstones and a manifest, all valid.
    const log = await AuditLog.open(store, { checkpointEvery: 256 });
    let result;
    try {
      result = await pruneAudit(store, { policy: { allows: 3_600_000, denials: 3_600_000, errors: 3_600_000 }, sign: await log.checkpointSigner(), checkpointEvery: 256, now: new Date(Date.now() + 365 * 86_400_000) });
    } finally {
      await log.close();
    }
    assert.equal(result.changed, true);
    const after = (await store.readAudit(1, 10_000)) as AuditRow[];
    const manifest = after.find((r) => !isTombstone(r) && r.method === 'audit.pruned');
    assert.ok(manifest !== undefined);
    for (const r of after) assert.ok(validate(r), `seq ${r.seq} after prune: ${JSON.stringify((validate as { errors?: unknown }).errors)}`);
    const tomb = after.find(isTombstone);
    if (tomb !== undefined) assert.equal(validate({ ...tomb, tombstone: 'secrets' }), false);
    // A manifest without its required fields fails.
    assert.equal(validate({ ...manifest, detail: { through: 1 } }), false);
  } finally {
    await store.close();
  }
});
