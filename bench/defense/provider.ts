/**
 * The attack suite's fake LLM provider: the project's mock provider (examples/model-door/provider.ts,
 * the OpenAI chat-completions wire) on loopback, answering every request with one fixed short
 * assistant text. The model door forwards each run's user request to it, so Bastion sees the
 * user's words under the run's `Bastion-Conversation` (provenance `user`).
 */
import { startMockProvider, type MockProvider } from '../../examples/model-door/provider.ts';

/** What the fake model says to every request. */
export const PROVIDER_ANSWER = 'Sure, I will take care of it.';

/**
 * Starts the fake provider on 127.0.0.1 (ephemeral port, no API key). `url` is its base without
 * `/v1`; `requests` records what arrived (for tests). Close it with `close()`.
 */
export async function startFakeProvider(): Promise<MockProvider> {
  return startMockProvider({ script: () => ({ text: PROVIDER_ANSWER }) });
}
