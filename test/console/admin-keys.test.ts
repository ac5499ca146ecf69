/**
 * Named admin keys (config `admin.keys` entries `{id, key}` beside plain
 * references): loaded with their ids, bad ids refused naming the path, and two
 * admins sharing one key refused when the gateway opens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBastionError } from '../../src/errors.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { tempDir, writeAndLoadConfig } from '../helpers/gateway.ts';
import { ADMIN_KEY, ALICE_KEY } from './helpers.ts';

const yaml = (keys: string): string => `version: 1
store:
  sqlite: ./bastion.db
admin:
  keys:
${keys}
`;

test('plain and named admin keys load with their admin names, index for index', async () => {
  const { config } = await writeAndLoadConfig(tempDir(), yaml('    - env:A\n    - id: alice\n      key: env:B\n    - {id: bob.smith, key: env:C}'), { A: ADMIN_KEY, B: ALICE_KEY, C: `${ALICE_KEY}-bob` });
  assert.deepEqual(config.adminKeyIds, ['admin', 'alice', 'bob.smith']);
  assert.equal(config.adminKeys.length, 3);
  const { gateway } = await Gateway.open(config);
  try {
    assert.equal(gateway.adminKeys.lookup(ALICE_KEY), 'alice');
    assert.equal(gateway.adminKeys.lookup(ADMIN_KEY), 'admin');
    assert.equal(gateway.adminKeys.lookup(`${ALICE_KEY}-bob`), 'bob.smith');
  } finally {
    await gateway.close();
  }
});

test('a bad admin id, an unknown field or a literal key is a config error naming the path', async () => {
  for (const [keys, where] of [
    ['    - id: "al ice"\n      key: env:B', /admin\.keys\[0\]\.id: must be 1-64 letters/],
    ['    - id: alice\n      key: env:B\n      role: root', /admin\.keys\[0\]\.role: unknown key/],
    ['    - id: alice\n      key: literal-key-0123456789', /admin\.keys\[0\]\.key: must be a secret reference/],
  ] as const) {
    await assert.rejects(
      () => writeAndLoadConfig(tempDir(), yaml(keys), { B: ALICE_KEY }),
      (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && where.test(err.message),
    );
  }
});

test('two admins sharing one key are refused when the gateway opens', async () => {
  const { config } = await writeAndLoadConfig(tempDir(), yaml('    - id: alice\n      key: env:B\n    - id: bob\n      key: env:C'), { B: ALICE_KEY, C: ALICE_KEY });
  await assert.rejects(() => Gateway.open(config), (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && /admin\.keys/.test(err.message));
});
