/**
 * `--help` works for every command and every command group (issue 14: seven groups used to answer
 * "unknown command"), in-process through `main` with a recording io: exit 0, usage on stdout,
 * nothing on stderr. A group without a command, or with an unknown one, is a usage error (exit 2)
 * that lists the group's commands.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {}, cwd: process.cwd(), stdin: async () => Buffer.alloc(0) };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const GROUPS: Record<string, string[]> = {
  config: ['check'],
  policy: ['explain'],
  audit: ['verify', 'tail', 'key', 'prune', 'export'],
  secret: ['add', 'list', 'rotate', 'revoke', 'placeholder', 'pasted'],
  egress: ['check'],
  ca: ['export'],
  detect: ['secrets'],
  store: ['migrate'],
};
const SINGLE = ['serve', 'reload', 'status', 'stdio', 'approvals', 'tools', 'bans', 'keys', 'oauth', 'peers'];

describe('--help everywhere', () => {
  for (const [group, commands] of Object.entries(GROUPS)) {
    test(`bastion ${group} --help lists its commands`, async () => {
      for (const flag of ['--help', '-h', 'help']) {
        const r = await cli([group, flag]);
        assert.equal(r.code, EXIT.OK, `${group} ${flag}: ${r.stderr}`);
        assert.equal(r.stderr, '');
        assert.match(r.stdout, new RegExp(`^Usage: bastion ${group} <${commands.join('\\|')}> \\[options\\]`));
      }
    });
    for (const c of commands) {
      test(`bastion ${group} ${c} --help`, async () => {
        const r = await cli([group, c, '--help']);
        assert.equal(r.code, EXIT.OK, r.stderr);
        assert.match(r.stdout, /^Usage:\s+bastion /);
      });
    }
  }
  for (const c of SINGLE) {
    test(`bastion ${c} --help`, async () => {
      const r = await cli([c, '--help']);
      assert.equal(r.code, EXIT.OK, r.stderr);
      assert.match(r.stdout, /Usage:/);
    });
  }

  test('a group alone, or with an unknown command, is a usage error listing its commands', async () => {
    const bare = await cli(['audit']);
    assert.equal(bare.code, EXIT.USAGE);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /^bastion: "audit" needs a command\n\nUsage: bastion audit <verify\|tail\|key\|prune\|export>/);
    const unknown = await cli(['audit', 'nope']);
    assert.equal(unknown.code, EXIT.USAGE);
    assert.match(unknown.stderr, /^bastion: unknown command "audit nope"\n\nUsage: bastion audit </);
  });

  test('the top-level help still names every group', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, EXIT.OK);
    for (const g of Object.keys(GROUPS)) assert.match(r.stdout, new RegExp(`\\n  ${g} `));
  });
});
