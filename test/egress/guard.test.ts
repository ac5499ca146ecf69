/**
 * EgressGuard: the network door's decision on one destination (SSRF guard as
 * written → agent policy → DNS with every address classified), with an
 * injected resolver (no network; the default resolver's test replaces
 * dns.lookup) and configs loaded from temp YAML files.
 */
import assert from 'node:assert/strict';
import * as dnsPromises from 'node:dns/promises';
import { writeFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { ResolvedConfig } from '../../src/config/types.ts';
import { EgressGuard, type EgressTarget, type EgressVerdict } from '../../src/egress/guard.ts';
import { parseEgressTarget } from '../../src/net/target.ts';
import type { Lookup } from '../../src/egress/ssrf-classify.ts';
import { PolicyEngine } from '../../src/policy/engine.ts';
import { tempDir } from '../helpers/gateway.ts';

const PUBLIC = '93.184.215.14';
const PUBLIC2 = '93.184.215.15';

async function load(yaml: string, files: Record<string, string> = {}): Promise<ResolvedConfig> {
  const dir = tempDir(files);
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, `version: 1\nserver:\n  listen: 127.0.0.1:0\n  egress: false\n${yaml}`);
  return (await loadConfig(file, { env: {}, secrets: 'lenient' })).config;
}

/** A resolver answering from `table` (a name missing from it is an error; a test may change it), counting calls per name. */
function stubLookup(table: Record<string, readonly string[] | Error>): Lookup & { calls: string[]; table: Record<string, readonly string[] | Error> } {
  const calls: string[] = [];
  const fn: Lookup = async (host) => {
    calls.push(host);
    const a = table[host];
    if (a === undefined) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    if (a instanceof Error) throw a;
    return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls, table });
}

interface Harness {
  guard: EgressGuard;
  lookup: ReturnType<typeof stubLookup>;
  clock: { now: number };
}

async function harness(yaml: string, table: Record<string, readonly string[] | Error> = {}, files: Record<string, string> = {}): Promise<Harness> {
  const config = await load(yaml, files);
  const engine = PolicyEngine.compile(config);
  const lookup = stubLookup(table);
  const clock = { now: 1_000_000 };
  return { guard: new EgressGuard(config, engine, { lookup, now: () => clock.now }), lookup, clock };
}

function url(u: string, method = 'GET'): EgressTarget {
  const t = parseEgressTarget(u, method);
  assert.ok(t, `parses: ${u}`);
  return t;
}

function request(h: Harness, agent: string | undefined, u: string, method = 'GET'): Promise<EgressVerdict> {
  return h.guard.check(agent, 'network/request', url(u, method));
}

function connect(h: Harness, agent: string | undefined, host: string, port = 443): Promise<EgressVerdict> {
  return h.guard.check(agent, 'network/connect', { scheme: 'https', host, port, method: 'CONNECT', path: '' });
}

function assertDeny(v: EgressVerdict, reason: string): void {
  assert.equal(v.decision.effect, 'deny', `expected deny ${reason}, got ${JSON.stringify(v.decision)}`);
  assert.equal(v.decision.reason, reason);
  assert.equal(v.intercept, false);
  assert.equal(v.exception, false);
  assert.equal(v.address, undefined);
}

function assertAllow(v: EgressVerdict, address: string, reason = 'policy.permit'): void {
  assert.equal(v.decision.effect, 'allow', `expected allow, got ${JSON.stringify(v.decision)}`);
  assert.equal(v.decision.reason, reason);
  assert.equal(v.address, address);
}

/** `config` with agent `name`'s unsafeAllowPrivate replaced: lets a test hand the guard what validation would refuse. */
function withAllowance(config: ResolvedConfig, name: string, allowance: { hosts: string[]; ranges: string[] }): Pick<ResolvedConfig, 'agents' | 'egress'> {
  const agent = config.agents.get(name);
  assert.ok(agent, name);
  return { agents: new Map([...config.agents, [name, { ...agent, unsafeAllowPrivate: allowance }]]), egress: config.egress };
}

/**
 * Runs `fn` with `lookup` of node:dns/promises replaced by `fake`, the way the
 * guard's default resolver sees it (a live binding of the built-in module), so
 * no real DNS query is made.
 */
async function withDnsLookup<T>(fake: (host: string, options: unknown) => Promise<unknown>, fn: () => Promise<T>): Promise<T> {
  const dns = createRequire(import.meta.url)('node:dns/promises') as { lookup: unknown };
  const original = dns.lookup;
  dns.lookup = fake;
  syncBuiltinESMExports();
  try {
    assert.equal(dnsPromises.lookup, fake, 'the ESM binding follows the replacement');
    return await fn();
  } finally {
    dns.lookup = original;
    syncBuiltinESMExports();
  }
}

