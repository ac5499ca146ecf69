/**
 * The supervisor: a judge model (here the mock provider again, OpenAI wire
 * format, asked for a strict JSON-schema verdict) checks each non-streamed
 * answer. `correct` re-runs once with a corrective note and returns the
 * corrected answer; `flag` returns the answer and alerts admins; a judge that
 * fails or answers garbage withholds the answer (502). Verdicts are audited.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { lastUserText, type ProviderScript } from '../../examples/model-door/provider.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY } from '../helpers/egress.ts';
import { useModelDoor } from '../helpers/model-door.ts';

let judge: 'hallucination' | 'ok' | 'garbage' | 'error' = 'hallucination';
let judged: unknown[] = [];

/** The model invents a number unless a reviewer's note is present; the judge answers as set. */
const script: ProviderScript = ({ body }) => {
  if (body.response_format !== undefined) {
    judged.push(JSON.parse(body.messages[1].content));
    if (judge === 'error') return { status: 500 };
    if (judge === 'garbage') return { text: 'not json at all' };
    return { text: JSON.stringify({ verdict: judge, reason: judge === 'ok' ? 'supported' : 'the issue count is not in any tool result' }) };
  }
  const corrected = body.messages.some((m: { role: string; content: unknown }) => m.role === 'system' && String(m.content).includes('A reviewer checked'));
  if (corrected) return { text: 'I cannot see your issues, so I do not know how many are open.' };
  return { text: `You have 42 open issues. (${lastUserText('openai', body)})` };
};

const door = useModelDoor(
  (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
agents:
  careful:
    keys: [env:EGRESS_KEY]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
    supervisor: { baseUrl: "${providerUrl}/v1", model: judge-1, mode: correct }
  flagger:
    keys: [env:OTHER_EGRESS_KEY]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
    supervisor: { baseUrl: "${providerUrl}/v1", model: judge-1, mode: flag }
`,
  { provider: { script } },
);

const client = (key: string): OpenAI => new OpenAI({ apiKey: key, baseURL: `http://127.0.0.1:${door.bastion.running.url.port}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });

async function lastRecord(): Promise<Record<string, unknown>> {
  await door.bastion.gateway.audit.flush();
  const r = (await door.bastion.gateway.store.readAudit(1, 100_000)).filter((x) => x.door === 'model' && x.method === 'model.chat').at(-1)!;
  return r.detail as Record<string, unknown>;
}

test('mode correct: a hallucination verdict re-runs once with the reviewer\'s note; the corrected answer is returned and audited', async () => {
  judge = 'hallucination';
  judged = [];
  const r = await client(EGRESS_KEY).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'How many open issues do I have?' }] });
  assert.equal(r.choices[0]?.message.content, 'I cannot see your issues, so I do not know how many are open.');
  assert.equal(judged.length, 1, 'the corrected answer is not judged again');
  const shown = judged[0] as { conversation: { role: string; content: string }[]; answer: string };
  assert.match(shown.answer, /42 open issues/);
  assert.ok(shown.conversation.some((m) => m.role === 'user' && m.content === 'How many open issues do I have?'));
  const supervisor = (await lastRecord()).supervisor as Record<string, unknown>;
  assert.deepEqual({ ...supervisor, reason: undefined }, { mode: 'correct', verdict: 'hallucination', reason: undefined, corrected: true });
});

test('an ok verdict returns the answer untouched', async () => {
  judge = 'ok';
  const r = await client(EGRESS_KEY).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  assert.match(r.choices[0]?.message.content ?? '', /^You have 42 open issues/);
  assert.equal(((await lastRecord()).supervisor as { verdict: string }).verdict, 'ok');
});

test('mode flag: the original answer is returned and admins are alerted', async () => {
  judge = 'hallucination';
  const before = door.bastion.adminAlerts.length;
  const r = await client(OTHER_EGRESS_KEY).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'count?' }] });
  assert.match(r.choices[0]?.message.content ?? '', /^You have 42 open issues/);
  const alert = door.bastion.adminAlerts.slice(before).find((a) => a.kind === 'model.supervisor_flag');
  assert.ok(alert && alert.agent === 'flagger' && alert.user === 'alice');
});

test('a supervisor that fails or answers garbage withholds the answer: 502, fail closed', async () => {
  for (const mode of ['error', 'garbage'] as const) {
    judge = mode;
    await assert.rejects(
      client(EGRESS_KEY).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => err instanceof OpenAI.APIError && err.status === 502 && err.code === 'ERR_MODEL_UPSTREAM',
    );
  }
});

test('streamed answers are not held for the supervisor; the record says so', async () => {
  judge = 'hallucination';
  let text = '';
  const s = await client(EGRESS_KEY).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'stream it' }], stream: true });
  for await (const c of s) text += c.choices[0]?.delta.content ?? '';
  assert.match(text, /^You have 42 open issues/);
  assert.deepEqual((await lastRecord()).supervisor, { skipped: 'stream' });
});
