// Loaded with `node --import` by bin/bastion.js when the package is installed under
// node_modules, where Node's own type stripping is refused: a module hook that strips
// the types of this package's .ts files (and only those) with Node's own
// stripTypeScriptTypes, the same transformation Node applies to a checkout. Worker
// threads load this file too (they inherit the --import flag).
import { readFileSync } from 'node:fs';
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url).href;

// stripTypeScriptTypes warns once per process that it is experimental (the same stripping
// Node applies to a checkout, where nothing is printed). The CLI installs its own warning
// handler, which would print it on every command: drop exactly that warning.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  if (String(warning).startsWith('stripTypeScriptTypes is an experimental feature')) return;
  return emitWarning.call(process, warning, ...rest);
};

registerHooks({
  load(url, context, nextLoad) {
    if (url.startsWith(root) && url.endsWith('.ts') && !url.slice(root.length).startsWith('node_modules/')) {
      return { format: 'module', source: stripTypeScriptTypes(readFileSync(fileURLToPath(url), 'utf8'), { mode: 'strip' }), shortCircuit: true };
    }
    return nextLoad(url, context);
  },
});
