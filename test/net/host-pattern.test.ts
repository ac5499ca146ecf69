/**
 * Host patterns of the network door (allowlists, secret host bindings,
 * unsafeAllowPrivate hosts): normalization, `*.domain` matching and the
 * `host[:port]` shorthand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hostMatches, hostMatchesAny, normalizeHost, splitHostPort } from '../../src/net/host-pattern.ts';

describe('normalizeHost', () => {
  test('lower-cases, removes one trailing dot and IPv6 brackets', () => {
    assert.equal(normalizeHost('API.GitHub.com'), 'api.github.com');
    assert.equal(normalizeHost('api.github.com.'), 'api.github.com');
    assert.equal(normalizeHost('api.github.com..'), 'api.github.com.');
    assert.equal(normalizeHost('[2001:DB8::1]'), '2001:db8::1');
    assert.equal(normalizeHost('2001:db8::1'), '2001:db8::1');
    assert.equal(normalizeHost('203.0.113.7'), '203.0.113.7');
    assert.equal(normalizeHost('*.Slack.COM.'), '*.slack.com');
    // A lone dot is not emptied.
    assert.equal(normalizeHost('.'), '.');
    // Brackets are removed only as a pair.
    assert.equal(normalizeHost('[2001:db8::1'), '[2001:db8::1');
    assert.equal(normalizeHost('2001:db8::1]'), '2001:db8::1]');
  });

  test('is idempotent (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'aZ09.-:[]*'.split('')), maxLength: 30 }), (h) => {
        const once = normalizeHost(h);
        // Idempotent except where a second trailing dot or a second bracket pair is peeled off.
        if (!once.endsWith('.') && !(once.startsWith('[') && once.endsWith(']'))) assert.equal(normalizeHost(once), once);
        assert.equal(once, once.toLowerCase());
      }),
    );
  });
});

describe('hostMatches', () => {
  test('*.slack.com matches names below slack.com at any depth, nothing else', () => {
    assert.equal(hostMatches('*.slack.com', 'a.slack.com'), true);
    assert.equal(hostMatches('*.slack.com', 'hooks.slack.com'), true);
    assert.equal(hostMatches('*.slack.com', 'a.b.slack.com'), true);
    assert.equal(hostMatches('*.slack.com', 'slack.com'), false);
    assert.equal(hostMatches('*.slack.com', 'evilslack.com'), false);
    assert.equal(hostMatches('*.slack.com', 'slack.com.evil.net'), false);
    assert.equal(hostMatches('*.slack.com', 'a.slack.com.evil.net'), false);
    assert.equal(hostMatches('*.slack.com', 'a.slack.co'), false);
    assert.equal(hostMatches('*.slack.com', '.slack.com'), false);
    assert.equal(hostMatches('*.slack.com', ''), false);
  });

  test('an exact pattern matches only that host', () => {
    assert.equal(hostMatches('api.github.com', 'api.github.com'), true);
    assert.equal(hostMatches('api.github.com', 'x.api.github.com'), false);
    assert.equal(hostMatches('api.github.com', 'github.com'), false);
    assert.equal(hostMatches('api.github.com', 'api.github.co'), false);
    assert.equal(hostMatches('api.github.com', 'api-github.com'), false);
  });

  test('case and one trailing dot do not matter, on either side', () => {
    assert.equal(hostMatches('API.GitHub.com', 'api.github.com'), true);
    assert.equal(hostMatches('api.github.com', 'API.GITHUB.COM.'), true);
    assert.equal(hostMatches('api.github.com.', 'api.github.com'), true);
    assert.equal(hostMatches('*.Slack.com', 'A.SLACK.COM.'), true);
    assert.equal(hostMatches('*.slack.com.', 'a.slack.com'), true);
    assert.equal(hostMatches('*.slack.com', 'SLACK.COM.'), false);
  });

  test('IPv6 literals match with or without brackets; IPv4 literals exactly', () => {
    assert.equal(hostMatches('[2001:db8::1]', '2001:db8::1'), true);
    assert.equal(hostMatches('2001:db8::1', '[2001:db8::1]'), true);
    assert.equal(hostMatches('[2001:DB8::1]', '[2001:db8::1]'), true);
    assert.equal(hostMatches('2001:db8::1', '2001:db8::2'), false);
    assert.equal(hostMatches('203.0.113.7', '203.0.113.7'), true);
    assert.equal(hostMatches('203.0.113.7', '203.0.113.70'), false);
    assert.equal(hostMatches('203.0.113.7', '1203.0.113.7'), false);
  });

  test('hostMatchesAny: any of the patterns; none for an empty list', () => {
    assert.equal(hostMatchesAny(['api.github.com', '*.slack.com'], 'x.slack.com'), true);
    assert.equal(hostMatchesAny(['api.github.com', '*.slack.com'], 'api.github.com'), true);
    assert.equal(hostMatchesAny(['api.github.com', '*.slack.com'], 'slack.com'), false);
    assert.equal(hostMatchesAny([], 'api.github.com'), false);
  });

  test('property: *.d matches x.d (any case, trailing dot) and never d itself nor a look-alike', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
    const sub = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join('.'));
    fc.assert(
      fc.property(domain, sub, label, fc.boolean(), (d, x, junk, dot) => {
        const pattern = `*.${d}`;
        assert.equal(hostMatches(pattern, `${x}.${d}`), true);
        assert.equal(hostMatches(pattern, `${x}.${d}`.toUpperCase() + (dot ? '.' : '')), true);
        assert.equal(hostMatches(pattern.toUpperCase(), `${x}.${d}`), true);
        assert.equal(hostMatches(pattern, d), false);
        assert.equal(hostMatches(pattern, `${d}.`), false);
        // Glued to the domain without a dot: not below it.
        assert.equal(hostMatches(pattern, `${junk}${d}`), false);
        // The domain as a prefix of another name: not below it.
        assert.equal(hostMatches(pattern, `${x}.${d}.${junk}x`), false);
      }),
    );
  });
});

describe('splitHostPort', () => {
  test('host, host:port, [v6]:port, [v6], bare v6', () => {
    assert.deepEqual(splitHostPort('api.github.com'), { host: 'api.github.com' });
    assert.deepEqual(splitHostPort('api.github.com:8443'), { host: 'api.github.com', port: 8443 });
    assert.deepEqual(splitHostPort('*.slack.com:443'), { host: '*.slack.com', port: 443 });
    assert.deepEqual(splitHostPort('203.0.113.7:1'), { host: '203.0.113.7', port: 1 });
    assert.deepEqual(splitHostPort('host:65535'), { host: 'host', port: 65535 });
    assert.deepEqual(splitHostPort('[2001:db8::1]:8443'), { host: '2001:db8::1', port: 8443 });
    assert.deepEqual(splitHostPort('[2001:db8::1]'), { host: '2001:db8::1' });
    assert.deepEqual(splitHostPort('2001:db8::1'), { host: '2001:db8::1' });
    assert.deepEqual(splitHostPort('::1'), { host: '::1' });
  });

  test('bad ports: 0, 65536, 99999, letters, empty, sign → undefined', () => {
    for (const bad of ['host:0', 'host:65536', 'host:99999', 'host:abc', 'host:', 'host:+80', 'host:-1', 'host:8 0', 'host:123456', 'host:80 ', 'host:8e1', 'host:0x50', '[2001:db8::1]:0', '[2001:db8::1]:65536']) {
      assert.equal(splitHostPort(bad), undefined, bad);
    }
  });

  test('text around a bracketed literal is never dropped: the whole text goes on to the host check', () => {
    for (const text of ['x[2001:db8::1]:8443', '[2001:db8::1]:8443x', '[2001:db8::1]x']) assert.deepEqual(splitHostPort(text), { host: text }, text);
  });

  test('property: host:port round-trips for every valid port; out-of-range ports are refused', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/), fc.integer({ min: 1, max: 65535 }), (h, p) => {
        assert.deepEqual(splitHostPort(`${h}:${p}`), { host: h, port: p });
        assert.deepEqual(splitHostPort(`[2001:db8::${p.toString(16)}]:${p}`), { host: `2001:db8::${p.toString(16)}`, port: p });
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 65536, max: 99999 }), (p) => {
        assert.equal(splitHostPort(`host:${p}`), undefined);
      }),
    );
  });
});
