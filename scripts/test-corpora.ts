/**
 * `npm run test:corpora`: the checks against the third-party corpora
 * (test/corpora/*.corpus.ts: secret-detector recall and false positives, the
 * injection corpus, the SSRF corpus), run with node's test runner. The corpora are
 * not in the repository: they are read from `$BASTION_CORPORA`, else from
 * `../shared/corpora` beside it. When neither holds them this exits 2 naming both
 * places: a missing corpus is a failure, never a skip. `npm test` does not run these.
 * Usage: node scripts/test-corpora.ts [file-or-substring ...]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { corporaAbsentMessage, findCorpora } from '../test/helpers/corpora.ts';

const root = join(import.meta.dirname, '..');
const dir = join(root, 'test', 'corpora');

const corpora = findCorpora();
if (corpora === undefined) {
  console.error(`test:corpora: ${corporaAbsentMessage()}.\nSet BASTION_CORPORA to the corpora folder, or put the shared folder beside the repository.`);
  process.exit(2);
}

const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.corpus.ts'))
  .map((f) => relative(root, join(dir, f)))
  .sort()
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('test:corpora: no corpus test files matched');
  process.exit(2);
}

console.log(`corpora: ${corpora}`);
// Every file matches *.corpus.ts, which `node --test` would not pick up by itself: name them.
const res = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=240000', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(root, 'scripts/failures-reporter.ts')}`, '--test-reporter-destination=stderr', ...files], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, BASTION_TEST: '1', BASTION_CORPORA: corpora },
});
process.exit(res.status ?? 1);
