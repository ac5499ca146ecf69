/**
 * `npm run bench:model-door`: the model door's cost and what it keeps from the model.
 *
 * 1. Load: requests/s and latency p50/p99 of `POST /v1/chat/completions` (OpenAI format, not
 *    streamed) sent by one load generator straight to the mock provider and through Bastion, for a
 *    short conversation (one ~60-character user message) and a ~100 KB multi-turn conversation, at
 *    concurrency 1 and 16. Ratio = Bastion req/s ÷ direct req/s; added p50/p99 = Bastion's minus
 *    direct's (a difference of percentiles, not a percentile of differences).
 * 2. Streaming (`stream: true`, concurrency 1): time to the first SSE event carrying content text as
 *    the client sees it, direct and through Bastion, with the provider writing its events back to back
 *    (the door's per-event CPU shows) and paced one every BENCH_STREAM_GAP_MS, as a model generates
 *    (what the door holds back before the first content shows: the end of the text that could still
 *    begin a known secret value, and a word cut at a chunk's end).
 * 3. Leak check: every `secret` row of the secrets corpora (`../shared/corpora/secrets/`, read in
 *    place, never copied) is pasted as a user message through Bastion; the provider's recorded raw
 *    bodies are searched for the row's value (and its JSON-escaped form). Split by whether
 *    `findSecrets` finds the value in the row on its own: the door can only vault what it finds.
 * 4. Prompt-attack detection quality on the labeled injection corpus (bench/prompt-attacks.ts).
 *
 * Processes: this driver (the load generator, and the leak check's provider), the mock provider
 * for the load rows (this file run as `node bench/model-door.ts provider`, so the driver's work does
 * not share its event loop), and Bastion (`bastion serve`: SQLite store, audit on, hardening on,
 * memory rate limiter with limits set far above the load, the provider key in the vault). Every
 * request names its end user in `Bastion-User` (eight users in turn). All on 127.0.0.1.
 *
 * Env: BENCH_SECONDS (recorded seconds per row, split in two halves interleaved with the direct
 * baseline; default 3), BENCH_WARMUP_SECONDS (default 1), BENCH_CONNS (default `1,16`),
 * BENCH_ONLY (a regex over the row labels `load short c1`, `load 100KB c16`, `stream short`,
 * `stream 100KB`, `paced short`, `paced 100KB`, `leak`, `detect`; anchor it: `c1$`),
 * BENCH_STREAM_GAP_MS (paced rows: ms between the provider's events, default 1),
 * BENCH_PACED_STREAMS (paced rows: streams per side, default 20), BENCH_LEAK_FILES (corpus files,
 * default all three), BENCH_LEAK_CONNS (concurrency of the leak check, default 8), BENCH_CORPORA
 * (corpus directory), BENCH_NODE_FLAGS (extra node flags for Bastion, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_KEEP_TMP=1 (keep the temp dir: config, store).
 * Not a test: figures are judged only in the closing summary. Exits 1 when a row had failed
 * requests, a streamed answer arrived altered, or a value the detector finds reached the provider.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startMockProvider, type MockProvider } from '../examples/model-door/provider.ts';
import { detectPromptAttacks } from '../src/detect/prompt-attacks.ts';
import { findSecrets } from '../src/detect/secrets.ts';
import { corporaAbsentMessage, findCorpora } from '../test/helpers/corpora.ts';
import { prng } from '../test/helpers/prng.ts';
import { BenchChild, stopChildren } from './child.ts';
import { cpuMs } from './proc.ts';
import { DEFAULT_CORPUS, evaluatePromptCorpus } from './prompt-attacks.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
const CONNS = (process.env.BENCH_CONNS ?? '1,16').split(',').map(Number);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : undefined;
/** The secrets corpus folder (BENCH_CORPORA, else `secrets/` of `$BASTION_CORPORA` or `../shared/corpora`), or undefined: rows 3 and 4 are then skipped, saying so. */
const CORPORA: string | undefined = process.env.BENCH_CORPORA ?? ((d) => (d === undefined ? undefined : join(d, 'secrets')))(findCorpora(['secrets']));
const INJECTION_CORPUS = existsSync(DEFAULT_CORPUS) ? DEFAULT_CORPUS : undefined;
const LEAK_FILES = (process.env.BENCH_LEAK_FILES ?? 'samples.jsonl,samples-gitleaks-generated.jsonl,samples-trufflehog.jsonl').split(',').map((f) => f.trim()).filter(Boolean);
const LEAK_CONNS = Number(process.env.BENCH_LEAK_CONNS ?? 8);
const AGENT_KEY = 'bench-agent-key-0123456789abcdefghijklmnop';
const LEAK_AGENT_KEY = 'bench-leak-key-0123456789abcdefghijklmnopq';
/** Shaped like an OpenAI project key (164 characters): the door holds streamed text back by the longest known value. */
const PROVIDER_KEY = (() => {
  const rnd = prng(3);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
  let k = 'sk-proj-';
  while (k.length < 164) k += alphabet[Math.floor(rnd() * alphabet.length)];
  return k;
})();
const MODEL = 'gpt-4o-mini';
/** The model name that asks the bench's provider for a paced stream (one event every BENCH_STREAM_GAP_MS). */
const PACED_MODEL = 'gpt-4o-mini-paced';
const GAP_MS = Number(process.env.BENCH_STREAM_GAP_MS ?? 1);
const PACED_STREAMS = Number(process.env.BENCH_PACED_STREAMS ?? 20);
const USERS = Array.from({ length: 8 }, (_, i) => `bench-user-${i}`);
/** Streamed answers: characters per SSE delta, as a provider sends a few tokens at a time. */
const CHUNK_CHARS = 4;
/** Targets of the issue. */
const TARGET_ADDED_P50_MS = 2;
const TARGET_ADDED_TTFT_MS = 5;

