/**
 * The SSRF classifier against the third-party SSRF corpus (verdicts per its
 * README; `npm run test:corpora`). Rows whose verdict needs DNS are checked
 * through resolveAndClassify with stub resolvers (no network here).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyTarget, resolveAndClassify, type Lookup } from '../../src/egress/ssrf-classify.ts';
import { DIVERGENT, SSRF_ROWS, divergent } from '../helpers/ssrf-corpus.ts';
import { verdictOf } from '../helpers/ssrf-verdict.ts';

const rows = SSRF_ROWS;

describe('SSRF corpus', () => {
  test('every literal and special-name row gets the corpus verdict, except the listed divergences', (t) => {
    const decidable = rows.filter((r) => r.resolution === 'literal' || r.resolution === 'special-name');
    assert.ok(decidable.length > 600, `corpus rows: ${decidable.length}`);
    const mismatches = decidable.filter((r) => verdictOf(r) !== r.expect);
    const unexpected = mismatches.filter((r) => !divergent(r));
    assert.deepEqual(unexpected.map((r) => `${r.id} ${r.input} expect ${r.expect}`), []);
    // The divergences are exactly those documented (so a change in either direction is noticed).
    assert.equal(mismatches.length, 14);
    t.diagnostic(`${decidable.length - mismatches.length}/${decidable.length} match; divergent by policy: ${Object.values(DIVERGENT).join('; ')}; zone ids refused`);
  });

  test('no DNS row is allowed without resolving it, and blocked ones stay blocked whatever they resolve to', async () => {
    const dnsRows = rows.filter((r) => r.resolution === 'dns' || r.resolution === 'redirect');
    for (const r of dnsRows) {
      const v = verdictOf(r);
      assert.notEqual(v, 'allow', `${r.id} ${r.input}`);
      const t = classifyTarget(r.input);
      if (t.verdict !== 'resolve') continue;
      // A wildcard/rebinding name pointing inside, or a mixed answer, is refused.
      const inside: Lookup = async () => [{ address: '127.0.0.1', family: 4 }];
      const mixed: Lookup = async () => [{ address: '93.184.215.14', family: 4 }, { address: '10.0.0.5', family: 4 }];
      assert.equal((await resolveAndClassify(t.host, inside)).allowed, false);
      assert.equal((await resolveAndClassify(t.host, mixed)).allowed, false);
    }
  });
});
