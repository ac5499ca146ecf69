/**
 * Listen addresses outside the file (issue 14): `bastion serve --listen` / `$BASTION_LISTEN` and
 * `--egress-listen` / `$BASTION_EGRESS_LISTEN` replace `server.listen` / `server.egress`, are
 * validated like the file's own, and a bad one names the flag or variable (exit 3).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { serve } from '../../src/cli/commands/serve.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { loadConfig } from '../../src/config/load.ts';
import { isBastionError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-listen-'));
const file = join(dir, 'bastion.yaml');
writeFileSync(file, 'version: 1\nserver:\n  listen: 127.0.0.1:8790\n  egress: 127.0.0.1:8791\n');

describe('loadConfig listen overrides', () => {
  test('replace the file\'s addresses, and the allowed Host headers follow the listener', async () => {
    const { config } = await loadConfig(file, { env: {}, listen: { main: { value: '127.0.0.1:9100', source: '--listen' }, egress: { value: false, source: '--egress-listen' } } });
    assert.deepEqual([config.server.host, config.server.port], ['127.0.0.1', 9100]);
    assert.equal(config.server.egress, undefined);
    assert.ok(config.server.allowedHosts.includes('127.0.0.1:9100'), JSON.stringify(config.server.allowedHosts));
    const plain = await loadConfig(file, { env: {} });
    assert.deepEqual([plain.config.server.port, plain.config.server.egress?.port], [8790, 8791]);
  });

  test('a bad address is ERR_CONFIG_INVALID naming where it came from, not a line of the file', async () => {
    await assert.rejects(
      loadConfig(file, { env: {}, listen: { main: { value: 'nonsense', source: 'BASTION_LISTEN' } } }),
      (err: unknown) => isBastionError(err) && err.code === 'ERR_CONFIG_INVALID' && /^BASTION_LISTEN: must be host:port/.test(err.message),
    );
    await assert.rejects(
      loadConfig(file, { env: {}, listen: { egress: { value: '127.0.0.1:70000', source: '--egress-listen' } } }),
      (err: unknown) => isBastionError(err) && /^--egress-listen: port must be 0-65535/.test(err.message),
    );
  });
});

describe('bastion serve --listen', () => {
  async function run(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const io: CliIO = { stdout: () => undefined, stderr: (t) => void (stderr += t), env, cwd: dir, stdin: async () => Buffer.alloc(0) };
    return { code: await serve(argv, io), stderr };
  }

  test('the flag wins over the variable; a bad one exits 3 naming it', async () => {
    const flag = await run(['--config', file, '--listen', 'bad'], { BASTION_LISTEN: '127.0.0.1:9200' });
    assert.equal(flag.code, EXIT.CONFIG);
    assert.match(flag.stderr, /--listen: must be host:port/);
    const variable = await run(['--config', file], { BASTION_LISTEN: 'also bad' });
    assert.equal(variable.code, EXIT.CONFIG);
    assert.match(variable.stderr, /BASTION_LISTEN: must be host:port/);
    const egress = await run(['--config', file, '--egress-listen', 'x'], {});
    assert.equal(egress.code, EXIT.CONFIG);
    assert.match(egress.stderr, /--egress-listen: must be host:port/);
  });
});
