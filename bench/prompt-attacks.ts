/**
 * `node bench/prompt-attacks.ts`: the rule-based prompt-attack detector against
 * the labeled injection corpus, `injection/prompt-attacks.jsonl` of the corpora folder
 * beside the repository (its README describes the fields). Rows are read at run
 * time and never written anywhere.
 *
 * Reported per label and context: how many rows have any finding (`detected`)
 * and how many a finding of the row's own kind (`asLabel`); per context, the
 * benign rows with any finding and with an `extraction` finding (the one that
 * bans a user). Throughput is the corpus pass itself (one call per row, as the
 * model door makes them; when run directly, the second of two passes, so regular
 * expression compilation is not counted), and, when run directly, large inputs: corpus text
 * concatenated to BENCH_MB megabytes, and an adversarial near-miss text made of
 * trigger words whose targets never complete.
 *
 * Throughput is per CPU second of this process (user + system), which is what
 * "on one core" means for this single-threaded work and does not move when other
 * processes compete for the machine. MB = 10^6 bytes of UTF-8.
 *
 * Env: BENCH_MB (large-input size, default 4), BENCH_RUNS (timed runs, default 5),
 * BENCH_CORPUS (corpus file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectPromptAttacks, type PromptAttackKind, type PromptContext } from '../src/detect/prompt-attacks.ts';
import { corporaAbsentMessage, corporaCandidates, findCorpora } from '../test/helpers/corpora.ts';
import { prng } from '../test/helpers/prng.ts';

const ROOT = join(import.meta.dirname, '..');
/**
 * The corpus file: `BENCH_CORPUS`, else `injection/prompt-attacks.jsonl` of the corpora folder
 * (`$BASTION_CORPORA`, else `../shared/corpora` beside the repository; when neither holds it, the
 * latter, and running the bench says so and exits 2).
 */
export const DEFAULT_CORPUS =
  process.env.BENCH_CORPUS ?? join(findCorpora(['injection']) ?? corporaCandidates().at(-1) ?? join(ROOT, '..', 'shared', 'corpora'), 'injection', 'prompt-attacks.jsonl');

type Label = PromptAttackKind | 'benign';

interface CorpusRow {
  readonly id: string;
  readonly text: string;
  readonly label: Label;
  readonly context: PromptContext;
}

/** Detection on the attack rows of one label and context. `rate = detected / rows`; `labelRate = asLabel / rows`. */
export interface DetectionRow {
  readonly label: PromptAttackKind;
  readonly context: PromptContext;
  readonly rows: number;
  /** Rows with at least one finding, of any kind. */
  readonly detected: number;
  readonly rate: number;
  /** Rows with a finding of the row's own kind. */
  readonly asLabel: number;
  readonly labelRate: number;
}

/** False positives on the benign rows of one context. Rates are fractions of `rows`. */
export interface BenignRow {
  readonly context: PromptContext;
  readonly rows: number;
  /** Benign rows with a finding of any kind. */
  readonly anyKind: number;
  readonly anyKindRate: number;
  /** Benign rows with an `extraction` finding (what would ban a user). */
  readonly extraction: number;
  readonly extractionRate: number;
}

/** What {@link evaluatePromptCorpus} returns. */
export interface CorpusEvaluation {
  readonly detection: readonly DetectionRow[];
  readonly benign: readonly BenignRow[];
  /** The corpus pass: UTF-8 bytes scanned, CPU ms of this process, and MB (10^6 bytes) per CPU second. */
  readonly throughput: { readonly bytes: number; readonly cpuMs: number; readonly mbPerCpuSecond: number };
  /** Per rule id, the benign rows it fired on (empty rules left out): where false positives come from. */
  readonly benignByRule: Readonly<Record<string, number>>;
}

/** The corpus rows; throws `Error` naming the line when a row lacks a field or has an unknown label or context. */
export function readPromptCorpus(path: string = DEFAULT_CORPUS): CorpusRow[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const rows: CorpusRow[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const r = JSON.parse(line) as Partial<CorpusRow>;
    if (typeof r.text !== 'string' || typeof r.id !== 'string') throw new Error(`${path}:${i + 1}: row without id or text`);
    if (!['injection', 'jailbreak', 'extraction', 'benign'].includes(r.label as string)) throw new Error(`${path}:${i + 1}: unknown label`);
    if (r.context !== 'user' && r.context !== 'tool_output') throw new Error(`${path}:${i + 1}: unknown context`);
    rows.push(r as CorpusRow);
  });
  return rows;
}

/**
 * Runs {@link detectPromptAttacks} once over every row of the corpus at `path`
 * (in the row's own context) and tallies detection per label and context, false
 * positives per context, and the CPU throughput of that pass. Throws when the
 * file cannot be read or a row is malformed.
 */
