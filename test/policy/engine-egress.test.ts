/**
 * The policy engine's egress validation and combining algorithm (`#egress`,
 * `#decide`): exact decisions, reasons, rules and policies named, the context
 * each kind of request sees, and the order policies are reported in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ResolvedNetworkRule } from '../../src/config/types.ts';
import { PolicyEngine, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig } from '../helpers/policy.ts';

/** Network rules for agent `demo`, ids as the config loader makes them. */
function rules(list: Omit<ResolvedNetworkRule, 'id'>[]): ResolvedNetworkRule[] {
  return list.map((r, i) => ({ id: `agents.demo.network[${i}]`, ...r }));
}

function req(host: string, egress: Partial<Record<'port' | 'scheme' | 'method' | 'path', unknown>> = {}): PolicyRequest {
  return {
    agent: 'demo',
    action: 'network/request',
    resource: { kind: 'host', id: host, upstream: '' },
    egress: { port: 443, scheme: 'https', method: 'GET', path: '/', ...egress } as PolicyRequest['egress'],
  };
}

function call(tool: string, extra: Partial<PolicyRequest> = {}): PolicyRequest {
  return { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: tool, upstream: tool.split('__')[0] ?? '' }, ...extra };
}

const INVALID = { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [] };

describe('PolicyEngine: egress request validation', () => {
  const engine = PolicyEngine.compile(policyConfig({ demo: { network: rules([{ host: 'edge.example.com', ports: [1, 65535] }]) } }));

  test('ports 1 and 65535 are valid and decided by the rules; 0 and 65536 are invalid requests', () => {
    // Protects the bounds `port < 1` / `port > 65535` (not <= / >=).
    for (const port of [1, 65535]) {
      assert.deepEqual(engine.authorize(req('edge.example.com', { port })), { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.network[0]/request', policies: ['agents.demo.network[0]/request'] }, String(port));
    }
    for (const port of [0, 65536]) assert.deepEqual(engine.authorize(req('edge.example.com', { port })), INVALID, String(port));
  });

  test('a non-string method or path is an invalid request, not a Cedar error', () => {
    // Protects the `typeof method/path !== 'string'` checks: without them the request reaches Cedar or throws (policy.error).
    assert.deepEqual(engine.authorize(req('edge.example.com', { port: 1, method: 7 })), INVALID);
    assert.deepEqual(engine.authorize(req('edge.example.com', { port: 1, path: 7 })), INVALID);
  });

  test('an invalid request explains with no evaluation errors', () => {
    const e = engine.explain(req('edge.example.com', { port: 0 }));
    assert.deepEqual({ effect: e.effect, reason: e.reason, rule: e.rule, policies: e.policies, determining: e.determining, errors: e.errors }, { ...INVALID, determining: [], errors: [] });
  });
});

describe('PolicyEngine: the context each request sees', () => {
  test('an egress request sees listing false and empty upstream, argsDigest and session', () => {
    // Protects the egress context literal: any forbid below firing means a field leaked a non-default value.
    const text =
      '@id("egress-listing")\nforbid (principal, action == Bastion::Action::"network/request", resource) when { context.listing };\n' +
      '@id("egress-upstream")\nforbid (principal, action == Bastion::Action::"network/request", resource) when { context.upstream != "" };\n' +
      '@id("egress-digest")\nforbid (principal, action == Bastion::Action::"network/request", resource) when { context.argsDigest != "" };\n' +
      '@id("egress-session")\nforbid (principal, action == Bastion::Action::"network/request", resource) when { context.session != "" };\n';
    const engine = PolicyEngine.compile(policyConfig({ demo: { network: rules([{ host: 'ok.example.com', ports: [443] }]) } }, [{ path: '/p/egress.cedar', text }]));
    assert.deepEqual(engine.authorize(req('ok.example.com')), { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.network[0]/request', policies: ['agents.demo.network[0]/request'] });
  });

  const text =
    '@id("digest-d1")\nforbid (principal, action == Bastion::Action::"tools/call", resource) when { context.argsDigest == "d1" };\n' +
    '@id("session-s1")\nforbid (principal, action == Bastion::Action::"tools/call", resource) when { context.session == "s1" };\n' +
    '@id("bare-call")\n@approval("required")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { context.argsDigest == "" && context.session == "" && context.scheme == "" && context.method == "" };\n';
  const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['files__*'] } }, [{ path: '/p/tools.cedar', text }]));

  test('a tool call passes its argsDigest and session to Cedar', () => {
    // Protects `req.argsDigest ?? ''` and `req.session ?? ''` (not `&&`).
    assert.deepEqual(engine.authorize(call('files__read', { argsDigest: 'd1' })), { effect: 'deny', reason: 'policy.forbid', rule: 'digest-d1', policies: ['digest-d1'] });
    assert.deepEqual(engine.authorize(call('files__read', { session: 's1' })), { effect: 'deny', reason: 'policy.forbid', rule: 'session-s1', policies: ['session-s1'] });
  });

  test('a tool call without digest or session sees empty strings, and empty scheme and method', () => {
    // Protects the '' defaults of argsDigest, session, scheme and method in the tool context.
    assert.deepEqual(engine.authorize(call('files__read')), { effect: 'approve', reason: 'policy.approval', rule: 'bare-call', policies: ['bare-call'] });
  });
});