describe('EgressGuard.parseUrl', () => {
  test('scheme default ports, normalized host, WHATWG-normalized path', () => {
    assert.deepEqual(parseEgressTarget('https://API.Example.com./repos/x?q=1#f', 'POST'), { scheme: 'https', host: 'api.example.com', port: 443, method: 'POST', path: '/repos/x' });
    assert.deepEqual(parseEgressTarget('http://[2001:DB8::1]:8080/'), { scheme: 'http', host: '2001:db8::1', port: 8080, method: 'GET', path: '/' });
    assert.equal(parseEgressTarget('http://h')?.path, '/');
    assert.equal(parseEgressTarget('https://h/repos/../admin')?.path, '/admin');
    assert.equal(parseEgressTarget('https://h/repos/%2e%2e/admin')?.path, '/admin');
    assert.equal(parseEgressTarget('https://h/repos/%2E%2e/admin')?.path, '/admin');
    assert.equal(parseEgressTarget('https://h/repos/.%2e/admin')?.path, '/admin');
    assert.equal(parseEgressTarget('https://h/repos/./x/%2e/y')?.path, '/repos/x/y');
    assert.equal(parseEgressTarget('https://h/repos\\..\\admin')?.path, '/admin');
  });

  test('not http(s), or no host → undefined', () => {
    for (const bad of ['ftp://h/', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', '', 'http://', 'gopher://h/']) {
      assert.equal(parseEgressTarget(bad), undefined, bad);
    }
  });
});

describe('EgressGuard: order of checks', () => {
  const yaml = `agents:\n  demo:\n    network: [api.example.com]\n`;

  test('a host not in the allowlist is refused by policy before any DNS lookup', async () => {
    const h = await harness(yaml, { 'evil.example.net': [PUBLIC] });
    const v = await request(h, 'demo', 'https://evil.example.net/');
    assertDeny(v, 'policy.no_permit');
    assert.equal(v.decision.rule, 'default-deny');
    assert.deepEqual(v.addresses, []);
    assert.equal(h.lookup.calls.length, 0);
    // Also for CONNECT.
    assertDeny(await connect(h, 'demo', 'evil.example.net'), 'policy.no_permit');
    assert.equal(h.lookup.calls.length, 0);
  });

  test('an allowed name is resolved once and the checked address is the one to dial', async () => {
    const h = await harness(yaml, { 'api.example.com': [PUBLIC, PUBLIC2] });
    const v = await request(h, 'demo', 'https://api.example.com/x');
    assertAllow(v, PUBLIC);
    assert.equal(v.decision.rule, 'agents.demo.network[0]/request');
    assert.deepEqual(v.policies, ['agents.demo.network[0]/request']);
    assert.deepEqual(v.addresses, [PUBLIC, PUBLIC2]);
    assert.equal(v.exception, false);
    assert.deepEqual(h.lookup.calls, ['api.example.com']);
  });

  test('an unknown agent is refused; no agent means the SSRF guard alone', async () => {
    const h = await harness(yaml, { 'anything.example.org': [PUBLIC] });
    const unknown = await request(h, 'nobody', 'https://api.example.com/');
    assertDeny(unknown, 'policy.unknown_agent');
    assert.equal(unknown.decision.rule, 'agents');
    assert.deepEqual(unknown.addresses, []);
    assert.deepEqual(unknown.policies, []);
    assert.equal(h.lookup.calls.length, 0);
    const bare = await request(h, undefined, 'https://anything.example.org/whatever', 'DELETE');
    assertAllow(bare, PUBLIC, 'egress.allowed');
    assert.equal(bare.decision.rule, 'ssrf-guard');
    assert.deepEqual(bare.policies, []);
    assert.equal(bare.intercept, false);
    assert.equal(bare.exception, false);
    // ...which still refuses private targets.
    assertDeny(await request(h, undefined, 'http://10.0.0.1/'), 'ssrf.address.private');
    assertDeny(await request(h, undefined, 'http://localhost/'), 'ssrf.host.special');
    assertDeny(await request(h, undefined, 'http://intranet/'), 'ssrf.host.single_label');
  });

  test('an @approval permit cannot hold a connection: policy.approval_unsupported, before DNS', async () => {
    const config = await load(`agents:\n  demo: {}\npolicies: [./ask.cedar]\n`, {
      'ask.cedar': '@id("ask")\n@approval("required")\npermit (principal, action, resource is Bastion::Host) when { resource.name == "api.example.com" };\n',
    });
    const lookup = stubLookup({ 'api.example.com': [PUBLIC] });
    const guard = new EgressGuard(config, PolicyEngine.compile(config), { lookup });
    const v = await guard.check('demo', 'network/request', url('https://api.example.com/'));
    assertDeny(v, 'policy.approval_unsupported');
    assert.equal(v.decision.rule, 'ask');
    assertDeny(await guard.check('demo', 'network/connect', url('https://api.example.com/')), 'policy.approval_unsupported');
    assert.equal(lookup.calls.length, 0);
  });

  test('a failure inside the guard is a deny egress.error by rule guard, never a throw (check and checkGranted)', async () => {
    const config = await load(`agents:\n  demo:\n    network: ["10.1.2.3"]\n`);
    // A range validation would have refused: the guard throws when it parses it.
    const guard = new EgressGuard(withAllowance(config, 'demo', { hosts: [], ranges: ['not-a-cidr'] }), PolicyEngine.compile(config), { lookup: stubLookup({}) });
    const expected: EgressVerdict = { decision: { effect: 'deny', reason: 'egress.error', rule: 'guard' }, policies: [], intercept: false, addresses: [], exception: false };
    assert.deepEqual(await guard.check('demo', 'network/request', url('http://10.1.2.3/')), expected);
    assert.deepEqual(await guard.checkGranted('demo', url('http://10.1.2.3/'), 'abilities.x'), expected);
  });

  test('a resolver that throws synchronously is a deny, not a crash', async () => {
    const config = await load(yaml);
    const guard = new EgressGuard(config, PolicyEngine.compile(config), {
      lookup: () => {
        throw new Error('boom');
      },
    });
    const v = await guard.check('demo', 'network/request', url('https://api.example.com/'));
    assertDeny(v, 'ssrf.dns.unresolvable');
  });
});

describe('EgressGuard: literal addresses and unsafeAllowPrivate', () => {
  test('literal private, loopback, link-local, metadata addresses are refused with their class', async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["10.1.2.3", "127.0.0.1", "169.254.169.254", "[::1]", "[fd00:ec2::254]"]\n`);
    const cases: [string, string][] = [
      ['http://10.1.2.3/', 'ssrf.address.private'],
      ['http://127.0.0.1/', 'ssrf.address.loopback'],
      ['http://169.254.169.254/latest/meta-data/', 'ssrf.address.metadata'],
      ['http://169.254.1.1/', 'ssrf.address.link-local'],
      ['http://[::1]/', 'ssrf.address.loopback'],
      ['http://[fd00:ec2::254]/', 'ssrf.address.metadata'],
      ['http://[fd12::1]/', 'ssrf.address.unique-local'],
      ['http://0x7f000001/', 'ssrf.address.loopback'],
      ['http://[::ffff:10.1.2.3]/', 'ssrf.address.ipv4-mapped'],
      ['http://0.0.0.0/', 'ssrf.address.unspecified'],
    ];
    for (const [u, reason] of cases) {
      const v = await request(h, 'demo', u);
      assertDeny(v, reason);
      assert.equal(v.addresses.length, 1, u);
    }
    assert.equal(h.lookup.calls.length, 0);
  });

  test('a literal refused as written names its range and carries itself; a name refused as written names ssrf-guard and carries nothing', async () => {
    // The agent has unsafeAllowPrivate: a refusal it does not cover reads the same as without it.
    const h = await harness(`agents:\n  demo:\n    network: ["*.example.com"]\n    unsafeAllowPrivate:\n      hosts: [lan.example.com]\n`);
    const literal = await request(h, 'demo', 'http://10.1.2.3/');
    assertDeny(literal, 'ssrf.address.private');
    assert.equal(literal.decision.rule, '10.0.0.0/8');
    assert.deepEqual(literal.addresses, ['10.1.2.3']);
    assert.deepEqual(literal.policies, []);
    for (const [u, reason] of [
      ['http://localhost/', 'ssrf.host.special'],
      ['http://intranet/', 'ssrf.host.single_label'],
    ] as const) {
      const v = await request(h, 'demo', u);
      assertDeny(v, reason);
      assert.equal(v.decision.rule, 'ssrf-guard', u);
      assert.deepEqual(v.addresses, [], u);
      assert.deepEqual(v.policies, [], u);
    }
    assert.equal(h.lookup.calls.length, 0);
  });

  test('a global literal is allowed as written: no lookup, no exception, the literal is the address to dial', async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["${PUBLIC}", "[2606:4700::1]"]\n`);
    const v = await request(h, 'demo', `http://${PUBLIC}/`);
    assertAllow(v, PUBLIC);
    assert.equal(v.exception, false);
    assert.deepEqual(v.addresses, [PUBLIC]);
    assertAllow(await request(h, 'demo', 'https://[2606:4700::1]/'), '2606:4700::1');
    assertAllow(await request(h, undefined, `http://${PUBLIC}/`), PUBLIC, 'egress.allowed');
    assert.deepEqual(h.lookup.calls, []);
  });

  test("a literal one agent's ranges open stays refused for another agent, in either order", async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["10.1.2.3"]\n    unsafeAllowPrivate:\n      ranges: [10.1.0.0/16]\n  other:\n    network: ["10.1.2.3"]\n`);
    assertDeny(await request(h, 'other', 'http://10.1.2.3/'), 'ssrf.address.private');
    assertAllow(await request(h, 'demo', 'http://10.1.2.3/'), '10.1.2.3', 'egress.unsafe_allow_private');
    assertDeny(await request(h, 'other', 'http://10.1.2.3/'), 'ssrf.address.private');
  });

  test('ranges let a covered literal through (exception, audited reason); an uncovered one stays refused', async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["10.1.2.3", "10.2.0.1", "[fd00:1::5]"]\n    unsafeAllowPrivate:\n      ranges: [10.1.0.0/16, "fd00:1::/64"]\n`);
    const ok = await request(h, 'demo', 'http://10.1.2.3/x');
    assertAllow(ok, '10.1.2.3', 'egress.unsafe_allow_private');
    assert.equal(ok.exception, true);
    assert.equal(ok.decision.rule, 'agents.demo.network[0]/request');
    assert.deepEqual(ok.addresses, ['10.1.2.3']);
    const v6 = await request(h, 'demo', 'http://[fd00:1::5]/');
    assertAllow(v6, 'fd00:1::5', 'egress.unsafe_allow_private');
    assert.equal(v6.exception, true);
    // Outside the ranges.
    assertDeny(await request(h, 'demo', 'http://10.2.0.1/'), 'ssrf.address.private');
    assertDeny(await request(h, 'demo', 'http://127.0.0.1/'), 'ssrf.address.loopback');
    // Covered by a range but not in the allowlist: the policy still decides.
    assertDeny(await request(h, 'demo', 'http://10.1.9.9/'), 'policy.no_permit');
    // The exception is the agent's, not everyone's.
    assertDeny(await request(h, undefined, 'http://10.1.2.3/'), 'ssrf.address.private');
  });

  test('cloud metadata is refused even when a range covers it', async () => {
    const h = await harness(
      `agents:\n  demo:\n    network: ["169.254.169.254", "169.254.1.1", "[fd00:ec2::254]", meta.example.com]\n` +
        `    unsafeAllowPrivate:\n      hosts: [meta.example.com, "169.254.169.254", "169.254.1.1", "fd00:ec2::254"]\n      ranges: [169.254.0.0/16, "fd00::/8"]\n` +
        `egress:\n  staticHosts:\n    meta.example.com: [169.254.169.254]\n`,
    );
    assertDeny(await request(h, 'demo', 'http://169.254.169.254/latest/meta-data/'), 'ssrf.address.metadata');
    assertDeny(await request(h, 'demo', 'http://[fd00:ec2::254]/'), 'ssrf.address.metadata');
    assertDeny(await request(h, 'demo', 'http://meta.example.com/'), 'ssrf.address.metadata');
    // The rest of the range is open.
    const v = await request(h, 'demo', 'http://169.254.1.1/');
    assertAllow(v, '169.254.1.1', 'egress.unsafe_allow_private');
  });

  test('the unspecified address is never opened', async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["0.0.0.0", "[::]"]\n    unsafeAllowPrivate:\n      ranges: [0.0.0.0/0, "::/0"]\n`);
    assertDeny(await request(h, 'demo', 'http://0.0.0.0/'), 'ssrf.address.unspecified');
    assertDeny(await request(h, 'demo', 'http://[::]/'), 'ssrf.address.unspecified');
  });

  test('hosts open no unparsable, scoped (zone id), metadata or unspecified answer of a listed host', async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["*.example.com"]\n    unsafeAllowPrivate:\n      hosts: ["*.example.com"]\n`, {
      'odd.example.com': ['not-an-ip'],
      'scoped.example.com': ['fe80::1%eth0'],
      'meta.example.com': ['169.254.169.254'],
      'zero.example.com': ['0.0.0.0'],
      'lan.example.com': ['10.0.0.5'],
    });
    for (const [host, reason] of [
      ['odd.example.com', 'ssrf.address.invalid'],
      ['scoped.example.com', 'ssrf.address.zone'],
      ['meta.example.com', 'ssrf.address.metadata'],
      ['zero.example.com', 'ssrf.address.unspecified'],
    ] as const) {
      assertDeny(await request(h, 'demo', `https://${host}/`), reason);
    }
    // The same hosts entry does open a private address.
    assertAllow(await request(h, 'demo', 'https://lan.example.com/'), '10.0.0.5', 'egress.unsafe_allow_private');
  });

  test('with both hosts and ranges set, the host must match and the address be in a range', async () => {
    const h = await harness(
      `agents:\n  demo:\n    network: [internal.example.com, other.example.com, far.example.com, "10.1.2.3"]\n` +
        `    unsafeAllowPrivate:\n      hosts: [internal.example.com, far.example.com]\n      ranges: [10.1.0.0/16]\n` +
        `egress:\n  staticHosts:\n    internal.example.com: [10.1.2.3]\n    other.example.com: [10.1.2.3]\n    far.example.com: [10.2.0.1]\n`,
    );
    const ok = await request(h, 'demo', 'http://internal.example.com/');
    assertAllow(ok, '10.1.2.3', 'egress.unsafe_allow_private');
    assert.equal(ok.exception, true);
    // Host does not match.
    assertDeny(await request(h, 'demo', 'http://other.example.com/'), 'ssrf.address.private');
    // Address not in a range.
    assertDeny(await request(h, 'demo', 'http://far.example.com/'), 'ssrf.address.private');
    // A literal is its own host: not in hosts, so not covered.
    assertDeny(await request(h, 'demo', 'http://10.1.2.3/'), 'ssrf.address.private');
    assert.equal(h.lookup.calls.length, 0);
  });

  test('hosts alone: any private address of a listed host (wildcards too), nothing for other hosts', async () => {
    const h = await harness(
      `agents:\n  demo:\n    network: ["*.corp.example.com", pub.example.com]\n    unsafeAllowPrivate:\n      hosts: ["*.corp.example.com"]\n` +
        `egress:\n  staticHosts:\n    git.corp.example.com: [10.9.9.9]\n    pub.example.com: [192.168.1.1]\n`,
    );
    assertAllow(await request(h, 'demo', 'https://git.corp.example.com/'), '10.9.9.9', 'egress.unsafe_allow_private');
    assertDeny(await request(h, 'demo', 'https://pub.example.com/'), 'ssrf.address.private');
  });
});

