import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isBastionError } from '../../src/errors.ts';
import { MAX_PATH_ARGS_DEPTH, PathGuard, type PathScope } from '../../src/policy/paths.ts';

// Which strings the path guard checks (argumentsToCheck) and which schema positions it reports as
// unclassified (unclassifiedArguments, printed by `serve` and `config check`). No file is touched:
// these decide what is checked, not how (paths.test.ts checks paths against a real folder tree).
const guard = PathGuard.compile({ allow: [], deny: [], argumentNames: ['target'], base: '/' });
const strict: PathScope = { name: 'files', pathGuard: 'strict' };

/** `value` inside `n` levels built by `wrap` (depth n: the root is depth 0). */
function nest(value: unknown, n: number, wrap: (inner: unknown) => unknown): unknown {
  let out: unknown = value;
  for (let i = 0; i < n; i++) out = wrap(out);
  return out;
}

describe('PathGuard.compile: paths.base', () => {
  test('paths.base must be an absolute path string; the error names the field', () => {
    for (const base of ['relative', './ws', '', 42]) {
      assert.throws(
        () => PathGuard.compile({ allow: [], deny: [], argumentNames: [], base: base as string }),
        (e: unknown) => isBastionError(e, 'ERR_CONFIG_INVALID') && /^paths\.base must be an absolute path$/.test(e.message),
        JSON.stringify(base),
      );
    }
  });
});

