/**
 * Import boundaries (ARCHITECTURE.md, "The door kernel"): no door imports
 * another door, and the pure cores import no adapter. Imports are read with the
 * TypeScript compiler's own parser; `import type` is allowed everywhere (it
 * erases: no code runs across the boundary).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) files(full, out);
    else if (name.endsWith('.ts')) out.push(full);
  }
  return out;
}

/** Value imports and re-exports of a file: the specifier, the resolved repo path (or the bare specifier), and the names imported when named. */
function valueImports(file: string): { spec: string; target: string; names?: string[] }[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: { spec: string; target: string; names?: string[] }[] = [];
  for (const st of sf.statements) {
    let spec: string | undefined;
    let names: string[] | undefined;
    if (ts.isImportDeclaration(st)) {
      if (st.importClause?.isTypeOnly) continue;
      const named = st.importClause?.namedBindings;
      // `import { type A, type B }` erases too.
      if (st.importClause && !st.importClause.name && named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly)) continue;
      if (st.importClause && !st.importClause.name && named && ts.isNamedImports(named)) names = named.elements.filter((e) => !e.isTypeOnly).map((e) => (e.propertyName ?? e.name).text);
      spec = (st.moduleSpecifier as ts.StringLiteral).text;
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && !st.isTypeOnly) {
      spec = (st.moduleSpecifier as ts.StringLiteral).text;
    }
    if (spec === undefined) continue;
    out.push({ spec, target: spec.startsWith('.') ? relative(ROOT, resolve(dirname(file), spec)) : spec, ...(names ? { names } : {}) });
  }
  return out;
}

const ALL = files(SRC).map((f) => ({ path: relative(ROOT, f), imports: valueImports(f) }));

/** The doors, by folder. Abilities are tool-door tools. */
const DOORS: Readonly<Record<string, readonly string[]>> = {
  tool: ['src/mcp/', 'src/abilities/'],
  model: ['src/model/'],
  network: ['src/egress/'],
  a2a: ['src/a2a/'],
};
const doorOf = (path: string): string | undefined => Object.entries(DOORS).find(([, dirs]) => dirs.some((d) => path.startsWith(d)))?.[0];

/**
 * Known crossings (none left: abilities get the guard from the composition root
 * and share the target parser and the pinned connector from src/net/).
 */
const KNOWN_CROSSINGS = new Set<string>([]);

test('no door imports another door', () => {
  const crossings: string[] = [];
  for (const f of ALL) {
    const from = doorOf(f.path);
    if (from === undefined) continue;
    for (const i of f.imports) {
      const to = doorOf(i.target);
      if (to !== undefined && to !== from) crossings.push(`${f.path} -> ${i.target}`);
    }
  }
  assert.deepEqual(crossings.filter((c) => !KNOWN_CROSSINGS.has(c)), []);
  // The allowance shrinks only: a crossing that is gone must leave the list too.
  assert.deepEqual([...KNOWN_CROSSINGS].filter((c) => !crossings.includes(c)), []);
});

/** Pure cores: decisions and transformations without I/O. */
const PURE = [
  'src/decision.ts',
  'src/door/reasons.ts',
  'src/door/refusal.ts',
  'src/door/authenticate.ts',
  'src/vault/release.ts',
  'src/redact/',
  'src/detect/',
  // src/net/ except pinned-connector.ts (it dials: an adapter shared by the network door and abilities).
  'src/net/host-pattern.ts',
  'src/net/target.ts',
  'src/egress/ssrf-classify.ts',
  'src/policy/engine.ts',
  'src/audit/chain.ts',
  'src/audit/canonical.ts',
];
/** Adapters: stores, listeners, the CLI, and the modules that do network, file or process I/O. */
const ADAPTER_DIRS = ['src/store/', 'src/server/', 'src/cli/'];
/** Functions of I/O modules that do no I/O (address syntax checks). */
const PURE_NAMES: Readonly<Record<string, readonly string[]>> = { 'node:net': ['isIP', 'isIPv4', 'isIPv6'] };
const ADAPTER_MODULES = new Set(['node:http', 'node:https', 'node:http2', 'node:net', 'node:tls', 'node:dgram', 'node:fs', 'node:fs/promises', 'node:child_process', 'node:sqlite', 'node:worker_threads', 'undici', 'ioredis', 'pg', 'nodemailer']);

test('pure cores import no adapter', () => {
  const bad: string[] = [];
  for (const f of ALL.filter((x) => PURE.some((p) => x.path === p || (p.endsWith('/') && x.path.startsWith(p))))) {
    for (const i of f.imports) {
      const pureNames = PURE_NAMES[i.target];
      if (pureNames !== undefined && i.names !== undefined && i.names.every((n) => pureNames.includes(n))) continue;
      if (ADAPTER_MODULES.has(i.target) || ADAPTER_DIRS.some((d) => i.target.startsWith(d))) bad.push(`${f.path} -> ${i.target}`);
    }
  }
  assert.deepEqual(bad, []);
});

/** Every import of a file, type-only ones included: the resolved repo path or the bare specifier. */
function allImports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const st of sf.statements) {
    if ((ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) {
      const spec = st.moduleSpecifier.text;
      out.push(spec.startsWith('.') ? relative(ROOT, resolve(dirname(file), spec)) : spec);
    }
  }
  return out;
}

test('doors declare the parts they are built from: no door module names the composition root (not even as a type)', () => {
  const bad: string[] = [];
  for (const f of ALL.filter((x) => doorOf(x.path) !== undefined)) {
    for (const target of allImports(join(ROOT, f.path))) if (target === 'src/server/gateway.ts') bad.push(`${f.path} -> ${target}`);
  }
  assert.deepEqual(bad, []);
});

test('the boundary check sees imports (a check that cannot fail is no check)', () => {
  const session = ALL.find((f) => f.path === 'src/mcp/session.ts');
  assert.ok(session && session.imports.length > 5);
  assert.ok(ALL.length > 100);
});