describe('PolicyEngine: combining algorithm, exact policies named', () => {
  // File order z, m, a: the reverse of id order, so reporting in Cedar's or alphabetical order is visible.
  const text =
    '@id("z-forbid")\nforbid (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "files__bad" };\n' +
    '@id("m-forbid")\nforbid (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "files__bad" };\n' +
    '@id("a-forbid")\nforbid (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "files__bad" };\n' +
    '@id("z-ask")\n@approval("required")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "files__ask" };\n' +
    '@id("a-ask")\n@approval("required")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "files__ask" };\n' +
    '@id("z-permit")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "other__x" };\n' +
    '@id("m-permit")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "other__x" };\n' +
    '@id("a-permit")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { resource.name == "other__x" };\n' +
    '@id("req-intercept")\n@intercept("required")\npermit (principal, action == Bastion::Action::"network/request", resource) when { resource.name == "i.example.com" };\n';
  const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['files__*'] } }, [{ path: '/p/order.cedar', text }]));

  test('forbids win and are named in policy-file order, the first as the rule', () => {
    assert.deepEqual(engine.authorize(call('files__bad')), { effect: 'deny', reason: 'policy.forbid', rule: 'z-forbid', policies: ['z-forbid', 'm-forbid', 'a-forbid'] });
  });

  test('approvals are named in file order, without the plain permit that also matched', () => {
    assert.deepEqual(engine.authorize(call('files__ask')), { effect: 'approve', reason: 'policy.approval', rule: 'z-ask', policies: ['z-ask', 'a-ask'] });
  });

  test('permits are all named, in file order', () => {
    assert.deepEqual(engine.authorize(call('other__x')), { effect: 'allow', reason: 'policy.permit', rule: 'z-permit', policies: ['z-permit', 'm-permit', 'a-permit'] });
  });

  test('default deny names no policies', () => {
    assert.deepEqual(engine.explain(call('other__y')).policies, []);
    assert.deepEqual(engine.authorize(call('other__y')), { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny', policies: [] });
  });

  test('@intercept on a network/request permit does not mark the decision: interception is a connect answer', () => {
    // Protects `req.action === 'network/connect'` in the intercept check.
    const d = engine.authorize(req('i.example.com'));
    assert.deepEqual(d, { effect: 'allow', reason: 'policy.permit', rule: 'req-intercept', policies: ['req-intercept'] });
    assert.equal('intercept' in d, false);
  });
});

test('an intercepted connect explains with no evaluation errors', () => {
  // Protects the empty `errors` on the intercept: true branch of #decide.
  const engine = PolicyEngine.compile(policyConfig({ demo: { network: rules([{ host: 'p.example.com', ports: [443], paths: ['/v1/'] }]) } }));
  const e = engine.explain({ agent: 'demo', action: 'network/connect', resource: { kind: 'host', id: 'p.example.com', upstream: '' }, egress: { port: 443, scheme: 'https', method: 'CONNECT', path: '' } });
  assert.deepEqual({ effect: e.effect, rule: e.rule, intercept: e.intercept, errors: e.errors }, { effect: 'allow', rule: 'agents.demo.network[0]/connect', intercept: true, errors: [] });
});
