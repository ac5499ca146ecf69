/**
 * The network door's part of bastion.yaml: `server.egress`, `egress.*`,
 * `secrets`, `vault`, and agents' `secrets`, `network` and
 * `unsafeAllowPrivate` — errors naming their config path, and the resolved form.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { ResolvedConfig } from '../../src/config/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { tempDir } from '../helpers/gateway.ts';

function write(yaml: string): { dir: string; file: string } {
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}

async function load(yaml: string): Promise<ResolvedConfig & { dirForTest: string }> {
  const { dir, file } = write(yaml);
  const { config } = await loadConfig(file, { env: {}, secrets: 'lenient' });
  return { ...config, dirForTest: dir };
}

/** Asserts loading `yaml` fails with ERR_CONFIG_INVALID and every `messages` regex matches a line of it. */
async function rejects(yaml: string, ...messages: RegExp[]): Promise<string> {
  const { file } = write(yaml);
  let message = '';
  await assert.rejects(loadConfig(file, { env: {}, secrets: 'lenient' }), (err: unknown) => {
    assert.ok(isBastionError(err), `expected BastionError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    message = err.message;
    return true;
  });
  for (const m of messages) assert.match(message, m);
  return message;
}

const V = 'version: 1\n';

describe('egress config: errors name the path', () => {
  test('an agent secret that is not declared under secrets', async () => {
    await rejects(`${V}secrets:\n  github: {}\nagents:\n  demo:\n    secrets: [nope, github]\n`, /bastion\.yaml:6:\d+: agents\.demo\.secrets\[0\]: unknown secret nope: declare it under secrets/);
    // A declared one is fine.
    const c = await load(`${V}secrets:\n  github: {}\nagents:\n  demo:\n    secrets: [github]\n`);
    assert.deepEqual(c.agents.get('demo')?.secrets, ['github']);
  });

  test('a bad network shorthand: port out of range, a space, an empty port, a bad wildcard', async () => {
    for (const bad of ['host:99999', 'host:0', 'a b', 'host:', 'a*.example.com', '*.*.example.com', 'host:abc']) {
      await rejects(`${V}agents:\n  demo:\n    network: [api.example.com, ${JSON.stringify(bad)}]\n`, /agents\.demo\.network\[1\]: must be host, \*\.domain, host:port or \[v6\]:port \(ports 1-65535\)/);
    }
  });

  test('a bad host pattern, port or method in the object form', async () => {
    await rejects(`${V}agents:\n  demo:\n    network:\n      - api.example.com\n      - host: a_b.example.com\n`, /bastion\.yaml:6:\d+: agents\.demo\.network\[1\]\.host: must be a host name, \*\.domain/);
    await rejects(`${V}agents:\n  demo:\n    network:\n      - host: "*.*.example.com"\n`, /agents\.demo\.network\[0\]\.host: must be a host name/);
    await rejects(`${V}agents:\n  demo:\n    network:\n      - host: api.example.com\n        ports: [0]\n`, /agents\.demo\.network\[0\]\.ports\[0\]/);
    await rejects(`${V}agents:\n  demo:\n    network:\n      - host: api.example.com\n        paths: [repos/]\n`, /agents\.demo\.network\[0\]\.paths\[0\]: a path prefix starts with \//);
    await rejects(`${V}agents:\n  demo:\n    network:\n      - host: api.example.com\n        paths: ["/a*"]\n`, /agents\.demo\.network\[0\]\.paths\[0\]/);
    // zod reports an enum miss inside the union only as "agents.demo.network[0]: Invalid input".
    await rejects(`${V}agents:\n  demo:\n    network:\n      - host: api.example.com\n        methods: [CONNECT]\n`, /agents\.demo\.network\[0\]/);
    await rejects(`${V}agents:\n  demo:\n    network:\n      - host: api.example.com\n        port: 443\n`, /agents\.demo\.network\[0\]/);
  });

  test('unsafeAllowPrivate: a range that is not a CIDR, a bad host, an empty exception', async () => {
    await rejects(`${V}agents:\n  demo:\n    unsafeAllowPrivate:\n      ranges: [10.0.0.0/33, 10.1.0.0/16]\n`, /agents\.demo\.unsafeAllowPrivate\.ranges\[0\]: must be a CIDR range/);
    const many = await rejects(`${V}agents:\n  demo:\n    unsafeAllowPrivate:\n      ranges: [10.1.0.0/16, not-a-cidr, "10.0.0.1"]\n`, /agents\.demo\.unsafeAllowPrivate\.ranges\[1\]: must be a CIDR range/, /agents\.demo\.unsafeAllowPrivate\.ranges\[2\]: must be a CIDR range/);
    assert.doesNotMatch(many, /ranges\[0\]/);
    await rejects(`${V}agents:\n  demo:\n    unsafeAllowPrivate:\n      hosts: ["bad host"]\n`, /agents\.demo\.unsafeAllowPrivate\.hosts\[0\]: must be a host name/);
    await rejects(`${V}agents:\n  demo:\n    unsafeAllowPrivate: {}\n`, /bastion\.yaml:4:\d+: agents\.demo\.unsafeAllowPrivate: name at least one host or range/);
    await rejects(`${V}agents:\n  demo:\n    unsafeAllowPrivate:\n      hosts: []\n      ranges: []\n`, /agents\.demo\.unsafeAllowPrivate: name at least one host or range/);
    await rejects(`${V}agents:\n  demo:\n    unsafeAllowPrivate:\n      cidrs: [10.0.0.0/8]\n`, /agents\.demo\.unsafeAllowPrivate\.cidrs: unknown key/);
  });

  test('server.egress equal to server.listen; not an address', async () => {
    await rejects(`${V}server:\n  listen: 127.0.0.1:9000\n  egress: 127.0.0.1:9000\n`, /bastion\.yaml:4:\d+: server\.egress: must differ from server\.listen/);
    // The default egress address taken by listen.
    await rejects(`${V}server:\n  listen: 127.0.0.1:8791\n`, /server\.egress: must differ from server\.listen/);
    await rejects(`${V}server:\n  egress: nowhere\n`, /server\.egress/);
    await rejects(`${V}server:\n  egress: true\n`, /server\.egress/);
    // Both on ephemeral ports is fine.
    const c = await load(`${V}server:\n  listen: 127.0.0.1:0\n  egress: 127.0.0.1:0\n`);
    assert.deepEqual(c.server.egress, { host: '127.0.0.1', port: 0 });
  });

  test('egress.staticHosts: a non-IP address, a bad name, an empty list; other egress keys', async () => {
    await rejects(`${V}egress:\n  staticHosts:\n    api.example.com: [not-an-ip]\n`, /bastion\.yaml:4:\d+: egress\.staticHosts\["api\.example\.com"\]\[0\]/);
    await rejects(`${V}egress:\n  staticHosts:\n    api.example.com: ["10.0.0.256"]\n`, /egress\.staticHosts\["api\.example\.com"\]\[0\]/);
    await rejects(`${V}egress:\n  staticHosts:\n    api.example.com: ["[::1]"]\n`, /egress\.staticHosts\["api\.example\.com"\]\[0\]/);
    await rejects(`${V}egress:\n  staticHosts:\n    "bad host": [1.2.3.4]\n`, /egress\.staticHosts\["bad host"\]: bad name: must be a host name/);
    await rejects(`${V}egress:\n  staticHosts:\n    "*.example.com": [1.2.3.4]\n`, /egress\.staticHosts\["\*\.example\.com"\]: bad name/);
    await rejects(`${V}egress:\n  staticHosts:\n    api.example.com: []\n`, /egress\.staticHosts\["api\.example\.com"\]/);
    await rejects(`${V}egress:\n  intercept: some\n`, /egress\.intercept/);
    await rejects(`${V}egress:\n  dnsCacheMs: -1\n`, /egress\.dnsCacheMs/);
    await rejects(`${V}egress:\n  proxy: x\n`, /egress\.proxy: unknown key/);
  });

  test('secrets: bad names, bad hosts, unknown keys', async () => {
    await rejects(`${V}secrets:\n  "bad name": {}\n`, /secrets\["bad name"\]: bad name/);
    await rejects(`${V}secrets:\n  github:\n    hosts: ["not a host"]\n`, /secrets\.github\.hosts\[0\]: must be a host name/);
    await rejects(`${V}secrets:\n  github:\n    hosts: []\n`, /secrets\.github\.hosts/);
    await rejects(`${V}secrets:\n  github:\n    value: abc\n`, /secrets\.github\.value: unknown key/);
  });

  test('every problem is reported together, one line each', async () => {
    const msg = await rejects(
      `${V}agents:\n  demo:\n    secrets: [nope]\n    network: ["host:99999"]\n    unsafeAllowPrivate: {}\n`,
      /agents\.demo\.secrets\[0\]/,
      /agents\.demo\.network\[0\]/,
      /agents\.demo\.unsafeAllowPrivate:/,
    );
    assert.equal(msg.split('\n').length, 3);
  });
});

describe('egress config: the resolved form', () => {
  test('network rules: ids, default ports 80 and 443, shorthand ports, normalized hosts, deduplicated lists', async () => {
    const c = await load(
      `${V}agents:\n  demo:\n    network:\n` +
        `      - API.GitHub.com\n      - alt.example.com:8443\n      - "[2001:DB8::1]:8443"\n      - "*.Slack.com"\n` +
        `      - host: API.Example.com\n        ports: [443, 8443, 443]\n        methods: [GET, GET, POST]\n        paths: [/repos/, /v1]\n` +
        `      - "2001:db8::2"\n`,
    );
    assert.deepEqual(c.agents.get('demo')?.network, [
      { id: 'agents.demo.network[0]', host: 'api.github.com', ports: [80, 443] },
      { id: 'agents.demo.network[1]', host: 'alt.example.com', ports: [8443] },
      { id: 'agents.demo.network[2]', host: '2001:db8::1', ports: [8443] },
      { id: 'agents.demo.network[3]', host: '*.slack.com', ports: [80, 443] },
      { id: 'agents.demo.network[4]', host: 'api.example.com', ports: [443, 8443], methods: ['GET', 'POST'], paths: ['/repos/', '/v1'] },
      { id: 'agents.demo.network[5]', host: '2001:db8::2', ports: [80, 443] },
    ]);
  });

  test('an agent without network rules has none, and no unsafeAllowPrivate', async () => {
    const c = await load(`${V}agents:\n  demo: {}\n`);
    const demo = c.agents.get('demo');
    assert.deepEqual(demo?.network, []);
    assert.deepEqual(demo?.secrets, []);
    assert.equal(demo?.unsafeAllowPrivate, undefined);
    assert.equal(demo !== undefined && Object.hasOwn(demo, 'unsafeAllowPrivate'), false);
  });

  test('unsafeAllowPrivate: hosts normalized, ranges as written, missing list empty', async () => {
    const c = await load(`${V}agents:\n  a:\n    unsafeAllowPrivate:\n      hosts: [Internal.Example.com, "[FD00::1]"]\n  b:\n    unsafeAllowPrivate:\n      ranges: [10.1.0.0/16, "fd00:1::/64"]\n`);
    assert.deepEqual(c.agents.get('a')?.unsafeAllowPrivate, { hosts: ['internal.example.com', 'fd00::1'], ranges: [] });
    assert.deepEqual(c.agents.get('b')?.unsafeAllowPrivate, { hosts: [], ranges: ['10.1.0.0/16', 'fd00:1::/64'] });
  });

  test('secrets meta: name, normalized hosts and description when given', async () => {
    const c = await load(`${V}secrets:\n  github:\n    hosts: [API.GitHub.com, "*.GitHub.com"]\n    description: GitHub token\n  bare: {}\n`);
    assert.deepEqual(c.secrets.get('github'), { name: 'github', hosts: ['api.github.com', '*.github.com'], description: 'GitHub token' });
    assert.deepEqual(c.secrets.get('bare'), { name: 'bare' });
    assert.equal(c.secrets.size, 2);
  });

  test('vault.keyFile is absolute, relative to the config folder', async () => {
    const def = await load(V);
    assert.equal(def.vault.keyFile, join(def.dirForTest, '.bastion', 'master.key'));
    assert.equal(def.vault.rotationGraceMs, 24 * 3600_000);
    const rel = await load(`${V}vault:\n  keyFile: keys/kek\n  rotationGraceMs: 1000\n`);
    assert.equal(rel.vault.keyFile, join(rel.dirForTest, 'keys', 'kek'));
    assert.equal(rel.vault.rotationGraceMs, 1000);
    const abs = await load(`${V}vault:\n  keyFile: /var/lib/bastion/kek\n`);
    assert.equal(abs.vault.keyFile, '/var/lib/bastion/kek');
  });

  test('server.egress: default address, IPv6 without brackets, undefined when false', async () => {
    assert.deepEqual((await load(V)).server.egress, { host: '127.0.0.1', port: 8791 });
    assert.deepEqual((await load(`${V}server:\n  egress: "[::1]:9100"\n`)).server.egress, { host: '::1', port: 9100 });
    const off = await load(`${V}server:\n  egress: false\n`);
    assert.equal(off.server.egress, undefined);
  });

  test('egress: defaults, and staticHosts with normalized names and addresses', async () => {
    const def = await load(V);
    assert.equal(def.egress.intercept, 'auto');
    assert.equal(def.egress.dnsCacheMs, 5000);
    assert.deepEqual(def.egress.staticHosts, {});
    const c = await load(`${V}egress:\n  intercept: all\n  dnsCacheMs: 0\n  staticHosts:\n    API.Example.com: [93.184.215.14, "2001:DB8::1"]\n`);
    assert.equal(c.egress.intercept, 'all');
    assert.equal(c.egress.dnsCacheMs, 0);
    assert.deepEqual(c.egress.staticHosts, { 'api.example.com': ['93.184.215.14', '2001:db8::1'] });
  });

  test('the resolved network config is frozen', async () => {
    const c = await load(`${V}agents:\n  demo:\n    network: [api.example.com]\negress:\n  staticHosts:\n    a.example.com: [93.184.215.14]\n`);
    const rule = c.agents.get('demo')?.network[0];
    assert.ok(rule);
    assert.throws(() => {
      (rule.ports as number[]).push(22);
    }, TypeError);
    assert.throws(() => {
      (c.egress.staticHosts['a.example.com'] as string[]).push('10.0.0.1');
    }, TypeError);
  });
});