const selected = (label: string): boolean => !ONLY || ONLY.test(label);

// ---------------------------------------------------------------------------
// Conversations: seeded prose, the same bytes on every run and in both processes.

const OPENERS = ['Thanks for the quick reply.', 'Hi again.', 'Quick follow-up on this.', 'That makes sense.', 'Sorry, one more thing.', 'Okay, I tried that.', 'Good morning.', 'Thanks, that helped a bit.'];
const SUBJECTS = [
  'the invoice for March', 'our shared calendar', 'the export to a spreadsheet', 'the mobile app', 'my manager\'s account', 'the team dashboard',
  'the annual plan', 'the onboarding checklist', 'the weekly usage report', 'the billing address', 'the password reset email', 'the login page',
  'the shipping estimate', 'the second workspace', 'the order history', 'the notification settings', 'the API usage chart', 'the refund for order 4471',
];
const PROBLEMS = [
  'still shows the old amount', 'does not load on my laptop', 'was sent twice this morning', 'lists people who left the company last year',
  'takes about a minute to open', 'has the wrong time zone', 'stopped syncing after the update', 'never arrived in my inbox',
  'asks me to sign in again every few minutes', 'counts the same order twice', 'shows a blank page after the second step', 'rounds every total up to the next dollar',
];
const CONTEXTS = [
  'since Tuesday', 'after we changed plans', 'only for the people in the Berlin office', 'when I use the browser on my phone', 'even after clearing the cache',
  'for every report older than a week', 'on both of our accounts', 'although nothing else changed', 'right after the maintenance window', 'for the three new hires',
];
const ASKS = ['Could you check what is going on?', 'Is there a setting I missed?', 'Can you tell me how to fix it myself?', 'What would you suggest?', 'Should I ask billing instead?', 'Is this a known issue?'];
const REASONS = [
  'this usually happens when two plans overlap for a few days', 'the page keeps a copy of the last result for up to an hour',
  'older invoices are made from the plan that was active at the time', 'the reminder is sent from the address on the billing profile, not your own',
  'each workspace keeps its own settings, so a change in one does not reach the other', 'the mobile app only refreshes in the background when it is allowed to',
  'the report is built overnight, so changes made today show up tomorrow', 'a sign-in on a new device ends the older sessions after a short grace period',
];
const STEPS = [
  'open the settings page and choose the section called Workspace', 'sign out on every device and sign back in once', 'check that the time zone under Profile matches your office',
  'ask an owner of the workspace to confirm the change', 'download the report again after the nightly refresh', 'remove the old payment method and add it again',
  'wait about ten minutes for the change to reach every device', 'compare the totals with the summary at the bottom of the page',
  'reset the password from the account page rather than from the email link', 'turn background refresh on for the app in your phone\'s settings',
];
const CLOSERS = ['Let me know how it goes.', 'I am happy to look further if it comes back.', 'If the numbers still differ, send me the order number and I will check it.', 'That should settle it for everyone on the team.'];

function proseGenerator(seed: number): { user: () => string; assistant: () => string } {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
  const user = (): string => {
    const parts = [pick(OPENERS), `I noticed that ${pick(SUBJECTS)} ${pick(PROBLEMS)} ${pick(CONTEXTS)}.`];
    const extra = Math.floor(rnd() * 3);
    for (let i = 0; i < extra; i++) parts.push(`${cap(pick(SUBJECTS))} also ${pick(PROBLEMS)} ${pick(CONTEXTS)}, which is odd because we did not touch it.`);
    parts.push(pick(ASKS));
    return parts.join(' ');
  };
  const assistant = (): string => {
    const steps = 3 + Math.floor(rnd() * 3);
    const lines = [`I can help with that. From what you describe, ${pick(REASONS)}, and ${pick(REASONS)}. Here is what I would try:`, ''];
    for (let i = 1; i <= steps; i++) lines.push(`${i}. ${cap(pick(STEPS))}, then ${pick(STEPS)}.`);
    lines.push('', `If that does not help, ${pick(STEPS)}; ${pick(REASONS)}. ${pick(CLOSERS)}`);
    return lines.join('\n');
  };
  return { user, assistant };
}

type Message = { role: 'system' | 'user' | 'assistant'; content: string };

interface Conversation {
  readonly name: 'short' | '100KB';
  readonly messages: readonly Message[];
}

const SHORT: Conversation = { name: 'short', messages: [{ role: 'user', content: 'Can you summarise the refund policy for annual plans, please?' }] };

/** A support conversation of about `chars` characters of message text, ending in a short new user turn. */
function longConversation(chars: number): Conversation {
  const g = proseGenerator(7);
  const messages: Message[] = [
    { role: 'system', content: 'You are the support assistant of Acme Workspace. Answer customers politely and briefly, in plain language, and ask for an order number before you discuss a refund. Never promise a date for a fix.' },
  ];
  let size = messages[0]!.content.length;
  while (size < chars) {
    for (const m of [{ role: 'user', content: g.user() }, { role: 'assistant', content: g.assistant() }] as const) {
      messages.push(m);
      size += m.content.length;
    }
  }
  messages.push({ role: 'user', content: 'Thanks, that worked. Can you summarise the steps once more?' });
  return { name: '100KB', messages };
}

/** What the provider answers every load row: a few paragraphs of the same prose. */
const REPLY = (() => {
  const g = proseGenerator(11);
  return `${g.assistant()}\n\n${g.assistant()}`;
})();
/** The paced stream's answer: the first paragraph or so (a paced stream of the whole answer would take half a second). */
const PACED_REPLY = REPLY.slice(0, REPLY.indexOf(' ', 600));

