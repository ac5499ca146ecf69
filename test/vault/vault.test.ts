import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { hmacSha256, randomKeyBytes } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';
import { openSecret, type SealedSecret } from '../../src/vault/envelope.ts';
import { kekFromBytes, type Kek } from '../../src/vault/kek.ts';
import { derivePlaceholder, isPlaceholder } from '../../src/vault/placeholder.ts';
import { AGENT_KEY_LABEL, PLACEHOLDER_ROOT_ITEM, Vault } from '../../src/vault/vault.ts';
import { tempDir } from '../audit/fixtures.ts';

const tmp = tempDir('bastion-vault-');
after(tmp.cleanup);
let n = 0;
const freshPath = (): string => join(tmp.dir, `v${n++}`, 'bastion.db');

const T0 = 1_767_225_600_000;
const GRACE = 60_000;
const VALUE = 'ghp_CLEARVALUE_0123456789abcdefXYZ';
const META = { hosts: ['api.github.com'], header: 'Authorization', format: 'Bearer {}' };

function newKek(): Kek {
  return kekFromBytes(randomKeyBytes(32));
}

/** A settable clock. */
function clock(start = T0): { now: () => number; set: (t: number) => void; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, set: (x) => void (t = x), advance: (ms) => void (t += ms) };
}

async function fixture(path = ':memory:', kek = newKek(), c = clock()) {
  const store = await openSqliteStore(path);
  const vault = await Vault.open(store, kek, { rotationGraceMs: GRACE, now: c.now });
  return { store, vault, kek, clock: c, path };
}

