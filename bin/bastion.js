#!/usr/bin/env node
// Entry point for `npx bastion`. Bastion's sources are TypeScript run directly
// by Node 24 (type stripping); npm puts the project's pinned Node 24 first on PATH.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`bastion needs Node 24 or newer (this is ${process.version}); run it through npm/npx in the project so the pinned Node is used.\n`);
  process.exit(70);
}
await import('../src/cli/main.ts');
