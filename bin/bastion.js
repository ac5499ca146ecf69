#!/usr/bin/env node
// Entry point for `bastion` (npx bastion, or node_modules/.bin/bastion once the
// package is installed). Bastion's sources are TypeScript run directly by Node 24
// (type stripping); npm puts the project's pinned Node 24 first on PATH.
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`bastion needs Node 24 or newer (this is ${process.version}); run it through npm/npx in the project so the pinned Node is used.\n`);
  process.exit(70);
}

const main = new URL('../src/cli/main.ts', import.meta.url);
const installed = realpathSync(fileURLToPath(import.meta.url)).split(/[\\/]/).includes('node_modules');

if (!installed) {
  // A checkout: Node strips the types itself.
  const { run } = await import(main.href);
  run(process.argv.slice(2));
} else {
  // Installed under node_modules, where Node refuses to strip types
  // (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING). Run the CLI in a child Node that
  // first loads ./strip-types.js: a flag on the command line (not a hook registered
  // here) so worker threads, which inherit the flags, load the sources the same way.
  const child = spawn(
    process.execPath,
    ['--import', new URL('./strip-types.js', import.meta.url).href, fileURLToPath(main), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`bastion: could not start node: ${err.code ?? err.name}\n`);
    process.exit(70);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1)));
}
