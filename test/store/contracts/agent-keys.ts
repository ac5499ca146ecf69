/** The AgentKeyStore contract (src/server/agent-key-store.ts): digests per agent, in insertion order, idempotent. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentKeyStore } from '../../../src/server/agent-key-store.ts';
import { closedTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

/** Runs the AgentKeyStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runAgentKeyStoreContract(name: string, open: PortFactory<AgentKeyStore>, _opts: ContractOptions<AgentKeyStore> = {}): void {
  describe(`AgentKeyStore contract: ${name}`, () => {
    test('digests are kept per agent, in insertion order, idempotently', () =>
      withPort(open, async (s) => {
        assert.deepEqual(await s.agentKeyDigests('demo'), []);
        await s.addAgentKeyDigest('demo', 'a'.repeat(64), T0);
        await s.addAgentKeyDigest('demo', 'b'.repeat(64), T0 + 1);
        await s.addAgentKeyDigest('other', 'c'.repeat(64), T0);
        await s.addAgentKeyDigest('demo', 'a'.repeat(64), T0 + 2);
        assert.deepEqual(await s.agentKeyDigests('demo'), ['a'.repeat(64), 'b'.repeat(64)]);
        assert.deepEqual(await s.agentKeyDigests('other'), ['c'.repeat(64)]);
      }));

    closedTest(open, [(s) => s.agentKeyDigests('demo')]);
  });
}
