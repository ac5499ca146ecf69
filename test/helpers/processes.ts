/**
 * Real processes for the walkthrough tests: start a long-running one and wait
 * for its ready line, and run the CLI to completion with stdin.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './gateway.ts';

export const CLI = join(ROOT, 'src/cli/main.ts');

/** A started process, the first match of its ready pattern, and every line it printed (stdout and stderr). */
export interface Started {
  readonly child: ChildProcess;
  readonly match: RegExpMatchArray;
  readonly lines: string[];
}

/** Starts `node args...` and resolves when a stdout line matches `ready` (30 s, else rejects with what it printed). */
export function startProcess(args: string[], env: Record<string, string>, ready: RegExp): Promise<Started> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => lines.push(l));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${lines.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const m = ready.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, lines });
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${lines.join('\n')}`)));
  });
}

/** Runs the CLI with `args`, writing `input` to its stdin; resolves with the exit code and output. */
export function runCli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
    child.stdin?.end(opts.input ?? '');
  });
}

/** Stops the processes with SIGINT and waits for them to exit. */
export async function stopAll(children: readonly (ChildProcess | undefined)[]): Promise<void> {
  for (const p of children) {
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await exited;
    }
  }
}