describe('EgressGuard: DNS answers', () => {
  const yaml = `agents:\n  demo:\n    network: ["*.example.com"]\n    unsafeAllowPrivate:\n      hosts: [covered.example.com]\n`;

  test('a mixed answer (public + private) is refused, naming the private range', async () => {
    const h = await harness(yaml, { 'mixed.example.com': [PUBLIC, '10.0.0.5'], 'mixed6.example.com': ['2606:4700::1', 'fe80::1'] });
    const v = await request(h, 'demo', 'https://mixed.example.com/');
    assertDeny(v, 'ssrf.address.private');
    assert.equal(v.decision.rule, '10.0.0.0/8');
    assert.deepEqual(v.addresses, [PUBLIC, '10.0.0.5']);
    assertDeny(await request(h, 'demo', 'https://mixed6.example.com/'), 'ssrf.address.link-local');
  });

  test('a name resolving inside (rebinding) is refused; covered by unsafeAllowPrivate it is allowed with exception', async () => {
    const h = await harness(yaml, { 'rebind.example.com': ['127.0.0.1'], 'covered.example.com': [PUBLIC, '10.0.0.5'] });
    assertDeny(await request(h, 'demo', 'https://rebind.example.com/'), 'ssrf.address.loopback');
    const v = await request(h, 'demo', 'https://covered.example.com/');
    assertAllow(v, PUBLIC, 'egress.unsafe_allow_private');
    assert.equal(v.exception, true);
  });

  test('an answer mixing a private address the agent may reach with one it may not is refused, in either order (issue 11 §4)', async () => {
    const h = await harness(`agents:\n  demo:\n    network: ["*.example.com"]\n    unsafeAllowPrivate:\n      ranges: [10.0.0.0/8, "fd00:1::/64"]\n`, {
      'one-of-each.example.com': ['10.0.0.5', '192.168.1.1'],
      'other-way.example.com': ['192.168.1.1', '10.0.0.5'],
      'with-public.example.com': [PUBLIC, '10.0.0.5', '172.16.0.9'],
      'v6.example.com': ['fd00:1::5', 'fd00:2::5'],
      'loopback-too.example.com': ['10.0.0.5', '127.0.0.1'],
      'all-covered.example.com': ['10.0.0.5', '10.9.9.9'],
    });
    for (const [host, reason, rule] of [
      // The refusal names the class of the address not covered, not the first refused one.
      ['loopback-too.example.com', 'ssrf.address.loopback', '127.0.0.0/8'],
      ['one-of-each.example.com', 'ssrf.address.private', '192.168.0.0/16'],
      ['other-way.example.com', 'ssrf.address.private', '192.168.0.0/16'],
      ['with-public.example.com', 'ssrf.address.private', '172.16.0.0/12'],
      ['v6.example.com', 'ssrf.address.unique-local', 'fc00::/7'],
    ] as const) {
      const v = await request(h, 'demo', `https://${host}/`);
      assertDeny(v, reason);
      assert.equal(v.decision.rule, rule, host);
    }
    // Every private address covered: allowed, as an exception, dialling the first.
    const ok = await request(h, 'demo', 'https://all-covered.example.com/');
    assertAllow(ok, '10.0.0.5', 'egress.unsafe_allow_private');
    assert.equal(ok.exception, true);
  });

  test('a resolver error → ssrf.dns.unresolvable; an empty answer → ssrf.dns.no_address', async () => {
    const h = await harness(yaml, { 'gone.example.com': new Error('ENOTFOUND'), 'empty.example.com': [] });
    const gone = await request(h, 'demo', 'https://gone.example.com/');
    assertDeny(gone, 'ssrf.dns.unresolvable');
    assert.equal(gone.decision.rule, 'dns');
    assert.deepEqual(gone.addresses, []);
    // The policy permitted; the refusal still says which permit it overrode.
    assert.deepEqual(gone.policies, ['agents.demo.network[0]/request']);
    const empty = await request(h, 'demo', 'https://empty.example.com/');
    assertDeny(empty, 'ssrf.dns.no_address');
    assert.equal(empty.decision.rule, 'dns');
  });

  test('an answer that is not an IP literal is refused', async () => {
    const h = await harness(yaml, { 'odd.example.com': ['not-an-ip'] });
    assertDeny(await request(h, 'demo', 'https://odd.example.com/'), 'ssrf.address.invalid');
  });
});

