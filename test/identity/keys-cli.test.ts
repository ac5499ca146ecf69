/**
 * `bastion keys list | rotate` as an admin runs them (real processes, a config
 * and a store on disk), and the JWKS a running gateway publishes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT } from '../../src/cli/io.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { startGateway, tempDir } from '../helpers/gateway.ts';
import { runCli } from '../helpers/processes.ts';

const YAML = `version: 1
store: { sqlite: ./state/bastion.db }
vault: { keyFile: ./state/vault.key }
identity: { rotationGraceMs: 3600000 }
`;

function project(yaml = YAML): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'bastion.yaml'), yaml);
  return join(dir, 'bastion.yaml');
}

interface KeyInfo {
  kid: string;
  status: string;
  graceUntil: number | null;
}

test('keys rotate and list: the previous key stays in grace, every rotation is audited', async () => {
  const config = project();
  const env = {};
  const empty = await runCli(['keys', 'list', '--json', '--config', config], { env });
  assert.equal(empty.code, EXIT.OK, empty.stderr);
  assert.deepEqual(JSON.parse(empty.stdout), { keys: [] }, 'listing creates no key');

  const first = await runCli(['keys', 'rotate', '--json', '--config', config], { env });
  assert.equal(first.code, EXIT.OK, first.stderr);
  const a = JSON.parse(first.stdout) as { kid: string; previous: string | null };
  assert.equal(a.previous, null);
  const second = await runCli(['keys', 'rotate', '--config', config], { env });
  assert.equal(second.code, EXIT.OK, second.stderr);
  assert.match(second.stdout, new RegExp(`^new identity key [A-Za-z0-9_-]{43}; ${a.kid} stays published until \\d{4}-`));

  const listed = await runCli(['keys', 'list', '--json', '--config', config], { env });
  const keys = (JSON.parse(listed.stdout) as { keys: KeyInfo[] }).keys;
  assert.deepEqual(keys.map((k) => k.status), ['grace', 'current']);
  assert.equal(keys[0]?.kid, a.kid);
  const human = await runCli(['keys', 'list', '--config', config], { env });
  assert.match(human.stdout, /current {2}created/);

  const store = await openSqliteStore(join(config, '..', 'state', 'bastion.db'));
  try {
    const records = (await store.readAudit(0, 100)).filter((r) => r.method === 'keys.rotate');
    assert.equal(records.length, 2);
    assert.equal(records[1]?.detail?.previous, a.kid);
    assert.equal(records[1]?.decision.reason, 'keys.rotate');
  } finally {
    await store.close();
  }
  const verified = await runCli(['audit', 'verify', '--config', config], { env });
  assert.equal(verified.code, EXIT.OK, verified.stderr);
});

test('keys: bad usage and a bad config are refused with their exit codes', async () => {
  const config = project();
  const unknown = await runCli(['keys', 'burn', '--config', config]);
  assert.equal(unknown.code, EXIT.USAGE);
  assert.match(unknown.stderr, /unknown subcommand "burn"/);
  const flag = await runCli(['keys', 'rotate', '--force', '--config', config]);
  assert.equal(flag.code, EXIT.USAGE);
  assert.match(flag.stderr, /--force/);
  const bad = project('version: 1\nidentity: { signatureTtlS: 0 }\n');
  const r = await runCli(['keys', 'list', '--config', bad]);
  assert.equal(r.code, EXIT.CONFIG);
  assert.match(r.stderr, /identity\.signatureTtlS/);
});

test('GET /.well-known/jwks.json publishes the current key, and the old one after a rotation', async () => {
  const gw = await startGateway(tempDir(), 'version: 1\nstore: { sqlite: ./bastion.db }\n', {});
  try {
    const res = await fetch(new URL('/.well-known/jwks.json', gw.url));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/jwk-set+json');
    const before = (await res.json()) as { keys: { kid: string; d?: string }[] };
    assert.equal(before.keys.length, 1);
    assert.equal(before.keys[0]?.d, undefined, 'never the private part');
    await gw.gateway.identity.rotate();
    const after = (await (await fetch(new URL('/.well-known/jwks.json', gw.url))).json()) as { keys: { kid: string }[] };
    assert.equal(after.keys.length, 2);
    assert.equal(after.keys[1]?.kid, before.keys[0]?.kid);
    const post = await fetch(new URL('/.well-known/jwks.json', gw.url), { method: 'POST' });
    assert.equal(post.status, 404);
  } finally {
    await gw.close();
  }
});
