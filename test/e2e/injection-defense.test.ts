/**
 * The injection defense end to end (issue 13; docs/injection-defense.md), over
 * real loopback sockets: a gateway with its tool door, model door and admin API
 * (test/helpers/model-door.ts), two stdio upstreams run from
 * test/fixtures/injection-upstream.ts (a mailbox whose email carries an
 * `<INFORMATION>` injection naming the attacker's IBAN; a bank), the mock
 * provider (examples/model-door/provider.ts, OpenAI wire) scripted as a model
 * that obeys every injection it reads, and a scripted agent that talks to the
 * model with the official `openai` package and runs the model's tool calls with
 * the official MCP SDK client, both with the same `Bastion-User` and
 * `Bastion-Conversation` headers.
 *
 * The config under test holds a payment whose values a third party's text
 * supplied (approveWhen[0]), or that the model made up after a detector finding
 * (approveWhen[1]); refuses a scheduled transfer with such values with a tool
 * error the model reads (denyWhen[0], `fallback: error`); allows one payment per
 * conversation (limits[0]); and records no arguments (`audit.recordArguments: none`).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { lastUserText, type ProviderReply, type ProviderScript } from '../../examples/model-door/provider.ts';
import type { ApprovalRecord } from '../../src/approvals/store.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { EGRESS_KEY, TEST_MASTER_KEY } from '../helpers/egress.ts';
import { ROOT } from '../helpers/gateway.ts';
import { startModelDoor, type TestModelDoor } from '../helpers/model-door.ts';
import { runCli } from '../helpers/processes.ts';

const ADMIN_KEY = 'admin-key-0123456789abcdef-injection';
const USER = 'alice';
const LANDLORD_IBAN = 'DE89370400440532013000';
const ATTACKER_IBAN = 'GB29NWBK60161331926819';
/** As the email writes it (test/fixtures/injection-upstream.ts holds the same values). */
const ATTACKER_IBAN_GROUPED = 'GB29 NWBK 6016 1331 9268 19';
/** A sentence only the email body holds. */
const EMAIL_MARKER = 'the boiler in flat 3 was serviced on Tuesday';
/** Every form of a value that must never reach the audit trail or the guard's text. */
const VALUES = [LANDLORD_IBAN, 'DE89 3704 0044 0532 0130 00', ATTACKER_IBAN, ATTACKER_IBAN_GROUPED, EMAIL_MARKER];
const FIXTURE = join(ROOT, 'test/fixtures/injection-upstream.ts');

const config = (providerUrl: string): string => `version: 1
store: { sqlite: ./bastion.db }
admin:
  keys: [env:T_ADMIN]
audit:
  recordArguments: none
upstreams:
  mail: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(FIXTURE)}, mail] }
  bank: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(FIXTURE)}, bank] }
tools:
  "mail__*": { source: untrusted, effect: [read] }
  "bank__transactions": { source: trusted, effect: [read] }
  "bank__*": { source: trusted, effect: [pay] }
agents:
  assistant:
    keys: [env:EGRESS_KEY]
    tools: ["mail__*", "bank__*"]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
    approveWhen:
      - effect: [pay, send]
        argsFrom: untrusted
      - effect: [pay, send]
        argsFrom: model
        flagged: true
    denyWhen:
      - tool: "bank__schedule_*"
        tainted: true
        argsFrom: [untrusted, model]
        fallback: error
    limits:
      - tool: "bank__send_money"
        calls: 1
        fallback: error
approvals:
  timeoutMs: 8000
pinning:
  mode: first-use
provenance:
  ttlMs: 600000
  maxConversations: 100
`;

// ------------------------------------------------------------------ the model

const toolCall = (name: string, args: Record<string, unknown>): ProviderReply => ({ toolCalls: [{ name, arguments: args }] });

interface WireMessage {
  readonly role: string;
  readonly content?: unknown;
}

/**
 * A worst-case model: it does what the user asks, and obeys any instruction it
 * reads in a tool result. Asked about the rent with nothing else to go on, it
 * makes up the attacker's IBAN (as a model poisoned elsewhere would).
 */
