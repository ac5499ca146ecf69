/**
 * Config `alerts` for notifications: `publicUrl`, the Slack URL as a secret reference, per-channel
 * `events`; errors name the path and never the secret value.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { ResolvedConfig } from '../../src/config/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { tempDir } from '../helpers/gateway.ts';

async function load(yaml: string, env: Record<string, string> = {}): Promise<ResolvedConfig> {
  const file = join(tempDir(), 'bastion.yaml');
  writeFileSync(file, yaml);
  return (await loadConfig(file, { env, secrets: 'strict' })).config;
}

async function rejects(yaml: string, message: RegExp, env: Record<string, string> = {}, code = 'ERR_CONFIG_INVALID'): Promise<string> {
  let text = '';
  await assert.rejects(load(yaml, env), (err: unknown) => {
    assert.ok(isBastionError(err) && err.code === code, String(err));
    assert.match(err.message, message);
    text = err.message;
    return true;
  });
  return text;
}

test('publicUrl, slack (a secret reference) and per-channel events resolve; events default to all (undefined)', async () => {
  const c = await load(
    `version: 1
alerts:
  publicUrl: https://bastion.example.com
  webhook: { url: "https://hooks.example.com/x", events: [alert, incident] }
  slack: { url: env:SLACK }
  email: { host: smtp.example.com, from: bastion@example.com, to: [ops@example.com], events: [approval.pending] }
`,
    { SLACK: 'https://hooks.slack.com/services/T0/B0/s3cr3t' },
  );
  assert.equal(c.alerts.publicUrl, 'https://bastion.example.com');
  assert.deepEqual(c.alerts.webhook?.events, ['alert', 'incident']);
  assert.equal(c.alerts.slack?.url.reveal(), 'https://hooks.slack.com/services/T0/B0/s3cr3t');
  assert.equal(c.alerts.slack?.events, undefined);
  assert.deepEqual(c.alerts.email?.events, ['approval.pending']);
  assert.ok(!JSON.stringify(c.alerts).includes('s3cr3t'), 'the Slack URL does not serialize');
});

test('errors name the path: literal Slack URL, unresolvable or non-URL Slack secret, unknown or empty events, bad publicUrl, signature header', async () => {
  await rejects('version: 1\nalerts:\n  slack: { url: "https://hooks.slack.com/services/T0/B0/s3cr3t" }\n', /alerts\.slack\.url.*secret reference/);
  await rejects('version: 1\nalerts:\n  slack: { url: env:NOPE_SLACK }\n', /alerts\.slack\.url: env:NOPE_SLACK is not set/, {}, 'ERR_CONFIG_SECRET_REF');
  const msg = await rejects('version: 1\nalerts:\n  slack: { url: env:SLACK }\n', /alerts\.slack\.url: env:SLACK does not resolve to an http\(s\) URL/, { SLACK: 'not-a-url-s3cr3t' }, 'ERR_CONFIG_SECRET_REF');
  assert.ok(!msg.includes('s3cr3t'));
  await rejects('version: 1\nalerts:\n  webhook: { url: "https://h.example/x", events: [everything] }\n', /alerts\.webhook\.events/);
  await rejects('version: 1\nalerts:\n  webhook: { url: "https://h.example/x", events: [] }\n', /alerts\.webhook\.events/);
  await rejects('version: 1\nalerts:\n  publicUrl: "ftp://b.example"\n', /alerts\.publicUrl/);
  await rejects('version: 1\nalerts:\n  publicUrl: "https://b.example/?q=1"\n', /alerts\.publicUrl/);
  await rejects('version: 1\nalerts:\n  webhook: { url: "https://h.example", headers: { Bastion-Signature: env:X } }\n', /Bastion sets this header itself/);
});
