/**
 * The project's own SSRF vectors (test/egress/ssrf-vectors.json) through the
 * network door, as test/corpora/ssrf-door.corpus.ts does with the third-party
 * corpus: every vector decidable without DNS gets its decision and exit code from
 * `bastion egress check` (in-process), and the proxy refuses blocked ones with an
 * `ssrf.` reason (or 400) while allowed ones pass the guard and meet the empty
 * allowlist (`policy.no_permit`), over a raw socket. Nothing connects anywhere.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir } from '../helpers/gateway.ts';
import { egressCheckAgrees, proxyVerdicts } from '../helpers/ssrf-door.ts';
import VECTORS_JSON from './ssrf-vectors.json' with { type: 'json' };

interface Vector {
  input: string;
  kind: 'url' | 'host' | 'ip';
  expect: 'allow' | 'block' | 'resolve';
  why: string;
}
/** Names are decided after DNS: never resolved here. */
const DECIDABLE = (VECTORS_JSON as Vector[]).filter((v) => v.expect !== 'resolve');

describe('owned SSRF vectors through the network door', () => {
  const cwd = tempDir();

  test('bastion egress check: every vector gets its decision, exit code and an ssrf. reason when refused', async () => {
    assert.ok(DECIDABLE.length >= 50);
    const wrong: string[] = [];
    for (const v of DECIDABLE) {
      const r = await egressCheckAgrees(v.input, v.expect as 'allow' | 'block', cwd);
      if (!r.ok) wrong.push(`${JSON.stringify(v.input)} (${v.why}): ${r.effect} ${r.reason} (exit ${r.code})`);
    }
    assert.deepEqual(wrong, []);
  });

  describe('the proxy', () => {
    test('blocked vectors are refused by the SSRF guard or as malformed; allowed ones pass it and meet the empty allowlist', async () => {
      const verdicts = await proxyVerdicts(DECIDABLE.map((v) => v.input));
      const wrong = DECIDABLE.flatMap((v, i) => {
        const { verdict, status, reason } = verdicts[i]!;
        return verdict === v.expect ? [] : [`${JSON.stringify(v.input)} (${v.why}): ${status} ${reason}`];
      });
      assert.deepEqual(wrong, []);
    });
  });
});
