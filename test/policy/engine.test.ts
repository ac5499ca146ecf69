import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkParsePolicySet, checkParseSchema, policyToJson } from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import { CEDAR_SCHEMA, CEDAR_SCHEMA_FILE, CEDAR_SCHEMA_FILE_TEXT } from '../../src/policy/cedar-schema.ts';
import { argsToCedar, cedarStringLiteral, MAX_ARGS_DEPTH, MAX_ARGS_VALUES, PolicyEngine, type PolicyRequest } from '../../src/policy/engine.ts';
import { policyConfig, throwsCode } from '../helpers/policy.ts';

const root = join(import.meta.dirname, '..', '..');

const config = policyConfig;

function call(tool: string, args?: unknown, extra: Partial<PolicyRequest> = {}): PolicyRequest {
  return { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: tool, upstream: tool.split('__')[0] ?? '' }, ...(args === undefined ? {} : { args }), ...extra };
}


describe('Cedar schema', () => {
  test('parses, and the committed schema/bastion.cedarschema matches the code', () => {
    assert.equal(checkParseSchema(CEDAR_SCHEMA).type, 'success');
    assert.equal(readFileSync(join(root, CEDAR_SCHEMA_FILE), 'utf8'), CEDAR_SCHEMA_FILE_TEXT, 'run npm run generate');
  });
});

describe('PolicyEngine: config lists', () => {
  const engine = PolicyEngine.compile(
    config({
      demo: {
        tools: ['files__*', 'git__status'],
        deny: ['files__write*'],
        approve: ['files__move_file', 'shell__*'],
        resources: ['file:///work/*', 'note://a"b\\c'],
        prompts: ['files__summarize'],
      },
      other: { tools: ['*'] },
    }),
  );

  test('tools permit, deny forbids, approve holds, anything else is default deny', () => {
    assert.deepEqual(engine.authorize(call('files__read_text_file')), { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.tools[0]', policies: ['agents.demo.tools[0]'] });
    assert.deepEqual(engine.authorize(call('files__write_file')), { effect: 'deny', reason: 'policy.forbid', rule: 'agents.demo.deny[0]', policies: ['agents.demo.deny[0]'] });
    // approve wins over a tools permit, and grants (with approval) what tools does not list
    assert.deepEqual(engine.authorize(call('files__move_file')), { effect: 'approve', reason: 'policy.approval', rule: 'agents.demo.approve[0]', policies: ['agents.demo.approve[0]'] });
    assert.equal(engine.authorize(call('shell__exec')).effect, 'approve');
    assert.deepEqual(engine.authorize(call('git__push')), { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny', policies: [] });
    assert.equal(engine.authorize(call('git__status')).rule, 'agents.demo.tools[1]');
  });

  test('another agent\'s policies do not apply; an unknown agent is denied', () => {
    assert.equal(engine.authorize(call('git__push', undefined, { agent: 'other' })).effect, 'allow');
    assert.equal(engine.authorize(call('files__write_file', undefined, { agent: 'other' })).effect, 'allow');
    assert.deepEqual(engine.authorize(call('files__read', undefined, { agent: 'mallory' })), { effect: 'deny', reason: 'policy.unknown_agent', rule: 'agents', policies: [] });
  });

  test('resources and prompts', () => {
    const read = (uri: string): string => engine.authorize({ agent: 'demo', action: 'resources/read', resource: { kind: 'resource', id: uri, upstream: 'files' } }).effect;
    assert.equal(read('file:///work/a/b.txt'), 'allow');
    assert.equal(read('file:///etc/passwd'), 'deny');
    assert.equal(read('note://a"b\\c'), 'allow');
    assert.equal(read('note://a"b\\cd'), 'deny');
    const get = (name: string): string => engine.authorize({ agent: 'demo', action: 'prompts/get', resource: { kind: 'prompt', id: name, upstream: 'files' } }).effect;
    assert.equal(get('files__summarize'), 'allow');
    assert.equal(get('files__other'), 'deny');
    // a tool permit does not grant a prompt of the same name
    assert.equal(engine.authorize({ agent: 'demo', action: 'prompts/get', resource: { kind: 'prompt', id: 'files__read_text_file', upstream: 'files' } }).effect, 'deny');
  });

  test('a request whose resource kind does not match the action is denied', () => {
    assert.equal(engine.authorize({ agent: 'demo', action: 'tools/call', resource: { kind: 'prompt', id: 'files__x', upstream: 'files' } }).reason, 'policy.invalid_request');
    assert.equal(engine.authorize({ agent: 'demo', action: 'tools/delete' as never, resource: { kind: 'tool', id: 'files__x', upstream: 'files' } }).reason, 'policy.invalid_request');
  });

  test('policyText is the whole set as parseable Cedar with the config ids', () => {
    assert.equal(checkParsePolicySet({ staticPolicies: engine.policyText }).type, 'success');
    assert.match(engine.policyText, /@id\("agents\.demo\.deny\[0\]"\)\nforbid/);
    assert.match(engine.policyText, /@approval\("required"\)/);
  });

  test('a bad name pattern is refused at compile', () => {
    throwsCode(() => PolicyEngine.compile(config({ demo: { tools: ['files__" || true || "'] } })), 'ERR_POLICY_INVALID', /agents\.demo\.tools\[0\]/);
  });

  test('resource URIs: only * is a wildcard, every other character is literal (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((s) => !s.includes('*')), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), (uri, suffix) => {
        const e = PolicyEngine.compile(config({ demo: { resources: [uri, 'x*'] } }));
        const read = (id: string) => e.authorize({ agent: 'demo', action: 'resources/read', resource: { kind: 'resource', id, upstream: 'u' } });
        assert.equal(read(uri).rule, 'agents.demo.resources[0]');
        if (!(uri + suffix).startsWith('x')) assert.equal(read(uri + suffix).effect, 'deny');
      }),
      { numRuns: 60 },
    );
  });

  test('cedarStringLiteral round-trips through the Cedar parser', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const json = policyToJson(`permit(principal, action, resource) when { context.x == ${cedarStringLiteral(s)} };`);
        assert.equal(json.type, 'success');
        if (json.type !== 'success') return;
        const body = json.json.conditions[0]?.body as { '==': { right: { Value: unknown } } };
        assert.equal(body['=='].right.Value, s);
      }),
      { numRuns: 300 },
    );
  });
});

