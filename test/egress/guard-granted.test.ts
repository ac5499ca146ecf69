/**
 * EgressGuard.checkGranted: the decision for an ability's own origin. The
 * agent's network policy is not asked (the ability is the grant), everything
 * else of `check` is: SSRF as written, static hosts, every resolved address
 * classified, and the agent's `unsafeAllowPrivate` (never for metadata).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { EgressGuard, type EgressTarget } from '../../src/egress/guard.ts';
import { parseEgressTarget } from '../../src/net/target.ts';
import type { Lookup } from '../../src/egress/ssrf-classify.ts';
import { PolicyEngine } from '../../src/policy/engine.ts';
import { tempDir } from '../helpers/gateway.ts';

const PUBLIC = '93.184.215.14';

async function guard(yaml: string, table: Record<string, readonly string[]>): Promise<{ guard: EgressGuard; calls: string[] }> {
  const file = join(tempDir(), 'bastion.yaml');
  writeFileSync(file, `version: 1\nserver:\n  listen: 127.0.0.1:0\n  egress: false\n${yaml}`);
  const config = (await loadConfig(file, { env: {}, secrets: 'lenient' })).config;
  const calls: string[] = [];
  const lookup: Lookup = async (host) => {
    calls.push(host);
    const a = table[host];
    if (a === undefined) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { guard: new EgressGuard(config, PolicyEngine.compile(config), { lookup }), calls };
}

function target(u: string): EgressTarget {
  const t = parseEgressTarget(u, 'GET');
  assert.ok(t);
  return t;
}

describe('EgressGuard.checkGranted', () => {
  const yaml = `egress:
  staticHosts: { api.internal.test: [10.0.0.5] }
agents:
  demo:
    network: []
  open:
    unsafeAllowPrivate: { ranges: [10.0.0.0/8] }
`;

  test('the agent\'s network list need not name the host: the grant decides, DNS is still checked', async () => {
    const h = await guard(yaml, { 'api.example.com': [PUBLIC] });
    assert.equal((await h.guard.check('demo', 'network/request', target('https://api.example.com/x'))).decision.reason, 'policy.no_permit');
    const v = await h.guard.checkGranted('demo', target('https://api.example.com/x'), 'abilities.x');
    assert.deepEqual(v.decision, { effect: 'allow', reason: 'egress.granted', rule: 'abilities.x' });
    assert.equal(v.address, PUBLIC);
    assert.equal(v.intercept, false);
    assert.deepEqual(h.calls, ['api.example.com']);
  });

  test('SSRF still applies: metadata, private literals and names resolving to private addresses', async () => {
    const h = await guard(yaml, { 'sneaky.example.com': ['127.0.0.1'] });
    for (const u of ['http://169.254.169.254/latest/meta-data/', 'http://10.1.2.3/', 'http://localhost/', 'http://[::1]/', 'https://sneaky.example.com/', 'https://api.internal.test/']) {
      const v = await h.guard.checkGranted('demo', target(u), 'abilities.x');
      assert.equal(v.decision.effect, 'deny', u);
      assert.match(v.decision.reason, /^ssrf\./, u);
      assert.equal(v.address, undefined);
    }
  });

  test('unsafeAllowPrivate and staticHosts apply; metadata stays closed', async () => {
    const h = await guard(yaml, {});
    const v = await h.guard.checkGranted('open', target('https://api.internal.test/v1'), 'abilities.x');
    assert.equal(v.decision.reason, 'egress.unsafe_allow_private');
    assert.equal(v.address, '10.0.0.5');
    assert.equal(v.exception, true);
    assert.deepEqual(h.calls, [], 'a static host is never looked up');
    assert.equal((await h.guard.checkGranted('open', target('http://169.254.169.254/'), 'abilities.x')).decision.effect, 'deny');
  });

  test('an unknown agent is refused', async () => {
    const h = await guard(yaml, { 'api.example.com': [PUBLIC] });
    assert.equal((await h.guard.checkGranted('nobody', target('https://api.example.com/'), 'abilities.x')).decision.reason, 'policy.unknown_agent');
  });
});
