/**
 * The policy engine's compilers (`compileAgent`, `compileNetworkRule`,
 * `compileFile`, `validateGenerated`): the policies each config list and
 * network rule becomes, and the exact errors a bad entry, file or generated
 * policy is refused with. Every engine is compiled inside its test.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ResolvedNetworkRule } from '../../src/config/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { PolicyEngine, type PolicyIssue, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig, type AgentLists } from '../helpers/policy.ts';

type Config = ReturnType<typeof policyConfig>;

/** Network rules for agent `demo`, ids as the config loader makes them. */
function rules(list: Omit<ResolvedNetworkRule, 'id'>[]): ResolvedNetworkRule[] {
  return list.map((r, i) => ({ id: `agents.demo.network[${i}]`, ...r }));
}

function demo(lists: AgentLists, files: { path: string; text: string }[] = []): PolicyEngine {
  return PolicyEngine.compile(policyConfig({ demo: lists }, files));
}

function web(action: 'network/connect' | 'network/request', host: string, egress: { method?: string; path?: string } = {}): PolicyRequest {
  return {
    agent: 'demo',
    action,
    resource: { kind: 'host', id: host, upstream: '' },
    egress: { port: 443, scheme: 'https', method: action === 'network/connect' ? 'CONNECT' : 'GET', path: action === 'network/connect' ? '' : '/', ...egress },
  };
}

