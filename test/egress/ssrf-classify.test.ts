/**
 * The SSRF classifier against hand-written vectors the project owns
 * (test/egress/ssrf-vectors.json) and property tests; resolveAndClassify with stub
 * resolvers (no network here). The third-party SSRF corpus runs in
 * `npm run test:corpora` (test/corpora/ssrf-classify.corpus.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { classifyAddress, classifyTarget, resolveAndClassify, toTargetUrl } from '../../src/egress/ssrf-classify.ts';
import { verdictOf } from '../helpers/ssrf-verdict.ts';
import VECTORS_JSON from './ssrf-vectors.json' with { type: 'json' };

/** Hand-written vectors the project owns: an input, how it is written, and Bastion's verdict (`resolve`: decided after DNS). */
interface Vector {
  input: string;
  kind: 'url' | 'host' | 'ip';
  expect: 'allow' | 'block' | 'resolve';
  why: string;
}
const VECTORS = VECTORS_JSON as Vector[];

describe('owned vectors (test/egress/ssrf-vectors.json; the third-party corpus runs in npm run test:corpora)', () => {
  test('every vector gets its verdict: blocked ranges in every spelling, public addresses allowed, names resolved first', () => {
    assert.ok(VECTORS.length >= 50);
    const wrong = VECTORS.filter((v) => verdictOf({ input: v.input, input_kind: v.kind }) !== v.expect).map((v) => `${v.input} (${v.why}): expected ${v.expect}`);
    assert.deepEqual(wrong, []);
    for (const expect of ['allow', 'block', 'resolve'] as const) assert.ok(VECTORS.some((v) => v.expect === expect), expect);
  });
});