// ---------------------------------------------------------------------------
// The provider process (`node bench/model-door.ts provider`).

async function runProvider(): Promise<void> {
  // Keeps no history: the mock records every request, and 100 KB bodies would pile up.
  let provider: MockProvider | undefined;
  provider = await startMockProvider({
    apiKey: PROVIDER_KEY,
    script: ({ body }) => {
      if (provider) provider.requests.length = 0;
      return body.model === PACED_MODEL ? { text: PACED_REPLY, chunkChars: CHUNK_CHARS, delayMs: GAP_MS } : { text: REPLY, chunkChars: CHUNK_CHARS };
    },
  });
  process.stdout.write(`listening ${provider.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await provider.close();
}

// ---------------------------------------------------------------------------
// BenchChild processes: output kept line by line (a tail for error messages).

let tempDir: string | undefined;
/** ALERT lines Bastion printed during the run. */
let alerts = 0;
const cleanup = async (): Promise<void> => {
  await stopChildren();
  if (tempDir && process.env.BENCH_KEEP_TMP !== '1') rmSync(tempDir, { recursive: true, force: true });
};

// ---------------------------------------------------------------------------
// Load generator: one keep-alive pool per target, `conns` workers back to back.

interface Target {
  readonly name: 'direct' | 'bastion';
  readonly pool: Pool;
  readonly key: string;
  pid: number | undefined;
}

interface Sample {
  /** Latency (whole response, or time to first content when streaming), ms. */
  readonly lat: number[];
  /** Streaming: time to the end of the stream, ms. */
  readonly total: number[];
  requests: number;
  wallMs: number;
  errors: number;
  /** Streamed answers whose text differed from the provider's. */
  altered: number;
  firstError: string;
  /** CPU ms of Bastion during the recorded part (Bastion's side only). */
  bastionCpu: number;
}

const newSample = (): Sample => ({ lat: [], total: [], requests: 0, wallMs: 0, errors: 0, altered: 0, firstError: '', bastionCpu: 0 });

/** `whole`: not streamed; `stream`: streamed back to back; `paced`: streamed one event every GAP_MS, like a model generating. */
type Mode = 'whole' | 'stream' | 'paced';

function bodyFor(conv: Conversation, mode: Mode): string {
  return JSON.stringify({
    model: mode === 'paced' ? PACED_MODEL : MODEL,
    messages: conv.messages,
    // Both sides ask for the usage chunk (the door would add the option otherwise), so both get the same events.
    ...(mode !== 'whole' ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
}

/** Reads an OpenAI SSE stream: ms to the first event with content text, and the whole text. */
async function readStream(body: AsyncIterable<Buffer>, t0: number): Promise<{ first: number; text: string; done: boolean }> {
  const decoder = new TextDecoder();
  let buf = '';
  let first = NaN;
  let text = '';
  let done = false;
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const piece = (JSON.parse(data) as { choices?: { delta?: { content?: unknown } }[] }).choices?.[0]?.delta?.content;
        if (typeof piece === 'string' && piece.length > 0) {
          if (Number.isNaN(first)) first = performance.now() - t0;
          text += piece;
        }
      }
    }
  }
  return { first, text, done };
}

/** Runs `conns` workers for `amount.seconds` (or `amount.count` requests) against `target`; records into `into` when given. */
async function drive(
  target: Target,
  conv: Conversation,
  mode: Mode,
  conns: number,
  amount: { seconds: number } | { count: number },
  into: Sample | undefined,
  bodies: Map<string, string>,
): Promise<void> {
  const payload = bodies.get(`${conv.name}:${mode}`) as string;
  const stream = mode !== 'whole';
  const expected = mode === 'paced' ? PACED_REPLY : REPLY;
  const path = '/v1/chat/completions';
  const until = 'seconds' in amount ? performance.now() + amount.seconds * 1000 : Infinity;
  const count = 'count' in amount ? amount.count : Infinity;
  let n = 0;
  const cpu0 = cpuMs(target.pid);
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < until && n < count) {
      const user = USERS[n++ % USERS.length] as string;
      const s = performance.now();
      try {
        const res = await target.pool.request({
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${target.key}`, 'bastion-user': user, accept: stream ? 'text/event-stream' : 'application/json' },
          body: payload,
        });
        if (res.statusCode !== 200) {
          const why = (await res.body.text()).replace(/\s+/g, ' ').slice(0, 160);
          if (into) {
            into.errors++;
            into.firstError ||= `HTTP ${res.statusCode} ${why}`;
          }
          continue;
        }
        if (stream) {
          const r = await readStream(res.body, s);
          const end = performance.now() - s;
          if (!into) continue;
          if (!r.done || r.text !== expected || Number.isNaN(r.first)) {
            into.altered++;
            continue;
          }
          into.lat.push(r.first);
          into.total.push(end);
        } else {
          await res.body.text();
          if (into) into.lat.push(performance.now() - s);
        }
        if (into) into.requests++;
      } catch (e) {
        if (into) {
          into.errors++;
          into.firstError ||= (e as Error).message;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: conns }, () => worker()));
  if (into) {
    into.wallMs += performance.now() - t0;
    into.bastionCpu += cpuMs(target.pid) - cpu0;
  }
}

