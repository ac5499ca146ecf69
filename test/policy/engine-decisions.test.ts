/**
 * PolicyEngine decisions at the edges of `authorize`/`explain`: malformed requests
 * fail closed with their own reason, evaluation errors become denies with the
 * error kept, the context-free decision memo is reused and bounded, and
 * `policies`/`policyText` list the whole set.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyEngine, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig } from '../helpers/policy.ts';

function call(tool: string, extra: Partial<PolicyRequest> = {}): PolicyRequest {
  return { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: tool, upstream: tool.split('__')[0] ?? '' }, ...extra };
}

const invalid = { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [] };

describe('PolicyEngine: malformed requests are denied as invalid, before any lookup', () => {
  const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['*'] } }));

  test('each malformed field is policy.invalid_request with no errors', () => {
    const bad: unknown[] = [
      // a non-string agent is not looked up as an (unknown) agent
      { agent: 42, action: 'tools/call', resource: { kind: 'tool', id: 'files__read', upstream: 'files' } },
      // an unknown action with a kind-less resource (both undefined) is still invalid
      { agent: 'demo', action: 'tools/delete', resource: { id: 'files__read', upstream: 'files' } },
      { agent: 'demo', action: 'tools/call' },
      { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 7, upstream: 'files' } },
      { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'files__read' } },
    ];
    for (const req of bad) {
      const e = engine.explain(req as PolicyRequest);
      assert.deepEqual({ effect: e.effect, reason: e.reason, rule: e.rule, policies: e.policies, errors: e.errors }, { ...invalid, errors: [] }, JSON.stringify(req));
      assert.deepEqual(engine.authorize(req as PolicyRequest), invalid);
    }
  });

  test('an unknown agent is denied with no errors', () => {
    const e = engine.explain(call('files__read', { agent: 'mallory' }));
    assert.deepEqual(e, { effect: 'deny', reason: 'policy.unknown_agent', rule: 'agents', policies: [], determining: [], errors: [] });
  });

  test('a host resource is a network-door question: without its egress fields it is invalid', () => {
    const e = engine.explain({ agent: 'demo', action: 'network/connect', resource: { kind: 'host', id: 'example.com', upstream: '' } });
    assert.deepEqual(e, { ...invalid, determining: [], errors: [] });
  });

  test('unrepresentable arguments are denied and the reason is kept as an error', () => {
    const e = engine.explain(call('files__read', { args: 'not an object' }));
    assert.deepEqual(e, {
      effect: 'deny',
      reason: 'policy.args_unrepresentable',
      rule: 'context.args',
      policies: [],
      determining: [],
      errors: [{ policy: '', message: 'arguments are not an object' }],
    });
  });

  test('a request that throws while read fails closed (policy.error) and keeps the message', () => {
    const throwing = (thrown: unknown): PolicyRequest =>
      Object.defineProperty({ agent: 'demo', action: 'tools/call' }, 'resource', {
        get() {
          throw thrown;
        },
      }) as PolicyRequest;
    const deny = { effect: 'deny', reason: 'policy.error', rule: 'cedar', policies: [], determining: [] };
    assert.deepEqual(engine.explain(throwing(new Error('boom'))), { ...deny, errors: [{ policy: '', message: 'boom' }] });
    assert.deepEqual(engine.explain(throwing('plain')), { ...deny, errors: [{ policy: '', message: 'plain' }] });
    assert.deepEqual(engine.authorize(throwing(new Error('boom'))), { effect: 'deny', reason: 'policy.error', rule: 'cedar', policies: [] });
  });
});

describe('PolicyEngine: the decision memo of context-free agents', () => {
  // The memo is observable only as identity: a memoized decision is the same object.
  test('a repeated (agent, action, resource) reuses the decision, whatever the arguments', () => {
    const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['files__*'] } }));
    const first = engine.authorize(call('files__read', { args: { a: 1 } }));
    assert.deepEqual(first, { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.tools[0]', policies: ['agents.demo.tools[0]'] });
    engine.authorize(call('files__write'));
    assert.equal(engine.authorize(call('files__read', { args: { b: 2 } })), first, 'memoized, and not evicted by one other entry');
  });

  test('an agent whose policies read context is not memoized: the decision follows the context', () => {
    const text = 'permit(principal, action, resource) when { context.listing };';
    const engine = PolicyEngine.compile(policyConfig({ demo: {} }, [{ path: 'p.cedar', text }]));
    const yes = engine.authorize(call('files__read', { listing: true }));
    assert.deepEqual(yes, { effect: 'allow', reason: 'policy.permit', rule: 'p.cedar#0', policies: ['p.cedar#0'] });
    assert.deepEqual(engine.authorize(call('files__read', { listing: false })), { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny', policies: [] });
    assert.notEqual(engine.authorize(call('files__read', { listing: true })), yes);
  });

  test('the memo holds at most 10 000 decisions and drops the oldest first', () => {
    const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['*'] } }));
    const first = engine.authorize(call('t__0'));
    const second = engine.authorize(call('t__1'));
    for (let i = 2; i < 10_000; i++) engine.authorize(call(`t__${i}`));
    // full: still both
    assert.equal(engine.authorize(call('t__0')), first);
    engine.authorize(call('t__10000'));
    // one over: the oldest inserted (t__0; a hit does not refresh it) is dropped, the next (t__1) is kept
    assert.equal(engine.authorize(call('t__1')), second);
    assert.notEqual(engine.authorize(call('t__0')), first);
  });
});

describe('PolicyEngine: policies and policyText list the whole set', () => {
  const file = { path: 'dir/extra.cedar', text: '@idea("@id(")\nforbid(principal, action, resource) when { resource has name && resource.name == "x" };' };
  const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['a__b'] } }, [file]));

  test('policies are the config policies then the file policies, in order', () => {
    assert.deepEqual(
      engine.policies.map((p) => [p.id, p.source, p.effect]),
      [
        ['agents.demo.tools[0]', 'config', 'permit'],
        ['extra.cedar#0', 'dir/extra.cedar', 'forbid'],
      ],
    );
    const e = engine.explain(call('a__b'));
    assert.deepEqual(e.determining.map((p) => p.id), ['agents.demo.tools[0]']);
  });

  test('policyText: an @id policy as is, a policy without @id under an id comment, blank-line separated, newline-terminated', () => {
    const [own, extra] = engine.policies;
    assert.ok(own && extra);
    assert.match(own.text, /^@id\(/);
    assert.equal(engine.policyText, `${own.text}\n\n// id: extra.cedar#0 (dir/extra.cedar)\n${extra.text}\n`);
  });

  test('an empty engine has empty policyText', () => {
    assert.equal(PolicyEngine.compile(policyConfig({})).policyText, '');
  });
});
