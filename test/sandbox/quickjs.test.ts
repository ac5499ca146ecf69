/**
 * The JavaScript sandbox (src/sandbox/quickjs.ts): values and input round
 * trip, the limits (deadline, memory, stack), the main-thread backstop,
 * isolation, worker replacement, concurrency and the queue bound.
 *
 * No timed assertions: deadlines are set generously where the limit under test
 * is another (memory), and the timeout tests assert codes only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_JS_LIMITS, JsEvaluator, LazyJsEvaluator, type JsResult } from '../../src/sandbox/quickjs.ts';

function value(r: JsResult): unknown {
  assert.ok(r.ok, `expected a value, got ${r.ok ? '' : `${r.code}: ${r.message}`}`);
  return r.value;
}

function code(r: JsResult): string {
  assert.equal(r.ok, false, `expected an error, got ${JSON.stringify(r)}`);
  return r.ok ? '' : r.code;
}

describe('JsEvaluator', () => {
  let ev: JsEvaluator;
  before(async () => {
    ev = await JsEvaluator.start({ workers: 2 });
  });
  after(async () => {
    await ev.close();
  });

  test('evaluates expressions and scripts to JSON values', async () => {
    assert.equal(value(await ev.evaluate('1 + 1')), 2);
    assert.deepEqual(value(await ev.evaluate('({ a: [1, "x", null, true], b: { c: 1.5 } })')), { a: [1, 'x', null, true], b: { c: 1.5 } });
    assert.equal(value(await ev.evaluate('const f = (n) => n * 3;\nlet s = 0;\nfor (let i = 1; i <= 4; i++) s += f(i);\ns')), 30);
    assert.equal(value(await ev.evaluate('"é€😀".length')), 4);
  });

  test('binds input, frozen and read-only', async () => {
    const input = { user: { login: 'octo' }, items: [1, 2, 3] };
    assert.deepEqual(value(await ev.evaluate('({ who: input.user.login, n: input.items.reduce((a, b) => a + b, 0) })', input)), { who: 'octo', n: 6 });
    assert.equal(code(await ev.evaluate('input.items.push(4)', input)), 'ERR_JS_ERROR');
    assert.equal(code(await ev.evaluate('input = 1', input)), 'ERR_JS_ERROR');
    assert.equal(value(await ev.evaluate('Object.isFrozen(input.user)', input)), true);
    assert.equal(value(await ev.evaluate('typeof input')), 'undefined');
    assert.equal(code(await ev.evaluate('1', { big: 1n })), 'ERR_JS_ERROR');
  });

  test('input round-trips unchanged for arbitrary JSON (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (v) => {
        // JSON.stringify is the contract: -0 becomes 0, like any JSON clone.
        const expected = JSON.parse(JSON.stringify(v)) as unknown;
        assert.deepEqual(value(await ev.evaluate('input', v)), expected);
      }),
      { numRuns: 100 },
    );
  });

  test('a value JSON cannot hold, or one too large, is ERR_JS_RESULT', async () => {
    assert.equal(code(await ev.evaluate('undefined')), 'ERR_JS_RESULT');
    assert.equal(code(await ev.evaluate('() => 1')), 'ERR_JS_RESULT');
    assert.equal(code(await ev.evaluate('({ n: 1n })')), 'ERR_JS_RESULT');
    assert.equal(code(await ev.evaluate('const o = {}; o.o = o; o')), 'ERR_JS_RESULT');
    assert.equal(code(await ev.evaluate('"x".repeat(2000)', undefined, { maxResultBytes: 1000 })), 'ERR_JS_RESULT');
    assert.equal(value(await ev.evaluate('"x".repeat(998)', undefined, { maxResultBytes: 1000 })), 'x'.repeat(998)); // 1000 bytes with quotes
    assert.equal(code(await ev.evaluate('"é".repeat(400)', undefined, { maxResultBytes: 500 })), 'ERR_JS_RESULT'); // 802 UTF-8 bytes
  });

  test('a thrown error is ERR_JS_ERROR with its message, capped', async () => {
    const r = await ev.evaluate("throw new TypeError('boom')");
    assert.equal(code(r), 'ERR_JS_ERROR');
    assert.equal(!r.ok && r.message, 'TypeError: boom');
    const long = await ev.evaluate("throw new Error('y'.repeat(5000))");
    assert.equal(code(long), 'ERR_JS_ERROR');
    assert.ok(!long.ok && long.message.length < 600);
    assert.equal(code(await ev.evaluate('throw 42')), 'ERR_JS_ERROR');
    assert.equal(code(await ev.evaluate('this is not javascript')), 'ERR_JS_ERROR');
    assert.equal(code(await ev.evaluate('throw { toString() { for (;;); } }')), 'ERR_JS_TIMEOUT');
  });

  test('no host capability is reachable', async () => {
    const names = ['require', 'process', 'fetch', 'setTimeout', 'setInterval', 'queueMicrotask', 'XMLHttpRequest', 'WebSocket', 'std', 'os', 'module', 'Buffer', 'globalThis.scriptArgs', 'print', 'console'];
    const types = value(await ev.evaluate(`[${names.map((n) => `typeof ${n}`).join(', ')}]`)) as string[];
    assert.deepEqual(types, names.map(() => 'undefined'));
    // No module loader, and a Promise is not a value (no job ever runs).
    assert.equal(code(await ev.evaluate("import('node:fs')")), 'ERR_JS_RESULT');
    assert.equal(code(await ev.evaluate('Promise.resolve(1)')), 'ERR_JS_RESULT');
  });

  test('nothing leaks from one evaluation to the next', async () => {
    const one = await JsEvaluator.start({ workers: 1 });
    try {
      value(await one.evaluate('globalThis.leak = 1; Object.prototype.polluted = 2; Array.prototype.map = null; var v = 3; 0'));
      assert.deepEqual(value(await one.evaluate('[typeof leak, ({}).polluted === undefined, typeof [].map, typeof v]')), ['undefined', true, 'function', 'undefined']);
      value(await one.evaluate('Symbol.for("s").description'));
    } finally {
      await one.close();
    }
  });

  test('an infinite loop is stopped by the deadline: ERR_JS_TIMEOUT, and the worker still answers', async () => {
    assert.equal(code(await ev.evaluate('for (;;) {}', undefined, { timeoutMs: 50 })), 'ERR_JS_TIMEOUT');
    assert.equal(code(await ev.evaluate('while (true) { JSON.stringify({ a: [1, 2, 3] }) }', undefined, { timeoutMs: 50 })), 'ERR_JS_TIMEOUT');
    assert.equal(value(await ev.evaluate('input * 2', 21)), 42);
  });

  test('a memory bomb is ERR_JS_MEMORY (the limit, not the deadline)', async () => {
    const limits = { timeoutMs: 20_000, memoryBytes: 16 * 1024 * 1024 };
    // Large strings and array buffers escape QuickJS's own accounting (quickjs-emscripten#271):
    // the WebAssembly heap cap is what stops these.
    for (const bomb of ["let a=[];for(;;)a.push('x'.repeat(1e6))", 'let a=[];for(;;)a.push(new Uint8Array(1e6))', 'let a=[];for(;;)a.push({ x: [1, 2, 3] })']) {
      assert.equal(code(await ev.evaluate(bomb, undefined, limits)), 'ERR_JS_MEMORY', bomb);
    }
    assert.equal(value(await ev.evaluate('[1, 2, 3].length')), 3);
  });

  test('deep recursion is ERR_JS_MEMORY (the stack limit)', async () => {
    assert.equal(code(await ev.evaluate('function f(n) { return f(n + 1) + 1 } f(0)', undefined, { timeoutMs: 20_000 })), 'ERR_JS_MEMORY');
    assert.equal(code(await ev.evaluate('let o = []; for (let i = 0; i < 1e5; i++) o = [o]; JSON.stringify(o).length', undefined, { timeoutMs: 20_000 })), 'ERR_JS_MEMORY');
    assert.equal(value(await ev.evaluate('"still here"')), 'still here');
  });

  test('concurrent evaluations each get their own result', async () => {
    const n = 60;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => ev.evaluate('({ i: input.i, sq: input.i * input.i })', { i })));
    results.forEach((r, i) => assert.deepEqual(value(r), { i, sq: i * i }));
  });

  test('a timeout in one request does not fail the ones queued behind it', async () => {
    const one = await JsEvaluator.start({ workers: 1, unsafeDisableInterrupt: true, limits: { timeoutMs: 50 } });
    try {
      const [a, b, c] = await Promise.all([one.evaluate('1'), one.evaluate('for (;;) {}'), one.evaluate('input + 1', 2)]);
      assert.equal(value(a), 1);
      assert.equal(code(b), 'ERR_JS_TIMEOUT');
      assert.equal(value(c), 3);
    } finally {
      await one.close();
    }
  });

  test('limits are checked', async () => {
    await assert.rejects(() => ev.evaluate('1', undefined, { timeoutMs: 0 }), RangeError);
    await assert.rejects(() => JsEvaluator.start({ workers: 0 }), RangeError);
    await assert.rejects(() => JsEvaluator.start({ limits: { memoryBytes: -1 } }), RangeError);
    assert.equal(DEFAULT_JS_LIMITS.timeoutMs, 100);
  });
});

describe('JsEvaluator backstop', () => {
  test('with the interrupt handler disabled, the main thread terminates the worker: ERR_JS_TIMEOUT, then a fresh worker answers', async () => {
    const ev = await JsEvaluator.start({ workers: 1, unsafeDisableInterrupt: true, limits: { timeoutMs: 50 } });
    try {
      const r = await ev.evaluate('for (;;) {}');
      assert.equal(code(r), 'ERR_JS_TIMEOUT');
      assert.match(!r.ok ? r.message : '', /stopped/); // the backstop's message, not the interrupt's
      assert.equal(value(await ev.evaluate('globalThis.after = input; after', 'fresh')), 'fresh');
      assert.equal(code(await ev.evaluate('for (;;) {}')), 'ERR_JS_TIMEOUT');
      assert.equal(value(await ev.evaluate('7 * 6')), 42);
    } finally {
      await ev.close();
    }
  });

  test('the interrupt handler answers first when it can (its own message)', async () => {
    const ev = await JsEvaluator.start({ workers: 1, limits: { timeoutMs: 50 } });
    try {
      const r = await ev.evaluate('for (;;) {}');
      assert.equal(code(r), 'ERR_JS_TIMEOUT');
      assert.doesNotMatch(!r.ok ? r.message : '', /stopped/);
    } finally {
      await ev.close();
    }
  });
});

describe('JsEvaluator queue and lifecycle', () => {
  test('over the queue bound, a request is refused with ERR_JS_UNAVAILABLE', async () => {
    const ev = await JsEvaluator.start({ workers: 1, maxQueue: 3, unsafeDisableInterrupt: true, limits: { timeoutMs: 20 } });
    try {
      const queued = [ev.evaluate('for (;;) {}'), ev.evaluate('1'), ev.evaluate('2')] as const;
      assert.equal(code(await ev.evaluate('3')), 'ERR_JS_UNAVAILABLE');
      const [a, b, c] = await Promise.all(queued);
      assert.equal(code(a), 'ERR_JS_TIMEOUT');
      assert.equal(value(b), 1);
      assert.equal(value(c), 2);
    } finally {
      await ev.close();
    }
  });

  test('close answers pending requests ERR_JS_UNAVAILABLE, and later ones too', async () => {
    const ev = await JsEvaluator.start({ workers: 1, unsafeDisableInterrupt: true, limits: { timeoutMs: 10_000 } });
    const pending = ev.evaluate('for (;;) {}');
    const queued = ev.evaluate('1');
    await ev.close();
    assert.equal(code(await pending), 'ERR_JS_UNAVAILABLE');
    assert.equal(code(await queued), 'ERR_JS_UNAVAILABLE');
    assert.equal(code(await ev.evaluate('1')), 'ERR_JS_UNAVAILABLE');
  });

  test('a worker crash answers ERR_JS_UNAVAILABLE once; a fresh worker answers the next request', async () => {
    const ev = await JsEvaluator.start({ workers: 1, unsafeCrashOnSource: 'crash' });
    try {
      const [a, b] = await Promise.all([ev.evaluate('crash'), ev.evaluate('input', 'after')]);
      assert.equal(code(a), 'ERR_JS_UNAVAILABLE');
      assert.equal(value(b), 'after');
      assert.equal(value(await ev.evaluate('1 + 2')), 3);
    } finally {
      await ev.close();
    }
  });

  test('LazyJsEvaluator starts nothing until the first evaluation', async () => {
    const lazy = new LazyJsEvaluator({ workers: 1 });
    assert.equal(lazy.started, false);
    try {
      assert.equal(value(await lazy.evaluate('input.x', { x: 'y' })), 'y');
      assert.equal(lazy.started, true);
    } finally {
      await lazy.close();
    }
    assert.equal(code(await lazy.evaluate('1')), 'ERR_JS_UNAVAILABLE');
  });
});