/** One request, checked: the answer is the provider's text, whole. */
async function probe(target: Target, bodies: Map<string, string>, conv: Conversation): Promise<string | undefined> {
  const res = await target.pool.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${target.key}`, 'bastion-user': USERS[0] as string },
    body: bodies.get(`${conv.name}:whole`) as string,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) return `${target.name} ${conv.name}: HTTP ${res.statusCode} ${text.replace(/\s+/g, ' ').slice(0, 200)}`;
  const content = (JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
  return content === REPLY ? undefined : `${target.name} ${conv.name}: the answer's text differs from the provider's`;
}

function pct(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN);
}

interface Stats {
  rps: number;
  p50: number;
  p99: number;
  totalP50: number;
  requests: number;
  errors: number;
  altered: number;
  firstError: string;
  bastionCpuPerReq: number;
}

function stats(s: Sample): Stats {
  const lat = [...s.lat].sort((a, b) => a - b);
  const total = [...s.total].sort((a, b) => a - b);
  return {
    rps: s.requests / (s.wallMs / 1000),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    totalP50: pct(total, 50),
    requests: s.requests,
    errors: s.errors,
    altered: s.altered,
    firstError: s.firstError,
    bastionCpuPerReq: s.bastionCpu / Math.max(1, s.requests),
  };
}

interface Row {
  readonly label: string;
  readonly conv: Conversation;
  readonly conns: number;
  readonly mode: Mode;
  direct?: Stats;
  bastion?: Stats;
}

/** Warm-up on both sides, then direct, Bastion, direct, Bastion (half the seconds, or streams, each) so drift weighs on both alike. */
async function measureRow(row: Row, direct: Target, bastion: Target, bodies: Map<string, string>): Promise<void> {
  const d = newSample();
  const b = newSample();
  const paced = row.mode === 'paced';
  const warm = paced ? { count: 2 } : { seconds: WARMUP };
  const half = paced ? { count: Math.max(1, Math.ceil(PACED_STREAMS / 2)) } : { seconds: SECONDS / 2 };
  await drive(direct, row.conv, row.mode, row.conns, warm, undefined, bodies);
  await drive(bastion, row.conv, row.mode, row.conns, warm, undefined, bodies);
  for (let i = 0; i < 2; i++) {
    await drive(direct, row.conv, row.mode, row.conns, half, d, bodies);
    await drive(bastion, row.conv, row.mode, row.conns, half, b, bodies);
  }
  row.direct = stats(d);
  row.bastion = stats(b);
}

// ---------------------------------------------------------------------------
// Leak check.

interface CorpusRow {
  readonly id: string;
  readonly rule: string;
  readonly source: string;
  readonly text: string;
  readonly label: string;
  readonly expected_match?: string;
  readonly expected_matches?: readonly string[];
}

/**
 * What `findSecrets` makes of a row on its own: `found` covers every copy of every value; `some copies`
 * covers one copy whole and misses another; `part` overlaps the value without covering a copy whole
 * (it flags a piece of what upstream calls the secret); `not found` touches no copy.
 */
type Found = 'found' | 'some copies' | 'part' | 'not found';
const FOUND_LABEL: Readonly<Record<Found, string>> = {
  found: 'finds every copy of the value',
  'some copies': 'finds one copy, misses another',
  part: 'finds a piece of the value only',
  'not found': 'does not find it',
};

interface LeakRow {
  readonly file: string;
  readonly row: CorpusRow;
  readonly values: readonly string[];
  readonly found: Found;
  user: string;
  status?: number;
  /** Refused as a new turn (prompt-attack rule) and re-sent as history. */
  resent?: boolean;
  reached?: boolean;
}

/** What `findSecrets` on the row alone makes of the values (see {@link Found}). */
function detectorVerdict(text: string, values: readonly string[]): Found {
  const findings = findSecrets(text);
  let whole = 0;
  let missed = 0;
  let touched = false;
  for (const v of values) {
    for (let at = text.indexOf(v); at >= 0; at = text.indexOf(v, at + 1)) {
      const end = at + v.length;
      if (findings.some((f) => f.start <= at && f.end >= end)) whole++;
      else {
        missed++;
        if (findings.some((f) => f.start < end && f.end > at)) touched = true;
      }
    }
  }
  if (missed === 0) return 'found';
  if (whole > 0) return 'some copies';
  return touched ? 'part' : 'not found';
}

/** The value as it appears inside a JSON string (quotes, backslashes, control characters escaped). */
const jsonEscaped = (v: string): string => JSON.stringify(v).slice(1, -1);

function readSecretRows(): { rows: LeakRow[]; skipped: number; perFile: Map<string, number> } {
  const rows: LeakRow[] = [];
  const perFile = new Map<string, number>();
  let skipped = 0;
  for (const file of LEAK_FILES) {
    let n = 0;
    for (const line of readFileSync(join(CORPORA as string, file), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as CorpusRow;
      if (r.label !== 'secret') continue;
      const values = [...new Set(r.expected_matches ?? (r.expected_match !== undefined ? [r.expected_match] : []))].filter((v) => v.length > 0 && r.text.includes(v));
      if (values.length === 0) {
        skipped++;
        continue;
      }
      rows.push({ file, row: r, values, found: detectorVerdict(r.text, values), user: '' });
      n++;
    }
    perFile.set(file, n);
  }
  return { rows, skipped, perFile };
}

async function leakCheck(bastionUrl: string, provider: MockProvider): Promise<{ rows: LeakRow[]; skipped: number; perFile: Map<string, number>; control: string; ms: number }> {
  const { rows, skipped, perFile } = readSecretRows();
  const pool = new Pool(bastionUrl, { connections: LEAK_CONNS, pipelining: 1 });
  const t0 = performance.now();
  const send = async (user: string, messages: readonly Message[]): Promise<number> => {
    const res = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${LEAK_AGENT_KEY}`, 'bastion-user': user },
      body: JSON.stringify({ model: MODEL, messages, user }),
    });
    await res.body.text();
    return res.statusCode;
  };
  try {
    // A control request: what the provider sees when no credential is pasted (Bastion's own notes).
    await send('leak-control', [{ role: 'user', content: 'Here is the config I am using, can you check it?' }]);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const i = next++;
        const r = rows[i] as LeakRow;
        r.user = `leak-${i}`;
        r.status = await send(r.user, [{ role: 'user', content: `Here is the config I am using, can you check it?\n\n${r.row.text}` }]);
        if (r.status === 403) {
          // A prompt-attack rule refused it as the new turn (and banned that user): paste it in the history instead.
          r.resent = true;
          r.user = `leak-${i}-history`;
          r.status = await send(r.user, [
            { role: 'user', content: `Here is the config I am using:\n\n${r.row.text}` },
            { role: 'assistant', content: 'Thanks, I have it.' },
            { role: 'user', content: 'Can you check it?' },
          ]);
        }
      }
    };
    await Promise.all(Array.from({ length: LEAK_CONNS }, () => worker()));
  } finally {
    await pool.close();
  }
  const ms = performance.now() - t0;
  const byUser = new Map<string, string>();
  for (const req of provider.requests) {
    const u = (req.body as { user?: unknown } | undefined)?.user;
    if (typeof u === 'string') byUser.set(u, req.raw);
  }
  for (const r of rows) {
    const raw = byUser.get(r.user);
    r.reached = raw !== undefined && r.values.some((v) => raw.includes(v) || raw.includes(jsonEscaped(v)));
  }
  return { rows, skipped, perFile, control: byUser.get('leak-control') ?? '', ms };
}

