/**
 * The detectors against the labeled third-party injection corpus
 * (`injection/prompt-attacks.jsonl` of the corpora folder: `$BASTION_CORPORA` or
 * `../shared/corpora`; `npm run test:corpora`): the prompt-attack detector's
 * detection floors and false-positive ceilings, and hidden characters in benign
 * texts. The secret detector's check on the benign texts is in secrets.corpus.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { evaluatePromptCorpus } from '../../bench/prompt-attacks.ts';
import { hasHiddenCharacters } from '../../src/detect/hidden.ts';
import { corpusPath } from '../helpers/corpora.ts';

const CORPUS = corpusPath('injection', 'prompt-attacks.jsonl');

describe('prompt-attack detector on the injection corpus', () => {
  test('detection floors per label and context, false-positive ceilings per context', (t) => {
    const ev = evaluatePromptCorpus(CORPUS);
    for (const d of ev.detection) t.diagnostic(`${d.label}/${d.context}: ${d.detected}/${d.rows} detected (${(d.rate * 100).toFixed(1)}%), ${d.asLabel} as ${d.label} (${(d.labelRate * 100).toFixed(1)}%)`);
    for (const b of ev.benign) t.diagnostic(`benign/${b.context}: any kind ${b.anyKind}/${b.rows}, extraction ${b.extraction}/${b.rows}`);
    t.diagnostic(`corpus pass: ${ev.throughput.mbPerCpuSecond.toFixed(1)} MB per CPU second`);
    const row = (label: string, context: string) => {
      const d = ev.detection.find((x) => x.label === label && x.context === context);
      assert.ok(d, `${label}/${context} rows missing from the corpus`);
      return d;
    };
    // Measured on the 3,152-row corpus (any kind / own kind): extraction 82.3/73.6 %, injection in user
    // messages 66.3/64.5 %, injection in tool outputs 74.0/74.0 % (73.5 before the indirect-injection
    // rules), jailbreak 69.4/66.9 %. Floors sit a little under, so a regression fails here; the one for
    // tool outputs, which issue 13's taint relies on, sits at the rate before those rules (294/400).
    const floors: Array<[string, string, number, number]> = [
      ['extraction', 'user', 0.8, 0.71],
      ['injection', 'user', 0.64, 0.62],
      ['injection', 'tool_output', 0.735, 0.735],
      ['jailbreak', 'user', 0.67, 0.645],
    ];
    for (const [label, context, any, own] of floors) {
      const d = row(label, context);
      assert.ok(d.rate >= any, `${label}/${context}: ${(d.rate * 100).toFixed(1)}% detected, floor ${any * 100}%`);
      assert.ok(d.labelRate >= own, `${label}/${context}: ${(d.labelRate * 100).toFixed(1)}% as ${label}, floor ${own * 100}%`);
    }
    const user = ev.benign.find((b) => b.context === 'user');
    const tool = ev.benign.find((b) => b.context === 'tool_output');
    assert.ok(user && tool);
    // Extraction bans a user: at most 1% of benign user rows, and the measured 0 may rise by at most 2 rows.
    assert.ok(user.extractionRate <= 0.01 && user.extraction <= 2, `extraction on ${user.extraction} benign user rows`);
    assert.ok(tool.extraction <= 2, `extraction on ${tool.extraction} benign tool outputs`);
    assert.ok(user.anyKindRate <= 0.005, `${user.anyKind} benign user rows flagged`);
    // Every tool result is checked (issue 13): at most 0.5% of the benign tool outputs (BIPIA's clean contexts).
    assert.ok(tool.anyKindRate <= 0.005, `${tool.anyKind} benign tool outputs flagged`);
    assert.ok(ev.throughput.bytes > 1e6 && ev.throughput.cpuMs > 0);
  });
});

describe('hidden characters on the injection corpus', () => {
  test('the injection corpus: benign texts are mostly clean; report what is found', (t) => {
    const rows = readFileSync(CORPUS, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { label: string; text: string });
    const flagged = (label: (l: string) => boolean) => rows.filter((r) => label(r.label) && hasHiddenCharacters(r.text)).length;
    const benign = rows.filter((r) => r.label === 'benign').length;
    t.diagnostic(`benign with hidden characters: ${flagged((l) => l === 'benign')}/${benign}; attacks: ${flagged((l) => l !== 'benign')}/${rows.length - benign}`);
    assert.ok(flagged((l) => l === 'benign') <= benign * 0.02);
  });
});
