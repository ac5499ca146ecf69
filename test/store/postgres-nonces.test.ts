// The nonce port's contract (test/store/contracts/nonces.ts) with kind 'store' on a PostgreSQL store
// (src/store/postgres-nonces.ts): a table in the store's database, two pools on one schema for the
// shared case. Also: the table is created once when instances open together; an unreachable database
// is ERR_STORE without the URL.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isBastionError } from '../../src/errors.ts';
import { openNonceStore } from '../../src/store/nonces.ts';
import { Secret } from '../../src/util/secret.ts';
import { freshSchema } from '../helpers/postgres.ts';
import { T0 } from './contracts/harness.ts';
import { runNonceStoreContract } from './contracts/nonces.ts';

const drops: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(drops.map((d) => d()));
});

async function schemaUrl(): Promise<string> {
  const s = await freshSchema('pgnonce');
  drops.push(s.drop);
  return s.url;
}

const open = (url: string, now: () => number) =>
  openNonceStore({ kind: 'store', store: { kind: 'postgres', url: new Secret(url), ref: 'store.postgres' }, namespace: 'a2a' }, { redisTimeoutMs: 1000, now });

runNonceStoreContract('store (PostgreSQL)', {
  open: async (now) => open(await schemaUrl(), now),
  openPair: async (now) => {
    const url = await schemaUrl();
    return [await open(url, now), await open(url, now)] as const;
  },
});

test('instances opening together create the nonce table once; the nonces survive a reopen', async () => {
  const url = await schemaUrl();
  const stores = await Promise.all(Array.from({ length: 4 }, () => open(url, () => T0)));
  assert.equal(await stores[0]!.remember('n', 60_000), true);
  for (const s of stores) await s.close();
  const again = await open(url, () => T0 + 1);
  assert.equal(await again.remember('n', 60_000), false, 'still a replay after a restart');
  await again.close();
});

test('an unreachable database is ERR_STORE, and the message holds no URL', async () => {
  const url = 'postgres://postgres:pw-not-for-logs@127.0.0.1:1/test';
  await assert.rejects(open(url, () => T0), (err) => isBastionError(err, 'ERR_STORE') && !err.message.includes('pw-not-for-logs'));
});

test('a PostgreSQL store whose reference did not resolve is ERR_CONFIG_SECRET_REF', async () => {
  await assert.rejects(
    openNonceStore({ kind: 'store', store: { kind: 'postgres', url: undefined, ref: 'env:BASTION_DATABASE_URL' }, namespace: 'a2a' }, { redisTimeoutMs: 1000 }),
    (err) => isBastionError(err, 'ERR_CONFIG_SECRET_REF'),
  );
});