describe('EgressGuard: egress.staticHosts', () => {
  test('are used instead of the resolver and still classified', async () => {
    const h = await harness(
      `agents:\n  demo:\n    network: [api.example.com, local.example.com, six.example.com]\n` +
        `egress:\n  staticHosts:\n    API.example.com: [${PUBLIC}]\n    local.example.com: [127.0.0.1]\n    six.example.com: ["2606:4700::1"]\n`,
      { 'api.example.com': ['10.0.0.1'], 'local.example.com': [PUBLIC] },
    );
    const v = await request(h, 'demo', 'https://api.example.com/');
    assertAllow(v, PUBLIC);
    assert.deepEqual(v.addresses, [PUBLIC]);
    assertAllow(await request(h, 'demo', 'https://six.example.com/'), '2606:4700::1');
    assertDeny(await request(h, 'demo', 'https://local.example.com/'), 'ssrf.address.loopback');
    assert.deepEqual(h.lookup.calls, []);
  });

  test('a static private address needs unsafeAllowPrivate', async () => {
    const h = await harness(
      `agents:\n  demo:\n    network: [local.example.com]\n    unsafeAllowPrivate:\n      hosts: [local.example.com]\n  other:\n    network: [local.example.com]\n` +
        `egress:\n  staticHosts:\n    local.example.com: [127.0.0.1]\n`,
    );
    const v = await request(h, 'demo', 'http://local.example.com/');
    assertAllow(v, '127.0.0.1', 'egress.unsafe_allow_private');
    assert.equal(v.exception, true);
    assertDeny(await request(h, 'other', 'http://local.example.com/'), 'ssrf.address.loopback');
    assert.deepEqual(h.lookup.calls, []);
  });
});

