/**
 * The rule table's invariants (the reasoning in secrets.ts's header depends on
 * them), the hosts each credential belongs to, and a complexity test for every
 * rule on adversarial inputs built from its own keywords.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SECRET_RULE_TABLE } from '../../src/detect/secret-rules.ts';
import { findSecrets, SECRET_RULES, secretRuleHosts } from '../../src/detect/secrets.ts';
import { assertLinear } from '../helpers/complexity.ts';

/** The pattern source with character classes and escapes removed, so only operators remain. */
function operators(source: string): string {
  return source.replace(/\\./g, 'x').replace(/\[(?:[^\]\\]|\\.)*\]/g, 'x');
}

describe('rule table invariants', () => {
  test('ids are listed once in SECRET_RULES, keywords are lowercase printable ASCII', () => {
    assert.equal(new Set(SECRET_RULES).size, SECRET_RULES.length);
    for (const r of SECRET_RULE_TABLE) {
      assert.ok(SECRET_RULES.includes(r.id), r.id);
      assert.ok(r.keywords.length > 0, r.id);
      for (const k of r.keywords) assert.match(k, /^[\x20-\x7e]+$/, `${r.id}: ${k}`);
      for (const k of r.keywords) assert.equal(k, k.toLowerCase(), `${r.id}: ${k}`);
    }
  });

  test('every pattern is sticky, and every quantifier is bounded', () => {
    for (const r of SECRET_RULE_TABLE) {
      assert.ok(r.re.sticky, `${r.id} must be sticky (anchored at its keyword)`);
      if (r.group !== undefined) assert.ok(r.re.hasIndices, `${r.id} needs the d flag for its group`);
      const ops = operators(r.re.source);
      assert.doesNotMatch(ops, /[*+]/, `${r.id}: unbounded * or + in ${r.re.source}`);
      assert.doesNotMatch(ops, /\{\d+,\}/, `${r.id}: unbounded {n,} in ${r.re.source}`);
    }
  });

  test('the static check itself catches unbounded patterns', () => {
    assert.match(operators('a[b+]*c'), /[*+]/);
    assert.match(operators('ab{3,}'), /\{\d+,\}/);
    assert.doesNotMatch(operators('a[+*]{1,4}\\+'), /[*+]/);
  });
});

describe('secretRuleHosts', () => {
  test('provider credentials name the hosts they belong to', () => {
    assert.deepEqual(secretRuleHosts('anthropic-api-key'), ['api.anthropic.com']);
    assert.deepEqual(secretRuleHosts('openai-api-key'), ['api.openai.com']);
    assert.ok(secretRuleHosts('github-token').includes('github.com'));
    assert.ok(secretRuleHosts('github-token').includes('*.github.com'));
    assert.deepEqual(secretRuleHosts('slack-token'), ['slack.com', '*.slack.com']);
    assert.ok(secretRuleHosts('stripe-secret-key').includes('api.stripe.com'));
    assert.ok(secretRuleHosts('aws-access-key-id').includes('*.amazonaws.com'));
    assert.ok(secretRuleHosts('google-api-key').includes('*.googleapis.com'));
  });

  test('rules with no single home, and unknown ids, have none; the list is frozen', () => {
    for (const id of ['generic-secret', 'jwt', 'private-key', 'bearer-token', 'no-such-rule']) assert.deepEqual(secretRuleHosts(id), [], id);
    assert.ok(Object.isFrozen(secretRuleHosts('openai-api-key')));
    for (const id of SECRET_RULES) {
      for (const h of secretRuleHosts(id)) assert.match(h, /^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+$/, `${id}: ${h}`);
    }
  });
});

describe('complexity: every rule stays linear on inputs made of its own keywords', () => {
  // Model: noble-hashes test/slow-dos.test.ts; see test/helpers/complexity.ts.
  const N = 16_000;
  const fill = (unit: string, n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  const work = (input: string) => void findSecrets(input);
  for (const rule of SECRET_RULE_TABLE) {
    const kw = rule.keywords[0] as string;
    // Upper case too: most formats are case-sensitive, and the prefilter is not.
    const KW = kw.toUpperCase();
    const cases: Record<string, (n: number) => string> = {
      'keyword repeated': (n) => fill(kw, n),
      'upper-case keyword repeated': (n) => fill(KW, n),
      'keyword then a long token body': (n) => kw + fill('a1B2', n),
      'keyword, assignment, long value, repeated': (n) => fill(`${kw}_x = "${'a1'.repeat(40)}" `, n),
      'keyword then spaces': (n) => kw + ' '.repeat(n),
    };
    test(`${rule.id} (${kw})`, (t) => {
      const seen: string[] = [];
      for (const [name, build] of Object.entries(cases)) {
        const small = build(N);
        const large = build(4 * N);
        const ratios = assertLinear(`${rule.id}/${name}`, work, small, large);
        seen.push(`${name} ${ratios.map((r) => r.toFixed(1)).join('/')}`);
      }
      t.diagnostic(seen.join('; '));
    });
  }
});
