/**
 * Key references that do not resolve (`env:NAME` unset) are errors naming the field and the
 * variable, in `bastion serve` (exit 3) and `bastion config check` (exit 1), never a silently
 * generated key; an agent that lists no keys gets one generated on first start instead.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../helpers/gateway.ts';
import { runCli } from '../helpers/processes.ts';
import { loadConfig } from '../../src/config/load.ts';
import { Gateway, GENERATED_KEY_PREFIX } from '../../src/server/gateway.ts';
import { isBastionError } from '../../src/errors.ts';

const UNSET = 'BASTION_TEST_SURELY_UNSET_KEY';

function config(agentKeys: string, admin = ''): string {
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, `version: 1\nserver:\n  listen: 127.0.0.1:0\n  egress: false\nagents:\n  demo:\n    keys: ${agentKeys}\n${admin}`);
  return file;
}

describe('unset key references', () => {
  test('serve exits 3 naming the field and the variable', async () => {
    const unset = await runCli(['serve', '--config', config(`[env:${UNSET}]`)]);
    assert.equal(unset.code, 3, unset.stdout);
    assert.match(unset.stderr, new RegExp(`agents\\.demo\\.keys\\[0\\]: env:${UNSET} is not set`));
    assert.ok(!/bst_ak_/.test(unset.stdout), 'no key generated');
  });

  test('config check fails (exit 1) for an agent key and an admin key', async () => {
    const r = await runCli(['config', 'check', '--config', config(`[env:${UNSET}]`, `admin:\n  keys: [env:${UNSET}_ADMIN]\n`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`agents\\.demo\\.keys\\[0\\]: env:${UNSET} is not set`));
    assert.match(r.stderr, new RegExp(`admin\\.keys\\[0\\]: env:${UNSET}_ADMIN is not set`));
  });

  test('the loader: ERR_CONFIG_SECRET_REF in strict mode, a warning with lenient keys', async () => {
    const file = config(`[env:${UNSET}]`);
    await assert.rejects(loadConfig(file, { env: {} }), (err) => isBastionError(err) && err.code === 'ERR_CONFIG_SECRET_REF' && err.message.includes(`agents.demo.keys[0]: env:${UNSET} is not set`));
    const { config: c, warnings } = await loadConfig(file, { env: {}, secrets: 'lenient' });
    assert.deepEqual(c.agents.get('demo')?.unresolvedKeyRefs, [`env:${UNSET}`]);
    assert.equal(warnings.length, 1);
  });

  test('an agent that lists no keys gets one generated once (serve), never one with unresolved references', async () => {
    const { config: c } = await loadConfig(config('[]'), { env: {} });
    const first = await Gateway.open(c, { generateKeys: true });
    try {
      assert.equal(first.generated.length, 1);
      assert.ok(first.generated[0]?.key.startsWith(GENERATED_KEY_PREFIX));
      assert.equal(first.gateway.agentForKey(first.generated[0]?.key ?? ''), 'demo');
    } finally {
      await first.gateway.close();
    }
    const again = await Gateway.open(c, { generateKeys: true });
    assert.equal(again.generated.length, 0, 'not generated twice');
    await again.gateway.close();
    const { config: lenient } = await loadConfig(config(`[env:${UNSET}]`), { env: {}, keys: 'lenient' });
    const none = await Gateway.open(lenient, { generateKeys: true });
    assert.equal(none.generated.length, 0, 'a listed but unresolved key is never replaced by a generated one');
    await none.gateway.close();
  });
});
