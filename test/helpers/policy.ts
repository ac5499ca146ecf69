/**
 * A policy-engine config built from agents' lists, without a config file: what
 * `PolicyEngine.compile` reads (agents and policy files) and nothing else.
 */
import assert from 'node:assert/strict';
import type { ResolvedAgent, ResolvedConfig } from '../../src/config/types.ts';
import { isBastionError } from '../../src/errors.ts';

export type AgentLists = Partial<Pick<ResolvedAgent, 'tools' | 'deny' | 'approve' | 'resources' | 'prompts' | 'network' | 'guards'>>;

/** The agents (every list empty unless given) and hand-written policy files. */
export function policyConfig(agents: Record<string, AgentLists>, policies: { path: string; text: string }[] = []): ResolvedConfig {
  const map = new Map<string, ResolvedAgent>();
  for (const [name, lists] of Object.entries(agents)) {
    map.set(name, { name, keys: [], unresolvedKeyRefs: [], tools: [], skillsets: [], deny: [], approve: [], resources: [], prompts: [], secrets: [], oauth: [], labels: [], guards: [], limits: [], trustedValues: [], network: [], scope: 'external', isolateUsers: true, ...lists });
  }
  return { agents: map, policies } as unknown as ResolvedConfig;
}

/** Asserts that `fn` throws a BastionError with `code` (and a message matching `message`). */
export function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isBastionError(err), `expected BastionError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}
