/**
 * The JavaScript sandbox's latency (src/sandbox/quickjs.ts): one small
 * transform-like expression over a small JSON input, evaluated by a warm
 * `JsEvaluator` (one worker, started before timing) — the full round trip:
 * JSON out, fresh QuickJS runtime and context, evaluation, JSON back — against
 * the same expression compiled once with `new Function` and called in-process
 * on a `structuredClone` of the input (the baseline: no isolation at all).
 * `coldStartMs` is `JsEvaluator.start()` plus the first evaluation.
 *
 * Target (issue 16): warm p50 ≤ 1 ms. Wall-clock figures, sequential requests.
 * `node bench/sandbox-quickjs.ts [iterations]` prints a table (default 2000).
 */
import { JsEvaluator } from '../src/sandbox/quickjs.ts';

/** The expression measured: a response transform of the kind abilities use. */
const SOURCE = "input.items.filter((i) => i.open).map((i) => ({ id: i.id, title: i.title.slice(0, 20) }))";
const INPUT = {
  items: Array.from({ length: 20 }, (_, i) => ({ id: i, title: `Issue number ${i} with a longer title`, open: i % 3 !== 0, labels: ['bug', 'p2'] })),
};

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Figures of one run (ms). */
export interface QuickJsBench {
  readonly warmP50Ms: number;
  readonly warmP99Ms: number;
  readonly coldStartMs: number;
  readonly baselineP50Ms: number;
  readonly baselineP99Ms: number;
}

/**
 * Measures `iterations` sequential evaluations with a warm evaluator, and the
 * same number of in-process `new Function` calls.
 * @throws Error when an evaluation fails or disagrees with the baseline.
 */
export async function benchQuickJs(opts: { iterations: number }): Promise<QuickJsBench> {
  const t0 = performance.now();
  const ev = await JsEvaluator.start({ workers: 1 });
  const first = await ev.evaluate(SOURCE, INPUT);
  const coldStartMs = performance.now() - t0;
  try {
    if (!first.ok) throw new Error(`the sandbox failed: ${first.code} ${first.message}`);
    const fn = new Function('input', `'use strict'; return (${SOURCE});`) as (input: unknown) => unknown;
    const expected = JSON.stringify(fn(structuredClone(INPUT)));
    if (JSON.stringify(first.value) !== expected) throw new Error('the sandbox and the baseline disagree');
    for (let i = 0; i < 200; i++) await ev.evaluate(SOURCE, INPUT); // warm the main thread's side too
    const warm: number[] = [];
    for (let i = 0; i < opts.iterations; i++) {
      const s = performance.now();
      const r = await ev.evaluate(SOURCE, INPUT);
      warm.push(performance.now() - s);
      if (!r.ok) throw new Error(`the sandbox failed: ${r.code} ${r.message}`);
    }
    const base: number[] = [];
    let sink = 0;
    for (let i = 0; i < opts.iterations + 200; i++) {
      const s = performance.now();
      // Same contract as the sandbox: JSON in, JSON out.
      const out = JSON.parse(JSON.stringify(fn(JSON.parse(JSON.stringify(INPUT))))) as unknown[];
      if (i >= 200) base.push(performance.now() - s);
      sink += out.length;
    }
    if (sink === 0) throw new Error('unreachable');
    warm.sort((a, b) => a - b);
    base.sort((a, b) => a - b);
    return {
      warmP50Ms: percentile(warm, 50),
      warmP99Ms: percentile(warm, 99),
      coldStartMs,
      baselineP50Ms: percentile(base, 50),
      baselineP99Ms: percentile(base, 99),
    };
  } finally {
    await ev.close();
  }
}

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 2000);
  const r = await benchQuickJs({ iterations });
  const f = (n: number): string => n.toFixed(3).padStart(9);
  console.log(`JavaScript sandbox (QuickJS, 1 warm worker), ${iterations} sequential evaluations`);
  console.log('| measure                          |        ms |');
  console.log('| -------------------------------- | --------- |');
  console.log(`| warm p50                         | ${f(r.warmP50Ms)} |`);
  console.log(`| warm p99                         | ${f(r.warmP99Ms)} |`);
  console.log(`| cold start + first evaluation    | ${f(r.coldStartMs)} |`);
  console.log(`| baseline new Function p50        | ${f(r.baselineP50Ms)} |`);
  console.log(`| baseline new Function p99        | ${f(r.baselineP99Ms)} |`);
  console.log(`target: warm p50 <= 1 ms: ${r.warmP50Ms <= 1 ? 'met' : 'MISSED'}`);
}

if (import.meta.main) await main();
