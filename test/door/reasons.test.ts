/**
 * The closed table of refusal reasons (src/door/reasons.ts) and the refusal
 * value (src/door/refusal.ts).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { isReason, reasonEntry, REASONS, RPC, statusOf } from '../../src/door/reasons.ts';
import { refusal, refusalOf } from '../../src/door/refusal.ts';

test('every row has an error code, an HTTP error status and a JSON-RPC error code', () => {
  for (const [reason, row] of Object.entries(REASONS)) {
    assert.match(row.code, /^ERR_[A-Z0-9_]+$/, reason);
    assert.ok(row.status >= 400 && row.status <= 599, `${reason}: ${row.status}`);
    for (const s of Object.values(row.byDoor ?? {})) assert.ok(s >= 400 && s <= 599, reason);
    if (row.rpc !== undefined) assert.ok((Object.values(RPC) as number[]).includes(row.rpc), reason);
    assert.match(reason, /^[a-z0-9_]+(\.[a-z0-9_-]+)*$/, 'reason codes are dotted lowercase');
  }
});

test('the proxy answers authentication failures with 407, every other door with 401', () => {
  for (const reason of ['auth.missing', 'auth.invalid'] as const) {
    assert.equal(statusOf(reason, 'network'), 407);
    for (const door of ['tool', 'model', 'a2a', 'admin'] as const) assert.equal(statusOf(reason, door), 401);
  }
});

test('a reason missing from the table fails closed as internal (500), keeping its own reason in the decision', () => {
  assert.equal(isReason('made.up'), false);
  assert.equal(reasonEntry('made.up').code, 'ERR_INTERNAL');
  const r = refusalOf({ effect: 'deny', reason: 'made.up', rule: 'x' }, 'tool');
  assert.deepEqual(r, { decision: { effect: 'deny', reason: 'made.up', rule: 'x' }, code: 'ERR_INTERNAL', status: 500, rpc: RPC.INTERNAL });
  // No prefix matching: a reason that merely starts like a row is not that row.
  assert.equal(reasonEntry('auth.missing.extra').code, 'ERR_INTERNAL');
  assert.equal(reasonEntry('ssrf.address.not-a-class').code, 'ERR_INTERNAL');
});

test('refusal() reads code, status and JSON-RPC code from the table', () => {
  assert.deepEqual(refusal('body.too_large', 'server.maxBodyBytes', 'tool'), {
    decision: { effect: 'deny', reason: 'body.too_large', rule: 'server.maxBodyBytes' },
    code: 'ERR_BODY_TOO_LARGE',
    status: 413,
    rpc: RPC.INVALID,
  });
  assert.equal(refusal('ssrf.address.metadata', 'dns', 'network').code, 'ERR_EGRESS_SSRF');
  assert.equal(refusal('policy.forbid', 'p', 'tool').rpc, RPC.DENIED);
});

test('closed table: every deny reason written in src/ is a row (read with the TypeScript parser)', () => {
  const root = join(import.meta.dirname, '..', '..');
  const walk = (dir: string, out: string[] = []): string[] => {
    for (const n of readdirSync(dir)) {
      const f = join(dir, n);
      if (statSync(f).isDirectory()) walk(f, out);
      else if (n.endsWith('.ts')) out.push(f);
    }
    return out;
  };
  const missing: string[] = [];
  let seen = 0;
  for (const file of walk(join(root, 'src'))) {
    // bastion/verify is a standalone library with its own error table.
    if (file.includes(`${join('src', 'verify')}`)) continue;
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const check = (node: ts.Node, reason: ts.Node): void => {
      if (ts.isStringLiteral(reason) || ts.isNoSubstitutionTemplateLiteral(reason)) {
        seen++;
        if (!isReason(reason.text)) missing.push(`${relative(root, file)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${reason.text}`);
      }
    };
    const visit = (node: ts.Node): void => {
      // deny('reason', rule)
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'deny' && node.arguments[0]) check(node, node.arguments[0]);
      // { effect: 'deny', reason: '...' }
      if (ts.isObjectLiteralExpression(node)) {
        const prop = (name: string) => node.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === name);
        const effect = prop('effect');
        const reason = prop('reason');
        if (effect && reason && ts.isStringLiteral(effect.initializer) && effect.initializer.text === 'deny') check(node, reason.initializer);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  assert.ok(seen > 50, `the scan found ${seen} deny reasons: it is not reading the sources`);
  assert.deepEqual(missing, []);
});