/** Compiling throws ERR_POLICY_INVALID (with exactly `message`, when given) whose message lists its issues; returns them. */
function refused(compile: () => unknown, message?: string): readonly PolicyIssue[] {
  let issues: readonly PolicyIssue[] = [];
  assert.throws(compile, (err: unknown) => {
    assert.ok(isBastionError(err), `expected BastionError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_POLICY_INVALID');
    issues = (err.detail as { issues: readonly PolicyIssue[] }).issues;
    assert.equal(err.message, message ?? issues.map((i) => `${i.file}: ${i.message}`).join('\n'));
    return true;
  });
  return issues;
}

function textOf(engine: PolicyEngine, id: string): string {
  const p = engine.policies.find((x) => x.id === id);
  assert.ok(p, id);
  return p.text;
}

describe('config lists → policies', () => {
  test('each list entry is one policy with id agents.<agent>.<list>[i], the list\'s effect and action', () => {
    const e = demo({ tools: ['t_*'], deny: ['t_bad'], approve: ['t_ask'], resources: ['file:///a/*', 'note://n'], prompts: ['p_*'] });
    assert.deepEqual(
      e.policies.map((p) => [p.id, p.effect, p.approval, p.intercept, p.source]),
      [
        ['agents.demo.tools[0]', 'permit', false, false, 'config'],
        ['agents.demo.deny[0]', 'forbid', false, false, 'config'],
        ['agents.demo.approve[0]', 'permit', true, false, 'config'],
        ['agents.demo.resources[0]', 'permit', false, false, 'config'],
        ['agents.demo.resources[1]', 'permit', false, false, 'config'],
        ['agents.demo.prompts[0]', 'permit', false, false, 'config'],
      ],
    );
    assert.equal(
      textOf(e, 'agents.demo.resources[1]'),
      '@id("agents.demo.resources[1]")\npermit (\n  principal == Bastion::Agent::"demo",\n  action == Bastion::Action::"resources/read",\n  resource is Bastion::Resource\n)\nwhen { resource.uri like "note://n" };',
    );
    assert.equal(
      textOf(e, 'agents.demo.prompts[0]'),
      '@id("agents.demo.prompts[0]")\npermit (\n  principal == Bastion::Agent::"demo",\n  action == Bastion::Action::"prompts/get",\n  resource is Bastion::Prompt\n)\nwhen { resource.name like "p_*" };',
    );
  });

  test('a resources entry permits resources/read of the URIs it matches, a prompts entry prompts/get of the names', () => {
    const e = demo({ resources: ['file:///a/*'], prompts: ['p_*'] });
    const read = (id: string): PolicyRequest => ({ agent: 'demo', action: 'resources/read', resource: { kind: 'resource', id, upstream: 'u' } });
    const get = (id: string): PolicyRequest => ({ agent: 'demo', action: 'prompts/get', resource: { kind: 'prompt', id, upstream: 'u' } });
    assert.deepEqual(e.authorize(read('file:///a/x')), { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.resources[0]', policies: ['agents.demo.resources[0]'] });
    assert.equal(e.authorize(read('file:///b/x')).reason, 'policy.no_permit');
    assert.deepEqual(e.authorize(get('p_x')), { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.prompts[0]', policies: ['agents.demo.prompts[0]'] });
    assert.equal(e.authorize(get('q_x')).reason, 'policy.no_permit');
  });

  test('a bad name pattern in any list is refused, naming the entry and what a pattern may hold', () => {
    const why = 'bad pattern: a name pattern may hold letters, digits, _ - . / and *';
    for (const list of ['tools', 'deny', 'approve', 'prompts'] as const) {
      const issues = refused(() => demo({ [list]: ['ok', 'a b'] }), `config: agents.demo.${list}[1]: ${why}`);
      assert.deepEqual(issues, [{ file: 'config', message: `agents.demo.${list}[1]: ${why}` }]);
    }
  });

  test('an agent without a network list compiles to its list policies only', () => {
    const config = policyConfig({ demo: { tools: ['t'] } });
    const agent = config.agents.get('demo');
    assert.ok(agent);
    const lacking: Config = { ...config, agents: new Map([['demo', { ...agent, network: undefined as never }]]) };
    assert.deepEqual(PolicyEngine.compile(lacking).policies.map((p) => p.id), ['agents.demo.tools[0]']);
  });
});

describe('network rules → policies', () => {
  test('a *.domain host permits the names below the domain, by a like pattern', () => {
    const e = demo({ network: rules([{ host: '*.example.com', ports: [443] }]) });
    assert.equal(e.authorize(web('network/connect', 'a.example.com')).effect, 'allow');
    assert.equal(e.authorize(web('network/request', 'a.b.example.com')).effect, 'allow');
    assert.equal(e.authorize(web('network/request', 'example.com')).effect, 'deny');
    assert.equal(
      textOf(e, 'agents.demo.network[0]/connect'),
      '@id("agents.demo.network[0]/connect")\npermit (\n  principal == Bastion::Agent::"demo",\n  action == Bastion::Action::"network/connect",\n  resource is Bastion::Host\n)\nwhen { resource.name like "*.example.com" && [443].contains(context.port) };',
    );
  });

  test('an exact host compiles to an equality, not a like pattern', () => {
    const e = demo({ network: rules([{ host: 'api.example.com', ports: [443, 8443] }]) });
    assert.equal(
      textOf(e, 'agents.demo.network[0]/request'),
      '@id("agents.demo.network[0]/request")\npermit (\n  principal == Bastion::Agent::"demo",\n  action == Bastion::Action::"network/request",\n  resource is Bastion::Host\n)\nwhen { resource.name == "api.example.com" && [443, 8443].contains(context.port) };',
    );
    assert.equal(e.authorize(web('network/request', 'api.example.com')).effect, 'allow');
  });

  test('a * anywhere but a leading "*." is refused, naming the rule', () => {
    for (const host of ['*.*.example.com', '*.a*.example.com', 'a*.example.com', '*example.com', 'example.*']) {
      const issues = refused(() => demo({ network: rules([{ host, ports: [443] }]) }), 'config: agents.demo.network[0]: bad host pattern');
      assert.deepEqual(issues, [{ file: 'config', message: 'agents.demo.network[0]: bad host pattern' }], host);
    }
  });

  test('a rule restricting only methods requires interception on connect, and admits each listed method', () => {
    const e = demo({ network: rules([{ host: 'api.example.com', ports: [443], methods: ['GET', 'POST'] }]) });
    assert.equal(e.policies.find((p) => p.id === 'agents.demo.network[0]/connect')?.intercept, true);
    assert.deepEqual(e.authorize(web('network/connect', 'api.example.com')), {
      effect: 'allow',
      reason: 'policy.permit',
      rule: 'agents.demo.network[0]/connect',
      policies: ['agents.demo.network[0]/connect'],
      intercept: true,
    });
    assert.equal(e.authorize(web('network/request', 'api.example.com', { method: 'GET' })).effect, 'allow');
    assert.equal(e.authorize(web('network/request', 'api.example.com', { method: 'POST' })).effect, 'allow');
    assert.equal(e.authorize(web('network/request', 'api.example.com', { method: 'DELETE' })).effect, 'deny');
  });

  test('path prefixes are alternatives; one without a trailing "/" matches itself and below it, one with matches below it', () => {
    const e = demo({ network: rules([{ host: 'api.example.com', ports: [443], paths: ['/v1', '/docs/'] }]) });
    const path = (p: string): string => e.authorize(web('network/request', 'api.example.com', { path: p })).effect;
    assert.deepEqual(['/v1', '/v1/x', '/docs/a'].map(path), ['allow', 'allow', 'allow']);
    assert.deepEqual(['/v1x', '/docs', '/other', '/'].map(path), ['deny', 'deny', 'deny', 'deny']);
    assert.match(textOf(e, 'agents.demo.network[0]/request'), /&& \(context\.path == "\/v1" \|\| context\.path like "\/v1\/\*" \|\| context\.path like "\/docs\/\*"\) \};$/);
  });
});

describe('policy files → policies', () => {
  test('a parse error is reported once, as the parser states it, at file:line:col', () => {
    const text = 'permit(principal, action, resource)\n  when { context.a = 1 };';
    const issues = refused(
      () => demo({}, [{ path: '/cfg/p.cedar', text }]),
      "/cfg/p.cedar:2:10: failed to parse policies from string: '=' is not a valid operator in Cedar (try using '==' instead)",
    );
    assert.equal(issues.length, 1);
  });

  test('identical policies are each located at their own line', () => {
    const bad = '@approval("maybe") permit(principal, action, resource);';
    const text = `${bad}\n${bad}\n\n${bad}`;
    refused(
      () => demo({}, [{ path: '/cfg/same.cedar', text }]),
      [
        '/cfg/same.cedar:1:1: policy same.cedar#0: @approval must be "required"',
        '/cfg/same.cedar:2:1: policy same.cedar#1: @approval must be "required"',
        '/cfg/same.cedar:4:1: policy same.cedar#2: @approval must be "required"',
      ].join('\n'),
    );
  });
});

describe('generated policies are validated', () => {
  test('a generated policy that does not validate is refused at compile, naming the policy and the validator\'s reason', () => {
    // The config loader refuses an empty port list; the engine does not rely on it.
    const reason = (id: string): string => `config: ${id}: for policy \`${id}\`, empty set literals are forbidden in policies`;
    // Cedar reports the two policies in no fixed order.
    const issues = refused(() => demo({ tools: ['t'], network: rules([{ host: 'api.example.com', ports: [] }]) }));
    assert.deepEqual(issues.map((i) => `${i.file}: ${i.message}`).sort(), [reason('agents.demo.network[0]/connect'), reason('agents.demo.network[0]/request')]);
  });

  test('a generated policy that does not parse is refused at compile with the parser\'s message', () => {
    refused(
      () => demo({ network: rules([{ host: 'api.example.com', ports: [443], paths: [] }]) }),
      'config: failed to parse policy with id `agents.demo.network[0]/request` from string: unexpected token `)`',
    );
  });
});
