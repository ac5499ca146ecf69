/**
 * The policy engine's network door: agents' `network` rules compiled to
 * `network/connect` and `network/request` permits, hand-written policies on the
 * network actions (`@intercept`), and the one context type shared with the tool
 * actions.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ResolvedNetworkRule } from '../../src/config/types.ts';
import { PolicyEngine, type PolicyDecision, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig, throwsCode } from '../helpers/policy.ts';

const config = policyConfig;

/** Network rules for agent `agent`, ids as the config loader makes them. */
function rules(agent: string, list: Omit<ResolvedNetworkRule, 'id'>[]): ResolvedNetworkRule[] {
  return list.map((r, i) => ({ id: `agents.${agent}.network[${i}]`, ...r }));
}

interface Ask {
  agent?: string;
  host: string;
  port?: number;
  scheme?: 'http' | 'https';
  method?: string;
  path?: string;
}

function req(a: Ask): PolicyRequest {
  return {
    agent: a.agent ?? 'demo',
    action: 'network/request',
    resource: { kind: 'host', id: a.host, upstream: '' },
    egress: { port: a.port ?? 443, scheme: a.scheme ?? 'https', method: a.method ?? 'GET', path: a.path ?? '/' },
  };
}

function conn(a: Ask): PolicyRequest {
  return {
    agent: a.agent ?? 'demo',
    action: 'network/connect',
    resource: { kind: 'host', id: a.host, upstream: '' },
    egress: { port: a.port ?? 443, scheme: a.scheme ?? 'https', method: 'CONNECT', path: '' },
  };
}


function effect(d: PolicyDecision): string {
  return d.effect;
}

const DEMO = rules('demo', [
  { host: 'api.github.com', ports: [443], methods: ['GET', 'POST'], paths: ['/repos/'] },
  { host: '*.slack.com', ports: [80, 443] },
  { host: 'alt.example.com', ports: [8443] },
  { host: 'v1.example.com', ports: [443], paths: ['/v1'] },
  { host: '2001:db8::1', ports: [443] },
]);

