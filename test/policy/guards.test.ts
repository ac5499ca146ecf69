/**
 * The provenance short forms (`approveWhen`, `denyWhen`) compiled to Cedar
 * `@fallback` forbids, and the combining algorithm's handling of them
 * (src/policy/guards.ts, src/policy/engine.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ResolvedGuard } from '../../src/config/types.ts';
import { NO_FACTS, PolicyEngine, type PolicyFacts, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig, throwsCode } from '../helpers/policy.ts';

const guard = (id: string, g: Omit<ResolvedGuard, 'id'>): ResolvedGuard => ({ id: `agents.a.${id}`, ...g });

function facts(over: Partial<PolicyFacts> = {}): PolicyFacts {
  return { ...NO_FACTS, tool: { source: 'trusted', effects: ['send'] }, ...over };
}

function call(f?: PolicyFacts, tool = 'mail__send'): PolicyRequest {
  return { agent: 'a', action: 'tools/call', resource: { kind: 'tool', id: tool, upstream: 'mail' }, args: { to: 'x@y.example' }, ...(f ? { facts: f } : {}) };
}

describe('short forms', () => {
  const engine = PolicyEngine.compile(
    policyConfig({
      a: {
        tools: ['mail__*'],
        guards: [
          guard('approveWhen[0]', { effect: ['send', 'pay'], argsFrom: ['untrusted'], fallback: 'approve' }),
          guard('approveWhen[1]', { effect: ['send'], argsFrom: ['model'], flagged: true, fallback: 'error' }),
          guard('denyWhen[0]', { effect: ['egress'], hostNotIn: ['*.corp.example'], fallback: 'deny' }),
        ],
      },
    }),
  );

  test('a send whose argument came from an untrusted result is held', () => {
    const d = engine.authorize(call(facts({ argsFrom: ['untrusted'] })));
    assert.deepEqual([d.effect, d.reason, d.rule], ['approve', 'policy.approval', 'agents.a.approveWhen[0]']);
  });

  test('the same call with user-provided arguments is allowed', () => {
    const d = engine.authorize(call(facts({ argsFrom: ['user'] })));
    assert.deepEqual([d.effect, d.reason, d.rule], ['allow', 'policy.permit', 'agents.a.tools[0]']);
  });

  test('a read is not held whatever its arguments', () => {
    const d = engine.authorize(call(facts({ tool: { source: 'untrusted', effects: ['read'] }, argsFrom: ['untrusted'] }), 'mail__read'));
    assert.equal(d.effect, 'allow');
  });

  test('fallback error denies with policy.guard; it wins over approve', () => {
    const d = engine.authorize(call(facts({ argsFrom: ['untrusted', 'model'], conversation: { tainted: true, flagged: true, sources: ['web__get'], flaggedBy: ['injection.x'] } })));
    assert.deepEqual([d.effect, d.reason, d.rule], ['deny', 'policy.guard', 'agents.a.approveWhen[1]']);
  });

  test('flagged: false conversation does not satisfy flagged: true', () => {
    const d = engine.authorize(call(facts({ argsFrom: ['model'] })));
    assert.equal(d.effect, 'allow');
  });

  test('hostNotIn holds through context.outside', () => {
    const d = engine.authorize(call(facts({ tool: { source: 'trusted', effects: ['egress'] }, outside: ['agents.a.denyWhen[0]'] })));
    assert.deepEqual([d.effect, d.reason, d.rule], ['deny', 'policy.forbid', 'agents.a.denyWhen[0]']);
  });

  test('a fallback forbid never grants: a tool outside the allowlist stays denied', () => {
    const d = engine.authorize(call(facts({ argsFrom: ['untrusted'] }), 'bank__pay'));
    assert.deepEqual([d.effect, d.reason], ['deny', 'policy.no_permit']);
  });

  test('without facts the strict defaults apply (no argument traced: nothing held)', () => {
    assert.equal(engine.authorize(call()).effect, 'allow');
  });

  test('listing is never held by a short form', () => {
    const d = engine.authorize({ ...call(facts({ argsFrom: ['untrusted'] })), listing: true });
    assert.equal(d.effect, 'allow');
  });

  test('the generated Cedar is shown with its annotation', () => {
    const p = engine.policies.find((x) => x.id === 'agents.a.approveWhen[0]');
    assert.ok(p);
    assert.equal(p.fallback, 'approve');
    assert.match(p.text, /@fallback\("approve"\)\nforbid/);
    assert.match(p.text, /context\.argsFrom\.containsAny\(\["untrusted"\]\)/);
  });
});

describe('hand-written @fallback', () => {
  test('a forbid with @fallback("approve") reading provenance validates and holds', () => {
    const engine = PolicyEngine.compile(
      policyConfig({ a: { tools: ['*'] } }, [
        {
          path: 'p.cedar',
          text: '@id("recipients")\n@fallback("approve")\nforbid (principal, action == Bastion::Action::"tools/call", resource) when { !["corp.example"].containsAll(context.emailDomains) };',
        },
      ]),
    );
    assert.equal(engine.authorize(call(facts({ emailDomains: ['corp.example'] }))).effect, 'allow');
    const d = engine.authorize(call(facts({ emailDomains: ['corp.example', 'evil.example'] })));
    assert.deepEqual([d.effect, d.rule], ['approve', 'recipients']);
  });

  test('per-argument provenance is readable with has', () => {
    const engine = PolicyEngine.compile(
      policyConfig({ a: { tools: ['*'] } }, [
        { path: 'p.cedar', text: '@id("to")\nforbid (principal, action, resource) when { context.provenance has to && context.provenance.to.contains("untrusted") };' },
      ]),
    );
    assert.equal(engine.authorize(call(facts({ provenance: { to: ['user'] } }))).effect, 'allow');
    assert.equal(engine.authorize(call(facts({ provenance: { to: ['user', 'untrusted'] } }))).reason, 'policy.forbid');
  });

  test('@fallback on a permit, or with another value, is ERR_POLICY_INVALID naming the policy', () => {
    throwsCode(() => PolicyEngine.compile(policyConfig({ a: { tools: ['*'] } }, [{ path: 'p.cedar', text: '@id("x")\n@fallback("approve")\npermit (principal, action, resource);' }])), 'ERR_POLICY_INVALID', /policy x: @fallback applies only to forbid/);
    throwsCode(() => PolicyEngine.compile(policyConfig({ a: { tools: ['*'] } }, [{ path: 'p.cedar', text: '@id("y")\n@fallback("maybe")\nforbid (principal, action, resource);' }])), 'ERR_POLICY_INVALID', /policy y: @fallback must be/);
  });

  test('a bad tool pattern in a short form is ERR_POLICY_INVALID naming its path', () => {
    throwsCode(() => PolicyEngine.compile(policyConfig({ a: { tools: ['*'], guards: [guard('approveWhen[0]', { tool: ['a b'], fallback: 'approve' })] } })), 'ERR_POLICY_INVALID', /agents\.a\.approveWhen\[0\]: bad pattern/);
  });
});

describe('usesProvenance', () => {
  test('true for an agent with short forms or a policy reading provenance, false otherwise', () => {
    const engine = PolicyEngine.compile(
      policyConfig(
        {
          guarded: { tools: ['*'], guards: [guard('approveWhen[0]', { effect: ['send'], fallback: 'approve' })] },
          plain: { tools: ['*'] },
        },
        [],
      ),
    );
    assert.equal(engine.usesProvenance('guarded'), true);
    assert.equal(engine.usesProvenance('plain'), false);
    assert.equal(engine.usesProvenance('nobody'), true, 'an unknown agent is traced (fail closed)');
    const withFile = PolicyEngine.compile(
      policyConfig({ plain: { tools: ['*'] } }, [{ path: 'p.cedar', text: '@id("t")\nforbid (principal, action, resource) when { context.conversation.tainted };' }]),
    );
    assert.equal(withFile.usesProvenance('plain'), true);
  });
});

describe('every short-form key narrows the condition', () => {
  const engineWith = (g: Omit<ResolvedGuard, 'id' | 'fallback'>): PolicyEngine =>
    PolicyEngine.compile(policyConfig({ a: { tools: ['*'], guards: [guard('approveWhen[0]', { ...g, fallback: 'approve' })] } }));
  const held = (e: PolicyEngine, f: PolicyFacts, tool = 'mail__send'): boolean => e.authorize(call(f, tool)).effect === 'approve';

  test('tool: only the tools matching one of the patterns', () => {
    const e = engineWith({ tool: ['bank__*', 'mail__send_*'] });
    assert.equal(held(e, facts(), 'bank__pay'), true);
    assert.equal(held(e, facts(), 'mail__send_reply'), true);
    assert.equal(held(e, facts(), 'mail__send'), false);
  });

  test('source: only tools with that source label', () => {
    const e = engineWith({ source: 'untrusted' });
    assert.equal(held(e, facts({ tool: { source: 'untrusted', effects: ['read'] } })), true);
    assert.equal(held(e, facts({ tool: { source: 'trusted', effects: ['read'] } })), false);
  });

  test('tainted: true and false each select their conversations', () => {
    const tainted = { tainted: true, flagged: false, sources: ['web__get'], flaggedBy: [] };
    assert.equal(held(engineWith({ tainted: true }), facts({ conversation: tainted })), true);
    assert.equal(held(engineWith({ tainted: true }), facts()), false);
    assert.equal(held(engineWith({ tainted: false }), facts()), true);
    assert.equal(held(engineWith({ tainted: false }), facts({ conversation: tainted })), false);
  });

  test('flagged: false holds only unflagged conversations', () => {
    const flagged = { tainted: true, flagged: true, sources: ['web__get'], flaggedBy: ['injection.x'] };
    assert.equal(held(engineWith({ flagged: false }), facts()), true);
    assert.equal(held(engineWith({ flagged: false }), facts({ conversation: flagged })), false);
  });

  test('recipientNotIn alone compiles to context.outside', () => {
    const e = PolicyEngine.compile(policyConfig({ a: { tools: ['*'], guards: [guard('denyWhen[0]', { recipientNotIn: ['*@corp.example'], fallback: 'deny' })] } }));
    assert.equal(e.authorize(call(facts({ outside: ['agents.a.denyWhen[0]'] }))).reason, 'policy.forbid');
    assert.equal(e.authorize(call(facts({ outside: [] }))).effect, 'allow');
    assert.equal(e.authorize(call(facts({ outside: ['agents.a.denyWhen[9]'] }))).effect, 'allow', 'another short form\'s id does not hold this one');
  });
});
