/**
 * The agent key port: SHA-256 digests of the demo keys the gateway generated
 * for agents configured without one (src/server/gateway.ts), so a restart
 * accepts the keys it handed out before. Never a clear key. Implemented by every
 * store adapter; contract: test/store/contracts/agent-keys.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`).
 */

/** Digests of generated agent keys. */
export interface AgentKeyStore {
  /** SHA-256 hex digests of the keys generated for `agent`, in insertion order. */
  agentKeyDigests(agent: string): Promise<string[]>;
  /** Adds a digest (`createdAt` epoch ms); adding one the agent has already changes nothing. */
  addAgentKeyDigest(agent: string, digest: string, createdAt: number): Promise<void>;
}