describe('classifyAddress', () => {
  test('names the range that matched, most specific first', () => {
    const cases: [string, string][] = [
      ['169.254.169.254', 'metadata'],
      ['169.254.1.1', 'link-local'],
      ['fd00:ec2::254', 'metadata'],
      ['fd12::1', 'unique-local'],
      ['127.0.0.1', 'loopback'],
      ['::1', 'loopback'],
      ['::ffff:127.0.0.1', 'ipv4-mapped'],
      ['::ffff:8.8.8.8', 'ipv4-mapped'],
      ['::7f00:1', 'ipv4-compatible'],
      ['64:ff9b::a00:1', 'nat64'],
      ['2002:7f00:1::', '6to4'],
      ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
      ['100.100.100.100', 'cgnat'],
      ['255.255.255.255', 'broadcast'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['fe80::1%eth0', 'zone'],
      ['8.8.8.8', 'global'],
      ['2606:4700:4700::1111', 'global'],
      ['0x7f.1', 'invalid'],
      ['127.1', 'invalid'],
      ['', 'invalid'],
    ];
    for (const [a, cls] of cases) assert.equal(classifyAddress(a).class, cls, a);
  });

  test('property: every address in a private, loopback, link-local or CGNAT range is refused, however written in IPv6', () => {
    const inside = fc.oneof(
      fc.tuple(fc.constant(10), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(127), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(172), fc.integer({ min: 16, max: 31 }), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(192), fc.constant(168), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(169), fc.constant(254), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(100), fc.integer({ min: 64, max: 127 }), fc.nat(255), fc.nat(255)),
    );
    fc.assert(
      fc.property(inside, ([a, b, c, d]) => {
        const v4 = `${a}.${b}.${c}.${d}`;
        const hex = (x: number, y: number): string => ((x << 8) | y).toString(16);
        for (const form of [v4, `::ffff:${v4}`, `::${v4}`, `64:ff9b::${v4}`, `2002:${hex(a, b)}:${hex(c, d)}::1`, `[::ffff:${v4}]`]) {
          assert.equal(classifyAddress(form).allowed, false, form);
        }
        for (const url of [`http://${v4}/`, `http://[::ffff:${v4}]/`, `https://${v4}:8443/x`, `http://${(a * 2 ** 24 + b * 2 ** 16 + c * 256 + d).toString()}/`]) {
          assert.equal(classifyTarget(url).verdict, 'deny', url);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('property: the classifiers never throw, and an allowed address is always of class global', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.ipV4(), fc.ipV6(), fc.ipV4Extended()), (s) => {
        const v = classifyAddress(s);
        if (v.allowed) assert.equal(v.class, 'global');
        classifyTarget(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('resolveAndClassify', () => {
  test('allows a name only when every address is global, and names the address to pin', async () => {
    const ok = await resolveAndClassify('example.test', async () => [
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ]);
    assert.equal(ok.allowed, true);
    assert.equal(ok.allowed && ok.address.address, '93.184.215.14');
    const rebinding = await resolveAndClassify('rebind.test', async () => [{ address: '93.184.215.14', family: 4 }, { address: '169.254.169.254', family: 4 }]);
    assert.deepEqual([rebinding.allowed, !rebinding.allowed && rebinding.reason], [false, 'address.metadata']);
    const none = await resolveAndClassify('none.test', async () => []);
    assert.deepEqual([none.allowed, !none.allowed && none.reason], [false, 'dns.no_address']);
    const failing = await resolveAndClassify('nx.test', async () => {
      throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    });
    assert.deepEqual([failing.allowed, !failing.allowed && failing.reason], [false, 'dns.unresolvable']);
  });
});

describe('every range of the table names itself (the audit record says which rule refused)', () => {
  test('one address inside each range gets the range\'s class and CIDR', () => {
    const cases: [string, string, string][] = [
      ['169.254.169.254', 'metadata', '169.254.169.254/32'],
      ['255.255.255.255', 'broadcast', '255.255.255.255/32'],
      ['0.0.0.0', 'unspecified', '0.0.0.0/32'],
      ['0.1.2.3', 'this-network', '0.0.0.0/8'],
      ['10.1.2.3', 'private', '10.0.0.0/8'],
      ['100.64.0.1', 'cgnat', '100.64.0.0/10'],
      ['127.0.0.1', 'loopback', '127.0.0.0/8'],
      ['169.254.1.1', 'link-local', '169.254.0.0/16'],
      ['172.16.0.1', 'private', '172.16.0.0/12'],
      ['192.0.0.8', 'ietf-protocol', '192.0.0.0/24'],
      ['192.0.2.1', 'documentation', '192.0.2.0/24'],
      ['192.88.99.1', '6to4-relay', '192.88.99.0/24'],
      ['192.168.1.1', 'private', '192.168.0.0/16'],
      ['198.19.0.1', 'benchmarking', '198.18.0.0/15'],
      ['198.51.100.1', 'documentation', '198.51.100.0/24'],
      ['203.0.113.1', 'documentation', '203.0.113.0/24'],
      ['239.1.1.1', 'multicast', '224.0.0.0/4'],
      ['250.1.1.1', 'reserved', '240.0.0.0/4'],
      ['::', 'unspecified', '::/128'],
      ['::1', 'loopback', '::1/128'],
      ['::ffff:1.2.3.4', 'ipv4-mapped', '::ffff:0:0/96'],
      ['::ffff:0:1.2.3.4', 'ipv4-translated', '::ffff:0:0:0/96'],
      ['::102:304', 'ipv4-compatible', '::/96'], // written in hex: ipaddr.js 2.5 reads '::1.2.3.4' as IPv4-mapped (refused either way)
      ['64:ff9b::1.2.3.4', 'nat64', '64:ff9b::/96'],
      ['64:ff9b:1::1', 'nat64', '64:ff9b:1::/48'],
      ['100::1', 'discard', '100::/64'],
      ['2001::1', 'teredo', '2001::/32'],
      ['2001:db8::1', 'documentation', '2001:db8::/32'],
      ['2001:100::1', 'ietf-protocol', '2001::/23'],
      ['2002:102:304::1', '6to4', '2002::/16'],
      ['3fff::1', 'documentation', '3fff::/20'],
      ['5f00::1', 'srv6', '5f00::/16'],
      ['fd00:ec2::254', 'metadata', 'fd00:ec2::254/128'],
      ['fc00::1', 'unique-local', 'fc00::/7'],
      ['fe80::1', 'link-local', 'fe80::/10'],
      ['fec0::1', 'site-local', 'fec0::/10'],
      ['ff02::1', 'multicast', 'ff00::/8'],
      ['4000::1', 'reserved', 'outside 2000::/3'],
    ];
    for (const [address, cls, range] of cases) {
      assert.deepEqual(classifyAddress(address), { address: classifyAddress(address).address, allowed: false, class: cls, range }, address);
    }
  });

  test('global addresses are allowed and named by their family\'s whole space; the canonical text is returned', () => {
    assert.deepEqual(classifyAddress('8.8.8.8'), { address: '8.8.8.8', allowed: true, class: 'global', range: '0.0.0.0/0' });
    assert.deepEqual(classifyAddress('[2606:4700:4700:0:0:0:0:1111]'), { address: '2606:4700:4700::1111', allowed: true, class: 'global', range: '2000::/3' });
    assert.deepEqual(classifyAddress('fe80::1%eth0'), { address: 'fe80::1%eth0', allowed: false, class: 'zone', range: 'scoped address (zone id)' });
    assert.deepEqual(classifyAddress('127.1'), { address: '127.1', allowed: false, class: 'invalid', range: 'not a canonical IP literal' });
    assert.deepEqual(classifyAddress(42 as unknown as string), { address: '', allowed: false, class: 'invalid', range: 'not a canonical IP literal' }, 'a non-string is invalid, not a throw');
    // Brackets are removed only as a pair.
    for (const half of ['8.8.8.8]', '[8.8.8.8', '[::1', '::1]']) assert.deepEqual(classifyAddress(half), { address: half, allowed: false, class: 'invalid', range: 'not a canonical IP literal' }, half);
  });
});

describe('classifyTarget', () => {
  test('refuses what is not an http(s) URL of a public host, with the reason', () => {
    const cases: [string, string][] = [
      ['', 'url.invalid'],
      [`http://a.example/${'x'.repeat(8192)}`, 'url.invalid'],
      ['http://[::1', 'url.invalid'],
      ['ftp://files.example.com/', 'url.scheme'],
      ['file:///etc/passwd', 'url.scheme'],
      ['http://localhost/', 'host.special'],
      ['http://LOCALHOST./', 'host.special'],
      ['http://metadata.google.internal/', 'host.special'],
      ['http://api.localhost/', 'host.special'],
      ['http://intranet/', 'host.single_label'],
      ['http://intranet./', 'host.single_label'],
      ['http://10.0.0.1/', 'address.private'],
      ['http://[fe80::1]/', 'address.link-local'],
    ];
    for (const [input, reason] of cases) {
      const v = classifyTarget(input);
      assert.equal(v.verdict === 'deny' && v.reason, reason, input);
    }
    assert.deepEqual(classifyTarget(8 as unknown as string), { verdict: 'deny', reason: 'url.invalid' }, 'a non-string is no URL (not http://8/)');
  });

  test('names that always mean this machine or a metadata service are refused, with or without a trailing dot, and below localhost', () => {
    const names = ['localhost', 'ip6-localhost', 'ip6-loopback', 'metadata', 'metadata.google.internal', 'instance-data', 'rancher-metadata', 'metadata.tencentyun.com', 'metadata.packet.net'];
    for (const name of names) {
      for (const input of [`http://${name}/`, `https://${name.toUpperCase()}./x`, `${name}:8080`]) {
        const v = classifyTarget(input);
        assert.equal(v.verdict === 'deny' && v.reason, 'host.special', input);
      }
    }
    assert.equal(classifyTarget('http://a.b.localhost/').verdict, 'deny');
    assert.equal(classifyTarget('http://localhost.example.com/').verdict, 'resolve');
  });

  test('a URL of 8192 characters is read, one more is refused', () => {
    const url = (n: number): string => { const head = 'https://a.example/'; return head + 'x'.repeat(n - head.length); };
    assert.equal(classifyTarget(url(8192)).verdict, 'resolve');
    assert.deepEqual(classifyTarget(url(8193)), { verdict: 'deny', reason: 'url.invalid' });
  });

  test('names are resolved on the default port of their scheme, or the port written; literals are allowed with theirs', () => {
    assert.deepEqual(classifyTarget('https://API.Example.com./x'), { verdict: 'resolve', host: 'api.example.com', port: 443 });
    assert.deepEqual(classifyTarget('http://api.example.com/x'), { verdict: 'resolve', host: 'api.example.com', port: 80 });
    assert.deepEqual(classifyTarget('api.example.com:8443'), { verdict: 'resolve', host: 'api.example.com', port: 8443 });
    assert.deepEqual(classifyTarget('api.example.com'), { verdict: 'resolve', host: 'api.example.com', port: 80 });
    const v4 = classifyTarget('https://8.8.8.8/');
    assert.deepEqual(v4.verdict === 'allow' && [v4.host, v4.port, v4.address.class], ['8.8.8.8', 443, 'global']);
    const v6 = classifyTarget('2606:4700:4700::1111');
    assert.deepEqual(v6.verdict === 'allow' && [v6.host, v6.port], ['[2606:4700:4700::1111]', 80]);
    const denied = classifyTarget('http://127.0.0.1:8080/');
    assert.deepEqual(denied.verdict === 'deny' && [denied.host, denied.address?.class], ['127.0.0.1', 'loopback']);
  });

  test('toTargetUrl: URLs pass through, bare hosts, host:port and IPv6 literals become http URLs', () => {
    assert.equal(toTargetUrl('https://a.example/x'), 'https://a.example/x');
    assert.equal(toTargetUrl('a.example'), 'http://a.example/');
    assert.equal(toTargetUrl('a.example:8443'), 'http://a.example:8443/');
    assert.equal(toTargetUrl('a.example:8443/x'), 'http://a.example:8443/x/');
    assert.equal(toTargetUrl('::1'), 'http://[::1]/');
    assert.equal(toTargetUrl('mailto:x@a.example'), 'mailto:x@a.example');
    assert.equal(toTargetUrl('1a.example:80'), 'http://1a.example:80/');
    // A scheme starts the input; a port follows the first authority, not a later one.
    assert.equal(toTargetUrl('1a.example/b:c'), 'http://1a.example/b:c/');
    assert.equal(toTargetUrl('https://a.example:8443/x'), 'https://a.example:8443/x');
  });
});

describe('resolveAndClassify: what a resolver answers', () => {
  test('every answer is classified and reported; a resolver that answers no list refuses', async () => {
    const mixed = await resolveAndClassify('mixed.test', async () => [{ address: '8.8.8.8', family: 4 }, { address: '10.0.0.1', family: 4 }]);
    assert.deepEqual(mixed.all.map((v) => v.class), ['global', 'private']);
    assert.deepEqual([mixed.allowed, mixed.host], [false, 'mixed.test']);
    const ok = await resolveAndClassify('ok.test', async () => [{ address: '8.8.4.4', family: 4 }]);
    assert.deepEqual(ok.allowed && [ok.host, ok.address.address, ok.all.length], ['ok.test', '8.8.4.4', 1]);
    const odd = await resolveAndClassify('odd.test', async () => ({ address: '8.8.8.8', family: 4 }) as unknown as []);
    assert.deepEqual(odd, { allowed: false, host: 'odd.test', reason: 'dns.no_address', all: [] });
    const nx = await resolveAndClassify('nx.test', async () => { throw new Error('ENOTFOUND'); });
    assert.deepEqual(nx, { allowed: false, host: 'nx.test', reason: 'dns.unresolvable', all: [] });
  });
});
