/**
 * Start-to-exit time of small programs run by src/sandbox/runner.ts against
 * the same programs spawned directly (Node `spawn`, awaited to `close`), so
 * the difference is what the sandbox adds: bwrap with every namespace,
 * prlimit, the seccomp filter, the run's cgroup (made, joined, read, removed)
 * and, for `+egress`, the socat forwarder started and awaited before the
 * command. Run alone: `node bench/sandbox-runner.ts [iterations]`; bench/sandbox.ts
 * calls {@link benchRunner}. Not a test: it prints figures.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeSandbox, runSandboxed, type SandboxProbe, type SandboxRun } from '../src/sandbox/runner.ts';

/** One row's latency percentiles, ms. */
export interface Percentiles {
  p50: number;
  p99: number;
}

const PROGRAMS: Record<string, readonly string[]> = {
  '/bin/true': ['/bin/true'],
  'python3 -c pass': ['/usr/bin/python3', '-c', 'pass'],
  'node -e 0': ['/usr/bin/node', '-e', '0'],
};

function percentiles(samples: number[]): Percentiles {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return { p50: Math.round(at(0.5) * 100) / 100, p99: Math.round(at(0.99) * 100) / 100 };
}

function direct(argv: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // The sandbox's environment (cleared, then these): an inherited one (npm's, NODE_OPTIONS) would slow the baseline.
    const c = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: tmpdir(), LANG: 'C.UTF-8', TMPDIR: tmpdir() } });
    c.stdout.resume();
    c.stderr.resume();
    c.once('error', reject);
    c.once('close', () => resolve());
  });
}

async function time(fn: () => Promise<unknown>, iterations: number): Promise<Percentiles> {
  await fn(); // warm: page cache, JIT
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return percentiles(samples);
}

/**
 * Measures each program directly, sandboxed, and sandboxed with an egress
 * socket (only `/bin/true`), `iterations` runs each after one warm-up run.
 * Keys: `<program> direct`, `<program> sandbox`, `/bin/true sandbox+egress`,
 * and `<row> added` (sandboxed p50/p99 minus direct p50/p99).
 *
 * @throws Error when the sandbox is unavailable here (the probe's reason).
 */
export async function benchRunner(opts: { iterations: number; probe?: SandboxProbe }): Promise<Record<string, Percentiles>> {
  const probe = opts.probe ?? (await probeSandbox());
  if (!probe.available) throw new Error(`sandbox unavailable: ${probe.reason ?? '?'}`);
  const dir = await mkdtemp(join(tmpdir(), 'bastion-bench-sandbox-'));
  await chmod(dir, 0o711);
  const socket = join(dir, 'egress.sock');
  const server = createServer((c) => c.end());
  await new Promise<void>((ok) => server.listen(socket, ok));
  if (process.getuid?.() === 0) await chown(socket, probe.user.uid, probe.user.gid);
  const out: Record<string, Percentiles> = {};
  const sub = (a: Percentiles, b: Percentiles): Percentiles => ({ p50: Math.round((a.p50 - b.p50) * 100) / 100, p99: Math.round((a.p99 - b.p99) * 100) / 100 });
  try {
    for (const [name, argv] of Object.entries(PROGRAMS)) {
      const sandboxed = async (extra: Partial<SandboxRun>): Promise<void> => {
        const r = await runSandboxed({ argv, ...extra }, probe);
        if (r.exitCode !== 0) throw new Error(`${name} exited ${String(r.exitCode)}: ${r.stderr.toString('utf8').slice(0, 200)}`);
      };
      const d = await time(() => direct(argv), opts.iterations);
      const s = await time(() => sandboxed({}), opts.iterations);
      out[`${name} direct`] = d;
      out[`${name} sandbox`] = s;
      out[`${name} sandbox added`] = sub(s, d);
      if (name === '/bin/true') {
        const e = await time(() => sandboxed({ egressSocket: socket }), opts.iterations);
        out[`${name} sandbox+egress`] = e;
        out[`${name} sandbox+egress added`] = sub(e, d);
      }
    }
  } finally {
    await new Promise<void>((ok) => server.close(() => ok()));
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.main) {
  const iterations = Number(process.argv[2] ?? 50);
  const rows = await benchRunner({ iterations });
  console.log(`sandbox runner, ${iterations} runs each; ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(32)} p50 ${v.p50.toFixed(1).padStart(7)} ms  p99 ${v.p99.toFixed(1).padStart(7)} ms`);
}