describe('PolicyEngine: hand-written policies', () => {
  const file = {
    path: '/cfg/policies/guard.cedar',
    text: [
      '// Hand-written guard rails. é',
      'forbid(principal, action == Bastion::Action::"tools/call", resource)',
      '  when { context.args has path && context.args.path like "*secret*" };',
      '',
      '@id("no-big-limits")',
      'forbid(principal, action, resource) when { context.args has limit && context.args.limit > 100 };',
      '',
      'forbid(principal, action, resource) when { context.args has text && context.args.text == "1.5" };',
      'forbid(principal, action, resource) when { context.args has paths && context.args.paths.contains("/etc/shadow") };',
      'forbid(principal, action, resource) when { context.listing && resource is Bastion::Tool && resource.name like "*__hidden" };',
      '@id("approve-pushes") @approval("required")',
      'permit(principal, action == Bastion::Action::"tools/call", resource is Bastion::Tool) when { resource.name == "git__push" && context.upstream == "git" };',
    ].join('\n'),
  };
  const engine = PolicyEngine.compile(config({ demo: { tools: ['files__*', 'git__*', '*__hidden'] } }, [file]));

  test('ids default to <basename>#<index>; @id overrides', () => {
    const d = engine.authorize(call('files__read_text_file', { path: '/work/my-secret.txt' }));
    assert.deepEqual(d, { effect: 'deny', reason: 'policy.forbid', rule: 'guard.cedar#0', policies: ['guard.cedar#0'] });
    assert.equal(engine.authorize(call('files__read_text_file', { limit: 101 })).rule, 'no-big-limits');
    assert.equal(engine.authorize(call('files__read_text_file', { limit: 100 })).effect, 'allow');
  });

  test('an @approval permit approves, even over a plain permit', () => {
    assert.deepEqual(engine.authorize(call('git__push')), { effect: 'approve', reason: 'policy.approval', rule: 'approve-pushes', policies: ['approve-pushes'] });
  });

  test('JSON → Cedar: integers Long, other numbers String, null omitted, arrays Set', () => {
    assert.equal(engine.authorize(call('files__x', { text: 1.5 })).rule, 'guard.cedar#2');
    assert.equal(engine.authorize(call('files__x', { text: null, path: null })).effect, 'allow');
    assert.equal(engine.authorize(call('files__x', { paths: ['/a', '/etc/shadow'] })).rule, 'guard.cedar#3');
    assert.equal(engine.authorize(call('files__x', { paths: ['/a'] })).effect, 'allow');
    assert.deepEqual(argsToCedar({ a: 2 ** 53 - 1, b: 2 ** 53, c: -0.5, d: [1, null, [true]], e: { f: 'g' } }), {
      ok: true,
      value: { a: 2 ** 53 - 1, b: '9007199254740992', c: '-0.5', d: [1, [true]], e: { f: 'g' } },
    });
  });

  test('an erroring forbid denies (Cedar alone would skip it and allow)', () => {
    const e = engine.explain(call('files__read_text_file', { limit: 'lots' }));
    assert.equal(e.effect, 'deny');
    assert.equal(e.reason, 'policy.error');
    assert.equal(e.rule, 'no-big-limits');
    assert.match(e.errors[0]?.message ?? '', /type error/);
    assert.match(e.determining[0]?.text ?? '', /@id\("no-big-limits"\)/);
    // a declared attribute with another type: path as a list
    assert.equal(engine.authorize(call('files__read_text_file', { path: ['/a'] })).reason, 'policy.error');
  });

  test('listing is part of the context', () => {
    assert.equal(engine.authorize(call('x__hidden', {}, { listing: true })).effect, 'deny');
    assert.equal(engine.authorize(call('x__hidden', {}, { listing: false })).effect, 'allow');
  });

  test('explain returns the determining policies\' text', () => {
    const e = engine.explain(call('files__read_text_file'));
    assert.equal(e.effect, 'allow');
    assert.deepEqual(e.determining.map((p) => p.id), ['agents.demo.tools[0]']);
    assert.match(e.determining[0]?.text ?? '', /resource\.name like "files__\*"/);
    assert.deepEqual(e.errors, []);
  });

  test('file order survives more than ten policies (ids policy10 sort before policy2 inside Cedar)', () => {
    const text = Array.from({ length: 13 }, (_, i) => `forbid(principal, action, resource) when { resource is Bastion::Tool && resource.name == "t${i}" };`).join('\n');
    const e = PolicyEngine.compile(config({ demo: { tools: ['*'] } }, [{ path: 'many.cedar', text }]));
    for (let i = 0; i < 13; i++) assert.equal(e.authorize(call(`t${i}`)).rule, `many.cedar#${i}`);
  });
});

