/**
 * The sandbox's config checks and CLI: `env` secrets must be declared and
 * granted, the `sandbox` prefix is reserved while enabled (ERR_CONFIG_INVALID
 * naming the field), `serve` refuses to enable a sandbox whose workspaces
 * folder the sandbox user cannot reach (exit 3, naming the folder), and
 * `policy explain --shell` prints each command's decision and policies.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { isBastionError } from '../../src/errors.ts';
import { tempDir } from '../helpers/gateway.ts';
import { runCli } from '../helpers/processes.ts';

const BASE = `version: 1
secrets:
  github: { hosts: [api.github.com] }
sandbox: { enabled: true }
agents:
  coder:
    keys: [env:K]
    tools: [sandbox__run]
`;

async function configError(yaml: string): Promise<string> {
  const dir = tempDir();
  writeFileSync(join(dir, 'bastion.yaml'), yaml);
  try {
    await loadConfig(join(dir, 'bastion.yaml'), { env: { K: 'k'.repeat(32) }, secrets: 'strict' });
  } catch (err) {
    assert.ok(isBastionError(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message;
  }
  assert.fail('the config loaded');
}

test('a sandbox env secret must be declared and granted; the sandbox prefix is reserved while enabled', async () => {
  assert.match(await configError(`${BASE}    sandbox: { env: { T: vault:nope } }\n`), /agents\.coder\.sandbox\.env\.T: unknown secret nope/);
  assert.match(await configError(`${BASE}    sandbox: { env: { T: vault:github } }\n`), /agents\.coder\.sandbox\.env\.T: agent coder is not granted secret github/);
  assert.match(await configError(`${BASE}    sandbox: { env: { T: github } }\n`), /agents\.coder\.sandbox\.env\.T.*vault:NAME/);
  assert.match(await configError(`${BASE}    sandbox: { commands: { allow: ["git; rm"] } }\n`), /agents\.coder\.sandbox\.commands\.allow\[0\]: must be a program name/);
  assert.match(await configError(`${BASE}upstreams:\n  sandbox: { url: "http://127.0.0.1:9/mcp" }\n`), /upstreams\.sandbox: the name sandbox is taken/);
});

test('serve refuses to enable a sandbox whose workspaces its user cannot reach, and says which folder', { skip: process.getuid?.() !== 0 ? 'the sandbox user is Bastion\'s own when not root: every folder is reachable' : false }, async () => {
  const dir = tempDir();
  const privateDir = join(dir, 'private');
  mkdirSync(privateDir, { mode: 0o700 });
  chmodSync(privateDir, 0o700);
  writeFileSync(join(dir, 'bastion.yaml'), `version: 1\nserver: { listen: 127.0.0.1:0 }\nstore: { sqlite: ./b.db }\nsandbox: { enabled: true, workspaces: ./private/ws }\nagents:\n  coder:\n    keys: [env:K]\n`);
  const r = await runCli(['serve', '--config', join(dir, 'bastion.yaml')], { env: { K: 'k'.repeat(32), BASTION_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') } });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot reach sandbox\\.workspaces .*: ${privateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not searchable`));
});

test('policy explain --shell: each command, its program, its decision and the Cedar text; exit 1 for approve', async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'bastion.yaml'),
    `version: 1\nsandbox: { enabled: true }\nagents:\n  coder:\n    keys: [env:K]\n    sandbox:\n      commands: { allow: [git, ls], deny: [curl], approve: ["git push"] }\n`,
  );
  const env = { K: 'k'.repeat(32) };
  const ok = await runCli(['policy', 'explain', '--agent', 'coder', '--shell', 'ls && git status', '--config', join(dir, 'bastion.yaml')], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^effect: allow/);
  assert.match(ok.stdout, /command 1: ls → \/usr\/bin\/ls/);
  const held = await runCli(['policy', 'explain', '--agent', 'coder', '--shell', 'cd repo && git push ../o.git', '--json', '--config', join(dir, 'bastion.yaml')], { env });
  assert.equal(held.code, 1);
  const j = JSON.parse(held.stdout) as { effect: string; rule: string; commands: { program: string; effect: string; policies: { id: string; text: string }[] }[] };
  assert.equal(j.effect, 'approve');
  assert.equal(j.rule, 'agents.coder.sandbox.commands.approve[0]');
  assert.deepEqual(j.commands.map((c) => [c.program, c.effect]), [['cd', 'allow'], ['git', 'approve']]);
  assert.match(j.commands[1]?.policies[0]?.text ?? '', /@approval\("required"\)[\s\S]*sandbox\/exec[\s\S]*context\.command\.words\.containsAll\(\["push"\]\)/);
  const refused = await runCli(['policy', 'explain', '--agent', 'coder', '--shell', 'eval "$X"', '--config', join(dir, 'bastion.yaml')], { env });
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /reason: sandbox\.shell_unsupported[\s\S]*shell: {2}ERR_SHELL_UNSUPPORTED: .*eval/);
  const usage = await runCli(['policy', 'explain', '--agent', 'coder', '--shell', 'ls', '--tool', 'x', '--config', join(dir, 'bastion.yaml')], { env });
  assert.equal(usage.code, 2);
});