describe('EgressGuard: DNS cache', () => {
  const net = `agents:\n  demo:\n    network: ["*.example.com"]\n`;

  test('two checks within dnsCacheMs do one lookup; after it expires, another', async () => {
    const h = await harness(`${net}egress:\n  dnsCacheMs: 5000\n`, { 'a.example.com': [PUBLIC] });
    assertAllow(await request(h, 'demo', 'https://a.example.com/1'), PUBLIC);
    h.clock.now += 4999;
    assertAllow(await request(h, 'demo', 'https://a.example.com/2'), PUBLIC);
    assert.equal(h.lookup.calls.length, 1);
    h.clock.now += 1;
    assertAllow(await request(h, 'demo', 'https://a.example.com/3'), PUBLIC);
    assert.equal(h.lookup.calls.length, 2);
  });

  test('concurrent checks share one lookup', async () => {
    const h = await harness(`${net}egress:\n  dnsCacheMs: 5000\n`, { 'a.example.com': [PUBLIC] });
    const vs = await Promise.all([1, 2, 3].map((i) => request(h, 'demo', `https://a.example.com/${i}`)));
    for (const v of vs) assertAllow(v, PUBLIC);
    assert.equal(h.lookup.calls.length, 1);
  });

  test('dnsCacheMs: 0 looks up every time, even when the clock steps back', async () => {
    const h = await harness(`${net}egress:\n  dnsCacheMs: 0\n`, { 'a.example.com': [PUBLIC] });
    await request(h, 'demo', 'https://a.example.com/');
    await request(h, 'demo', 'https://a.example.com/');
    assert.equal(h.lookup.calls.length, 2);
    // Date.now() can step back (a clock adjustment): nothing was kept to reuse.
    h.clock.now -= 1000;
    await request(h, 'demo', 'https://a.example.com/');
    assert.equal(h.lookup.calls.length, 3);
  });

  test('a failed lookup is not cached', async () => {
    let fail = true;
    const config = await load(`${net}egress:\n  dnsCacheMs: 60000\n`);
    let calls = 0;
    const guard = new EgressGuard(config, PolicyEngine.compile(config), {
      lookup: async () => {
        calls++;
        if (fail) throw new Error('SERVFAIL');
        return [{ address: PUBLIC, family: 4 }];
      },
    });
    assertDeny(await guard.check('demo', 'network/request', url('https://a.example.com/')), 'ssrf.dns.unresolvable');
    fail = false;
    assertAllow(await guard.check('demo', 'network/request', url('https://a.example.com/')), PUBLIC);
    assertAllow(await guard.check('demo', 'network/request', url('https://a.example.com/')), PUBLIC);
    assert.equal(calls, 2);
  });

  test('an answer is reused for dnsCacheMs from its lookup, whichever agent asks (no verdict outlives it)', async () => {
    const h = await harness(`agents:\n  a:\n    network: ["*.example.com"]\n  b:\n    network: ["*.example.com"]\negress:\n  dnsCacheMs: 5000\n`, { 'moving.example.com': [PUBLIC] });
    assertAllow(await request(h, 'a', 'https://moving.example.com/'), PUBLIC);
    h.clock.now += 3000;
    assertAllow(await request(h, 'b', 'https://moving.example.com/'), PUBLIC);
    assert.equal(h.lookup.calls.length, 1);
    // The name moves inside; the answer from the first lookup is now 5000 ms old.
    h.lookup.table['moving.example.com'] = ['10.0.0.1'];
    h.clock.now += 2000;
    const v = await request(h, 'b', 'https://moving.example.com/');
    assertDeny(v, 'ssrf.address.private');
    assert.deepEqual(h.lookup.calls, ['moving.example.com', 'moving.example.com']);
  });

  test('the cache is per name', async () => {
    const h = await harness(`${net}egress:\n  dnsCacheMs: 5000\n`, { 'a.example.com': [PUBLIC], 'b.example.com': ['10.0.0.1'] });
    assertAllow(await request(h, 'demo', 'https://a.example.com/'), PUBLIC);
    assertDeny(await request(h, 'demo', 'https://b.example.com/'), 'ssrf.address.private');
    assertAllow(await request(h, 'demo', 'https://a.example.com/'), PUBLIC);
    assert.deepEqual(h.lookup.calls, ['a.example.com', 'b.example.com']);
  });

  test('at most 10 000 answers are kept; the oldest is dropped first', async () => {
    const config = await load(`egress:\n  dnsCacheMs: 60000\n`);
    const calls: string[] = [];
    const guard = new EgressGuard(config, PolicyEngine.compile(config), {
      lookup: async (host) => {
        calls.push(host);
        return [{ address: PUBLIC, family: 4 }];
      },
      now: () => 1_000_000,
    });
    const name = (i: number): EgressTarget => ({ scheme: 'https', host: `n${i}.example.com`, port: 443, method: 'GET', path: '/' });
    for (let i = 0; i <= 10_000; i++) await guard.check(undefined, 'network/request', name(i));
    assert.equal(calls.length, 10_001);
    await guard.check(undefined, 'network/request', name(1));
    assert.equal(calls.length, 10_001, 'the second-oldest is kept');
    await guard.check(undefined, 'network/request', name(0));
    assert.deepEqual(calls.slice(10_001), ['n0.example.com'], 'the oldest was dropped');
  });
});