describe('PathGuard.argumentsToCheck: how arguments are walked', () => {
  test('arguments that are not an object have no property name: a top-level string or array item is unclassified, never path-named', () => {
    assert.deepEqual(guard.argumentsToCheck(strict, 't', {}, 'a.txt'), [{ pointer: '', value: 'a.txt', kind: 'unclassified' }]);
    assert.deepEqual(guard.argumentsToCheck(strict, 't', {}, ['a.txt']), [{ pointer: '/0', value: 'a.txt', kind: 'unclassified' }]);
    assert.deepEqual(guard.pathArguments({}, 'a.txt'), []);
    assert.deepEqual(guard.pathArguments({}, ['a.txt']), []);
    // The schema side says the same: a top-level string or array item is listed as unclassified.
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', { type: 'string' }), ['']);
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', { type: 'array', items: { type: 'string' } }), ['/*']);
  });

  test('numbers, booleans and null are never paths, wherever they are', () => {
    const schema = { type: 'object', properties: { n: {}, b: {}, i: {}, list: { items: { properties: { x: {} } } }, q: {} } };
    const args = { n: null, b: false, i: 3, list: [null, 1, true, { x: null }], q: 'x' };
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, args), [{ pointer: '/q', value: 'x', kind: 'unclassified' }]);
    for (const top of [null, 0, true]) assert.deepEqual(guard.argumentsToCheck(strict, 't', {}, top), [], String(top));
  });

  test('an argumentKinds pointer names the same member after an array sibling was walked', () => {
    const scope: PathScope = { ...strict, argumentKinds: { t: { '/b': 'not-path', '/c/d': 'path' } } };
    const schema = { type: 'object', properties: { a: {}, b: {}, c: { properties: { d: {} } } } };
    assert.deepEqual(guard.argumentsToCheck(scope, 't', schema, { a: ['x', 'y'], b: 'z', c: { d: 'w' } }), [
      { pointer: '/a/0', value: 'x', kind: 'unclassified' },
      { pointer: '/a/1', value: 'y', kind: 'unclassified' },
      { pointer: '/c/d', value: 'w', kind: 'path' },
    ]);
  });
});

describe('MAX_PATH_ARGS_DEPTH: what is refused is not reported', () => {
  // One nesting form each: an object member, an array item (items), a tuple item (prefixItems).
  const forms = [
    { via: 'properties', schema: (s: unknown) => ({ type: 'object', properties: { a: s } }), arg: (v: unknown) => ({ a: v }), token: '/a', argToken: '/a' },
    { via: 'items', schema: (s: unknown) => ({ type: 'array', items: s }), arg: (v: unknown) => [v], token: '/*', argToken: '/0' },
    { via: 'prefixItems', schema: (s: unknown) => ({ type: 'array', prefixItems: [s], items: false }), arg: (v: unknown) => [v], token: '/0', argToken: '/0' },
  ];

  test('a string MAX_PATH_ARGS_DEPTH levels deep is checked and listed; one level deeper is refused (ERR_ARGS_INVALID) and not listed', () => {
    for (const f of forms) {
      const atLimit = nest({ type: 'string' }, MAX_PATH_ARGS_DEPTH, f.schema);
      const beyond = nest({ type: 'string' }, MAX_PATH_ARGS_DEPTH + 1, f.schema);
      assert.deepEqual(guard.unclassifiedArguments(undefined, 't', atLimit), [f.token.repeat(MAX_PATH_ARGS_DEPTH)], f.via);
      assert.deepEqual(guard.unclassifiedArguments(undefined, 't', beyond), [], f.via);
      assert.deepEqual(guard.argumentsToCheck(strict, 't', atLimit, nest('x', MAX_PATH_ARGS_DEPTH, f.arg)), [
        { pointer: f.argToken.repeat(MAX_PATH_ARGS_DEPTH), value: 'x', kind: 'unclassified' },
      ], f.via);
      assert.throws(
        () => guard.argumentsToCheck(strict, 't', beyond, nest('x', MAX_PATH_ARGS_DEPTH + 1, f.arg)),
        (e: unknown) => isBastionError(e, 'ERR_ARGS_INVALID') && e.message === `arguments nest deeper than ${MAX_PATH_ARGS_DEPTH} levels`,
        f.via,
      );
    }
  });
});

describe('PathGuard.unclassifiedArguments: which schema positions are unclassified', () => {
  // Each case is the schema of member /s; the sibling /z after it (an unclassified string) must
  // keep its own pointer, so every case also shows the walk leaves no token behind.
  const listed = (s: unknown, scope?: PathScope): string[] =>
    guard.unclassifiedArguments(scope, 't', { type: 'object', properties: { s, z: { type: 'string' } }, additionalProperties: false });
  const table = (rows: readonly (readonly [string, unknown, readonly string[]])[]) => {
    for (const [rule, s, expected] of rows) assert.deepEqual(listed(s), [...expected, '/z'], rule);
  };

  test('a string is listed unless a format, const or enum classifies it; other types are not strings', () => {
    table([
      ['a plain string', { type: 'string' }, ['/s']],
      ['a type list with string', { type: ['string', 'null'] }, ['/s']],
      ['a number', { type: 'number' }, []],
      ['a boolean or integer list', { type: ['boolean', 'integer'] }, []],
      ['a const string', { type: 'string', const: '/etc/passwd' }, []],
      ['a const without type', { const: 'a' }, []],
      ['an enum string', { type: 'string', enum: ['a', 'b'] }, []],
      ['format path', { type: 'string', format: 'path' }, []],
      ['format uri (the value decides)', { type: 'string', format: 'uri' }, []],
      ['format date (checked on the value)', { type: 'string', format: 'date' }, []],
      ['a format that classifies nothing', { type: 'string', format: 'color' }, ['/s']],
      ['a non-string format', { type: 'string', format: 7 }, ['/s']],
      ['x-bastion-kind not-path', { type: 'string', 'x-bastion-kind': 'not-path' }, []],
      ['x-bastion-kind path', { type: 'string', 'x-bastion-kind': 'path' }, []],
    ]);
  });

  test('a schema that is not an object (true, null) says nothing: the position is unclassified', () => {
    table([
      ['true', true, ['/s']],
      ['null', null, ['/s']],
    ]);
    // A tool that lists no input schema: its whole arguments are unclassified.
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', undefined), ['']);
  });

  test('a schema without type is a string unless it declares object or array structure', () => {
    table([
      ['nothing declared', {}, ['/s']],
      ['only a description', { description: 'anything' }, ['/s']],
      ['properties: an object that says nothing more about other members', { properties: { n: { type: 'number' } } }, []],
      ['additionalProperties: a free-form object', { additionalProperties: { type: 'number' } }, ['/s/*']],
      ['additionalProperties: false', { additionalProperties: false }, []],
      ['items: an array', { items: { type: 'number' } }, []],
      ['prefixItems: a tuple', { prefixItems: [{ type: 'number' }] }, []],
    ]);
  });

  test('the members of a free-form object are listed as <object>/*; additionalProperties:false closes it', () => {
    table([
      ['no properties', { type: 'object' }, ['/s/*']],
      ['no properties, additionalProperties:false', { type: 'object', additionalProperties: false }, []],
      ['declared properties, nothing more', { type: 'object', properties: { n: { type: 'number' } } }, []],
      ['declared properties, additionalProperties:true', { type: 'object', properties: { n: { type: 'number' } }, additionalProperties: true }, ['/s/*']],
      ['declared properties, additionalProperties a schema', { type: 'object', properties: { n: { type: 'number' } }, additionalProperties: { type: 'number' } }, ['/s/*']],
      ['declared properties, additionalProperties:false', { type: 'object', properties: { n: { type: 'number' } }, additionalProperties: false }, []],
      ['declared properties listed before the free-form members', { type: 'object', properties: { q: { type: 'string' } }, additionalProperties: true }, ['/s/q', '/s/*']],
    ]);
  });

  test('an array\'s items are listed as /x/*, a tuple\'s by index; items:false closes the tail, items:true or none leaves it open', () => {
    table([
      ['items', { type: 'array', items: { type: 'string' } }, ['/s/*']],
      ['items:true', { type: 'array', items: true }, ['/s/*']],
      ['items:false', { type: 'array', items: false }, []],
      ['no items: anything goes', { type: 'array' }, ['/s/*']],
      ['a tuple without items: its tail takes anything', { type: 'array', prefixItems: [{ type: 'number' }] }, ['/s/*']],
      ['items of numbers', { type: 'array', items: { type: 'number' } }, []],
      ['a closed tuple', { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }, { type: 'string' }], items: false }, ['/s/0', '/s/2']],
      ['a tuple with a tail', { type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'string' } }, ['/s/0', '/s/*']],
      ['an array of free-form objects', { type: 'array', items: { type: 'object' } }, ['/s/*/*']],
    ]);
  });

  test('a path-named member is classified whatever its schema says', () => {
    const schema = {
      type: 'object',
      properties: { path: true, files: { type: 'array', items: true }, outputPath: {}, target: { type: 'string' }, q: {} },
      additionalProperties: false,
    };
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', schema), ['/q']);
  });

  test('pointers are RFC 6901: the key "" is "/", "~" and "/" are escaped', () => {
    const schema = { type: 'object', properties: { '': { type: 'string' }, 'a/b~c': { type: 'string' } }, additionalProperties: false };
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', schema), ['/', '/a~1b~0c']);
  });

  test('nothing under an explicit classification (argumentKinds or x-bastion-kind) is listed, even while a deeper rule keeps the walk going', () => {
    // The rule for /deep/a/b/c is deeper than everything else, so the walk does not stop at /cfg or /decl.
    const scope: PathScope = { ...strict, argumentKinds: { t: { '/cfg': 'not-path', '/deep/a/b/c': 'path' } } };
    const under = { type: 'object', properties: { s: { type: 'string' }, t: true, n: null, o: { type: 'object' } }, additionalProperties: { type: 'string' } };
    const schema = {
      type: 'object',
      properties: {
        cfg: under,
        decl: { ...under, 'x-bastion-kind': 'not-path' },
        deep: { type: 'object', properties: { a: { type: 'object', properties: { b: { type: 'object', properties: { c: { type: 'string' } } } } } } },
        q: { type: 'string' },
      },
      additionalProperties: false,
    };
    assert.deepEqual(guard.unclassifiedArguments(scope, 't', schema), ['/q']);
    // Without the classifications, the same positions are listed.
    assert.deepEqual(guard.unclassifiedArguments(strict, 't', { ...schema, properties: { ...schema.properties, decl: under } }), [
      '/cfg/s', '/cfg/t', '/cfg/n', '/cfg/o/*', '/cfg/*',
      '/decl/s', '/decl/t', '/decl/n', '/decl/o/*', '/decl/*',
      '/deep/a/b/c',
      '/q',
    ]);
  });
});
