/**
 * Tool results (src/mcp/sanitize.ts) with the secrets swapped into the call:
 * a value split across two content items, base64-encoded into an image's
 * `data`, hex in `structuredContent`, are all redacted; detector findings stay
 * limited to text fields; the audit summary names the rule.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sanitizeResult } from '../../src/mcp/sanitize.ts';
import { compileRedaction, REDACTED_VALUE } from '../../src/redact/index.ts';

const VALUE = 'pasted-Zk8wQ2xV9rT4yU7iO1pA';
const KNOWN = compileRedaction([VALUE]);
const OPTS = { maxResultBytes: 1 << 20, redactSecrets: true };

describe('tool results: known values', () => {
  test('split across two text items, base64 in image data, hex in structuredContent', () => {
    const result = {
      content: [
        { type: 'text', text: 'pasted-Zk8wQ2x' },
        { type: 'text', text: 'V9rT4yU7iO1pA' },
        { type: 'image', mimeType: 'image/png', data: Buffer.from(`\x89PNG${VALUE}`).toString('base64') },
      ],
      structuredContent: { dump: `0x${Buffer.from(VALUE).toString('hex')}` },
    };
    const out = sanitizeResult(result, OPTS, KNOWN);
    const text = JSON.stringify(out.value);
    assert.ok(!text.includes('pasted-Zk8wQ2x'), text);
    assert.ok(!text.includes(Buffer.from(VALUE).toString('hex')), text);
    assert.ok(!Buffer.from(((out.value as { content: { data?: string }[] }).content[2]?.data ?? '').replace(/\[REDACTED:vault-secret\]/, ''), 'base64').includes(VALUE));
    assert.equal(out.redactions, 3);
    assert.deepEqual(out.rules, ['vault-secret']);
    const content = (out.value as { content: { text?: string }[] }).content;
    assert.equal(content[0]?.text, REDACTED_VALUE);
    assert.equal(content[1]?.text, REDACTED_VALUE);
  });

  test('without known values, and with redactSecrets off, the result is unchanged', () => {
    const result = { content: [{ type: 'text', text: 'pasted-Zk8wQ2x' }, { type: 'text', text: 'V9rT4yU7iO1pA' }] };
    assert.deepEqual(sanitizeResult(result, OPTS).value, result);
    assert.deepEqual(sanitizeResult(result, { ...OPTS, redactSecrets: false }).value, result);
    // Known values are redacted even with the detector off: they are secrets Bastion released.
    assert.notDeepEqual(sanitizeResult(result, { ...OPTS, redactSecrets: false }, KNOWN).value, result);
  });
});