describe('EgressGuard: the system resolver', () => {
  test('without an injected resolver, dns.lookup is asked for every address in its own order (all, verbatim)', async () => {
    const config = await load(`agents:\n  demo:\n    network: [api.example.com]\n`);
    const asked: unknown[] = [];
    const v = await withDnsLookup(
      async (host, options) => {
        asked.push([host, options]);
        return [
          { address: '2606:4700::1', family: 6 },
          { address: PUBLIC, family: 4 },
        ];
      },
      () => new EgressGuard(config, PolicyEngine.compile(config)).check('demo', 'network/request', url('https://api.example.com/')),
    );
    assert.deepEqual(asked, [['api.example.com', { all: true, verbatim: true }]]);
    assertAllow(v, '2606:4700::1');
    assert.deepEqual(v.addresses, ['2606:4700::1', PUBLIC]);
  });
});

describe('EgressGuard.checkGranted: an ability grants its origin, the SSRF guard still decides', () => {
  const yaml =
    `agents:\n  demo:\n    unsafeAllowPrivate:\n      hosts: [lan.example.com]\n` +
    `egress:\n  staticHosts:\n    lan.example.com: [10.0.0.5]\n    inside.example.com: [127.0.0.1]\n`;

  test("allowed without asking the agent's network policy, naming the grant", async () => {
    const h = await harness(yaml, { 'api.example.com': [PUBLIC] });
    const v = await h.guard.checkGranted('demo', url('https://api.example.com/v1/x', 'POST'), 'abilities.weather');
    assert.deepEqual(v, {
      decision: { effect: 'allow', reason: 'egress.granted', rule: 'abilities.weather' },
      policies: [],
      intercept: false,
      address: PUBLIC,
      addresses: [PUBLIC],
      exception: false,
    });
    // The same target through the network door: demo has no network rule.
    assertDeny(await request(h, 'demo', 'https://api.example.com/v1/x', 'POST'), 'policy.no_permit');
  });

  test("the agent's unsafeAllowPrivate applies and is audited under the grant's rule", async () => {
    const h = await harness(yaml);
    const v = await h.guard.checkGranted('demo', url('http://lan.example.com/'), 'abilities.lan');
    assertAllow(v, '10.0.0.5', 'egress.unsafe_allow_private');
    assert.equal(v.decision.rule, 'abilities.lan');
    assert.equal(v.exception, true);
  });

  test('refused as written, by its answer, or for an unknown agent', async () => {
    const h = await harness(yaml);
    assertDeny(await h.guard.checkGranted('demo', url('http://10.0.0.1/'), 'abilities.x'), 'ssrf.address.private');
    assertDeny(await h.guard.checkGranted('demo', url('http://inside.example.com/'), 'abilities.x'), 'ssrf.address.loopback');
    const unknown = await h.guard.checkGranted('nobody', url('https://api.example.com/'), 'abilities.x');
    assertDeny(unknown, 'policy.unknown_agent');
    assert.equal(unknown.decision.rule, 'agents');
    assert.deepEqual(h.lookup.calls, []);
  });
});