// ---------------------------------------------------------------------------
// Bastion.

function cli(args: readonly string[], cfg: string, input?: string): void {
  const env = { ...process.env };
  delete env.BASTION_MASTER_KEY;
  const r = spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), ...args, '--config', cfg], { encoding: 'utf8', env, timeout: 60_000, ...(input === undefined ? {} : { input }) });
  if (r.status !== 0) throw new Error(`\`bastion ${args.join(' ')}\` exited ${r.status ?? r.signal}: ${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim().slice(0, 300)}`);
}

async function startBastion(dir: string, providerUrl: string, leakUrl: string): Promise<{ child: BenchChild; url: string }> {
  const cfg = join(dir, 'bastion.yaml');
  const big = 1_000_000_000;
  writeFileSync(
    cfg,
    `version: 1
server: { listen: 127.0.0.1:0, egress: false }
store: { sqlite: ${join(dir, 'bastion.db')} }
vault: { keyFile: ${join(dir, 'master.key')} }
secrets:
  provider-key: { hosts: ["127.0.0.1"] }
modelDoor:
  # Far above the load, so no request is refused; the limiter still runs (part of the cost).
  rateLimits:
    perUser: { requests: { points: ${big}, windowS: 60 }, tokens: { points: ${big}, windowS: 3600 } }
    perAgent: { requests: { points: ${big}, windowS: 60 } }
agents:
  bench:
    keys: [env:BENCH_AGENT_KEY]
    model: { provider: openai, baseUrl: "${providerUrl}/v1", secret: provider-key }
  leak:
    keys: [env:BENCH_LEAK_KEY]
    model: { provider: openai, baseUrl: "${leakUrl}/v1", secret: provider-key }
`,
  );
  cli(['secret', 'add', 'provider-key', '--hosts', '127.0.0.1'], cfg, PROVIDER_KEY);
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_AGENT_KEY: AGENT_KEY, BENCH_LEAK_KEY: LEAK_AGENT_KEY };
  delete env.BASTION_MASTER_KEY;
  const child = new BenchChild('bastion', process.execPath, [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), join(ROOT, 'src/cli/main.ts'), 'serve', '--config', cfg], { env });
  child.onLine((line) => {
    if (line.includes('ALERT')) alerts++;
  });
  const m = await child.waitFor(/serving MCP at (http:\/\/[^/\s]+)/);
  return { child, url: m[1] as string };
}

// ---------------------------------------------------------------------------
// Output.

const f = (n: number | undefined, d = 2): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
const signed = (n: number, d = 2): string => (Number.isNaN(n) ? '-' : `${n >= 0 ? '+' : ''}${n.toFixed(d)}`);
const pctOf = (a: number, b: number): string => (b === 0 ? '-' : `${((a / b) * 100).toFixed(1)}%`);

function table(head: readonly string[], body: readonly (readonly string[])[]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ').trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const b of body) console.log(line(b));
}

function printLoad(rows: readonly Row[]): void {
  console.log('\n1. Non-streamed requests (POST /v1/chat/completions): direct to the provider vs through Bastion');
  table(
    ['conversation', 'conns', 'direct req/s', 'p50 ms', 'p99 ms', 'bastion req/s', 'p50 ms', 'p99 ms', 'ratio', 'added p50 ms', 'added p99 ms', 'bastion CPU ms/req', 'notes'],
    rows.map((r) => {
      const d = r.direct as Stats;
      const b = r.bastion as Stats;
      const notes = [d.errors ? `direct errors ${d.errors}: ${d.firstError}` : '', b.errors ? `bastion errors ${b.errors}: ${b.firstError}` : ''].filter(Boolean).join('; ');
      return [r.conv.name, String(r.conns), f(d.rps, 0), f(d.p50, 3), f(d.p99, 3), f(b.rps, 0), f(b.p50, 3), f(b.p99, 3), `${f(b.rps / d.rps, 3)}x`, signed(b.p50 - d.p50, 3), signed(b.p99 - d.p99, 3), f(b.bastionCpuPerReq, 3), notes];
    }),
  );
  console.log('ratio = Bastion req/s ÷ direct req/s (same load generator, same conversation and concurrency, interleaved halves);');
  console.log('added = Bastion percentile − direct percentile; bastion CPU = CPU time of the Bastion process (all threads) per request.');
}

