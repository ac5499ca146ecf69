/**
 * The attack suite's scripted agent: one run is one conversation through Bastion.
 *
 * 1. The user's request goes through the model door (`POST /v1/chat/completions`, agent key,
 *    `Bastion-Conversation` and `Bastion-User` of the run), so Bastion knows the user's words.
 * 2. The user task runs through the tool door with the official MCP SDK 1.x client (Streamable
 *    HTTP, the same headers on every request), tools called as `<env>__<name>`.
 * 3. Worst case: when any result the agent read holds the injection's goal text, the agent then
 *    obeys it: the injection task runs with the same `call`, exact arguments.
 *
 * A refused call (a tool error carrying `_meta["bastion/error"]`, src/mcp/call-stages.ts
 * `toolError`) resolves to `{refused: code}`; tasks decide what to do with it (most throw on
 * the unparseable text, which ends the run's task).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallTool, InjectionTask, UserTask } from './types.ts';

/** Where and as whom a run talks to Bastion. */
export interface RunTarget {
  /** Bastion's base URL, `http://127.0.0.1:PORT`. */
  readonly bastionUrl: string;
  readonly agentKey: string;
  /** The environment (upstream) name: tools are called as `<env>__<name>`. */
  readonly env: string;
  readonly conversation: string;
  readonly user: string;
  /** Longest one tool call may take, in ms (held calls included). */
  readonly callTimeoutMs: number;
}

/** One tool call as the run saw it. */
export interface CallRecord {
  readonly tool: string;
  readonly isError: boolean;
  readonly refused?: string;
}

/** What a run did. */
export interface RunOutcome {
  /** The model door's HTTP status for the user's request. */
  readonly modelStatus: number;
  /** The user task's answer (a question), or undefined. */
  readonly answer: string | undefined;
  /** The user task threw (its message), e.g. on a refused call's text. */
  readonly userError?: string;
  /** Some result read held the injected goal (attack runs). */
  readonly sawInjection: boolean;
  /** The injection task ran (worst case: it did whenever the goal was seen). */
  readonly obeyed: boolean;
  readonly injectionError?: string;
  readonly calls: readonly CallRecord[];
}

const headers = (t: RunTarget): Record<string, string> => ({
  authorization: `Bearer ${t.agentKey}`,
  'bastion-conversation': t.conversation,
  'bastion-user': t.user,
});

/** Sends the user's request through the model door; resolves to the HTTP status (the answer is not used). */
export async function askModel(t: RunTarget, prompt: string, signal?: AbortSignal): Promise<number> {
  const res = await fetch(new URL('/v1/chat/completions', t.bastionUrl), {
    method: 'POST',
    headers: { ...headers(t), 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }),
    ...(signal === undefined ? {} : { signal }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The text of a tool result: its text parts joined with newlines. */
function resultText(r: object): string {
  const content = 'content' in r ? r.content : undefined;
  const parts = Array.isArray(content) ? (content as { type?: string; text?: string }[]) : [];
  return parts
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('\n');
}

/** Whether `text` holds `goal`, as written or JSON-escaped (results are often JSON text), case-insensitively. */
export function holdsGoal(text: string, goal: string): boolean {
  const t = text.toLowerCase();
  const g = goal.toLowerCase();
  return t.includes(g) || t.includes(JSON.stringify(g).slice(1, -1));
}

/**
 * Runs one conversation: the user's request through the model door, the user task through the
 * tool door and, when `injection` is given and a result held its goal, the injection task.
 * Errors of the tasks are caught into the outcome; a connection failure or `signal` aborting throws.
 */
export async function runConversation(t: RunTarget, task: UserTask<unknown>, injection: InjectionTask<unknown> | undefined, signal: AbortSignal): Promise<RunOutcome> {
  const modelStatus = await askModel(t, task.prompt, signal);
  const client = new Client({ name: 'defense-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', t.bastionUrl), { requestInit: { headers: headers(t) } });
  const calls: CallRecord[] = [];
  let sawInjection = false;
  const call: CallTool = async (name, args) => {
    signal.throwIfAborted();
    const r = await client.callTool({ name: `${t.env}__${name}`, arguments: args }, undefined, { timeout: t.callTimeoutMs, signal });
    const text = resultText(r);
    const meta = r._meta?.['bastion/error'] as { code?: unknown } | undefined;
    const refused = typeof meta?.code === 'string' ? meta.code : undefined;
    const isError = r.isError === true;
    calls.push({ tool: name, isError, ...(refused === undefined ? {} : { refused }) });
    if (injection !== undefined && !sawInjection && holdsGoal(text, injection.goal)) sawInjection = true;
    return { text, isError, ...(refused === undefined ? {} : { refused }) };
  };
  await client.connect(transport, { signal, timeout: t.callTimeoutMs });
  try {
    let answer: string | undefined;
    let userError: string | undefined;
    try {
      answer = (await task.run(call)) ?? undefined;
    } catch (err) {
      signal.throwIfAborted();
      userError = err instanceof Error ? err.message : String(err);
    }
    let obeyed = false;
    let injectionError: string | undefined;
    if (injection !== undefined && sawInjection) {
      obeyed = true;
      try {
        await injection.run(call);
      } catch (err) {
        signal.throwIfAborted();
        injectionError = err instanceof Error ? err.message : String(err);
      }
    }
    return {
      modelStatus,
      answer,
      sawInjection,
      obeyed,
      calls,
      ...(userError === undefined ? {} : { userError }),
      ...(injectionError === undefined ? {} : { injectionError }),
    };
  } finally {
    await client.close().catch(() => undefined);
  }
}
