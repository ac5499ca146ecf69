/**
 * The model door's config: agents' model and supervisor, tool metadata,
 * modelDoor, redis and alerts — defaults, resolution, and errors that name
 * the line and path.
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

async function rejects(yaml: string, code: string, message: RegExp): Promise<void> {
  await assert.rejects(load(yaml), (err: unknown) => {
    assert.ok(isBastionError(err), String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test('defaults: external scope, isolated users, hardening on, user required, in-memory limits, no alert channels', async () => {
  const c = await load('version: 1\nagents:\n  a:\n    model: { provider: openai, baseUrl: "https://api.openai.com/v1/" }\n');
  const a = c.agents.get('a')!;
  assert.equal(a.scope, 'external');
  assert.equal(a.isolateUsers, true);
  assert.equal(a.model?.baseUrl.href, 'https://api.openai.com/v1');
  assert.equal(a.model?.timeoutMs, 120_000);
  assert.equal(c.modelDoor.requireUser, true);
  assert.equal(c.modelDoor.extraction, 'ban');
  assert.equal(c.modelDoor.hardening.enabled, true);
  assert.deepEqual(c.modelDoor.rateLimits.perUser.requests, { points: 60, windowS: 60 });
  assert.equal(c.redis, undefined);
  assert.deepEqual(c.alerts, { minSeverity: 'warning' });
});

test('tool metadata, supervisor, redis and alert secrets resolve', async () => {
  const c = await load(
    `version: 1
secrets: { k: {} }
tools:
  "crm__*_all": { crossUser: true }
  "admin__*": { scope: internal }
redis: { url: "redis://127.0.0.1:6379/0" }
alerts:
  webhook: { url: "https://hooks.example.com/x", headers: { Authorization: env:HOOK } }
  email: { host: smtp.example.com, user: ops, password: env:SMTP, from: bastion@example.com, to: [ops@example.com] }
agents:
  a:
    scope: internal
    model: { provider: anthropic, baseUrl: "https://api.anthropic.com", secret: k }
    supervisor: { baseUrl: "https://judge.example.com/v1", model: j, mode: correct }
`,
    { HOOK: 'Bearer hook-secret', SMTP: 'smtp-secret' },
  );
  assert.deepEqual(c.tools, [
    { pattern: 'crm__*_all', scope: 'external', crossUser: true },
    { pattern: 'admin__*', scope: 'internal', crossUser: false },
  ]);
  assert.equal(c.agents.get('a')?.supervisor?.mode, 'correct');
  assert.equal(c.redis?.url.reveal(), 'redis://127.0.0.1:6379/0');
  assert.equal(c.alerts.webhook?.headers.Authorization?.reveal(), 'Bearer hook-secret');
  assert.equal(c.alerts.email?.password?.reveal(), 'smtp-secret');
  assert.equal(c.alerts.email?.port, 587);
  assert.ok(!JSON.stringify(c.alerts).includes('smtp-secret'), 'secrets do not serialize');
});

test('errors name the path: unknown model secret, bad provider, bad redis URL, user without password, reserved webhook header', async () => {
  await rejects('version: 1\nagents:\n  a:\n    model: { provider: openai, baseUrl: "https://x.example/v1", secret: nope }\n', 'ERR_CONFIG_INVALID', /agents\.a\.model\.secret: unknown secret nope/);
  await rejects('version: 1\nagents:\n  a:\n    model: { provider: gemini, baseUrl: "https://x.example" }\n', 'ERR_CONFIG_INVALID', /agents\.a\.model\.provider/);
  await rejects('version: 1\nagents:\n  a:\n    model: { provider: openai, baseUrl: "ftp://x.example" }\n', 'ERR_CONFIG_INVALID', /agents\.a\.model\.baseUrl/);
  await rejects('version: 1\nredis: { url: "http://127.0.0.1:6379" }\n', 'ERR_CONFIG_INVALID', /redis\.url: must be a redis:\/\/ or rediss:\/\/ URL/);
  await rejects('version: 1\nalerts:\n  email: { host: h, user: u, from: a@b.c, to: [d@e.f] }\n', 'ERR_CONFIG_INVALID', /alerts\.email.*user and password go together/);
  await rejects('version: 1\nalerts:\n  webhook: { url: "https://h.example", headers: { Host: env:X } }\n', 'ERR_CONFIG_INVALID', /Bastion sets this header itself/);
  await rejects('version: 1\nmodelDoor: { rateLimits: { perUser: { requests: { points: 0, windowS: 1 } } } }\n', 'ERR_CONFIG_INVALID', /modelDoor\.rateLimits\.perUser\.requests\.points/);
  await rejects('version: 1\nupstreams:\n  u: { command: x, secretHosts: ["bad host"] }\n', 'ERR_CONFIG_INVALID', /upstreams\.u\.secretHosts\[0\]/);
});

test('secretHosts defaults to the url host for HTTP upstreams and to none for stdio', async () => {
  const c = await load('version: 1\nupstreams:\n  web: { url: "https://Tools.Example.com/mcp" }\n  local: { command: x }\n  both: { command: x, secretHosts: [api.github.com] }\n');
  assert.deepEqual(c.upstreams.get('web')?.secretHosts, ['tools.example.com']);
  assert.deepEqual(c.upstreams.get('local')?.secretHosts, []);
  assert.deepEqual(c.upstreams.get('both')?.secretHosts, ['api.github.com']);
});