/** Paced rows: the provider's measured gap between events (direct whole stream minus direct TTFT, over the content events after the first). */
function pacedGapMs(r: Row): number {
  const d = r.direct as Stats;
  return (d.totalP50 - d.p50) / Math.max(1, Math.ceil(PACED_REPLY.length / CHUNK_CHARS) - 1);
}

function printStream(rows: readonly Row[]): void {
  console.log(`\n2. Streamed requests (stream: true, concurrency 1, ${CHUNK_CHARS}-character deltas): time to first content`);
  console.log(`   back to back: the provider writes a ${REPLY.length}-character answer's events as fast as it can (${SECONDS} s per side);`);
  console.log(`   paced: ${GAP_MS} ms between events, as a (fast) model generates, ${PACED_REPLY.length}-character answer (${PACED_STREAMS} streams per side)`);
  table(
    ['provider', 'conversation', 'streams', 'direct TTFT p50', 'p99', 'bastion TTFT p50', 'p99', 'added TTFT p50 ms', 'added p99 ms', 'whole stream p50 direct', 'bastion', 'notes'],
    rows.map((r) => {
      const d = r.direct as Stats;
      const b = r.bastion as Stats;
      const notes = [
        d.errors ? `direct errors ${d.errors}: ${d.firstError}` : '',
        b.errors ? `bastion errors ${b.errors}: ${b.firstError}` : '',
        d.altered || b.altered ? `ALTERED TEXT direct ${d.altered}, bastion ${b.altered}` : '',
      ].filter(Boolean).join('; ');
      return [r.mode === 'paced' ? `paced ${GAP_MS} ms` : 'back to back', r.conv.name, `${d.requests}/${b.requests}`, f(d.p50, 3), f(d.p99, 3), f(b.p50, 3), f(b.p99, 3), signed(b.p50 - d.p50, 3), signed(b.p99 - d.p99, 3), f(d.totalP50, 3), f(b.totalP50, 3), notes];
    }),
  );
  console.log('TTFT = ms from sending the request to the first SSE event whose delta carries content text, as the client reads it; every streamed');
  console.log('answer is checked to arrive whole and equal to the provider\'s text (ALTERED TEXT otherwise). All times in ms.');
}