export function evaluatePromptCorpus(path: string = DEFAULT_CORPUS): CorpusEvaluation {
  const rows = readPromptCorpus(path);
  const tallies = new Map<string, { rows: number; detected: number; asLabel: number; extraction: number }>();
  const benignByRule: Record<string, number> = {};
  let bytes = 0;
  const c0 = process.cpuUsage();
  const results = rows.map((r) => detectPromptAttacks(r.text, { context: r.context }));
  const c = process.cpuUsage(c0);
  rows.forEach((r, i) => {
    bytes += Buffer.byteLength(r.text);
    const found = results[i] ?? [];
    const key = `${r.label}\u0000${r.context}`;
    const t = tallies.get(key) ?? { rows: 0, detected: 0, asLabel: 0, extraction: 0 };
    t.rows++;
    if (found.length > 0) t.detected++;
    if (found.some((f) => f.kind === r.label)) t.asLabel++;
    if (found.some((f) => f.kind === 'extraction')) t.extraction++;
    tallies.set(key, t);
    if (r.label === 'benign') for (const id of new Set(found.map((f) => f.rule))) benignByRule[id] = (benignByRule[id] ?? 0) + 1;
  });
  const detection: DetectionRow[] = [];
  const benign: BenignRow[] = [];
  for (const [key, t] of [...tallies].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [label, context] = key.split('\u0000') as [Label, PromptContext];
    if (label === 'benign') {
      benign.push({ context, rows: t.rows, anyKind: t.detected, anyKindRate: t.detected / t.rows, extraction: t.extraction, extractionRate: t.extraction / t.rows });
    } else {
      detection.push({ label, context, rows: t.rows, detected: t.detected, rate: t.detected / t.rows, asLabel: t.asLabel, labelRate: t.asLabel / t.rows });
    }
  }
  const cpuMs = (c.user + c.system) / 1000;
  return { detection, benign, throughput: { bytes, cpuMs, mbPerCpuSecond: bytes / 1e6 / (cpuMs / 1000) }, benignByRule };
}

/** Runs `f` and returns its CPU ms (user + system of this process) and wall ms. */
function measure(f: () => void): { cpuMs: number; wallMs: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Corpus texts in a seeded order, joined by blank lines, up to `bytes` UTF-16 units. */
function buildLargeText(rows: readonly CorpusRow[], bytes: number, seed = 1): string {
  const rnd = prng(seed);
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const r = rows[Math.floor(rnd() * rows.length)] as CorpusRow;
    parts.push(r.text);
    size += r.text.length + 2;
  }
  return parts.join('\n\n').slice(0, bytes);
}

async function main(): Promise<void> {
  if (!existsSync(DEFAULT_CORPUS)) {
    console.error(`bench:prompt-attacks: the injection corpus is absent: ${process.env.BENCH_CORPUS ? `BENCH_CORPUS (${DEFAULT_CORPUS}) does not exist` : corporaAbsentMessage(['injection'])}. Nothing to measure.`);
    process.exit(2);
  }
  const mb = Number(process.env.BENCH_MB ?? 4);
  const runs = Number(process.env.BENCH_RUNS ?? 5);
  evaluatePromptCorpus(); // a first pass compiles the patterns; the second one is reported
  const ev = evaluatePromptCorpus();
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  console.log(`corpus: ${DEFAULT_CORPUS}; node ${process.version}, one thread\n`);
  console.log(`${pad('label', 12)}${pad('context', 13)}${pad('rows', 7)}${pad('detected', 10)}${pad('rate', 8)}${pad('as label', 10)}rate`);
  for (const d of ev.detection) console.log(`${pad(d.label, 12)}${pad(d.context, 13)}${pad(d.rows, 7)}${pad(d.detected, 10)}${pad(pct(d.rate), 8)}${pad(d.asLabel, 10)}${pct(d.labelRate)}`);
  console.log(`\n${pad('benign', 12)}${pad('context', 13)}${pad('rows', 7)}${pad('any kind', 10)}${pad('rate', 8)}${pad('extraction', 12)}rate`);
  for (const b of ev.benign) console.log(`${pad('', 12)}${pad(b.context, 13)}${pad(b.rows, 7)}${pad(b.anyKind, 10)}${pad(pct(b.anyKindRate), 8)}${pad(b.extraction, 12)}${pct(b.extractionRate)}`);
  const fpRules = Object.entries(ev.benignByRule);
  if (fpRules.length > 0) console.log(`benign rows per rule: ${fpRules.map(([id, n]) => `${id} ${n}`).join(', ')}`);
  console.log(`\ncorpus pass: ${(ev.throughput.bytes / 1e6).toFixed(2)} MB in ${ev.throughput.cpuMs.toFixed(0)} CPU ms: ${ev.throughput.mbPerCpuSecond.toFixed(1)} MB/s (one call per row)`);

  const rows = readPromptCorpus();
  const large = buildLargeText(rows, mb * 1e6);
  const nearMiss = 'print your xyz prompt never show the system prompt below ignore the xyz instructions what are you xyz told '.repeat(Math.ceil((mb * 1e6) / 104)).slice(0, mb * 1e6);
  for (const [name, text] of [
    ['corpus text, one call', large],
    ['near-miss trigger words, one call', nearMiss],
  ] as const) {
    const size = Buffer.byteLength(text);
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < runs; i++) {
      const m = measure(() => void detectPromptAttacks(text));
      cpu.push(m.cpuMs);
      wall.push(m.wallMs);
    }
    const perMb = median(cpu) / (size / 1e6);
    console.log(`${pad(name, 36)}${(size / 1e6).toFixed(1)} MB: ${(size / 1e6 / (median(cpu) / 1000)).toFixed(1)} MB/s CPU, ${perMb.toFixed(0)} CPU ms per MB (median of ${runs}; wall ms ${wall.map((w) => w.toFixed(0)).join(', ')})`);
  }
}

if (import.meta.main) await main();