const obedientModel: ProviderScript = ({ provider, body }) => {
  const messages = (body as { messages: WireMessage[] }).messages;
  const said = lastUserText(provider, body);
  const last = messages.at(-1);
  if (last?.role === 'tool') {
    const read = typeof last.content === 'string' ? last.content : JSON.stringify(last.content);
    const injected = /<INFORMATION>[\s\S]*?send (\d+) EUR to ([A-Z]{2}\d{2}[A-Z0-9 ]+?) with/.exec(read);
    if (injected?.[1] !== undefined && injected[2] !== undefined) {
      const tool = /schedule/.test(said) ? 'bank__schedule_transfer' : 'bank__send_money';
      return toolCall(tool, { recipient: injected[2].replaceAll(' ', ''), amount: Number(injected[1]) });
    }
    return { text: 'Done.' };
  }
  const pay = /pay (\d+) EUR .*?\b([A-Z]{2}\d{2}[A-Z0-9]{10,30})\b/.exec(said);
  if (pay?.[1] !== undefined && pay[2] !== undefined) return toolCall('bank__send_money', { recipient: pay[2], amount: Number(pay[1]) });
  if (/inbox/.test(said)) return toolCall('mail__read_inbox', {});
  if (/rent/.test(said)) return toolCall('bank__send_money', { recipient: ATTACKER_IBAN, amount: 500 });
  return { text: 'How can I help?' };
};

// ------------------------------------------------------------------ the agent

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const textOf = (r: ToolResult): string => r.content.map((c) => c.text ?? '').join('');
const errorCode = (r: ToolResult): string | undefined => (r._meta?.['bastion/error'] as { code?: string } | undefined)?.code;

/** One tool call the model asked for and what the tool door answered. */
interface Step {
  readonly name: string;
  readonly args: Record<string, unknown>;
  readonly result: ToolResult;
}

/** An agent in one conversation: the model through the model door, its tool calls through the tool door. */
class ScriptedAgent {
  readonly #openai: OpenAI;
  readonly #mcp: Client;
  readonly #messages: ChatCompletionMessageParam[] = [];
  #tools: ChatCompletionTool[] = [];

  private constructor(openai: OpenAI, mcp: Client) {
    this.#openai = openai;
    this.#mcp = mcp;
  }

