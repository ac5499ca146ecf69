/**
 * Outbound DLP's placeholder masking (src/egress/dlp.ts): whole placeholders
 * are blanked before the scan, offsets kept; a credential with a placeholder
 * prefix written into it or beside it is still found (issue 11, class 8).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dlpBlocks, dlpScan, maskPlaceholders } from '../../src/egress/dlp.ts';
import { hostMatchesAny } from '../../src/net/host-pattern.ts';

const PH = 'bst_ph_' + 'abcdefghijklmnopqrstuvwxyz234567';
const PASTED = '<<SECRET_abcdefghijkl>>';
const PAT = 'github_pat_11A9kQ2mZ7xR4vB8nL3pT6wY1c' + 'Hj5Ks8Df2Gq7Wl4Zx9Cv3Bn6Mm1Pr0TyE4uI';

test('whole placeholders (named, pasted, percent-encoded pasted) are blanked, lengths kept', () => {
  for (const ph of [PH, PASTED, '%3C%3CSECRET_abcdefghijkl%3E%3E', '%3c%3cSECRET_abcdefghijkl%3e%3e']) {
    const text = `token=${ph}&x=1`;
    const masked = maskPlaceholders(text);
    assert.equal(masked.length, text.length);
    assert.equal(masked, `token=${' '.repeat(ph.length)}&x=1`);
  }
  assert.deepEqual(dlpScan(maskPlaceholders(`password=${PH}`)), [], 'a placeholder in an assignment is no finding');
});

test('text that only looks like part of a placeholder is left as it is, so the credential around it is found', () => {
  for (const text of [
    `token=${PAT.slice(0, 30)}bst_ph_${PAT.slice(30)}`,
    `token=${PAT}bst_ph_`,
    `token=${PAT}<<SECRET_`,
    `${PAT}x${PH}`,
  ]) {
    assert.equal(maskPlaceholders(text), text, 'nothing masked but whole placeholders');
    assert.ok(dlpScan(maskPlaceholders(text)).some((f) => f.rule.startsWith('github')), text);
  }
  // A credential next to a whole placeholder: the placeholder goes, the credential stays.
  const beside = `a=${PAT} b=${PH}`;
  assert.ok(dlpScan(maskPlaceholders(beside)).some((f) => f.rule.startsWith('github')));
});

test('property: masking never changes the length nor any character outside a placeholder', () => {
  const piece = fc.oneof(fc.constantFrom(PH, PASTED, 'bst_ph_', '<<SECRET_', '%3C%3CSECRET_', ' ', '=', 'x'), fc.string({ maxLength: 8 }));
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
      const text = parts.join('');
      const masked = maskPlaceholders(text);
      assert.equal(masked.length, text.length);
      for (let i = 0; i < text.length; i++) if (masked[i] !== text[i]) assert.equal(masked[i], ' ');
    }),
  );
});

test('a raw credential whose provider hosts are multi-tenant (*.myshopify.com) is blocked everywhere, evil.myshopify.com too (bug: raw rule hosts let it through)', () => {
  const SHOP = `shpat_${'0f1e2d3c4b5a6978'.repeat(2)}`;
  const [f] = dlpScan(`x-shopify-access-token: ${SHOP}`);
  assert.ok(f, 'the detector finds the token');
  assert.equal(f.rule, 'shopify-token');
  // Before the fix the finding carried `*.myshopify.com`, which matches any store anyone can open.
  assert.ok(!hostMatchesAny(f.hosts, 'evil.myshopify.com'), 'no host anyone can register is a home of the credential');
  assert.equal(dlpBlocks(f, 'evil.myshopify.com'), true);
  assert.equal(dlpBlocks(f, 'mystore.myshopify.com'), true, 'the proxy cannot tell a store of the owner from another one');
});

test('a credential with a single-tenant home goes there and nowhere else; one with no known home is not blocked', () => {
  const [f] = dlpScan(`authorization: token ${PAT}`);
  assert.ok(f);
  assert.equal(dlpBlocks(f, 'api.github.com'), false);
  assert.equal(dlpBlocks(f, 'evil.example'), true);
  assert.equal(dlpBlocks({ rule: 'generic', start: 0, end: 1, hosts: [] }, 'evil.example'), false);
  assert.equal(dlpBlocks({ rule: 'private-key', start: 0, end: 1, hosts: [] }, 'evil.example'), true);
});
