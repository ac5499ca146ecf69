/**
 * `bastion egress check` and `bastion ca export` as a user runs them: real
 * processes in a temp folder. No DNS and no connection: targets are IP
 * literals or names mapped by `egress.staticHosts`, and literals are only
 * classified.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, tempDir } from '../helpers/gateway.ts';

const CLI = join(ROOT, 'src/cli/main.ts');
const PUBLIC = '93.184.215.14';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in `cwd` with the ambient BASTION_* variables removed and `env` added. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base.BASTION_CONFIG;
  delete base.BASTION_MASTER_KEY;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function json(r: Run): Record<string, unknown> {
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const CONFIG = `version: 1
server:
  listen: 127.0.0.1:0
  egress: false
agents:
  demo:
    network:
      - api.example.com
      - host: gh.example.com
        methods: [GET]
        paths: [/repos/]
  lab:
    network: [lab.example.com]
    unsafeAllowPrivate:
      hosts: [lab.example.com]
egress:
  staticHosts:
    api.example.com: [${PUBLIC}]
    gh.example.com: [${PUBLIC}]
    lab.example.com: [10.1.2.3]
`;

function project(yaml = CONFIG): { dir: string; config: string } {
  const dir = tempDir({ 'bastion.yaml': yaml });
  return { dir, config: join(dir, 'bastion.yaml') };
}

describe('bastion egress check', { concurrency: true }, () => {
  test('a loopback literal is refused without a config: exit 1, reason ssrf.address.loopback', async () => {
    const dir = tempDir();
    const r = await cli(['egress', 'check', 'http://127.0.0.1/'], dir);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^decision: deny\n/);
    assert.match(r.stdout, /\nreason: {3}ssrf\.address\.loopback\n/);
    assert.match(r.stdout, /\ntarget: {3}http:\/\/127\.0\.0\.1:80\n/);
    const meta = await cli(['egress', 'check', '169.254.169.254', '--json'], dir);
    assert.equal(meta.status, 1);
    assert.equal(json(meta).reason, 'ssrf.address.metadata');
  });

  test('a public literal is allowed by the SSRF guard alone: exit 0, JSON, no DNS', async () => {
    const dir = tempDir();
    const r = await cli(['egress', 'check', `https://${PUBLIC}/`, '--json'], dir);
    assert.equal(r.status, 0, r.stderr);
    const out = json(r);
    assert.equal(out.effect, 'allow');
    assert.equal(out.reason, 'egress.allowed');
    assert.equal(out.rule, 'ssrf-guard');
    assert.equal(out.host, PUBLIC);
    assert.equal(out.port, 443);
    assert.equal(out.address, PUBLIC);
    assert.deepEqual(out.addresses, [PUBLIC]);
    assert.deepEqual(out.policies, []);
    assert.equal(out.intercept, undefined);
  });

  test('--agent: an allowlisted host mapped by egress.staticHosts is allowed by its rule', async () => {
    const { dir, config } = project();
    const r = await cli(['egress', 'check', 'https://api.example.com/anything', '--config', config, '--agent', 'demo', '--json'], dir);
    assert.equal(r.status, 0, r.stderr);
    const out = json(r);
    assert.equal(out.effect, 'allow');
    assert.equal(out.reason, 'policy.permit');
    assert.equal(out.rule, 'agents.demo.network[0]/request');
    assert.deepEqual(out.policies, ['agents.demo.network[0]/request']);
    assert.equal(out.address, PUBLIC);
    // Text form.
    const text = await cli(['egress', 'check', 'https://api.example.com/', '-c', config, '-a', 'demo'], dir);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /\nrule: {5}agents\.demo\.network\[0\]\/request\n/);
    assert.match(text.stdout, new RegExp(`\\naddresses: ${PUBLIC.replaceAll('.', '\\.')}\\n`));
  });

  test('--agent: a host not in the allowlist, a method or path outside the rule → exit 1 policy.no_permit', async () => {
    const { dir, config } = project();
    const other = await cli(['egress', 'check', 'https://other.example.com/', '-c', config, '-a', 'demo', '--json'], dir);
    assert.equal(other.status, 1);
    assert.equal(json(other).reason, 'policy.no_permit');
    assert.deepEqual(json(other).addresses, []);
    const del = await cli(['egress', 'check', 'https://gh.example.com/repos/x', '-c', config, '-a', 'demo', '-m', 'delete', '--json'], dir);
    assert.equal(del.status, 1);
    assert.equal(json(del).reason, 'policy.no_permit');
    const get = await cli(['egress', 'check', 'https://gh.example.com/repos/x', '-c', config, '-a', 'demo', '--json'], dir);
    assert.equal(get.status, 0);
    const dotdot = await cli(['egress', 'check', 'https://gh.example.com/repos/../admin', '-c', config, '-a', 'demo', '--json'], dir);
    assert.equal(dotdot.status, 1);
    assert.equal(json(dotdot).reason, 'policy.no_permit');
  });

  test('--connect: "intercept":true for a host with a methods/paths rule, false for a plain one', async () => {
    const { dir, config } = project();
    const gh = await cli(['egress', 'check', 'https://gh.example.com/', '--connect', '-c', config, '-a', 'demo', '--json'], dir);
    assert.equal(gh.status, 0, gh.stderr);
    assert.match(gh.stdout, /"intercept":true/);
    assert.equal(json(gh).rule, 'agents.demo.network[1]/connect');
    const api = await cli(['egress', 'check', 'https://api.example.com/', '--connect', '-c', config, '-a', 'demo', '--json'], dir);
    assert.equal(api.status, 0);
    assert.match(api.stdout, /"intercept":false/);
  });

  test('unsafeAllowPrivate is the agent\'s: allowed with a note for it, refused without --agent', async () => {
    const { dir, config } = project();
    const lab = await cli(['egress', 'check', 'http://lab.example.com/', '-c', config, '-a', 'lab'], dir);
    assert.equal(lab.status, 0, lab.stderr);
    assert.match(lab.stdout, /\nreason: {3}egress\.unsafe_allow_private\n/);
    assert.match(lab.stdout, /\nnote: {5}allowed by unsafeAllowPrivate/);
    const labJson = await cli(['egress', 'check', 'http://lab.example.com/', '-c', config, '-a', 'lab', '--json'], dir);
    assert.equal(json(labJson).unsafeAllowPrivate, true);
    // The config in the working directory is picked up without --config; no agent: SSRF only.
    const bare = await cli(['egress', 'check', 'http://lab.example.com/', '--json'], dir);
    assert.equal(bare.status, 1);
    assert.equal(json(bare).reason, 'ssrf.address.private');
    const demo = await cli(['egress', 'check', 'http://lab.example.com/', '-c', config, '-a', 'demo', '--json'], dir);
    assert.equal(demo.status, 1);
    assert.equal(json(demo).reason, 'policy.no_permit');
  });

  test('usage and config errors: unknown agent 2, missing URL 2, bad method 2, bad config 3', async () => {
    const { dir, config } = project();
    const nobody = await cli(['egress', 'check', 'https://api.example.com/', '-c', config, '--agent', 'nobody'], dir);
    assert.equal(nobody.status, 2);
    assert.match(nobody.stderr, /no agent "nobody" in the config/);
    assert.equal(nobody.stdout, '');
    const missing = await cli(['egress', 'check'], dir);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /give exactly one URL/);
    const two = await cli(['egress', 'check', 'https://a.example.com/', 'https://b.example.com/'], dir);
    assert.equal(two.status, 2);
    const method = await cli(['egress', 'check', `https://${PUBLIC}/`, '-m', 'G T'], dir);
    assert.equal(method.status, 2);
    const bad = project('version: 1\nagents:\n  demo:\n    network: ["host:99999"]\n');
    const badRun = await cli(['egress', 'check', `https://${PUBLIC}/`, '-c', bad.config, '--json'], bad.dir);
    assert.equal(badRun.status, 3);
    assert.equal(json(badRun).code, 'ERR_CONFIG_INVALID');
    assert.match(String(json(badRun).message), /agents\.demo\.network\[0\]/);
    const none = await cli(['egress', 'check', `https://${PUBLIC}/`, '-c', join(dir, 'nope.yaml')], dir);
    assert.equal(none.status, 3);
  });

  test('an unparsable URL or another scheme is a deny, not a crash', async () => {
    const dir = tempDir();
    const ftp = await cli(['egress', 'check', 'ftp://93.184.215.14/', '--json'], dir);
    assert.equal(ftp.status, 1);
    assert.equal(json(ftp).reason, 'ssrf.url.invalid');
    const junk = await cli(['egress', 'check', 'http://[::1/', '--json'], dir);
    assert.equal(junk.status, 1);
    assert.equal(json(junk).reason, 'ssrf.url.invalid');
  });
});

describe('bastion ca export', { concurrency: true }, () => {
  function onePem(text: string): X509Certificate {
    assert.equal(text.match(/-----BEGIN CERTIFICATE-----/g)?.length, 1, text);
    assert.match(text, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    return new X509Certificate(text);
  }

  test('prints one CA certificate, the same on every run; the key file is created once, mode 0600', async () => {
    const { dir, config } = project('version: 1\n');
    const keyFile = join(dir, '.bastion', 'master.key');
    assert.equal(existsSync(keyFile), false);
    const first = await cli(['ca', 'export', '--config', config], dir);
    assert.equal(first.status, 0, first.stderr);
    const cert = onePem(first.stdout);
    assert.equal(cert.ca, true);
    assert.ok(existsSync(keyFile), 'key file created under the config folder');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const key = readFileSync(keyFile, 'utf8');
    const second = await cli(['ca', 'export', '-c', config], dir);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.equal(readFileSync(keyFile, 'utf8'), key, 'the key file is not rewritten');
    assert.ok(existsSync(join(dir, '.bastion', 'bastion.db')));
  });

  test('with BASTION_MASTER_KEY set no key file is written; the CA is stable too', async () => {
    const { dir, config } = project('version: 1\n');
    const env = { BASTION_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') };
    const first = await cli(['ca', 'export', '-c', config], dir, env);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(onePem(first.stdout).ca, true);
    assert.equal(existsSync(join(dir, '.bastion', 'master.key')), false);
    const second = await cli(['ca', 'export', '-c', config], dir, env);
    assert.equal(second.stdout, first.stdout);
    // Another installation gets another CA.
    const other = project('version: 1\n');
    const third = await cli(['ca', 'export', '-c', other.config], other.dir, env);
    assert.equal(third.status, 0, third.stderr);
    assert.notEqual(new X509Certificate(third.stdout).fingerprint256, new X509Certificate(first.stdout).fingerprint256);
  });

  test('--out writes the PEM to a file relative to the working directory', async () => {
    const { dir, config } = project('version: 1\n');
    const env = { BASTION_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') };
    const r = await cli(['ca', 'export', '--out', 'bastion-ca.pem', '--config', config], dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /wrote bastion-ca\.pem/);
    const pem = readFileSync(join(dir, 'bastion-ca.pem'), 'utf8');
    assert.equal(onePem(pem.endsWith('\n') ? pem : `${pem}\n`).ca, true);
    const printed = await cli(['ca', 'export', '--config', config], dir, env);
    assert.equal(printed.stdout.trim(), pem.trim());
  });

  test('a bad master key is exit 1; a missing config is exit 3', async () => {
    const { dir, config } = project('version: 1\n');
    const bad = await cli(['ca', 'export', '-c', config], dir, { BASTION_MASTER_KEY: 'not-a-key' });
    assert.equal(bad.status, 1);
    assert.equal(bad.stdout, '');
    const missing = await cli(['ca', 'export', '-c', join(dir, 'nope.yaml')], dir);
    assert.equal(missing.status, 3);
  });
});
