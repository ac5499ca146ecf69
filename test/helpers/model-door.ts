/**
 * The model door in tests: the mock provider (examples/model-door/provider.ts)
 * and a gateway with its model door in front of it (test/helpers/egress.ts),
 * over real sockets.
 */
import { after, before } from 'node:test';
import OpenAI from 'openai';
import { echoScript, startMockProvider, type MockProvider, type ProviderScript } from '../../examples/model-door/provider.ts';
import { EGRESS_KEY, startEgress, type TestEgress } from './egress.ts';

export interface TestModelDoor {
  readonly provider: MockProvider;
  readonly bastion: TestEgress;
  /** The main listener, `http://127.0.0.1:<port>` (the model door answers under `/v1/…`). */
  readonly base: string;
  /** Closes the gateway, then the provider. */
  close(): Promise<void>;
}

/**
 * Starts the mock provider (`echoScript` unless `provider` names a script or
 * key) and a gateway with its model door from `yaml(providerUrl)`; `egress`
 * goes to `startEgress` as it is.
 */
export async function startModelDoor(
  yaml: (providerUrl: string) => string,
  opts: { provider?: { script?: ProviderScript; apiKey?: string }; egress?: Omit<NonNullable<Parameters<typeof startEgress>[1]>, 'model'> } = {},
): Promise<TestModelDoor> {
  const provider = await startMockProvider(opts.provider ?? { script: echoScript });
  try {
    const bastion = await startEgress(yaml(provider.url), { ...opts.egress, model: true });
    return {
      provider,
      bastion,
      base: `http://127.0.0.1:${bastion.running.url.port}`,
      close: async () => {
        await bastion.close();
        await provider.close();
      },
    };
  } catch (err) {
    await provider.close();
    throw err;
  }
}

/**
 * Registers `before` and `after` hooks in the calling test file that start a
 * model door (as `startModelDoor`), run `setup` on it, and close it. The
 * returned door's fields can be read once that `before` hook has run; earlier
 * they throw an Error. Setup that needs the door goes in `setup`: the test
 * runner does not wait for one top-level `before` hook before starting the next.
 */
export function useModelDoor(
  yaml: (providerUrl: string) => string,
  opts: NonNullable<Parameters<typeof startModelDoor>[1]> & { setup?: (door: TestModelDoor) => Promise<void> } = {},
): TestModelDoor {
  let door: TestModelDoor | undefined;
  before(async () => {
    const started = await startModelDoor(yaml, opts);
    door = started;
    await opts.setup?.(started);
  });
  after(async () => {
    await door?.close();
  });
  const started = (): TestModelDoor => {
    if (door === undefined) throw new Error('useModelDoor: the door is read before its before hook ran');
    return door;
  };
  return {
    get provider() {
      return started().provider;
    },
    get bastion() {
      return started().bastion;
    },
    get base() {
      return started().base;
    },
    close: () => started().close(),
  };
}

/**
 * End user `user` says `content` to the model through the door (OpenAI
 * format, key EGRESS_KEY); resolves with the answer's text and the first
 * `<<SECRET_…>>` placeholder in it (undefined when there is none).
 */
export async function pasteToModel(bastion: TestEgress, user: string, content: string): Promise<{ answer: string; placeholder: string | undefined }> {
  const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `http://127.0.0.1:${bastion.running.url.port}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': user } });
  const r = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content }] });
  const answer = r.choices[0]?.message.content ?? '';
  return { answer, placeholder: /<<SECRET_[a-z2-7]{12}>>/.exec(answer)?.[0] };
}
