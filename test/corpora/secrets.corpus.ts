/**
 * Recall and false positives of the secret detector on the labeled third-party
 * corpora in `secrets/` of the corpora folder (`$BASTION_CORPORA` or `../shared/corpora`;
 * read at run time, nothing from them is stored in the repository; `npm run test:corpora`). See that folder's README for the sources.
 *
 * Thresholds (samples.jsonl):
 * - recall ≥ 99.8% on the `secret` rows of source `gitleaks` (a row counts when a
 *   finding covers its `expected_match`, or any finding when it has none);
 * - at most 1% of the `not-secret` rows flagged, all three sources together,
 *   not counting rows whose exact text the same file also labels `secret`
 *   (upstream `not-secret` means "this rule must not fire": 21 texts are one
 *   rule's negative and another rule's positive, so no detector can satisfy
 *   both labels). The raw figure is reported too.
 * samples-gitleaks-generated.jsonl: recall ≥ 99.8% (the issue asks 95%), at most 5% of its
 * not-secret rows flagged. samples-trufflehog.jsonl: floors under the measured figures (its
 * negatives are detector-specific near misses, most of them credential-shaped: see
 * docs/detector.md for why 5% of them flagged is not a goal for a redactor).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { findSecrets } from '../../src/detect/secrets.ts';
import { corpusPath } from '../helpers/corpora.ts';

const DIR = corpusPath('secrets');
const MIN_GITLEAKS_RECALL = 0.998;
const MAX_FALSE_POSITIVE_RATE = 0.01;
/** samples-gitleaks-generated.jsonl (issue 11): recall floor and the share of its not-secret rows that may be flagged. */
const MIN_GENERATED_RECALL = 0.998;
const MAX_GENERATED_FLAGGED = 0.05;

interface Row {
  id: string;
  source: string;
  rule: string;
  text: string;
  label: 'secret' | 'not-secret';
  expected_match?: string;
}

function rows(file: string): Row[] {
  return readFileSync(join(DIR, file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Row);
}

function detected(r: Row): boolean {
  const found = findSecrets(r.text);
  if (!r.expected_match) return found.length > 0;
  const at = r.text.indexOf(r.expected_match);
  if (at < 0) return found.length > 0;
  const end = at + r.expected_match.length;
  return found.some((f) => f.start < end && f.end > at);
}

interface Score {
  pos: number;
  tp: number;
  neg: number;
  fp: number;
  /** Negatives whose text is not also labeled secret in the same file. */
  negClean: number;
  fpClean: number;
}

function score(list: readonly Row[]): Map<string, Score> {
  const positives = new Set(list.filter((r) => r.label === 'secret').map((r) => r.text));
  const by = new Map<string, Score>();
  for (const r of list) {
    const s = by.get(r.source) ?? { pos: 0, tp: 0, neg: 0, fp: 0, negClean: 0, fpClean: 0 };
    by.set(r.source, s);
    if (r.label === 'secret') {
      s.pos++;
      if (detected(r)) s.tp++;
    } else {
      const flagged = findSecrets(r.text).length > 0;
      s.neg++;
      if (flagged) s.fp++;
      if (!positives.has(r.text)) {
        s.negClean++;
        if (flagged) s.fpClean++;
      }
    }
  }
  return by;
}

const pct = (a: number, b: number) => (b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)}%`);

describe('secret detector on the labeled corpora', () => {
  test('samples.jsonl: gitleaks recall ≥ 99.8%, false positives ≤ 1%', (t) => {
    const by = score(rows('samples.jsonl'));
    let neg = 0;
    let fp = 0;
    let negClean = 0;
    let fpClean = 0;
    for (const [source, s] of by) {
      t.diagnostic(
        `${source.padEnd(15)} recall ${s.tp}/${s.pos} (${pct(s.tp, s.pos)}); not-secret flagged ${s.fp}/${s.neg} (${pct(s.fp, s.neg)}), ` +
          `without conflicting labels ${s.fpClean}/${s.negClean} (${pct(s.fpClean, s.negClean)})`,
      );
      neg += s.neg;
      fp += s.fp;
      negClean += s.negClean;
      fpClean += s.fpClean;
    }
    t.diagnostic(`all sources: not-secret flagged ${fp}/${neg} (${pct(fp, neg)}); without conflicting labels ${fpClean}/${negClean} (${pct(fpClean, negClean)})`);
    const g = by.get('gitleaks');
    assert.ok(g && g.pos > 900, 'the gitleaks rows are there');
    assert.ok(g.tp / g.pos >= MIN_GITLEAKS_RECALL, `gitleaks recall ${g.tp}/${g.pos}`);
    assert.ok(negClean > 400, 'the negatives are there');
    assert.ok(fpClean / negClean <= MAX_FALSE_POSITIVE_RATE, `false positives ${fpClean}/${negClean}`);
  });

  test('samples-gitleaks-generated.jsonl: recall ≥ 99.8%, not-secret rows flagged ≤ 5%', (t) => {
    const s = score(rows('samples-gitleaks-generated.jsonl')).values().next().value;
    assert.ok(s && s.pos > 1500 && s.neg > 30, 'the generated rows are there');
    t.diagnostic(`recall ${s.tp}/${s.pos} (${pct(s.tp, s.pos)}); not-secret flagged ${s.fp}/${s.neg} (${pct(s.fp, s.neg)})`);
    assert.ok(s.tp / s.pos >= MIN_GENERATED_RECALL, `recall ${s.tp}/${s.pos}`);
    assert.ok(s.fp / s.neg <= MAX_GENERATED_FLAGGED, `flagged ${s.fp}/${s.neg}`);
  });

  test('samples-trufflehog.jsonl: floors under the measured recall, a ceiling over the flagged negatives', (t) => {
    const s = score(rows('samples-trufflehog.jsonl')).values().next().value;
    assert.ok(s && s.pos > 1400 && s.neg > 1000, 'the trufflehog rows are there');
    t.diagnostic(`recall ${s.tp}/${s.pos} (${pct(s.tp, s.pos)}); not-secret flagged ${s.fp}/${s.neg} (${pct(s.fp, s.neg)})`);
    // Measured: recall 91.5% (50.1% before issue 11, 88.0% after its second pass), flagged 15.5%
    // (16.3%, 15.6%). The recall target (90%) is met; the flagged target (5%) is not: 114 of the 180
    // flagged negatives carry a value of a positive row (or 16+ characters of one), or one within
    // three edits of that detector's positive value, under `API_KEY=`, `Secret=` or `Bearer`
    // (see docs/detector.md, "Third pass").
    assert.ok(s.tp / s.pos >= 0.915, `recall ${s.tp}/${s.pos}`);
    assert.ok(s.fp / s.neg <= 0.156, `flagged ${s.fp}/${s.neg}`);
  });
});

describe('secret detector on the benign texts of the injection corpus', () => {
  test('ordinary prose is not flagged (benign texts of the injection corpus)', (t) => {
    const texts = readFileSync(corpusPath('injection', 'prompt-attacks.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { label: string; text: string })
      .filter((r) => r.label === 'benign');
    const flagged = texts.filter((r) => findSecrets(r.text).length > 0).length;
    t.diagnostic(`benign texts with a finding: ${flagged}/${texts.length}`);
    assert.ok(flagged <= texts.length * 0.002, `${flagged} benign texts flagged`);
  });
});