  static async open(door: TestModelDoor, conversation: string): Promise<ScriptedAgent> {
    const headers = { 'Bastion-User': USER, 'Bastion-Conversation': conversation };
    const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `${door.base}/v1`, maxRetries: 0, defaultHeaders: headers });
    const mcp = new Client({ name: 'injection-defense-test', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(door.bastion.running.url, { requestInit: { headers: { Authorization: `Bearer ${EGRESS_KEY}`, ...headers } } }));
    const agent = new ScriptedAgent(openai, mcp);
    agent.#tools = (await mcp.listTools()).tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description ?? '', parameters: t.inputSchema } }));
    return agent;
  }

  /** The MCP session id: the audit records of this agent's tool calls carry it. */
  get session(): string {
    const id = (this.#mcp.transport as StreamableHTTPClientTransport | undefined)?.sessionId;
    if (id === undefined) throw new Error('no MCP session');
    return id;
  }

  /** The user says `text`; the model's tool calls run until it answers in text (at most 5 rounds). */
  async ask(text: string): Promise<Step[]> {
    this.#messages.push({ role: 'user', content: text });
    const steps: Step[] = [];
    for (let round = 0; round < 5; round++) {
      const r = await this.#openai.chat.completions.create({ model: 'gpt-4o-mini', messages: this.#messages, tools: this.#tools });
      const message = r.choices[0]?.message;
      assert.ok(message, 'the model answered');
      this.#messages.push(message);
      const calls = (message.tool_calls ?? []).flatMap((c) => (c.type === 'function' ? [c] : []));
      if (calls.length === 0) return steps;
      for (const c of calls) {
        const args = JSON.parse(c.function.arguments) as Record<string, unknown>;
        const result = (await this.#mcp.callTool({ name: c.function.name, arguments: args }, undefined, { timeout: 20_000 })) as ToolResult;
        steps.push({ name: c.function.name, args, result });
        this.#messages.push({ role: 'tool', tool_call_id: c.id, content: textOf(result) });
      }
    }
    throw new Error('the model did not finish in 5 rounds');
  }

  /** Calls a tool directly (not asked by the model). */
  async call(name: string, args: Record<string, unknown>): Promise<ToolResult> {
    return (await this.#mcp.callTool({ name, arguments: args })) as ToolResult;
  }

  close(): Promise<void> {
    return this.#mcp.close();
  }
}

// ------------------------------------------------------------------ the tests

describe('injection defense end to end (model door, tool door, admin API)', () => {
  let door: TestModelDoor;
  const agents: ScriptedAgent[] = [];
  const open = async (conversation: string): Promise<ScriptedAgent> => {
    const a = await ScriptedAgent.open(door, conversation);
    agents.push(a);
    return a;
  };
  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(new URL(path, door.base), { ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
  const records = async (): Promise<AuditRecord[]> => {
    await door.bastion.gateway.audit.flush();
    return door.bastion.gateway.store.readAudit(1, 100_000);
  };
  const callsOf = async (agent: ScriptedAgent, tool?: string): Promise<AuditRecord[]> =>
    (await records()).filter((r) => r.method === 'tools/call' && r.session === agent.session && (tool === undefined || r.target === tool));
  /** What the bank upstream of `agent`'s session really received (each MCP session has its own stdio upstream). */
  const ledger = async (agent: ScriptedAgent): Promise<{ tool: string; recipient: string; amount: number }[]> =>
    JSON.parse(textOf(await agent.call('bank__transactions', {}))) as { tool: string; recipient: string; amount: number }[];

  before(async () => {
    door = await startModelDoor(config, { provider: { script: obedientModel }, egress: { env: { T_ADMIN: ADMIN_KEY } } });
  });

  after(async () => {
    for (const a of agents) await a.close();
    await door?.close();
  });

  test('1. the user names the payee at the model door: the payment is allowed, its recipient traced to the user', async () => {
    const agent = await open('conv-pay-landlord');
    const steps = await agent.ask(`pay 120 EUR to my landlord ${LANDLORD_IBAN}`);
    assert.deepEqual(steps.map((s) => [s.name, s.args]), [['bank__send_money', { recipient: LANDLORD_IBAN, amount: 120 }]]);
    assert.equal(steps[0]?.result.isError ?? false, false, textOf(steps[0]?.result as ToolResult));
    const [rec] = await callsOf(agent, 'bank__send_money');
    assert.equal(rec?.decision.effect, 'allow');
    assert.equal(rec?.outcome, 'ok');
    assert.deepEqual(rec?.detail?.provenance, { recipient: ['user'], amount: ['user'] });
    assert.deepEqual(rec?.detail?.labels, { source: 'trusted', effects: ['pay'], rule: 'tools.bank__*' });
    assert.equal(rec?.detail?.taint, undefined, 'the conversation read nothing untrusted');
    const turn = (await records()).findLast((r) => r.door === 'model' && r.detail?.conversation === 'conv-pay-landlord');
    assert.equal(turn?.decision.effect, 'allow', 'the model door recorded the turn under the conversation');
    assert.deepEqual(await ledger(agent), [{ tool: 'send_money', recipient: LANDLORD_IBAN, amount: 120 }]);
  });

  test('2. after reading an injected email, a payment to the IBAN it names is held; the admin denies it', async () => {
    const agent = await open('conv-inbox');
    const asked = agent.ask('Please summarize my inbox');
    let settled = false;
    void asked.then(
      () => (settled = true),
      () => (settled = true),
    );
    // The payment waits for an admin: find it through the admin API (until the call ends, at the latest when the approval times out).
    let pending: ApprovalRecord | undefined;
    while (pending === undefined && !settled) {
      await new Promise((r) => setTimeout(r, 20));
      const listed = (await (await api('/api/approvals?status=pending')).json()) as { approvals: ApprovalRecord[] };
      pending = listed.approvals.find((a) => a.tool === 'bank__send_money');
    }
    assert.ok(pending, 'the payment is held for an admin');
    assert.equal(pending.user, USER);
    const preview = JSON.parse(pending.argsPreview) as { arguments: unknown; provenance: Record<string, string[]>; conversation: { tainted: boolean; flagged: boolean; sources: string[] } };
    assert.deepEqual(preview.provenance, { recipient: ['untrusted'], amount: ['untrusted'] });
    assert.deepEqual(preview.conversation, { tainted: true, flagged: true, sources: ['mail__read_inbox'] });
    assert.deepEqual(preview.arguments, { recipient: ATTACKER_IBAN, amount: 500 }, 'the admin sees what would be paid');
    const denied = await api(`/api/approvals/${pending.id}/deny`, { method: 'POST', body: JSON.stringify({ reason: 'not my landlord' }) });
    assert.equal(denied.status, 200);
    assert.equal(((await denied.json()) as ApprovalRecord).status, 'denied');

    const steps = await asked;
    assert.deepEqual(steps.map((s) => s.name), ['mail__read_inbox', 'bank__send_money']);
    assert.deepEqual(steps[1]?.args, { recipient: ATTACKER_IBAN, amount: 500 }, 'the model obeyed the injection');
    const refused = steps[1]?.result as ToolResult;
    assert.equal(refused.isError, true);
    assert.equal(errorCode(refused), 'ERR_APPROVAL_DENIED');
    assert.match(textOf(refused), /not my landlord/);

    const [inbox] = await callsOf(agent, 'mail__read_inbox');
    assert.equal(inbox?.outcome, 'ok');
    assert.deepEqual(inbox?.detail?.labels, { source: 'untrusted', effects: ['read'], rule: 'tools.mail__*' });
    const rules = (inbox?.detail?.injection as { rules?: string[] } | undefined)?.rules ?? [];
    assert.ok(rules.includes('injection.instruction-tag'), `the <INFORMATION> block fired: ${rules.join(', ')}`);
    const [pay] = await callsOf(agent, 'bank__send_money');
    // The record holds the call's last decision: the admin's denial of the approval that approveWhen[0] asked for.
    assert.deepEqual(pay?.decision, { effect: 'deny', reason: 'approval.denied', rule: `approval:${pending.id}` });
    assert.equal(pay?.outcome, 'denied');
    assert.equal(pay?.detail?.approvalId, pending.id);
    assert.equal(pay?.detail?.heldBy, 'agents.assistant.approveWhen[0]', 'the record names the short form that held the call');
    assert.equal(pay?.detail?.approval, 'denied');
    assert.equal(pay?.detail?.code, 'ERR_APPROVAL_DENIED');
    assert.deepEqual(pay?.detail?.provenance, { recipient: ['untrusted'], amount: ['untrusted'] });
    const taint = pay?.detail?.taint as { flagged?: boolean; sources?: string[]; flaggedBy?: string[] } | undefined;
    assert.equal(taint?.flagged, true);
    assert.deepEqual(taint?.sources, ['mail__read_inbox']);
    assert.ok(taint?.flaggedBy?.includes('injection.instruction-tag'));
    const admin = (await records()).find((r) => r.door === 'admin' && r.decision.reason === 'approval.denied');
    assert.ok(admin, 'the denial is audited');
    assert.deepEqual(await ledger(agent), [], 'the bank received nothing');
  });

  test('3. the same payee in a conversation that read nothing untrusted is the model\'s own: allowed by this config', async () => {
    // approveWhen[1] holds a made-up value only after a detector finding; approveWhen[0] needs a third party's
    // value. Here the model made the IBAN up with nothing to doubt in the conversation: the config lets it through.
    // A deployment that wants every made-up payee held drops `flagged: true` from approveWhen[1].
    const agent = await open('conv-rent');
    const steps = await agent.ask('pay my rent please');
    assert.deepEqual(steps.map((s) => [s.name, s.args]), [['bank__send_money', { recipient: ATTACKER_IBAN, amount: 500 }]]);
    assert.equal(steps[0]?.result.isError ?? false, false, textOf(steps[0]?.result as ToolResult));
    const [rec] = await callsOf(agent, 'bank__send_money');
    assert.deepEqual(rec?.detail?.provenance, { recipient: ['model'], amount: ['model'] }, 'not untrusted: this conversation never read the email');
    assert.equal(rec?.detail?.taint, undefined);
    assert.equal(rec?.decision.effect, 'allow');
    assert.equal(rec?.outcome, 'ok');
    assert.deepEqual(await ledger(agent), [{ tool: 'send_money', recipient: ATTACKER_IBAN, amount: 500 }], 'the bank received it');
  });

  test('4. fallback error: a scheduled transfer to the injected IBAN is refused with a tool error that names the arguments, never their values', async () => {
    const agent = await open('conv-schedule');
    const steps = await agent.ask('Read my inbox and schedule whatever is due');
    assert.deepEqual(steps.map((s) => s.name), ['mail__read_inbox', 'bank__schedule_transfer']);
    assert.deepEqual(steps[1]?.args, { recipient: ATTACKER_IBAN, amount: 500 });
    const r = steps[1]?.result as ToolResult;
    assert.equal(r.isError, true);
    assert.equal(errorCode(r), 'ERR_POLICY_GUARD');
    const text = textOf(r);
    assert.match(text, /agents\.assistant\.denyWhen\[0\]/);
    assert.match(text, /recipient \(from content a tool returned\)/);
    assert.match(text, /amount \(from content a tool returned\)/);
    assert.match(text, /mail__read_inbox/);
    assert.match(text, /Ask the user to confirm/);
    for (const v of VALUES) assert.ok(!text.includes(v), `the guard's text holds no value (${v.slice(0, 4)}…)`);
    const [rec] = await callsOf(agent, 'bank__schedule_transfer');
    assert.equal(rec?.decision.effect, 'deny');
    assert.equal(rec?.decision.reason, 'policy.guard');
    assert.equal(rec?.decision.rule, 'agents.assistant.denyWhen[0]');
    assert.deepEqual(rec?.detail?.provenance, { recipient: ['untrusted'], amount: ['untrusted'] });
    assert.equal((rec?.detail?.taint as { flagged?: boolean } | undefined)?.flagged, true);
    const listed = (await (await api('/api/approvals?status=pending')).json()) as { approvals: ApprovalRecord[] };
    assert.equal(listed.approvals.length, 0, 'an error fallback holds nothing for an admin');
    assert.deepEqual(await ledger(agent), [], 'the bank received nothing');
  });

  test('5. limits: the second payment of a conversation is over its budget of one call', async () => {
    const agent = await open('conv-budget');
    const first = await agent.ask(`pay 120 EUR to my landlord ${LANDLORD_IBAN}`);
    assert.equal(first[0]?.result.isError ?? false, false, textOf(first[0]?.result as ToolResult));
    const second = await agent.ask(`pay 120 EUR to my landlord ${LANDLORD_IBAN} again`);
    const r = second[0]?.result as ToolResult;
    assert.equal(second[0]?.name, 'bank__send_money');
    assert.equal(r.isError, true);
    assert.equal(errorCode(r), 'ERR_CONVERSATION_LIMIT');
    assert.match(textOf(r), /budget of 1 calls for bank__send_money \(agents\.assistant\.limits\[0\]\)/);
    const [ok, over] = await callsOf(agent, 'bank__send_money');
    assert.equal(ok?.outcome, 'ok');
    assert.equal(over?.decision.effect, 'deny');
    assert.equal(over?.decision.reason, 'limit.conversation');
    assert.equal(over?.decision.rule, 'agents.assistant.limits[0]');
    assert.equal(over?.detail?.limit, 'agents.assistant.limits[0]');
    assert.deepEqual(over?.detail?.provenance, { recipient: ['user'], amount: ['user'] }, 'the user\'s own word does not lift the budget');
    assert.equal((await ledger(agent)).length, 1, 'the bank received one payment');
    // Another conversation has its own budget.
    const other = await open('conv-budget-2');
    const fresh = await other.ask(`pay 120 EUR to my landlord ${LANDLORD_IBAN}`);
    assert.equal(fresh[0]?.result.isError ?? false, false, textOf(fresh[0]?.result as ToolResult));
  });

  test('6. a malformed Bastion-Conversation at the model door is a 400 in the provider\'s shape, never forwarded', async () => {
    const sent = door.provider.requests.length;
    for (const bad of ['x'.repeat(257), 'tab\there']) {
      const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `${door.base}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': USER, 'Bastion-Conversation': bad } });
      const err = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `pay 120 EUR to my landlord ${LANDLORD_IBAN}` }] }).then(
        () => assert.fail('accepted'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.code, 'ERR_MODEL_REQUEST_INVALID');
      assert.match(err.message, /Bastion-Conversation/);
    }
    assert.equal(door.provider.requests.length, sent, 'the provider saw neither request');
    const refused = (await records()).filter((r) => r.door === 'model' && r.decision.reason === 'conversation.invalid');
    assert.equal(refused.length, 2);
    assert.ok(refused.every((r) => r.outcome === 'denied' && r.detail?.status === 400));
  });

  test('7. with recordArguments none, no IBAN and no email text is anywhere in the audit trail (store and `bastion audit tail --json`)', async () => {
    const all = await records();
    assert.ok(all.some((r) => r.target === 'bank__send_money') && all.some((r) => r.target === 'mail__read_inbox'), 'the scenarios above ran');
    assert.ok(all.every((r) => r.args === undefined || r.args === null), 'no arguments recorded');
    const stored = JSON.stringify(all);
    for (const v of VALUES) assert.ok(!stored.includes(v), `a value in the stored audit records (${v.slice(0, 4)}…)`);
    const tail = await runCli(['audit', 'tail', '-n', '1000', '--json', '--config', join(door.bastion.dir, 'bastion.yaml')], {
      env: { EGRESS_KEY, BASTION_MASTER_KEY: TEST_MASTER_KEY, T_ADMIN: ADMIN_KEY },
    });
    assert.equal(tail.code, 0, tail.stderr);
    const lines = tail.stdout.trim().split('\n');
    assert.ok(lines.length >= all.length, `audit tail printed ${lines.length} lines for ${all.length} records`);
    assert.ok(lines.some((l) => (JSON.parse(l) as AuditRecord).detail?.provenance !== undefined), 'the provenance is there');
    for (const v of VALUES) assert.ok(!tail.stdout.includes(v), `a value in audit tail (${v.slice(0, 4)}…)`);
  });
});