function printLeak(leak: Awaited<ReturnType<typeof leakCheck>>): void {
  const { rows } = leak;
  console.log(`\n3. Leak check: secret rows of ${LEAK_FILES.join(', ')} pasted through Bastion (agent "leak", one row per request, ${LEAK_CONNS} at a time, ${(leak.ms / 1000).toFixed(1)} s)`);
  console.log(`rows per file: ${[...leak.perFile].map(([file, n]) => `${file} ${n}`).join(', ')}; ${leak.skipped} secret rows skipped: no literal value to look for (no expected_match in the text)`);
  const sent = rows.filter((r) => r.status === 200);
  const refused = rows.filter((r) => r.status !== 200);
  const resent = rows.filter((r) => r.resent);
  const inControl = rows.filter((r) => r.values.some((v) => leak.control.includes(v) || leak.control.includes(jsonEscaped(v))));
  const cats: Found[] = ['found', 'some copies', 'part', 'not found'];
  const cell = (s: readonly LeakRow[]): string => {
    const reached = s.filter((r) => r.reached).length;
    return s.length === 0 ? '-' : `${reached}/${s.length}`;
  };
  table(
    ['findSecrets on the row alone', 'rows sent', 'value reached the provider', 'rate', ...LEAK_FILES.map((f) => f.replace(/^samples-?|\.jsonl$/g, '') || 'samples')],
    [
      ...cats.map((c) => {
        const s = sent.filter((r) => r.found === c);
        const reached = s.filter((r) => r.reached).length;
        return [FOUND_LABEL[c], String(s.length), String(reached), pctOf(reached, s.length), ...LEAK_FILES.map((f) => cell(s.filter((r) => r.file === f)))];
      }),
      ['all', String(sent.length), String(sent.filter((r) => r.reached).length), pctOf(sent.filter((r) => r.reached).length, sent.length), ...LEAK_FILES.map((f) => cell(sent.filter((r) => r.file === f)))],
    ],
  );
  console.log('(per-file columns: reached/sent; "samples" = samples.jsonl, the literal gitleaks, detect-secrets and secretlint fixtures)');
  const rulesOf = (file: string): [string, number, number][] => {
    const m = new Map<string, [number, number]>();
    for (const r of sent.filter((x) => x.file === file)) {
      const t = m.get(r.row.rule) ?? [0, 0];
      t[1]++;
      if (r.reached) t[0]++;
      m.set(r.row.rule, t);
    }
    return [...m].map(([rule, [reached, n]]): [string, number, number] => [rule, reached, n]);
  };
  for (const file of LEAK_FILES) {
    const rules = rulesOf(file);
    const leaky = rules.filter(([, reached]) => reached > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (leaky.length === 0) continue;
    console.log(`  ${file}: values of ${leaky.length} of ${rules.length} upstream rules reached the provider; most: ${leaky.slice(0, 8).map(([rule, reached, n]) => `${rule} ${reached}/${n}`).join(', ')}`);
  }
  const copies = sent.filter((r) => r.reached && r.found === 'some copies').length;
  if (copies > 0) console.log(`  ${copies} rows leaked a value the door had vaulted: the detector flagged one copy, the door replaced that span only, and another copy of the same value went through.`);
  const foundLeaks = sent.filter((r) => r.reached && r.found === 'found');
  if (foundLeaks.length > 0) console.log(`ERROR: values the detector finds reached the provider (row ids): ${foundLeaks.slice(0, 20).map((r) => r.row.id).join(', ')}`);
  console.log(
    `${refused.length} rows not answered 200 (${[...new Set(refused.map((r) => r.status))].join(', ') || 'none'}); ${resent.length} rows were refused as a new turn by a prompt-attack rule and re-sent in the history; ` +
      `${inControl.length} rows' values also occur in a request with no pasted text (Bastion's own notes), so a match there says nothing.`,
  );
  const first = (JSON.parse(leak.control || '{}') as { messages?: { role?: string }[] }).messages?.[0]?.role;
  console.log(`The control request reached the provider ${first === 'system' ? 'with' : 'WITHOUT'} the system message Bastion adds (hardening on, non-admin user).`);
  console.log('A value "reached" the provider when the raw request body the mock recorded holds it, literally or JSON-escaped. Values are never printed.');
}

function printDetection(): ReturnType<typeof evaluatePromptCorpus> {
  evaluatePromptCorpus(); // the first pass compiles the patterns
  const ev = evaluatePromptCorpus();
  console.log(`\n4. Prompt-attack detection (rule-based detector) on ${DEFAULT_CORPUS}`);
  table(
    ['label', 'context', 'rows', 'detected', 'rate', 'as label', 'rate'],
    ev.detection.map((d) => [d.label, d.context, String(d.rows), String(d.detected), pctOf(d.detected, d.rows), String(d.asLabel), pctOf(d.asLabel, d.rows)]),
  );
  console.log('');
  table(
    ['benign', 'context', 'rows', 'any finding (FP)', 'rate', 'extraction finding (bans)', 'rate'],
    ev.benign.map((b) => ['benign', b.context, String(b.rows), String(b.anyKind), pctOf(b.anyKind, b.rows), String(b.extraction), pctOf(b.extraction, b.rows)]),
  );
  const fp = Object.entries(ev.benignByRule);
  if (fp.length > 0) console.log(`benign rows per rule: ${fp.map(([id, n]) => `${id} ${n}`).join(', ')}`);
  console.log(`corpus pass: ${(ev.throughput.bytes / 1e6).toFixed(2)} MB in ${ev.throughput.cpuMs.toFixed(0)} CPU ms (${ev.throughput.mbPerCpuSecond.toFixed(1)} MB/s, one call per row)`);
  return ev;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const load0 = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-model-'));
  tempDir = dir;
  const long = longConversation(100_000);
  const convs = [SHORT, long];
  const bodies = new Map<string, string>();
  for (const c of convs) for (const m of ['whole', 'stream', 'paced'] as const) bodies.set(`${c.name}:${m}`, bodyFor(c, m));
  // The prose must be clean, or the load rows would measure vaulting and bans.
  const longText = long.messages.map((m) => m.content).join('\n');
  const secretsInProse = findSecrets(longText).length;
  const attacksInTurn = detectPromptAttacks(long.messages.at(-1)?.content ?? '', { context: 'user' }).length + detectPromptAttacks(SHORT.messages[0]?.content ?? '', { context: 'user' }).length;
  if (secretsInProse + attacksInTurn > 0) console.log(`WARNING: the generated conversations hold ${secretsInProse} credential findings and ${attacksInTurn} prompt-attack findings`);

  let failed = false;
  const providerChild = new BenchChild('provider', process.execPath, [join(ROOT, 'bench/model-door.ts'), 'provider']);
  const leakProvider = await startMockProvider({ apiKey: PROVIDER_KEY, script: () => ({ text: 'Thanks, I will look at it.' }) });
  try {
    const [, providerUrl] = await providerChild.waitFor(/^listening (\S+)/);
    const bastion = await startBastion(dir, providerUrl as string, leakProvider.url);
    const pools = { connections: Math.max(...CONNS, 1), pipelining: 1, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000, headersTimeout: 30_000, bodyTimeout: 30_000 };
    const direct: Target = { name: 'direct', pool: new Pool(providerUrl as string, pools), key: PROVIDER_KEY, pid: undefined };
    const through: Target = { name: 'bastion', pool: new Pool(bastion.url, pools), key: AGENT_KEY, pid: bastion.child.pid };
    console.log(
      `model-door benchmark: ${SECONDS} s per row (two interleaved halves per side) after ${WARMUP} s warm-up per side; node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'})`,
    );
    console.log(
      `conversations: short = 1 user message of ${SHORT.messages[0]?.content.length} characters (body ${Buffer.byteLength(bodies.get('short:whole') ?? '')} bytes); ` +
        `100KB = ${long.messages.length} messages, ${longText.length} characters of prose (body ${Buffer.byteLength(bodies.get('100KB:whole') ?? '')} bytes), no credentials`,
    );
    console.log(`answer: ${REPLY.length} characters of prose; provider key ${PROVIDER_KEY.length} characters (OpenAI project-key shape); Bastion: bastion serve, SQLite store with audit, hardening on, provider key from the vault; users rotate over ${USERS.length} Bastion-User ids`);
    for (const c of convs) {
      for (const t of [direct, through]) {
        const bad = await probe(t, bodies, c);
        if (bad) throw new Error(`probe failed: ${bad}`);
      }
    }

    const loadRows: Row[] = [];
    for (const conv of convs) for (const conns of CONNS) if (selected(`load ${conv.name} c${conns}`)) loadRows.push({ label: `load ${conv.name} c${conns}`, conv, conns, mode: 'whole' });
    const streamRows: Row[] = [];
    for (const mode of ['stream', 'paced'] as const) for (const conv of convs) if (selected(`${mode} ${conv.name}`)) streamRows.push({ label: `${mode} ${conv.name}`, conv, conns: 1, mode });
    for (const row of [...loadRows, ...streamRows]) {
      process.stderr.write(`${row.label} …`);
      await measureRow(row, direct, through, bodies);
      process.stderr.write(' done\n');
      if (row.direct?.errors || row.bastion?.errors || row.direct?.altered || row.bastion?.altered) failed = true;
    }
    await direct.pool.close();
    await through.pool.close();
    if (loadRows.length > 0) printLoad(loadRows);
    if (streamRows.length > 0) printStream(streamRows);

    let leak: Awaited<ReturnType<typeof leakCheck>> | undefined;
    if (selected('leak') && (CORPORA === undefined || !existsSync(CORPORA))) {
      console.log(`\n3. Leak check: SKIPPED, ${CORPORA === undefined ? corporaAbsentMessage(['secrets']) : `BENCH_CORPORA (${CORPORA}) does not exist`}.`);
    } else if (selected('leak')) {
      process.stderr.write('leak check …');
      leak = await leakCheck(bastion.url, leakProvider);
      process.stderr.write(' done\n');
      printLeak(leak);
      if (leak.rows.some((r) => r.reached && r.found === 'found')) failed = true;
    }
    if (selected('detect') && INJECTION_CORPUS === undefined) console.log(`\n4. Prompt-attack detection: SKIPPED, the injection corpus is absent (${DEFAULT_CORPUS}; ${corporaAbsentMessage(['injection'])}).`);
    const detection = selected('detect') && INJECTION_CORPUS !== undefined ? printDetection() : undefined;

    // Summary.
    console.log('\nSummary against the targets:');
    for (const r of loadRows.filter((x) => x.conv.name === 'short')) {
      const added = (r.bastion as Stats).p50 - (r.direct as Stats).p50;
      console.log(
        `  Added p50, short conversation, c${r.conns}: ${signed(added, 3)} ms (p99 ${signed((r.bastion as Stats).p99 - (r.direct as Stats).p99, 3)} ms; ${f((r.bastion as Stats).rps / (r.direct as Stats).rps, 3)}x req/s)` +
          ` → target < ${TARGET_ADDED_P50_MS} ms: ${added < TARGET_ADDED_P50_MS ? 'MET' : 'NOT MET'}${r.conns > 1 ? ' (under load: queueing on a shared CPU counts here)' : ''}.`,
      );
    }
    for (const r of loadRows.filter((x) => x.conv.name === '100KB')) {
      console.log(`  For scale, 100KB conversation, c${r.conns}: added p50 ${signed((r.bastion as Stats).p50 - (r.direct as Stats).p50, 3)} ms, ${f((r.bastion as Stats).rps / (r.direct as Stats).rps, 3)}x req/s, Bastion ${f((r.bastion as Stats).bastionCpuPerReq, 2)} CPU ms per request (no target).`);
    }
    for (const r of streamRows) {
      const added = (r.bastion as Stats).p50 - (r.direct as Stats).p50;
      const gap = pacedGapMs(r);
      const held = r.mode === 'paced' ? ` ≈ ${(added / gap).toFixed(1)} provider events of ${CHUNK_CHARS} characters (measured gap ${gap.toFixed(2)} ms) held before the first content left Bastion` : '';
      console.log(
        `  Added time to first token, ${r.mode === 'paced' ? `paced ${GAP_MS} ms` : 'back-to-back'} stream, ${r.conv.name} conversation: p50 ${signed(added, 3)} ms, p99 ${signed((r.bastion as Stats).p99 - (r.direct as Stats).p99, 3)} ms${held}` +
          ` → target < ${TARGET_ADDED_TTFT_MS} ms: ${added < TARGET_ADDED_TTFT_MS ? 'MET' : 'NOT MET'}.`,
      );
    }
    if (leak) {
      const sent = leak.rows.filter((r) => r.status === 200);
      const reached = sent.filter((r) => r.reached);
      const n = (f: Found): number => reached.filter((r) => r.found === f).length;
      console.log(
        `  Leak check: ${sent.length} corpus secret rows sent (${leak.skipped} without a literal value skipped), ${reached.length} values reached the provider → target "no secret from the corpus reaches the provider": ${reached.length === 0 ? 'MET' : 'NOT MET'}. ` +
          `Of those ${reached.length}: ${n('not found')} the detector does not find and ${n('part')} it finds only a piece of (detector recall: the door can only vault what it finds), ` +
          `${n('some copies')} it finds in one copy while another copy went through unvaulted (the door replaces only the spans found), ${n('found')} it finds in every copy (a door fault if any).`,
      );
    }
    if (detection) {
      const attacks = detection.detection.reduce((a, d) => a + d.rows, 0);
      const hit = detection.detection.reduce((a, d) => a + d.detected, 0);
      const benign = detection.benign.reduce((a, b) => a + b.rows, 0);
      console.log(
        `  Prompt-attack detection (no target set): ${hit}/${attacks} attack rows flagged (${pctOf(hit, attacks)}); benign rows flagged ${detection.benign.reduce((a, b) => a + b.anyKind, 0)}/${benign}, ` +
          `with an extraction finding (would ban) ${detection.benign.reduce((a, b) => a + b.extraction, 0)}/${benign}.`,
      );
    }
    const load1 = loadavg()[0] ?? 0;
    console.log(
      `Load average (1 min) before ${load0.toFixed(2)}, at the end ${load1.toFixed(2)} on ${cpus().length} CPUs (this bench runs three busy processes); ` +
        `Bastion used ${(cpuMs(bastion.child.pid) / 1000).toFixed(1)} CPU s in all and raised ${alerts} alerts.`,
    );
  } finally {
    await leakProvider.close();
    await cleanup();
    if (process.env.BENCH_KEEP_TMP === '1') console.log(`temp dir kept: ${dir}`);
  }
  if (failed) process.exitCode = 1;
}

if (process.argv[2] === 'provider') await runProvider();
else {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping child processes`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  await main();
}
