/**
 * The third-party SSRF corpus (`ssrf/` of the corpora folder, `$BASTION_CORPORA` or
 * `../shared/corpora`; see its README), read at run time by the corpus suite only
 * (`npm run test:corpora`; it throws naming both places when absent), and the places where Bastion's policy deliberately differs
 * from the corpus verdict:
 * - AS112 and AMT ranges are globally reachable per the IANA registry, so allowed
 *   (the corpus blocks them under its strict, policy-dependent reading);
 * - any address with a zone id is refused: a scoped address is never what an agent needs.
 */
import { readFileSync } from 'node:fs';
import { corpusPath } from './corpora.ts';

export interface SsrfRow {
  id: string;
  input: string;
  input_kind: 'url' | 'host' | 'ip';
  expect: 'block' | 'allow';
  resolution: 'literal' | 'special-name' | 'dns' | 'redirect';
  policy_dependent?: boolean;
  why: string;
}

export const SSRF_ROWS: readonly SsrfRow[] = readFileSync(corpusPath('ssrf', 'ssrf-cases.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as SsrfRow);

/** Rows the README marks as decidable without DNS. */
export const DECIDABLE_ROWS: readonly SsrfRow[] = SSRF_ROWS.filter((r) => r.resolution === 'literal' || r.resolution === 'special-name');

export const DIVERGENT: Readonly<Record<string, string>> = {
  '192.31.196.0/24': 'AS112 (IANA: globally reachable)',
  '192.52.193.0/24': 'AMT (IANA: globally reachable)',
  '192.175.48.0/24': 'AS112 direct delegation (IANA: globally reachable)',
  '2620:4f:8000::/48': 'AS112-v6 (IANA: globally reachable)',
};

/** Whether a row is one of the documented divergences. */
export const divergent = (r: SsrfRow): boolean =>
  /^192\.31\.196\.|^192\.52\.193\.|^192\.175\.48\.|^2620:4f:8000::/.test(r.input) || (r.input.includes('%') && r.expect === 'allow');

/** Bastion's expected verdict: the corpus's, flipped for the documented divergences. */
export const bastionExpects = (r: SsrfRow): 'allow' | 'block' => (divergent(r) ? (r.expect === 'allow' ? 'block' : 'allow') : r.expect);
