/**
 * `bastion peers add | list | token | remove`: exit codes, messages that name
 * the bad flag, tokens never taken from argv nor printed after `add`, and the
 * admin-door audit records of each change.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/gateway.ts';
import { runCli } from '../helpers/processes.ts';
import { instanceEnv, instanceYaml, type InstanceSpec } from './helpers.ts';

const SPEC: InstanceSpec = { issuer: 'https://a.bastion.test', agents: { alice: { key: 'alice-agent-key-0123456789abcdef', peers: ['b'] } } };
const dir = tempDir();
const config = join(dir, 'bastion.yaml');
const env = instanceEnv(SPEC);
const pub = join(dir, 'b.jwk');
const priv = join(dir, 'b-private.jwk');
const jwks = join(dir, 'b.jwks');

function peers(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): ReturnType<typeof runCli> {
  return runCli(['peers', ...args, '--config', config], { env: { ...env, ...opts.env }, ...(opts.input !== undefined ? { input: opts.input } : {}) });
}

before(async () => {
  writeFileSync(config, instanceYaml(SPEC));
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  writeFileSync(pub, JSON.stringify({ ...(await exportJWK(publicKey)), kid: 'b-key-1' }));
  writeFileSync(priv, JSON.stringify(await exportJWK(privateKey)));
  const second = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }, await exportJWK(second.publicKey)] }));
});

describe('usage errors name the flag (exit 2) and touch nothing', () => {
  const base = ['add', 'b', '--url', 'http://127.0.0.1:9/a2a/inbound', '--sender', 'https://b.test'];
  const cases: [string[], RegExp][] = [
    [['add', 'b', '--sender', 'x', '--key', pub], /--url is required/],
    [['add', 'b', '--url', 'http://h/a2a/inbound', '--key', pub], /--sender is required/],
    [[...base], /exactly one of --jwks URL and --key FILE/],
    [[...base, '--jwks', 'http://h/j', '--key', pub], /exactly one of --jwks URL and --key FILE/],
    [['add', 'b', '--url', 'ftp://h/x', '--sender', 'x', '--key', pub], /--url must be an http\(s\) URL/],
    [['add', 'b', '--url', 'http://user:pw@h/x', '--sender', 'x', '--key', pub], /--url must not hold credentials/],
    [[...base, '--jwks', 'not a url'], /--jwks must be an absolute http\(s\) URL/],
    [[...base, '--key', priv], /--key is a private key/],
    [[...base, '--key', join(dir, 'missing.jwk')], /--key must name a readable file/],
    [['add', 'b c', '--url', 'http://h/x', '--sender', 'x', '--key', pub], /peer NAME must be/],
    [['add', '--url', 'http://h/x', '--sender', 'x', '--key', pub], /exactly one peer NAME/],
    [[...base, '--key', pub, '--outbound-token-env', 'UNSET_VAR_FOR_TEST'], /--outbound-token-env: UNSET_VAR_FOR_TEST is unset/],
    [[...base, '--key', pub, '--outbound-token-env', 'X', '--outbound-token-stdin'], /one of --outbound-token-env and --outbound-token-stdin/],
    [[...base, '--key', pub, '--bogus'], /Unknown option '--bogus'/],
    [['list', '--jwks', 'http://h/'], /--jwks is not an option of list/],
    [['list', 'extra'], /unexpected argument/],
    [['token', 'b'], /--outbound-token-env VAR or --outbound-token-stdin is required/],
    [['frobnicate'], /unknown subcommand "frobnicate"/],
  ];
  for (const [args, message] of cases) {
    test(args.join(' ').replaceAll(`${dir}/`, ''), async () => {
      const r = await peers(args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, message);
    });
  }

  test('a token on the command line is refused and not echoed', async () => {
    const r = await peers([...base, '--key', pub, '--outbound-token=bst_a2a_typed-on-the-command-line']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--outbound-token is not accepted/);
    assert.ok(!r.stderr.includes('typed-on-the-command-line'));
  });
});

describe('add, list, token, remove', () => {
  test('add with a pinned key prints the inbound token once; add again is refused (1)', async () => {
    const r = await peers(['add', 'b', '--url', 'http://127.0.0.1:9/a2a/inbound', '--sender', 'https://b.test', '--key', pub]);
    assert.equal(r.code, 0, r.stderr);
    const token = /^ {4}(bst_a2a_[A-Za-z0-9_-]{43})$/m.exec(r.stdout)?.[1];
    assert.ok(token, r.stdout);
    assert.match(r.stdout, /cannot receive from this instance until 'bastion peers token b'/);
    const again = await peers(['add', 'b', '--url', 'http://127.0.0.1:9/a2a/inbound', '--sender', 'https://b.test', '--key', pub]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /a peer named b exists/);

    const list = await peers(['list']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^b {2}http:\/\/127\.0\.0\.1:9\/a2a\/inbound {2}sender "https:\/\/b\.test" {2}pinned b-key-1 {2}outbound token not set/m);
    assert.ok(!list.stdout.includes(token as string));
  });

  test('a JWKS file pins every key in it (thumbprint kid when none)', async () => {
    const r = await peers(['add', 'c', '--url', 'https://c.example/a2a/inbound', '--sender', 'https://c.test', '--key', jwks, '--json', '--outbound-token-stdin'], { input: 'bst_a2a_the-token-c-gave-us-0123456789\n' });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { peer: { keys: { pinned: string[] }; outboundToken: boolean }; inboundToken: string };
    assert.equal(out.peer.keys.pinned.length, 2);
    assert.equal(out.peer.keys.pinned[0], 'k1');
    assert.match(out.peer.keys.pinned[1] as string, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(out.peer.outboundToken, true);
    assert.ok(!r.stdout.includes('the-token-c-gave-us'));
  });

  test('token sets the outbound token (5 for an unknown peer); a wrong vault key is 3', async () => {
    const set = await peers(['token', 'b', '--outbound-token-env', 'TOKEN_FOR_B'], { env: { TOKEN_FOR_B: 'bst_a2a_token-b-printed-for-us-0123456789' } });
    assert.equal(set.code, 0, set.stderr);
    assert.match((await peers(['list'])).stdout, /^b .*outbound token set/m);
    const unknown = await peers(['token', 'zz', '--outbound-token-stdin'], { input: 'bst_a2a_whatever-0123456789' });
    assert.equal(unknown.code, 5);
    const bad = await peers(['token', 'b', '--outbound-token-stdin'], { input: 'has a space' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--outbound-token-stdin must be 1-512 printable ASCII/);
    const wrongKek = await peers(['token', 'b', '--outbound-token-stdin'], { input: 'bst_a2a_x-0123456789', env: { BASTION_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') } });
    assert.equal(wrongKek.code, 3);
    assert.match(wrongKek.stderr, /cannot be opened with this key-encryption key/);
  });

  test('remove (5 when unknown), and every change is in the admin audit chain without a token', async () => {
    assert.equal((await peers(['remove', 'c'])).code, 0);
    const again = await peers(['remove', 'c']);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /no peer named c/);
    const list = JSON.parse((await peers(['list', '--json'])).stdout) as { peers: { name: string }[] };
    assert.deepEqual(list.peers.map((p) => p.name), ['b']);

    const store = await openSqliteStore(join(dir, 'bastion.db'));
    try {
      const records = (await store.readAudit(1, 1000)).filter((r) => r.door === 'admin');
      assert.deepEqual(records.map((r) => `${r.method} ${r.target}`), ['peer.add b', 'peer.add c', 'peer.token b', 'peer.remove c']);
      assert.ok(!JSON.stringify(records).includes('bst_a2a_'));
    } finally {
      await store.close();
    }
  });

  test('a config that does not load is exit 3', async () => {
    const r = await runCli(['peers', 'list', '--config', join(dir, 'nope.yaml')], { env });
    assert.equal(r.code, 3);
  });
});
