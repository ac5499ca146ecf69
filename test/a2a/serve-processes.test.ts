/**
 * Two `bastion serve` processes on loopback (ports 0, no egress proxy),
 * registered to each other with `bastion peers add` (JWKS URLs, a token each
 * way, set with `--outbound-token-env` and `bastion peers token`), exchange
 * messages both ways between their agents; `peers list` never shows a token,
 * no token is in either store file, and each audit chain verifies after a clean stop.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/gateway.ts';
import { CLI, runCli, startProcess, stopAll, type Started } from '../helpers/processes.ts';
import { instanceEnv, instanceYaml, post, startDeliver, textMessage, type DeliverEndpoint, type InstanceSpec } from './helpers.ts';

const A_ISSUER = 'https://a.bastion.test';
const B_ISSUER = 'https://b.bastion.test';
const ALICE = 'alice-agent-key-0123456789abcdef';
const BOB = 'bob-agent-key-0123456789abcdef';

interface Proc {
  readonly dir: string;
  readonly config: string;
  readonly env: Record<string, string>;
  readonly started: Started;
  readonly base: string;
}

let aliceInbox: DeliverEndpoint;
let bobInbox: DeliverEndpoint;
let a: Proc;
let b: Proc;
const tokens: string[] = [];

async function serve(spec: InstanceSpec): Promise<Proc> {
  const dir = tempDir();
  const config = join(dir, 'bastion.yaml');
  writeFileSync(config, instanceYaml(spec));
  const env = instanceEnv(spec);
  const started = await startProcess([CLI, 'serve', '--config', config], env, /agent-to-agent messages at (http:\/\/\S+)\/a2a\/send/);
  return { dir, config, env, started, base: started.match[1] as string };
}

before(async () => {
  aliceInbox = await startDeliver('alice');
  bobInbox = await startDeliver('bob');
  a = await serve({ issuer: A_ISSUER, agents: { alice: { key: ALICE, peers: ['b'], receiveFrom: ['b'], deliver: aliceInbox.url } } });
  b = await serve({ issuer: B_ISSUER, agents: { bob: { key: BOB, peers: ['a'], receiveFrom: ['a'], deliver: bobInbox.url } } });
});

after(async () => {
  await stopAll([a?.started.child, b?.started.child]);
  await aliceInbox?.close();
  await bobInbox?.close();
});

test('two bastion serve processes, registered with bastion peers add, exchange messages both ways', async () => {
  // 1. A's admin registers B (no outbound token yet) and gets the token B must present.
  const addB = await runCli(['peers', 'add', 'b', '--url', `${b.base}/a2a/inbound`, '--sender', B_ISSUER, '--jwks', `${b.base}/.well-known/jwks.json`, '--json', '--config', a.config], { env: a.env });
  assert.equal(addB.code, 0, addB.stderr);
  const bToA = (JSON.parse(addB.stdout) as { inboundToken: string }).inboundToken;
  assert.match(bToA, /^bst_a2a_[A-Za-z0-9_-]{43}$/);
  tokens.push(bToA);

  // 2. B's admin registers A with that token as the outbound token, and gets the token A must present.
  const addA = await runCli(
    ['peers', 'add', 'a', '--url', `${a.base}/a2a/inbound`, '--sender', A_ISSUER, '--jwks', `${a.base}/.well-known/jwks.json`, '--outbound-token-env', 'BASTION_PEER_TOKEN', '--config', b.config],
    { env: { ...b.env, BASTION_PEER_TOKEN: bToA } },
  );
  assert.equal(addA.code, 0, addA.stderr);
  const aToB = /^ {4}(bst_a2a_\S+)$/m.exec(addA.stdout)?.[1] as string;
  assert.ok(aToB, addA.stdout);
  tokens.push(aToB);
  assert.ok(!addA.stdout.includes(bToA), 'the outbound token is never printed');

  // 3. A's admin sets B's outbound token from standard input.
  const setToken = await runCli(['peers', 'token', 'b', '--outbound-token-stdin', '--config', a.config], { env: a.env, input: `${aToB}\n` });
  assert.equal(setToken.code, 0, setToken.stderr);

  // alice → bob
  const ab = await post(`${a.base}/a2a/send`, { peer: 'b', to: 'bob', user: 'u-1', message: textMessage('ping from alice', 'p-1') }, ALICE);
  assert.equal(ab.status, 200, JSON.stringify(ab.json));
  assert.equal(ab.json.result.parts[0].text, 'bob got: ping from alice');
  const atBob = bobInbox.received.at(-1)!.body as any;
  assert.equal(atBob.params.metadata.bastion.sender, A_ISSUER);
  assert.equal(atBob.params.metadata.bastion.agent, 'alice');
  assert.equal(atBob.params.metadata.bastion.peer, 'a');

  // bob → alice
  const ba = await post(`${b.base}/a2a/send`, { peer: 'a', message: textMessage('pong from bob', 'p-2') }, BOB);
  assert.equal(ba.status, 200, JSON.stringify(ba.json));
  assert.equal(ba.json.result.parts[0].text, 'alice got: pong from bob');
  assert.equal((aliceInbox.received.at(-1)!.body as any).params.metadata.bastion.sender, B_ISSUER);

  // A wrong token at B's inbound is refused.
  const wrong = await post(`${b.base}/a2a/inbound`, { jsonrpc: '2.0' }, bToA);
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error.code, 'ERR_A2A_UNAUTHORIZED');

  // The listing shows the registration, never a token.
  for (const p of [a, b]) {
    const list = await runCli(['peers', 'list', '--json', '--config', p.config], { env: p.env });
    assert.equal(list.code, 0, list.stderr);
    const [peer] = (JSON.parse(list.stdout) as { peers: any[] }).peers;
    assert.equal(peer.outboundToken, true);
    assert.ok('jwksUrl' in peer.keys);
    for (const t of tokens) assert.ok(!list.stdout.includes(t));
  }
});

test('after a clean stop: no token in either store, both audit chains verify and hold the exchange', async () => {
  await stopAll([a.started.child, b.started.child]);
  for (const p of [a, b]) {
    const bytes = Buffer.concat(['bastion.db', 'bastion.db-wal'].map((f) => {
      try {
        return readFileSync(join(p.dir, f));
      } catch {
        return Buffer.alloc(0);
      }
    }));
    for (const t of tokens) assert.equal(bytes.indexOf(Buffer.from(t)), -1, 'token in the store file');
    const verify = await runCli(['audit', 'verify', '--config', p.config], { env: p.env });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const tail = await runCli(['audit', 'tail', '-n', '50', '--config', p.config], { env: p.env });
    assert.match(tail.stdout, /a2a\.send/);
    assert.match(tail.stdout, /a2a\.inbound/);
    assert.match(tail.stdout, /peer\.add/);
    for (const t of tokens) assert.ok(!tail.stdout.includes(t));
  }
});
