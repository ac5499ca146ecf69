/**
 * PolicyEngine.authorize/explain beyond the plain decision: a decision that is
 * not an evaluation failure explains with no errors, a malformed request (a lone
 * surrogate, a non-string digest or session) is refused before Cedar sees it, the egress decision memo is reused and
 * bounded like the tool one, a host's entity carries its name only, and a
 * config rule Cedar's validator rejects is a compile error.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ResolvedNetworkRule } from '../../src/config/types.ts';
import { PolicyEngine, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig, throwsCode } from '../helpers/policy.ts';

function call(tool: string, extra: Partial<PolicyRequest> = {}): PolicyRequest {
  return { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: tool, upstream: tool.split('__')[0] ?? '' }, ...extra };
}

/** A network/request for agent `net` (GET https://<host>:443<path>). */
function egress(host: string, path = '/', upstream = ''): PolicyRequest {
  return { agent: 'net', action: 'network/request', resource: { kind: 'host', id: host, upstream }, egress: { port: 443, scheme: 'https', method: 'GET', path } };
}

const netRule: ResolvedNetworkRule = { id: 'agents.net.network[0]', host: '*.example.com', ports: [443] };

describe('PolicyEngine.explain: a decided request carries no evaluation errors', () => {
  const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['files__*'], deny: ['files__rm'], approve: ['files__mv'] } }));

  test('a forbid explains with no errors', () => {
    const e = engine.explain(call('files__rm'));
    assert.deepEqual({ effect: e.effect, reason: e.reason, rule: e.rule, errors: e.errors }, { effect: 'deny', reason: 'policy.forbid', rule: 'agents.demo.deny[0]', errors: [] });
  });

  test('an approval explains with no errors', () => {
    const e = engine.explain(call('files__mv'));
    assert.deepEqual({ effect: e.effect, reason: e.reason, rule: e.rule, errors: e.errors }, { effect: 'approve', reason: 'policy.approval', rule: 'agents.demo.approve[0]', errors: [] });
  });

  test('a default deny explains with no errors', () => {
    const e = engine.explain(call('git__push'));
    assert.deepEqual(e, { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny', policies: [], determining: [], errors: [] });
  });
});

describe('PolicyEngine: a malformed request is refused before Cedar sees it', () => {
  test('a tool name or upstream holding a lone surrogate is policy.invalid_request, as a network request\'s is', () => {
    const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['*'] } }));
    for (const req of [call('files__r\uD800'), { ...call('files__read'), resource: { kind: 'tool' as const, id: 'files__read', upstream: 'files\uDC00' } }]) {
      assert.deepEqual(engine.explain(req), { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [], determining: [], errors: [] });
      assert.deepEqual(engine.authorize(req), { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [] });
    }
  });

  test('argsDigest and session are strings or absent: an object is refused, never read by Cedar as an entity or extension call', () => {
    // Callers outside the types: `{__entity: …}` would otherwise reach Cedar as an entity reference.
    const text = 'permit (principal, action, resource) when { context.listing };';
    const engine = PolicyEngine.compile(policyConfig({ demo: {} }, [{ path: 'p.cedar', text }]));
    const escapes = [{ __entity: { type: 'Bastion::Agent', id: 'demo' } }, { __extn: { fn: 'nope', arg: '1' } }, 1.5, ['x']];
    for (const bad of escapes) {
      for (const field of ['argsDigest', 'session'] as const) {
        const req = call('files__read', { listing: true, [field]: bad as unknown as string });
        assert.deepEqual(engine.authorize(req), { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [] }, `${field}: ${JSON.stringify(bad)}`);
      }
    }
    assert.equal(engine.authorize(call('files__read', { listing: true, argsDigest: 'ab12', session: 's-1' })).effect, 'allow', 'strings are read as before');
  });

  test('a host\'s entity has only its name: the request\'s upstream field is not sent to Cedar for a host', () => {
    // An upstream Cedar would refuse (a lone surrogate) does not matter for a network request.
    const engine = PolicyEngine.compile(policyConfig({ net: { network: [netRule] } }));
    assert.deepEqual(engine.authorize(egress('a.example.com', '/', 'x\uD800')), { effect: 'allow', reason: 'policy.permit', rule: 'agents.net.network[0]/request', policies: ['agents.net.network[0]/request'] });
  });
});

describe('PolicyEngine: the egress decision memo', () => {
  // As for tool calls, the memo is observable only as identity: a memoized decision is the same object.
  test('a repeated egress request reuses the decision, and another one does not evict it', () => {
    const engine = PolicyEngine.compile(policyConfig({ net: { network: [netRule] } }));
    const first = engine.authorize(egress('a.example.com'));
    assert.equal(first.effect, 'allow');
    assert.equal(engine.authorize(egress('a.example.com')), first, 'memoized');
    const other = engine.authorize(egress('a.example.com', '/other'));
    assert.notEqual(other, first, 'the path is part of the key');
    assert.equal(engine.authorize(egress('a.example.com')), first, 'still memoized after another entry');
    assert.equal(engine.authorize(egress('a.example.com', '/other')), other);
  });

  test('an egress decision joins the same 10 000-entry memo and evicts its oldest entry when full', () => {
    // The filler agent has no policies: its (default-deny) decisions are the cheapest to make.
    const engine = PolicyEngine.compile(policyConfig({ net: { network: [netRule] }, demo: {} }));
    const first = engine.authorize(egress('a.example.com'));
    const second = engine.authorize(call('t__0'));
    for (let i = 1; i < 9_999; i++) engine.authorize(call(`t__${i}`));
    // full (1 egress + 9 999 tool decisions): the first is still there
    assert.equal(engine.authorize(egress('a.example.com')), first);
    // one more egress decision: the oldest (the first) is dropped, the next is kept
    engine.authorize(egress('b.example.com'));
    assert.equal(engine.authorize(call('t__0')), second);
    assert.notEqual(engine.authorize(egress('a.example.com')), first);
  });
});

describe('PolicyEngine.compile: a config-generated policy Cedar\'s validator rejects is a compile error', () => {
  test('a network rule with no ports is ERR_POLICY_INVALID (an empty set literal), not an engine that never allows', () => {
    const bad = { net: { network: [{ ...netRule, ports: [] }] } };
    // Cedar reports the two policies' errors in no fixed order.
    throwsCode(() => PolicyEngine.compile(policyConfig(bad)), 'ERR_POLICY_INVALID', /^config: agents\.net\.network\[0\]\/connect: .*empty set literals/m);
  });
});
