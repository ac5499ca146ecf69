import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseEgressTarget } from '../../src/net/target.ts';

test('parseEgressTarget: http(s) only, port from the scheme, host normalized, dot segments resolved', () => {
  assert.deepEqual(parseEgressTarget('https://API.Example.COM./a/../b?q=1', 'POST'), { scheme: 'https', host: 'api.example.com', port: 443, method: 'POST', path: '/b' });
  assert.deepEqual(parseEgressTarget('http://[::1]:8080/'), { scheme: 'http', host: '::1', port: 8080, method: 'GET', path: '/' });
  assert.equal(parseEgressTarget('http://example.com:80/')?.port, 80);
  for (const bad of ['ftp://example.com/', 'file:///etc/passwd', 'javascript:alert(1)', 'http://', 'http://.example.com/', 'http://a..example.com/', 'not a url', '']) {
    assert.equal(parseEgressTarget(bad), undefined, bad);
  }
});

test('parseEgressTarget: never throws, and any target it returns has a non-empty host and a port in range', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.webUrl({ withQueryParameters: true, withFragments: true })), (input) => {
      const t = parseEgressTarget(input);
      if (t === undefined) return;
      assert.ok(t.host.length > 0 && !t.host.startsWith('.') && !t.host.includes('..'));
      assert.ok(Number.isInteger(t.port) && t.port >= 1 && t.port <= 65535);
      assert.ok(t.scheme === 'http' || t.scheme === 'https');
    }),
    { numRuns: 2000 },
  );
});