describe('PolicyEngine: network rules from config', () => {
  const engine = PolicyEngine.compile(config({ demo: { network: DEMO, tools: ['files__*'] }, other: { network: rules('other', [{ host: 'other.example.com', ports: [443] }]) } }));

  test('each rule compiles to a connect and a request permit with the rule id', () => {
    const ids = engine.policies.map((p) => p.id);
    for (let i = 0; i < DEMO.length; i++) {
      assert.ok(ids.includes(`agents.demo.network[${i}]/connect`), `connect ${i}`);
      assert.ok(ids.includes(`agents.demo.network[${i}]/request`), `request ${i}`);
    }
    assert.ok(ids.includes('agents.other.network[0]/connect'));
    const byId = new Map(engine.policies.map((p) => [p.id, p]));
    // Restricting methods or paths makes the connect permit require interception.
    assert.equal(byId.get('agents.demo.network[0]/connect')?.intercept, true);
    assert.match(byId.get('agents.demo.network[0]/connect')?.text ?? '', /@intercept\("required"\)/);
    assert.equal(byId.get('agents.demo.network[3]/connect')?.intercept, true);
    assert.equal(byId.get('agents.demo.network[1]/connect')?.intercept, false);
    assert.equal(byId.get('agents.demo.network[0]/request')?.intercept, false);
    for (const p of engine.policies.filter((x) => x.id.includes('network'))) {
      assert.equal(p.effect, 'permit');
      assert.equal(p.source, 'config');
      assert.equal(p.approval, false);
    }
  });

  test('host, port, method and path together decide a request', () => {
    assert.deepEqual(engine.authorize(req({ host: 'api.github.com', path: '/repos/o/r' })), {
      effect: 'allow',
      reason: 'policy.permit',
      rule: 'agents.demo.network[0]/request',
      policies: ['agents.demo.network[0]/request'],
    });
    assert.equal(effect(engine.authorize(req({ host: 'api.github.com', path: '/repos/o/r', method: 'POST' }))), 'allow');
    assert.deepEqual(engine.authorize(req({ host: 'api.github.com', path: '/repos/o/r', method: 'DELETE' })), { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny', policies: [] });
    assert.equal(effect(engine.authorize(req({ host: 'api.github.com', path: '/user' }))), 'deny');
    assert.equal(effect(engine.authorize(req({ host: 'api.github.com', path: '/reposx' }))), 'deny');
    assert.equal(effect(engine.authorize(req({ host: 'api.github.com', path: '/repos' }))), 'deny');
    assert.equal(effect(engine.authorize(req({ host: 'api.github.com', path: '/repos/', port: 80, scheme: 'http' }))), 'deny');
    assert.equal(effect(engine.authorize(req({ host: 'github.com', path: '/repos/x' }))), 'deny');
    // A rule without methods/paths: any method and path on its ports.
    assert.equal(effect(engine.authorize(req({ host: 'hooks.slack.com', method: 'DELETE', path: '/anything' }))), 'allow');
    assert.equal(effect(engine.authorize(req({ host: 'hooks.slack.com', port: 80, scheme: 'http' }))), 'allow');
    assert.equal(effect(engine.authorize(req({ host: 'hooks.slack.com', port: 8080 }))), 'deny');
    // Ports.
    assert.equal(effect(engine.authorize(req({ host: 'alt.example.com', port: 8443 }))), 'allow');
    assert.equal(effect(engine.authorize(req({ host: 'alt.example.com', port: 443 }))), 'deny');
    // A prefix without a trailing slash.
    assert.equal(effect(engine.authorize(req({ host: 'v1.example.com', path: '/v1' }))), 'allow');
    assert.equal(effect(engine.authorize(req({ host: 'v1.example.com', path: '/v1/x/y' }))), 'allow');
    assert.equal(effect(engine.authorize(req({ host: 'v1.example.com', path: '/v1x' }))), 'deny');
    // IPv6 literal hosts, normalized without brackets.
    assert.equal(effect(engine.authorize(req({ host: '2001:db8::1' }))), 'allow');
    assert.equal(effect(engine.authorize(req({ host: '2001:db8::2' }))), 'deny');
  });

  test('*.slack.com: names below slack.com, not slack.com or look-alikes', () => {
    for (const h of ['a.slack.com', 'hooks.slack.com', 'a.b.slack.com']) assert.equal(effect(engine.authorize(req({ host: h }))), 'allow', h);
    for (const h of ['slack.com', 'evilslack.com', 'slack.com.evil.net', 'a.slack.com.evil.net', 'slack.co']) assert.equal(effect(engine.authorize(req({ host: h }))), 'deny', h);
  });

  test('connect: host and port only; intercept required when the only matching rule restricts methods or paths', () => {
    const api = engine.authorize(conn({ host: 'api.github.com' }));
    assert.deepEqual(api, { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.network[0]/connect', policies: ['agents.demo.network[0]/connect'], intercept: true });
    const slack = engine.authorize(conn({ host: 'x.slack.com' }));
    assert.equal(slack.effect, 'allow');
    assert.notEqual(slack.intercept, true);
    assert.equal(effect(engine.authorize(conn({ host: 'api.github.com', port: 80 }))), 'deny');
    assert.equal(effect(engine.authorize(conn({ host: 'alt.example.com', port: 8443 }))), 'allow');
    assert.equal(effect(engine.authorize(conn({ host: 'alt.example.com', port: 443 }))), 'deny');
    assert.equal(effect(engine.authorize(conn({ host: 'nowhere.example.com' }))), 'deny');
  });

  test('another agent\'s rules do not apply; an unknown agent is denied', () => {
    assert.equal(effect(engine.authorize(req({ host: 'other.example.com' }))), 'deny');
    assert.equal(effect(engine.authorize(req({ agent: 'other', host: 'other.example.com' }))), 'allow');
    assert.equal(effect(engine.authorize(req({ agent: 'other', host: 'hooks.slack.com' }))), 'deny');
    assert.deepEqual(engine.authorize(req({ agent: 'mallory', host: 'hooks.slack.com' })), { effect: 'deny', reason: 'policy.unknown_agent', rule: 'agents', policies: [] });
  });

  test('network rules do not open tools, and tool lists do not open hosts', () => {
    assert.equal(engine.authorize({ agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'files__read', upstream: 'files' } }).effect, 'allow');
    assert.equal(engine.authorize({ agent: 'other', action: 'tools/call', resource: { kind: 'tool', id: 'files__read', upstream: 'files' } }).effect, 'deny');
    assert.equal(effect(engine.authorize(req({ host: 'files__read' }))), 'deny');
  });

  test('malformed network requests are denied policy.invalid_request', () => {
    const bad: PolicyRequest[] = [
      { agent: 'demo', action: 'network/request', resource: { kind: 'host', id: 'hooks.slack.com', upstream: '' } },
      { ...req({ host: 'hooks.slack.com' }), egress: { port: 0, scheme: 'https', method: 'GET', path: '/' } },
      { ...req({ host: 'hooks.slack.com' }), egress: { port: 65536, scheme: 'https', method: 'GET', path: '/' } },
      { ...req({ host: 'hooks.slack.com' }), egress: { port: 443.5, scheme: 'https', method: 'GET', path: '/' } },
      { ...req({ host: 'hooks.slack.com' }), egress: { port: 443, scheme: 'ftp' as 'https', method: 'GET', path: '/' } },
      { ...req({ host: 'hooks.slack.com' }), egress: { port: 443, scheme: 'https', method: 'GET', path: '/\ud800' } },
      { agent: 'demo', action: 'network/request', resource: { kind: 'tool', id: 'hooks.slack.com', upstream: '' }, egress: { port: 443, scheme: 'https', method: 'GET', path: '/' } },
    ];
    for (const r of bad) assert.deepEqual(engine.authorize(r), { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [] }, JSON.stringify(r));
  });

  test('a bad host pattern in a rule is ERR_POLICY_INVALID naming the rule', () => {
    throwsCode(() => PolicyEngine.compile(config({ demo: { network: rules('demo', [{ host: '*.*.example.com', ports: [443] }]) } })), 'ERR_POLICY_INVALID', /agents\.demo\.network\[0\]: bad host pattern/);
    throwsCode(() => PolicyEngine.compile(config({ demo: { network: rules('demo', [{ host: 'a*.example.com', ports: [443] }]) } })), 'ERR_POLICY_INVALID', /agents\.demo\.network\[0\]: bad host pattern/);
  });

  test('quotes and backslashes in a path prefix are literal', () => {
    const e = PolicyEngine.compile(config({ demo: { network: rules('demo', [{ host: 'h.example.com', ports: [443], paths: ['/a"b\\c/'] }]) } }));
    assert.equal(effect(e.authorize(req({ host: 'h.example.com', path: '/a"b\\c/x' }))), 'allow');
    assert.equal(effect(e.authorize(req({ host: 'h.example.com', path: '/a"b\\cx' }))), 'deny');
  });
});

describe('PolicyEngine: hand-written network policies', () => {
  const net = rules('demo', [{ host: 'api.example.com', ports: [443] }]);

  test('a forbid on network/request for DELETE wins over a config permit', () => {
    const file = {
      path: '/p/no-delete.cedar',
      text: '@id("no-delete")\nforbid (principal, action == Bastion::Action::"network/request", resource) when { context.method == "DELETE" };\n',
    };
    const e = PolicyEngine.compile(config({ demo: { network: net } }, [file]));
    assert.deepEqual(e.authorize(req({ host: 'api.example.com', method: 'DELETE' })), { effect: 'deny', reason: 'policy.forbid', rule: 'no-delete', policies: ['no-delete'] });
    assert.equal(effect(e.authorize(req({ host: 'api.example.com', method: 'GET' }))), 'allow');
    // CONNECT is another action: the forbid does not apply to it.
    assert.equal(effect(e.authorize(conn({ host: 'api.example.com' }))), 'allow');
  });

  test('a hand-written @intercept("required") permit gives intercept: true; a plain permit beside it does not', () => {
    const file = {
      path: '/p/intercept.cedar',
      text:
        '@id("intercept-x")\n@intercept("required")\npermit (principal == Bastion::Agent::"demo", action == Bastion::Action::"network/connect", resource) when { resource.name like "*.x.example.com" && context.port == 443 };\n' +
        '@id("request-x")\npermit (principal == Bastion::Agent::"demo", action == Bastion::Action::"network/request", resource) when { resource.name like "*.x.example.com" && context.path like "/ok/*" };\n',
    };
    const e = PolicyEngine.compile(config({ demo: { network: rules('demo', [{ host: 'plain.x.example.com', ports: [443] }]) } }, [file]));
    assert.equal(e.policies.find((p) => p.id === 'intercept-x')?.intercept, true);
    assert.deepEqual(e.authorize(conn({ host: 'a.x.example.com' })), { effect: 'allow', reason: 'policy.permit', rule: 'intercept-x', policies: ['intercept-x'], intercept: true });
    const both = e.authorize(conn({ host: 'plain.x.example.com' }));
    assert.equal(both.effect, 'allow');
    assert.notEqual(both.intercept, true);
    assert.deepEqual(both.policies, ['agents.demo.network[0]/connect', 'intercept-x']);
    assert.equal(effect(e.authorize(req({ host: 'a.x.example.com', path: '/ok/1' }))), 'allow');
    assert.equal(effect(e.authorize(req({ host: 'a.x.example.com', path: '/no' }))), 'deny');
    // intercept is only about network/connect.
    assert.equal(e.authorize(req({ host: 'a.x.example.com', path: '/ok/1' })).intercept, undefined);
  });

  test('@intercept other than "required", or on a forbid, is ERR_POLICY_INVALID', () => {
    const bad = (text: string, message: RegExp): void => throwsCode(() => PolicyEngine.compile(config({ demo: {} }, [{ path: '/p/bad.cedar', text }])), 'ERR_POLICY_INVALID', message);
    bad('@id("m")\n@intercept("maybe")\npermit (principal, action == Bastion::Action::"network/connect", resource);\n', /\/p\/bad\.cedar:1:1: policy m: @intercept must be "required"/);
    bad('@id("e")\n@intercept\npermit (principal, action == Bastion::Action::"network/connect", resource);\n', /policy e: @intercept must be "required"/);
    bad('@id("f")\n@intercept("required")\nforbid (principal, action == Bastion::Action::"network/connect", resource);\n', /policy f: @intercept applies only to permit policies/);
  });

  test('an @approval permit on the network answers approve (the guard refuses it as unsupported)', () => {
    const file = { path: '/p/ask.cedar', text: '@id("ask")\n@approval("required")\npermit (principal, action == Bastion::Action::"network/request", resource) when { resource.name == "ask.example.com" };\n' };
    const e = PolicyEngine.compile(config({ demo: {} }, [file]));
    assert.deepEqual(e.authorize(req({ host: 'ask.example.com' })), { effect: 'approve', reason: 'policy.approval', rule: 'ask', policies: ['ask'] });
  });

  test('an existing-style policy that leaves the action open and reads context.args compiles and does not break network decisions', () => {
    const file = {
      path: '/p/legacy.cedar',
      text:
        '@id("no-secret-paths")\nforbid (principal, action, resource) when { context.args has path && context.args.path like "*secret*" };\n' +
        '@id("tools-with-path")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { context.args has path && !context.listing };\n' +
        '@id("no-smtp")\nforbid (principal, action, resource) when { context.port == 25 };\n' +
        '@id("no-delete-anywhere")\nforbid (principal, action, resource) when { context.method == "DELETE" };\n',
    };
    const e = PolicyEngine.compile(config({ demo: { network: rules('demo', [{ host: 'api.example.com', ports: [443, 25] }]) } }, [file]));
    // Network: args are empty, so the args forbid does not fire; the port and method forbids do.
    assert.equal(effect(e.authorize(req({ host: 'api.example.com', path: '/secret/x' }))), 'allow');
    assert.equal(effect(e.authorize(conn({ host: 'api.example.com' }))), 'allow');
    assert.deepEqual(e.authorize(req({ host: 'api.example.com', port: 25, scheme: 'http' })), { effect: 'deny', reason: 'policy.forbid', rule: 'no-smtp', policies: ['no-smtp'] });
    assert.equal(e.authorize(req({ host: 'api.example.com', method: 'DELETE' })).rule, 'no-delete-anywhere');
    // Tools: port 0 and method "" — the network forbids do not fire; the args ones do.
    const tool = (args: unknown): PolicyDecision => e.authorize({ agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'files__read', upstream: 'files' }, args });
    assert.deepEqual(tool({ path: '/work/a' }), { effect: 'allow', reason: 'policy.permit', rule: 'tools-with-path', policies: ['tools-with-path'] });
    assert.equal(tool({ path: '/work/secret' }).rule, 'no-secret-paths');
    assert.equal(tool({}).effect, 'deny');
  });

  test('a policy reading a network-only field on a tool action still validates (one context type)', () => {
    const file = { path: '/p/mixed.cedar', text: '@id("tool-port")\npermit (principal, action == Bastion::Action::"tools/call", resource) when { context.port == 0 && context.path == "" };\n' };
    const e = PolicyEngine.compile(config({ demo: {} }, [file]));
    assert.equal(e.authorize({ agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'x__y', upstream: 'x' } }).effect, 'allow');
  });
});