describe('Vault', () => {
  test('current(name): the newest version, seen across rotation and revocation, also from another connection', async () => {
    const { store, vault, kek, path } = await fixture(freshPath());
    assert.equal(await vault.current('github'), undefined);
    await vault.add('github', new Secret(VALUE), META);
    const first = await vault.current('github');
    assert.deepEqual([first?.secret.name, first?.version, first?.value.reveal()], ['github', 1, VALUE]);
    // Another process (the CLI) rotates: the generation changes and current follows.
    const otherStore = await openSqliteStore(path);
    const other = await Vault.open(otherStore, kek, { rotationGraceMs: GRACE });
    await other.rotate('github', new Secret(`${VALUE}-2`));
    const second = await vault.current('github');
    assert.deepEqual([second?.version, second?.value.reveal()], [2, `${VALUE}-2`]);
    await other.revoke('github');
    assert.equal(await vault.current('github'), undefined);
    await assert.rejects(vault.current('bad name'), RangeError);
    await otherStore.close();
    await store.close();
  });

  test('add returns metadata without the value; list shows live secrets only', async () => {
    const { store, vault, clock: c } = await fixture();
    const info = await vault.add('github', new Secret(VALUE), { hosts: ['API.GitHub.com', '*.slack.com', 'api.github.com.'], header: 'Authorization', format: 'Bearer {}' });
    assert.deepEqual({ ...info, id: undefined }, {
      id: undefined, name: 'github', hosts: ['api.github.com', '*.slack.com'], header: 'Authorization', format: 'Bearer {}',
      version: 1, createdAt: T0, rotatedAt: null, lastUsedAt: null,
    });
    c.advance(5);
    await vault.add('slack', new Secret('xoxb-1'), { hosts: ['*.slack.com'] });
    const listed = await vault.list();
    assert.deepEqual(listed.map((s) => [s.name, s.version, s.header, s.format]), [['github', 1, 'Authorization', 'Bearer {}'], ['slack', 1, undefined, undefined]]);
    assert.ok(!JSON.stringify(listed).includes(VALUE));
    await vault.revoke('slack');
    assert.deepEqual((await vault.list()).map((s) => s.name), ['github']);
    await store.close();
  });

  test('a duplicate live name is ERR_VAULT_SECRET_EXISTS; unknown names are ERR_VAULT_SECRET_UNKNOWN everywhere', async () => {
    const { store, vault } = await fixture();
    await vault.add('github', new Secret(VALUE), META);
    await assert.rejects(vault.add('github', new Secret('other'), META), (err) => isBastionError(err, 'ERR_VAULT_SECRET_EXISTS'));
    for (const call of [
      () => vault.rotate('nope', new Secret('x')),
      () => vault.revoke('nope'),
      () => vault.placeholder('nope', 'agent'),
      () => vault.info('nope'),
    ]) {
      await assert.rejects(call(), (err) => isBastionError(err, 'ERR_VAULT_SECRET_UNKNOWN'));
    }
    await vault.revoke('github');
    await assert.rejects(vault.revoke('github'), (err) => isBastionError(err, 'ERR_VAULT_SECRET_UNKNOWN'));
    await assert.rejects(vault.placeholder('github', 'agent'), (err) => isBastionError(err, 'ERR_VAULT_SECRET_UNKNOWN'));
    await store.close();
  });

  test('input errors name the field and never echo the value', async () => {
    const { store, vault } = await fixture();
    const bad: [string, Secret, Parameters<Vault['add']>[2], RegExp][] = [
      ['ok', new Secret(''), META, /value must not be empty/],
      ['ok', new Secret(`${VALUE}\n`), META, /CR, LF or NUL/],
      ['ok', new Secret(`${VALUE}\0`), META, /CR, LF or NUL/],
      ['ok', new Secret(VALUE.repeat(3000)), META, /at most 65536 bytes/],
      ['ok', new Secret(`${VALUE}\ud800`), META, /well-formed/],
      ['bad name', new Secret(VALUE), META, /secret name/],
      ['ok', new Secret(VALUE), { hosts: [] }, /hosts must name at least one host/],
      ['ok', new Secret(VALUE), { hosts: ['http://x.example/'] }, /hosts: .* must be a host name/],
      ['ok', new Secret(VALUE), { hosts: ['x.example'], header: 'Bad Header' }, /header must be an HTTP header name/],
      ['ok', new Secret(VALUE), { hosts: ['x.example'], header: 'X-Key', format: 'no placeholder' }, /exactly one \{\}/],
      ['ok', new Secret(VALUE), { hosts: ['x.example'], header: 'X-Key', format: '{} and {}' }, /exactly one \{\}/],
      ['ok', new Secret(VALUE), { hosts: ['x.example'], header: 'X-Key', format: 'a\r\n{}' }, /CR, LF or NUL/],
      ['ok', new Secret(VALUE), { hosts: ['x.example'], format: 'Bearer {}' }, /format needs a header/],
    ];
    for (const [name, value, meta, message] of bad) {
      await assert.rejects(vault.add(name, value, meta), (err) => err instanceof RangeError && message.test(err.message) && !err.message.includes(VALUE));
    }
    await assert.rejects(vault.add('ok', VALUE as unknown as Secret, META), TypeError);
    assert.deepEqual(await vault.list(), [], 'nothing stored');
    await vault.add('ok', new Secret(VALUE), META);
    await assert.rejects(vault.rotate('ok', new Secret('')), RangeError);
    assert.equal((await vault.info('ok')).version, 1);
    await store.close();
  });

  test('placeholders: well-formed, derived as documented, different per agent, resolvable only by their agent', async () => {
    const { store, vault, kek } = await fixture();
    const info = await vault.add('github', new Secret(VALUE), META);
    const a = await vault.placeholder('github', 'alice');
    const b = await vault.placeholder('github', 'bob');
    assert.ok(isPlaceholder(a) && isPlaceholder(b));
    assert.notEqual(a, b);
    assert.equal(await vault.placeholder('github', 'alice'), a, 'stable');

    // The documented derivation: HMAC(rootKey, label + agent) as the placeholder key.
    const item = await store.getVaultItem(PLACEHOLDER_ROOT_ITEM);
    const root = Buffer.from(openSecret(kek, { id: `vault-item:${PLACEHOLDER_ROOT_ITEM}`, version: 1 }, JSON.parse(item!) as SealedSecret).reveal(), 'base64url');
    assert.equal(root.length, 32);
    assert.equal(derivePlaceholder(hmacSha256(root, `${AGENT_KEY_LABEL}alice`), { secretId: info.id, version: 1 }), a);

    const got = await vault.resolve('alice', a);
    assert.equal(got?.value.reveal(), VALUE);
    assert.equal(got?.version, 1);
    assert.equal(got?.secret.name, 'github');
    assert.equal(`${got?.value}`, '[redacted]');
    assert.equal(await vault.resolve('bob', a), undefined, "another agent's placeholder");
    assert.equal(await vault.resolve('alice', b), undefined);
    assert.equal(await vault.resolve('', a), undefined);
    assert.equal(await vault.resolve('alice', `${a} `), undefined, 'not exactly a placeholder');
    await store.close();
  });

  test('forged placeholders never resolve (property)', async () => {
    const { store, vault } = await fixture();
    await vault.add('github', new Secret(VALUE), META);
    const real = await vault.placeholder('github', 'alice');
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^bst_ph_[a-z2-7]{32}$/), async (forged) => {
        fc.pre(forged !== real);
        assert.equal(await vault.resolve('alice', forged), undefined);
      }),
      { numRuns: 200 },
    );
    await store.close();
  });

  test('placeholders are stable across reopen and the value resolves after reopen', async () => {
    const kek = newKek();
    const path = freshPath();
    const first = await fixture(path, kek);
    await first.vault.add('github', new Secret(VALUE), META);
    const ph = await first.vault.placeholder('github', 'alice');
    await first.store.close();
    const second = await fixture(path, kek);
    assert.equal(await second.vault.placeholder('github', 'alice'), ph);
    assert.equal((await second.vault.resolve('alice', ph))?.value.reveal(), VALUE);
    await second.store.close();
  });

  test('placeholders differ per installation: the same secret id and version in another store derives another placeholder', async () => {
    const kek = newKek();
    const a = await fixture(freshPath(), kek);
    const b = await fixture(freshPath(), kek);
    await a.vault.add('github', new Secret(VALUE), META);
    const phA = await a.vault.placeholder('github', 'alice');
    await a.store.close();
    await b.store.close();
    // Copy the secret rows (not the root key) into b.
    const db = new DatabaseSync(b.path);
    db.exec(`ATTACH DATABASE '${a.path.replaceAll("'", "''")}' AS a`);
    db.exec('INSERT INTO secrets SELECT * FROM a.secrets; INSERT INTO secret_versions SELECT * FROM a.secret_versions; UPDATE vault_generation SET generation = generation + 1');
    db.exec('DETACH DATABASE a');
    db.close();
    const b2 = await fixture(b.path, kek);
    const a2 = await fixture(a.path, kek);
    assert.equal((await b2.vault.info('github')).id, (await a2.vault.info('github')).id, 'same id and version');
    await a2.store.close();
    const phB = await b2.vault.placeholder('github', 'alice');
    assert.notEqual(phB, phA);
    assert.equal(await b2.vault.resolve('alice', phA), undefined, "the other installation's placeholder means nothing here");
    assert.equal((await b2.vault.resolve('alice', phB))?.value.reveal(), VALUE);
    await b2.store.close();
  });

  test('rotate: new placeholder; the old one resolves to the old value within the grace, not after', async () => {
    const { store, vault, clock: c } = await fixture();
    await vault.add('github', new Secret(VALUE), META);
    const old = await vault.placeholder('github', 'alice');
    c.advance(1000);
    const rotated = await vault.rotate('github', new Secret('new-value'));
    assert.equal(rotated.version, 2);
    assert.equal(rotated.rotatedAt, T0 + 1000);
    const fresh = await vault.placeholder('github', 'alice');
    assert.notEqual(fresh, old);
    assert.equal((await vault.resolve('alice', fresh))?.value.reveal(), 'new-value');
    const stillOld = await vault.resolve('alice', old);
    assert.equal(stillOld?.value.reveal(), VALUE);
    assert.equal(stillOld?.version, 1);
    c.advance(GRACE - 1);
    assert.equal((await vault.resolve('alice', old))?.version, 1, 'last ms of the grace');
    c.advance(1);
    assert.equal(await vault.resolve('alice', old), undefined, 'grace over');
    assert.equal((await vault.resolve('alice', fresh))?.version, 2);
    // A second rotation: version 2 gets its own grace; version 1 stays expired.
    await vault.rotate('github', new Secret('third'));
    assert.equal((await vault.resolve('alice', fresh))?.value.reveal(), 'new-value');
    assert.equal(await vault.resolve('alice', old), undefined);
    await store.close();
  });

  test('revoke kills the current and the in-grace placeholder; the name can be added again with new placeholders', async () => {
    const { store, vault, clock: c } = await fixture();
    await vault.add('github', new Secret(VALUE), META);
    const v1 = await vault.placeholder('github', 'alice');
    await vault.rotate('github', new Secret('v2'));
    const v2 = await vault.placeholder('github', 'alice');
    assert.ok(await vault.resolve('alice', v1));
    c.advance(10);
    await vault.revoke('github');
    assert.equal(await vault.resolve('alice', v1), undefined);
    assert.equal(await vault.resolve('alice', v2), undefined);
    const again = await vault.add('github', new Secret('v3'), META);
    assert.equal(again.version, 1);
    const v3 = await vault.placeholder('github', 'alice');
    assert.ok(![v1, v2].includes(v3));
    assert.equal(await vault.resolve('alice', v1), undefined);
    assert.equal((await vault.resolve('alice', v3))?.value.reveal(), 'v3');
    await store.close();
  });

  test('a second Vault on the same file sees the first one\'s changes (vault generation)', async () => {
    const kek = newKek();
    const path = freshPath();
    const c = clock();
    const a = await fixture(path, kek, c);
    const b = await fixture(path, kek, c);
    await a.vault.add('github', new Secret(VALUE), META);
    const ph1 = await a.vault.placeholder('github', 'alice');
    assert.equal(await b.vault.placeholder('github', 'alice'), ph1, 'one root key for both');
    assert.equal((await b.vault.resolve('alice', ph1))?.value.reveal(), VALUE);
    await a.vault.rotate('github', new Secret('second'));
    const ph2 = await a.vault.placeholder('github', 'alice');
    assert.equal((await b.vault.resolve('alice', ph2))?.value.reveal(), 'second', 'b rebuilt its index');
    await a.vault.revoke('github');
    assert.equal(await b.vault.resolve('alice', ph1), undefined);
    assert.equal(await b.vault.resolve('alice', ph2), undefined);
    await a.store.close();
    await b.store.close();
  });

  test('concurrent first opens on one file agree on the root key', async () => {
    const kek = newKek();
    const path = freshPath();
    await (await openSqliteStore(path)).close();
    const stores = await Promise.all([openSqliteStore(path), openSqliteStore(path), openSqliteStore(path)]);
    const vaults = await Promise.all(stores.map((s) => Vault.open(s, kek, { rotationGraceMs: GRACE })));
    await vaults[0]!.add('github', new Secret(VALUE), META);
    const phs = await Promise.all(vaults.map((v) => v.placeholder('github', 'alice')));
    assert.equal(new Set(phs).size, 1);
    for (const s of stores) await s.close();
  });

  test('resolve reads only the generation per call; the index is rebuilt only on a change', async () => {
    const f = await fixture();
    await f.vault.add('github', new Secret(VALUE), META);
    const calls2: string[] = [];
    const proxy = new Proxy(f.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          calls2.push(String(prop));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const counted = await Vault.open(proxy, f.kek, { rotationGraceMs: GRACE, now: f.clock.now });
    const p = await counted.placeholder('github', 'alice');
    calls2.length = 0;
    for (let i = 0; i < 5; i++) assert.equal((await counted.resolve('alice', p))?.value.reveal(), VALUE);
    assert.deepEqual(calls2.filter((c) => c !== 'vaultGeneration'), ['listSecrets', 'listValidSecretVersions'], 'one rebuild');
    assert.equal(calls2.filter((c) => c === 'vaultGeneration').length, 5);
    await f.vault.rotate('github', new Secret('x'));
    calls2.length = 0;
    await counted.resolve('alice', p);
    assert.deepEqual(calls2, ['vaultGeneration', 'listSecrets', 'listValidSecretVersions']);
    assert.equal(await counted.resolve('alice', 'not a placeholder'), undefined);
    assert.equal(calls2.length, 3, 'garbage does not reach the store');
    await f.store.close();
  });

  test('sealed rows never contain the clear value', async () => {
    const { store, vault, path } = await fixture(freshPath());
    await vault.add('github', new Secret(VALUE), META);
    await vault.rotate('github', new Secret(`${VALUE}-rotated`));
    await store.close();
    const db = new DatabaseSync(path);
    const rows = db.prepare('SELECT sealed FROM secret_versions').all() as { sealed: string }[];
    const items = db.prepare('SELECT value FROM vault_items').all() as { value: string }[];
    db.close();
    assert.equal(rows.length, 2);
    for (const { sealed } of rows) {
      const parsed = JSON.parse(sealed) as SealedSecret;
      assert.deepEqual(Object.keys(parsed).sort(), ['format', 'kekId', 'value', 'wrappedKey']);
      for (const enc of [VALUE, Buffer.from(VALUE).toString('base64'), Buffer.from(VALUE).toString('base64url'), Buffer.from(VALUE).toString('hex')]) {
        assert.ok(!sealed.includes(enc));
      }
    }
    assert.equal(items.length, 1);
    const file = readFileSync(path);
    assert.equal(file.includes(VALUE), false);
    assert.equal(file.includes(Buffer.from(VALUE, 'utf16le')), false);
  });

  test('a wrong KEK is ERR_VAULT_DECRYPT at open; a tampered version is ERR_VAULT_DECRYPT at resolve', async () => {
    const path = freshPath();
    const first = await fixture(path);
    await first.vault.add('github', new Secret(VALUE), META);
    const ph = await first.vault.placeholder('github', 'alice');
    await first.store.close();
    const store = await openSqliteStore(path);
    await assert.rejects(Vault.open(store, newKek(), { rotationGraceMs: GRACE }), (err) => isBastionError(err, 'ERR_VAULT_DECRYPT') && !String(err.message).includes(VALUE));
    await store.close();

    const db = new DatabaseSync(path);
    const row = db.prepare('SELECT sealed FROM secret_versions').get() as { sealed: string };
    const sealed = JSON.parse(row.sealed) as SealedSecret;
    const ct = Buffer.from(sealed.value.ciphertext, 'base64url');
    ct[0]! ^= 1;
    const flipped = { ...sealed, value: { ...sealed.value, ciphertext: ct.toString('base64url') } };
    db.prepare('UPDATE secret_versions SET sealed = ?').run(JSON.stringify(flipped));
    db.close();
    const again = await fixture(path, first.kek);
    await assert.rejects(again.vault.resolve('alice', ph), (err) => isBastionError(err, 'ERR_VAULT_DECRYPT'));
    const db2 = new DatabaseSync(path);
    db2.prepare("UPDATE secret_versions SET sealed = 'not json'").run();
    db2.prepare('UPDATE vault_generation SET generation = generation + 1').run();
    db2.close();
    await assert.rejects(again.vault.resolve('alice', ph), (err) => isBastionError(err, 'ERR_VAULT_DECRYPT'));
    await again.store.close();
  });

  test('fail closed: a store failure rejects resolve with ERR_STORE', async () => {
    const { store, vault } = await fixture();
    await vault.add('github', new Secret(VALUE), META);
    const ph = await vault.placeholder('github', 'alice');
    assert.ok(await vault.resolve('alice', ph));
    await store.close();
    await assert.rejects(vault.resolve('alice', ph), (err) => isBastionError(err, 'ERR_STORE'));
  });

  test('markUsed: at most one write per second per secret; store errors are swallowed', async () => {
    const { store, vault, clock: c } = await fixture();
    const { id } = await vault.add('github', new Secret(VALUE), META);
    vault.markUsed(id);
    await vault.flush();
    assert.equal((await vault.info('github')).lastUsedAt, T0);
    c.advance(500);
    vault.markUsed(id);
    await vault.flush();
    assert.equal((await vault.info('github')).lastUsedAt, T0, 'coalesced');
    c.advance(600);
    vault.markUsed(id);
    await vault.flush();
    assert.equal((await vault.info('github')).lastUsedAt, T0 + 1100);
    await store.close();
    c.advance(5000);
    vault.markUsed(id); // the store is closed: touchSecret rejects
    await vault.flush();
  });

  test('Vault.open validates its options', async () => {
    const store: Store = await openSqliteStore(':memory:');
    await assert.rejects(Vault.open(store, newKek(), { rotationGraceMs: -1 }), RangeError);
    await assert.rejects(Vault.open(store, newKek(), { rotationGraceMs: 1.5 }), RangeError);
    await store.close();
  });
});
