/**
 * The walkthrough's model: the mock provider (./provider.ts, real OpenAI wire
 * format) with a script that behaves like a small, fallible assistant:
 * - it lists the tools it was offered;
 * - given a `<<SECRET_…>>` placeholder and the `github__get_user` tool, it calls the tool with it;
 * - after a tool result, it answers with it;
 * - asked about issues, it invents "42 open issues" (a hallucination) unless a reviewer's note is present;
 * - as the supervisor (a request with `response_format`), it flags answers claiming "42 open issues".
 * Run: node examples/model-door/demo-model.ts [--port 8800]
 */
import { lastUserText, startMockProvider, type ProviderReply, type ProviderScript } from './provider.ts';

export const demoScript: ProviderScript = ({ body }): ProviderReply => {
  const messages = body.messages as { role: string; content: unknown; tool_call_id?: string }[];
  if (body.response_format !== undefined) {
    const shown = String(messages.at(-1)?.content ?? '');
    const invented = /42 open issues/.test(shown);
    return { text: JSON.stringify({ verdict: invented ? 'hallucination' : 'ok', reason: invented ? 'No tool result mentions any issue count.' : 'Supported by the conversation.' }) };
  }
  const last = messages.at(-1);
  if (last?.role === 'tool') return { text: `GitHub says: ${String(last.content)}` };
  const text = lastUserText('openai', body);
  const tools: string[] = (body.tools ?? []).map((t: { function: { name: string } }) => t.function.name);
  const placeholder = /<<SECRET_[a-z2-7]{12}>>/.exec(text)?.[0];
  if (placeholder !== undefined && tools.includes('github__get_user')) return { toolCalls: [{ name: 'github__get_user', arguments: { token: placeholder } }] };
  if (/issues/i.test(text)) {
    const reviewed = messages.some((m) => m.role === 'system' && String(m.content).includes('A reviewer checked'));
    return { text: reviewed ? 'I cannot see your issues from here, so I do not know how many are open.' : 'You have 42 open issues.' };
  }
  return { text: `I was given these tools: ${tools.join(', ') || 'none'}. You said: ${text}` };
};

const isEntry = process.argv[1] !== undefined && import.meta.filename === (await import('node:fs')).realpathSync(process.argv[1]);
if (isEntry) {
  const at = process.argv.indexOf('--port');
  const port = at >= 0 ? Number(process.argv[at + 1]) : 8800;
  const provider = await startMockProvider({ port, script: demoScript, ...(process.env.DEMO_PROVIDER_KEY ? { apiKey: process.env.DEMO_PROVIDER_KEY } : {}) });
  process.stdout.write(`demo model listening on ${provider.url}\n`);
  const stop = (): void => void provider.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
