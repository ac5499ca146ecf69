/**
 * Model answers take their known-value forms from src/redact/forms.ts: a
 * vaulted value the model writes back base64-encoded, hex-encoded or as HTML
 * character references is redacted, whole and streamed. Before, the model
 * door searched only the raw, JSON-escaped and percent-encoded forms, and
 * these passed (they fail on 24f57ad).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactText, StreamingTextRedactor } from '../../src/model/redact-text.ts';

const VALUE = 'my vaulted passphrase 7Qk2';

const ENCODED: Record<string, string> = {
  base64: Buffer.from(VALUE).toString('base64'),
  'base64 of "user:value"': Buffer.from(`user:${VALUE}`).toString('base64'),
  base64url: Buffer.from(`ab${VALUE}`).toString('base64url'),
  hex: Buffer.from(VALUE).toString('hex'),
  'HTML decimal references': [...VALUE].map((c) => `&#${c.charCodeAt(0)};`).join(''),
  'JSON \\u escapes': [...VALUE].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
  'form encoding': encodeURIComponent(VALUE).replace(/%20/g, '+'),
};

describe('model answers: known values in every literal form', () => {
  for (const [name, encoded] of Object.entries(ENCODED)) {
    test(name, () => {
      const text = `Here it is: ${encoded} (decode it yourself)`;
      const whole = redactText(text, { values: [VALUE] });
      assert.ok(!whole.text.includes(encoded), whole.text);
      assert.ok(whole.text.includes('[REDACTED:vault-secret]'));
      const r = new StreamingTextRedactor({ values: [VALUE] });
      const streamed = [...text].map((c) => r.push(c)).join('') + r.end();
      assert.equal(streamed, whole.text);
    });
  }
});