describe('EgressGuard: intercept, ports, methods and paths', () => {
  const table = { 'api.example.com': [PUBLIC], 'plain.example.com': [PUBLIC], 'both.example.com': [PUBLIC], 'alt.example.com': [PUBLIC], 'v1.example.com': [PUBLIC] };
  const yaml =
    `agents:\n  demo:\n    network:\n` +
    `      - host: api.example.com\n        methods: [GET, POST]\n        paths: [/repos/]\n` +
    `      - plain.example.com\n` +
    `      - both.example.com\n      - host: both.example.com\n        methods: [GET]\n` +
    `      - alt.example.com:8443\n` +
    `      - host: v1.example.com\n        paths: [/v1]\n`;

  test('intercept: required by a methods/paths rule, not by a plain host rule, not when a plain rule also matches', async () => {
    const h = await harness(yaml, table);
    const api = await connect(h, 'demo', 'api.example.com');
    assertAllow(api, PUBLIC);
    assert.equal(api.intercept, true);
    assert.deepEqual(api.policies, ['agents.demo.network[0]/connect']);
    const v1 = await connect(h, 'demo', 'v1.example.com');
    assert.equal(v1.intercept, true);
    const plain = await connect(h, 'demo', 'plain.example.com');
    assertAllow(plain, PUBLIC);
    assert.equal(plain.intercept, false);
    const both = await connect(h, 'demo', 'both.example.com');
    assertAllow(both, PUBLIC);
    assert.equal(both.intercept, false);
    assert.deepEqual([...both.policies].sort(), ['agents.demo.network[2]/connect', 'agents.demo.network[3]/connect']);
    // intercept is about tunnels: a request verdict never carries it.
    assert.equal((await request(h, 'demo', 'https://api.example.com/repos/x')).intercept, false);
  });

  test('ports: 80 and 443 by default; host:8443 allows only 8443', async () => {
    const h = await harness(yaml, table);
    assertAllow(await request(h, 'demo', 'http://plain.example.com/'), PUBLIC);
    assertAllow(await request(h, 'demo', 'https://plain.example.com/'), PUBLIC);
    assertDeny(await request(h, 'demo', 'https://plain.example.com:8443/'), 'policy.no_permit');
    assertDeny(await request(h, 'demo', 'http://plain.example.com:8080/'), 'policy.no_permit');
    assertDeny(await connect(h, 'demo', 'plain.example.com', 22), 'policy.no_permit');
    assertAllow(await request(h, 'demo', 'https://alt.example.com:8443/'), PUBLIC);
    assertAllow(await connect(h, 'demo', 'alt.example.com', 8443), PUBLIC);
    assertDeny(await request(h, 'demo', 'https://alt.example.com/'), 'policy.no_permit');
    assertDeny(await connect(h, 'demo', 'alt.example.com', 443), 'policy.no_permit');
    assertDeny(await request(h, 'demo', 'http://alt.example.com/'), 'policy.no_permit');
  });

  test('methods: listed ones only; plain rules allow any', async () => {
    const h = await harness(yaml, table);
    assertAllow(await request(h, 'demo', 'https://api.example.com/repos/x', 'GET'), PUBLIC);
    assertAllow(await request(h, 'demo', 'https://api.example.com/repos/x', 'POST'), PUBLIC);
    assertDeny(await request(h, 'demo', 'https://api.example.com/repos/x', 'DELETE'), 'policy.no_permit');
    assertDeny(await request(h, 'demo', 'https://api.example.com/repos/x', 'PUT'), 'policy.no_permit');
    assertAllow(await request(h, 'demo', 'https://plain.example.com/anything', 'DELETE'), PUBLIC);
    // both.example.com: the plain rule allows what the methods rule does not.
    assertAllow(await request(h, 'demo', 'https://both.example.com/', 'DELETE'), PUBLIC);
  });

  test('path prefix ending in /: below it only', async () => {
    const h = await harness(yaml, table);
    assertAllow(await request(h, 'demo', 'https://api.example.com/repos/x'), PUBLIC);
    assertAllow(await request(h, 'demo', 'https://api.example.com/repos/'), PUBLIC);
    assertAllow(await request(h, 'demo', 'https://api.example.com/repos/a/b/c?x=/admin'), PUBLIC);
    for (const p of ['/reposx', '/repos', '/admin', '/', '/REPOS/x', '/x/repos/']) {
      assertDeny(await request(h, 'demo', `https://api.example.com${p}`), 'policy.no_permit');
    }
  });

  test('path prefix without trailing /: itself and below <prefix>/, not a longer name', async () => {
    const h = await harness(yaml, table);
    assertAllow(await request(h, 'demo', 'https://v1.example.com/v1'), PUBLIC);
    assertAllow(await request(h, 'demo', 'https://v1.example.com/v1/'), PUBLIC);
    assertAllow(await request(h, 'demo', 'https://v1.example.com/v1/x'), PUBLIC);
    assertDeny(await request(h, 'demo', 'https://v1.example.com/v1x'), 'policy.no_permit');
    assertDeny(await request(h, 'demo', 'https://v1.example.com/v2'), 'policy.no_permit');
  });

  test('dot segments are resolved before the path is matched', async () => {
    const h = await harness(yaml, table);
    for (const u of ['https://api.example.com/repos/../admin', 'https://api.example.com/repos/%2e%2e/admin', 'https://api.example.com/repos/.%2E/admin', 'https://api.example.com/repos\\..\\admin']) {
      const t = url(u);
      assert.equal(t.path, '/admin', u);
      assertDeny(await h.guard.check('demo', 'network/request', t), 'policy.no_permit');
    }
    assertAllow(await request(h, 'demo', 'https://api.example.com/repos/x/../y'), PUBLIC);
  });

  test('a tunnel is put to the policy as method CONNECT with path "", whatever the target carries', async () => {
    const h = await harness(`agents:\n  demo: {}\npolicies: [./egress.cedar]\n`, { 'api.example.com': [PUBLIC] }, {
      'egress.cedar':
        '@id("tunnel")\npermit (principal, action == Bastion::Action::"network/connect", resource) when { context.method == "CONNECT" && context.path == "" };\n' +
        '@id("get-x")\npermit (principal, action == Bastion::Action::"network/request", resource) when { context.method == "GET" && context.path == "/repos/x" };\n',
    });
    const target = url('https://api.example.com/repos/x', 'GET');
    const tunnel = await h.guard.check('demo', 'network/connect', target);
    assertAllow(tunnel, PUBLIC);
    assert.equal(tunnel.decision.rule, 'tunnel');
    assert.deepEqual(tunnel.policies, ['tunnel']);
    // The same target as a request is put as it is.
    const req = await h.guard.check('demo', 'network/request', target);
    assertAllow(req, PUBLIC);
    assert.equal(req.decision.rule, 'get-x');
  });
});
