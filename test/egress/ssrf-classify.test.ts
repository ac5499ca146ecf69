/**
 * The SSRF classifier against hand-written vectors the project owns
 * (test/egress/ssrf-vectors.json) and property tests; resolveAndClassify with stub
 * resolvers (no network here). The third-party SSRF corpus runs in
 * `npm run test:corpora` (test/corpora/ssrf-classify.corpus.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { classifyAddress, classifyTarget, resolveAndClassify } from '../../src/egress/ssrf-classify.ts';
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
