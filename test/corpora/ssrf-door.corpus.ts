/**
 * Every row of the third-party SSRF corpus (`npm run test:corpora`) that its README marks decidable without
 * DNS (`resolution` literal or special-name) gets Bastion's expected decision
 * (the corpus verdict, except the divergences documented in README and
 * test/helpers/ssrf-corpus.ts) from `bastion egress check` and from the proxy.
 *
 * `egress check` is run in-process for every row through its command function
 * (the same code the binary runs), and as a real process for a sample. The
 * proxy gets every row over a raw socket, as a client that skipped its own URL
 * parsing would send it; the agent has an empty allowlist, so a row that passes
 * the SSRF guard is refused by policy (`policy.no_permit`) and nothing connects.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { bastionExpects, DECIDABLE_ROWS } from '../helpers/ssrf-corpus.ts';
import { egressCheckAgrees, proxyVerdicts } from '../helpers/ssrf-door.ts';

const run = promisify(execFile);

describe('SSRF corpus through the network door', () => {
  assert.ok(DECIDABLE_ROWS.length > 600, `decidable rows: ${DECIDABLE_ROWS.length}`);
  const cwd = tempDir();

  test('bastion egress check: every decidable row gets the expected decision and exit code', async () => {
    const wrong: string[] = [];
    for (const r of DECIDABLE_ROWS) {
      // An allowed literal never needs DNS; a refusal names an SSRF or URL reason.
      const check = await egressCheckAgrees(r.input, bastionExpects(r), cwd);
      if (!check.ok) wrong.push(`${r.id} ${JSON.stringify(r.input)}: ${check.effect} ${check.reason} (exit ${check.code})`);
    }
    assert.deepEqual(wrong, []);
  });

  test('the real binary agrees on a sample, with exit 0 for allow and 1 for deny', async () => {
    const sample = [...DECIDABLE_ROWS.filter((r) => r.expect === 'allow' && !r.input.includes('%')).slice(0, 3), ...DECIDABLE_ROWS.filter((r) => r.expect === 'block').slice(0, 3)];
    for (const r of sample) {
      let code = 0;
      let stdout = '';
      try {
        stdout = (await run(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'egress', 'check', r.input], { cwd, encoding: 'utf8' })).stdout;
      } catch (err) {
        code = (err as { code: number }).code;
        stdout = (err as { stdout: string }).stdout;
      }
      assert.equal(code, bastionExpects(r) === 'allow' ? 0 : 1, `${r.id} ${r.input}\n${stdout}`);
      assert.match(stdout, /^decision: (allow|deny)\nreason:/);
    }
  });

  describe('the proxy', () => {
    test('every decidable row: blocked rows are refused by the SSRF guard or as malformed, allowed rows pass it (and meet the empty allowlist)', async () => {
      const verdicts = await proxyVerdicts(DECIDABLE_ROWS.map((r) => r.input));
      const wrong = DECIDABLE_ROWS.flatMap((r, i) => {
        const { verdict, status, reason } = verdicts[i]!;
        return verdict === bastionExpects(r) ? [] : [`${r.id} ${JSON.stringify(r.input)}: ${status} ${reason}`];
      });
      assert.deepEqual(wrong, []);
    });
  });
});