describe('PolicyEngine: invalid policy files', () => {
  const compileFile = (text: string, path = '/cfg/p.cedar') => () => PolicyEngine.compile(config({ demo: {} }, [{ path, text }]));

  test('parse error names file, line and column', () => {
    throwsCode(compileFile('permit(principal, action, resource);\n// é\npermit(principal, action, resource)\n  when { context.a = 1 };'), 'ERR_POLICY_INVALID', /^\/cfg\/p\.cedar:4:10: .*'=' is not a valid operator/);
  });

  test('an undeclared argument is an error with a hint, not a silent never-match', () => {
    throwsCode(compileFile('\n\nforbid(principal, action, resource) when { context.args has nosuch && context.args.nosuch == "x" };'), 'ERR_POLICY_INVALID', /p\.cedar:3:1: policy p\.cedar#0: policy is impossible.*does not declare/);
  });

  test('validation errors: unguarded optional attribute, unknown entity type, bidi in a string', () => {
    throwsCode(compileFile('forbid(principal, action, resource) when { context.args.path == "x" };'), 'ERR_POLICY_INVALID', /p\.cedar:1:\d+: .*optional attribute `args\.path`/);
    throwsCode(compileFile('permit(principal, action, resource is Bastion::Nope);'), 'ERR_POLICY_INVALID', /Nope/);
    throwsCode(compileFile('forbid(principal, action, resource) when { context.session == "a\u202Eb" };'), 'ERR_POLICY_INVALID', /BIDI/);
  });

  test('@approval must be "required" and on a permit; templates are refused', () => {
    throwsCode(compileFile('@approval("maybe") permit(principal, action, resource);'), 'ERR_POLICY_INVALID', /@approval must be "required"/);
    throwsCode(compileFile('@approval("required") forbid(principal, action, resource);'), 'ERR_POLICY_INVALID', /only to permit/);
    throwsCode(compileFile('permit(principal == ?principal, action, resource);'), 'ERR_POLICY_INVALID', /template/);
  });

  test('duplicate ids are refused, also against config ids', () => {
    throwsCode(compileFile('@id("x") permit(principal, action, resource);\n@id("x") forbid(principal, action, resource);'), 'ERR_POLICY_INVALID', /duplicate policy id "x"/);
    throwsCode(
      () => PolicyEngine.compile(config({ demo: { tools: ['a'] } }, [{ path: 'f.cedar', text: '@id("agents.demo.tools[0]") permit(principal, action, resource);' }])),
      'ERR_POLICY_INVALID',
      /duplicate policy id "agents\.demo\.tools\[0\]" \(in config and f\.cedar\)/,
    );
  });
});

describe('PolicyEngine: arguments Cedar cannot hold', () => {
  const engine = PolicyEngine.compile(config({ demo: { tools: ['*'] } }, [{ path: 'g.cedar', text: 'forbid(principal, action, resource) when { context.args has path && context.args.path like "*secret*" };' }]));
  const unrepresentable = { effect: 'deny', reason: 'policy.args_unrepresentable', rule: 'context.args', policies: [] };

  test('too deep, too many values, reserved keys, lone surrogates, non-objects', () => {
    // MAX_ARGS_DEPTH nested objects/arrays (the args object is one) are fine; one more is not.
    let deep: unknown = 'x';
    for (let i = 0; i < MAX_ARGS_DEPTH + 1; i++) deep = { a: deep };
    assert.deepEqual(engine.authorize(call('t', deep)), unrepresentable);
    let ok: unknown = 'x';
    for (let i = 0; i < MAX_ARGS_DEPTH; i++) ok = { a: ok };
    assert.equal(engine.authorize(call('t', ok)).effect, 'allow');
    let deepArray: unknown = ['x'];
    for (let i = 0; i < MAX_ARGS_DEPTH; i++) deepArray = [deepArray];
    assert.deepEqual(engine.authorize(call('t', { a: deepArray })), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', { a: new Array(MAX_ARGS_VALUES).fill(1) })), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', { a: { __entity: { type: 'Bastion::Agent', id: 'root' } } })), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', { a: { __extn: { fn: 'ip', arg: '10.0.0.1' } } })), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', { path: 'secret\uD800' })), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', ['a'])), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', 'a')), unrepresentable);
    assert.deepEqual(engine.authorize(call('t', { a: 1n })), unrepresentable);
  });

  test('a __proto__ key stays data', () => {
    const args = JSON.parse('{"__proto__": {"path": "x"}, "path": "ok"}') as unknown;
    const r = argsToCedar(args);
    assert.ok(r.ok);
    assert.deepEqual(Object.keys(r.value), ['__proto__', 'path']);
    assert.equal(engine.authorize(call('t', args)).effect, 'allow');
  });

  test('a tool name Cedar cannot carry (a lone surrogate) is refused as malformed, and the engine keeps working', () => {
    const d = engine.authorize({ agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'bad\uD800', upstream: 'u' } });
    assert.deepEqual(d, { effect: 'deny', reason: 'policy.invalid_request', rule: 'request', policies: [] });
    assert.equal(engine.authorize(call('t', { path: 'a' })).effect, 'allow');
  });
});

