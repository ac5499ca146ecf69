/**
 * The Cedar-facing edges of the policy engine: string literals in generated
 * policies, config-generated prompt policies, the JSON → Cedar argument
 * conversion (its bounds, refusals and messages), and the file:line issues an
 * invalid policy file is reported with. Every engine is compiled inside a test,
 * so a compile failure fails that test.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { argsToCedar, cedarStringLiteral, MAX_ARGS_DEPTH, MAX_ARGS_VALUES, PolicyEngine, type PolicyRequest } from '../../src/policy/engine.ts';
import { isBastionError } from '../../src/errors.ts';
import { policyConfig, throwsCode } from '../helpers/policy.ts';

function call(tool: string, args?: unknown): PolicyRequest {
  return { agent: 'demo', action: 'tools/call', resource: { kind: 'tool', id: tool, upstream: 'u' }, ...(args === undefined ? {} : { args }) };
}

/** The error `fn` throws (it must throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

/** `{ok: false, why}` from argsToCedar, or a failure. */
function refusal(args: unknown): string {
  const r = argsToCedar(args);
  assert.equal(r.ok, false, 'expected the arguments to be refused');
  return r.ok ? '' : r.why;
}

/** `levels` arrays nested in each other around `'x'`. */
function nestedArrays(levels: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

describe('Cedar string literals in generated policies', () => {
  test('DEL and other control characters are written as \\u{..} escapes, printable ASCII as itself', () => {
    assert.equal(cedarStringLiteral('a\u007fb'), '"a\\u{7f}b"');
    assert.equal(cedarStringLiteral('a\u001fb\nc'), '"a\\u{1f}b\\u{a}c"');
    assert.equal(cedarStringLiteral(' !~'), '" !~"');
    assert.equal(cedarStringLiteral('a"b\\c'), '"a\\"b\\\\c"');
  });

  test('a space in a resource URI appears as a space in the generated policy text', () => {
    const engine = PolicyEngine.compile(policyConfig({ demo: { resources: ['file:///my docs/*'] } }));
    assert.match(engine.policies[0]?.text ?? '', /resource\.uri like "file:\/\/\/my docs\/\*"/);
  });
});

describe('config prompts compile to prompts/get permits on Bastion::Prompt', () => {
  test('a prompts entry permits that prompt and no other', () => {
    const engine = PolicyEngine.compile(policyConfig({ demo: { prompts: ['files__sum*'] } }));
    const get = (name: string) => engine.authorize({ agent: 'demo', action: 'prompts/get', resource: { kind: 'prompt', id: name, upstream: 'files' } });
    assert.deepEqual(get('files__summarize'), { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.prompts[0]', policies: ['agents.demo.prompts[0]'] });
    assert.equal(get('files__other').reason, 'policy.no_permit');
    assert.match(engine.policies[0]?.text ?? '', /action == Bastion::Action::"prompts\/get",\n {2}resource is Bastion::Prompt\n/);
  });
});

describe('config name patterns', () => {
  test('a name pattern is refused when any character is outside the allowed set, not only the last', () => {
    for (const bad of ['files read', 'a"b', '" || true || x']) {
      throwsCode(() => PolicyEngine.compile(policyConfig({ demo: { tools: [bad] } })), 'ERR_POLICY_INVALID', /^config: agents\.demo\.tools\[0\]: bad pattern: a name pattern may hold letters, digits, _ - \. \/ and \*$/);
    }
  });
});

describe('argsToCedar', () => {
  test('null or undefined arguments are an empty record', () => {
    assert.deepEqual(argsToCedar(null), { ok: true, value: {} });
    assert.deepEqual(argsToCedar(undefined), { ok: true, value: {} });
  });

  test('undefined and null values are omitted, in records and in arrays', () => {
    assert.deepEqual(argsToCedar({ a: undefined, b: null, c: [undefined, 1, null], d: 'x' }), { ok: true, value: { c: [1], d: 'x' } });
    const r = argsToCedar({ a: null });
    assert.ok(r.ok);
    assert.deepEqual(Object.keys(r.value), []);
  });

  test('a converted record is an ordinary object: each property enumerable, writable and configurable', () => {
    const r = argsToCedar({ a: 1, b: { c: 'd' } });
    assert.ok(r.ok);
    assert.deepEqual(Object.getOwnPropertyDescriptors(r.value), Object.getOwnPropertyDescriptors(JSON.parse('{"a":1,"b":{"c":"d"}}') as object));
    assert.deepEqual(Object.getOwnPropertyDescriptors(r.value.b), Object.getOwnPropertyDescriptors({ c: 'd' }));
  });

  test('a null-prototype object is a record like any other', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.k = 'v';
    assert.deepEqual(argsToCedar(o), { ok: true, value: { k: 'v' } });
    assert.deepEqual(argsToCedar({ nested: o }), { ok: true, value: { nested: { k: 'v' } } });
  });

  test('objects that are not plain JSON objects are refused, at the top and nested', () => {
    assert.deepEqual(argsToCedar(new Date(0)), { ok: false, why: 'arguments are not an object' });
    assert.deepEqual(argsToCedar(new Map([['a', 1]])), { ok: false, why: 'arguments are not an object' });
    // an array stays an array even with a plain object's prototype
    const disguised = ['x'];
    Object.setPrototypeOf(disguised, Object.prototype);
    assert.deepEqual(argsToCedar(disguised), { ok: false, why: 'arguments are not an object' });
    const nullProtoArray = ['x'];
    Object.setPrototypeOf(nullProtoArray, null);
    assert.deepEqual(argsToCedar(nullProtoArray), { ok: false, why: 'arguments are not an object' });
    assert.deepEqual(argsToCedar('x'), { ok: false, why: 'arguments are not an object' });
    assert.deepEqual(argsToCedar({ a: new Date(0) }), { ok: false, why: 'an argument is not a JSON value' });
    assert.deepEqual(argsToCedar({ a: new (class Point { x = 1; })() }), { ok: false, why: 'an argument is not a JSON value' });
    assert.deepEqual(argsToCedar({ a: 1n }), { ok: false, why: 'an argument is not a JSON value' });
    assert.deepEqual(argsToCedar({ a: () => 1 }), { ok: false, why: 'an argument is not a JSON value' });
  });

  test('each refusal says why', () => {
    assert.equal(refusal({ __entity: { type: 'Bastion::Agent', id: 'root' } }), 'argument key __entity is reserved by Cedar');
    assert.equal(refusal({ a: { __extn: { fn: 'ip', arg: '10.0.0.1' } } }), 'argument key __extn is reserved by Cedar');
    assert.equal(refusal({ a: [{ __expr: 'x' }] }), 'argument key __expr is reserved by Cedar');
    assert.equal(refusal({ '\uD800': 1 }), 'an argument key holds a lone surrogate');
    assert.equal(refusal({ a: ['ok', 'x\uDC00'] }), 'an argument string holds a lone surrogate');
    assert.equal(refusal({ a: nestedArrays(MAX_ARGS_DEPTH) }), `arguments nest deeper than ${MAX_ARGS_DEPTH} levels`);
    let deep: unknown = 'x';
    for (let i = 0; i < MAX_ARGS_DEPTH + 1; i++) deep = { a: deep };
    assert.equal(refusal(deep), `arguments nest deeper than ${MAX_ARGS_DEPTH} levels`);
    assert.equal(refusal({ a: new Array(MAX_ARGS_VALUES).fill(1) }), `arguments hold more than ${MAX_ARGS_VALUES} values`);
  });

  test('a key that is the empty string is an ordinary key', () => {
    assert.deepEqual(argsToCedar({ '': 1, __entities: 2 }), { ok: true, value: { '': 1, __entities: 2 } });
  });

  test('arrays nest up to MAX_ARGS_DEPTH levels with the args object counted, not one more', () => {
    // the args object is level 1, so MAX_ARGS_DEPTH - 1 arrays fit inside it
    assert.equal(argsToCedar({ a: nestedArrays(MAX_ARGS_DEPTH - 1) }).ok, true);
    assert.equal(argsToCedar({ a: nestedArrays(MAX_ARGS_DEPTH) }).ok, false);
  });

  test('MAX_ARGS_VALUES counts every value: the args object, records, arrays, strings, booleans, numbers', () => {
    // args object + array = 2 values; MAX_ARGS_VALUES - 2 items fill the budget exactly
    const fill = (item: unknown, n: number) => ({ a: new Array(n).fill(item) as unknown[] });
    for (const item of [1, 's', true, [], {}]) {
      assert.equal(argsToCedar(fill(item, MAX_ARGS_VALUES - 2)).ok, true, `${JSON.stringify(item)} × budget`);
      assert.equal(argsToCedar(fill(item, MAX_ARGS_VALUES - 1)).ok, false, `${JSON.stringify(item)} × budget + 1`);
    }
    // a nested empty record counts as one value
    assert.equal(argsToCedar({ a: new Array(MAX_ARGS_VALUES - 3).fill(1), b: {} }).ok, true);
    assert.equal(argsToCedar({ a: new Array(MAX_ARGS_VALUES - 2).fill(1), b: {} }).ok, false);
  });

  test('an exception that is not about representability propagates; authorize turns it into policy.error', () => {
    const args = {
      get a(): unknown {
        throw new Error('getter boom');
      },
    };
    assert.throws(() => argsToCedar(args), /getter boom/);
    const engine = PolicyEngine.compile(policyConfig({ demo: { tools: ['*'] } }));
    assert.deepEqual(engine.explain(call('t', args)), {
      effect: 'deny',
      reason: 'policy.error',
      rule: 'cedar',
      policies: [],
      determining: [],
      errors: [{ policy: '', message: 'getter boom' }],
    });
  });
});

describe('policy file issues', () => {
  const compileFile = (text: string, path = '/cfg/p.cedar') => () => PolicyEngine.compile(policyConfig({ demo: {} }, [{ path, text }]));

  test('a validation error other than an impossible policy carries no schema hint', () => {
    const err = thrown(compileFile('\nforbid(principal, action, resource) when { context.args.path == "x" };'));
    assert.ok(isBastionError(err));
    assert.match(err.message, /^\/cfg\/p\.cedar:2:44: policy p\.cedar#0: unable to guarantee safety of access to optional attribute `args\.path`/);
    assert.doesNotMatch(err.message, /does not declare/);
  });

  test('an issue Cedar gives no position for is "file: message"', () => {
    throwsCode(compileFile('permit(principal == ?principal, action, resource);'), 'ERR_POLICY_INVALID', /^\/cfg\/p\.cedar: static policy set includes a template$/);
  });

  test('several issues are one per line, and detail.issues holds them structured', () => {
    const text = '@approval("maybe") permit(principal, action, resource);\n@intercept("required") forbid(principal, action, resource);';
    const err = thrown(compileFile(text));
    assert.ok(isBastionError(err));
    assert.equal(err.code, 'ERR_POLICY_INVALID');
    assert.equal(
      err.message,
      '/cfg/p.cedar:1:1: policy p.cedar#0: @approval must be "required"\n/cfg/p.cedar:2:1: policy p.cedar#1: @intercept applies only to permit policies',
    );
    assert.deepEqual((err as unknown as { detail: unknown }).detail, {
      issues: [
        { file: '/cfg/p.cedar', line: 1, col: 1, message: 'policy p.cedar#0: @approval must be "required"' },
        { file: '/cfg/p.cedar', line: 2, col: 1, message: 'policy p.cedar#1: @intercept applies only to permit policies' },
      ],
    });
  });
});
