/**
 * Complexity tests for code that sees untrusted input (model: noble-hashes
 * test/slow-dos.test.ts): time the work at n and 4n. Linear work grows ~4x,
 * quadratic ~16x. Each size is the median of 7 samples, each sample repeating
 * the call for at least 4 ms of this process's CPU time (not wall time, which
 * other processes on a busy machine inflate at random). A loaded machine can push a linear ratio past the
 * limit once, but quadratic work exceeds it every time, so up to three
 * measurements are taken and the best counts.
 */
import assert from 'node:assert/strict';

/** CPU ms (user + system) this process has used; unlike wall time, not inflated when other processes compete for the cores. */
function cpuNowMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Median CPU ms per call of `work(input)`. */
export function medianMs(work: (input: string) => void, input: string): number {
  const runs: number[] = [];
  for (let i = 0; i < 7; i++) {
    let calls = 0;
    const t0 = cpuNowMs();
    let elapsed = 0;
    do {
      work(input);
      calls++;
      elapsed = cpuNowMs() - t0;
    } while (elapsed < 4);
    runs.push(elapsed / calls);
  }
  runs.sort((a, b) => a - b);
  return runs[3] as number;
}

/**
 * Asserts `work` grows no faster than ~linearly from `small` to `large` (4x the size):
 * the best of up to three ratios must be under `limit` (default 8). Returns the ratios seen.
 */
export function assertLinear(name: string, work: (input: string) => void, small: string, large: string, limit = 8): number[] {
  medianMs(work, small); // warm up
  const ratios: number[] = [];
  for (let attempt = 0; attempt < 3 && (ratios.length === 0 || Math.min(...ratios) >= limit); attempt++) {
    ratios.push(medianMs(work, large) / medianMs(work, small));
  }
  const best = Math.min(...ratios);
  assert.ok(best < limit, `${name}: 4x input took ${best.toFixed(1)}x the time (ratios ${ratios.map((r) => r.toFixed(1)).join(', ')})`);
  return ratios;
}