describe('decision memo (agents whose policies do not read context)', () => {
  const lists = {
    demo: { tools: ['files__*', 'git__status'], deny: ['files__write*'], approve: ['files__move_file'] },
    other: { tools: ['git__*'] },
  };
  const tools = ['files__read', 'files__write_file', 'files__move_file', 'git__status', 'git__push', 'nope__x'];
  const request = fc.record({
    agent: fc.constantFrom('demo', 'other', 'ghost'),
    tool: fc.constantFrom(...tools),
    args: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant({ deep: JSON.parse('['.repeat(40) + ']'.repeat(40)) as unknown })),
  });

  test('a long-lived engine answers every request exactly as a fresh one does', () => {
    const longLived = PolicyEngine.compile(config(lists));
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 30 }), (reqs) => {
        for (const q of reqs) {
          const req: PolicyRequest = { agent: q.agent, action: 'tools/call', resource: { kind: 'tool', id: q.tool, upstream: q.tool.split('__')[0] as string }, args: q.args };
          assert.deepEqual(longLived.authorize(req), PolicyEngine.compile(config(lists)).authorize(req));
        }
      }),
      { numRuns: 40 },
    );
  });

  test('unrepresentable arguments are denied even after an allow for the same tool was memoized', () => {
    const engine = PolicyEngine.compile(config(lists));
    const base: PolicyRequest = { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'files__read', upstream: 'files' }, args: { path: '/x' } };
    assert.equal(engine.authorize(base).effect, 'allow');
    const deep = JSON.parse('{"a":'.repeat(MAX_ARGS_DEPTH + 2) + '1' + '}'.repeat(MAX_ARGS_DEPTH + 2)) as unknown;
    assert.equal(engine.authorize({ ...base, args: deep }).reason, 'policy.args_unrepresentable');
    assert.equal(engine.authorize(base).effect, 'allow');
  });

  // Issue 11 §4: dropping the upstream from the memo key went unnoticed. Two upstreams can expose
  // the same resource URI (and, with prefix: false, the same tool name); a policy on
  // resource.upstream reads no context, so its answers are memoized, and each upstream must get its own.
  test('a memoized decision for one upstream is not reused for another exposing the same resource or tool', () => {
    const byUpstream = {
      path: 'upstreams.cedar',
      text:
        '@id("trusted-docs")\npermit(principal, action == Bastion::Action::"resources/read", resource is Bastion::Resource) when { resource.upstream == "docs" };\n' +
        '@id("trusted-tools")\npermit(principal, action == Bastion::Action::"tools/call", resource is Bastion::Tool) when { resource.upstream == "docs" };\n',
    };
    const engine = PolicyEngine.compile(config({ demo: {} }, [byUpstream]));
    const read = (upstream: string): PolicyRequest => ({ agent: 'demo', action: 'resources/read', resource: { kind: 'resource', id: 'file:///work/a.txt', upstream } });
    const tool = (upstream: string): PolicyRequest => ({ agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: 'search', upstream }, args: {} });
    for (const [first, second] of [[read, read], [tool, tool]] as const) {
      assert.deepEqual(engine.authorize(first('docs')), { effect: 'allow', reason: 'policy.permit', rule: first === read ? 'trusted-docs' : 'trusted-tools', policies: [first === read ? 'trusted-docs' : 'trusted-tools'] });
      assert.deepEqual(engine.authorize(second('mirror')), { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny', policies: [] });
      // And the other order: a memoized deny does not stick to the trusted upstream.
      assert.equal(engine.authorize(second('mirror')).effect, 'deny');
      assert.equal(engine.authorize(first('docs')).effect, 'allow');
    }
    const fresh = PolicyEngine.compile(config({ demo: {} }, [byUpstream]));
    assert.equal(fresh.authorize(read('mirror')).effect, 'deny');
    assert.equal(fresh.authorize(read('docs')).effect, 'allow', 'a deny memoized for mirror is not served to docs');
  });
});
