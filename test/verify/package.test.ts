/**
 * `bastion/verify` as a tool server imports it: the package entry resolves to
 * built JavaScript that exports the same API as the sources, and the library
 * depends on nothing of Bastion's (only jose, structured-headers and Node
 * built-ins), so it can be used on its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as source from '../../src/verify/index.ts';
import { ROOT } from '../helpers/gateway.ts';

test('import "bastion/verify" resolves to the built entry with the source API', () => {
  // A separate process: what a tool server's `import` sees (package exports, plain JS).
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('bastion/verify'); console.log(JSON.stringify({ url: import.meta.resolve('bastion/verify'), names: Object.keys(m).sort() }))"], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { url: string; names: string[] };
  assert.match(out.url, /\/dist\/verify\/index\.js$/);
  assert.deepEqual(out.names, Object.keys(source).sort());
});

test('src/verify imports only its own files, jose, structured-headers and Node built-ins', () => {
  const dir = join(ROOT, 'src', 'verify');
  const allowed = /^(\.\/[a-z0-9-]+\.ts|jose|structured-headers|node:[a-z_/]+)$/;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm), ...text.matchAll(/import\('([^']+)'\)/g)].map((m) => m[1] as string);
    for (const s of specifiers) assert.match(s, allowed, `${file} imports ${s}`);
    if (text.includes("'node:http'")) assert.match(text, /import type [^;]*'node:http'/, `${file}: node:http for types only`);
    // node:sqlite is loaded only when a SqliteReplayStore is created (no experimental warning on import).
    if (text.includes("'node:sqlite'")) assert.match(text, /import type [^;]*'node:sqlite'/, `${file}: node:sqlite for types only`);
  }
});
