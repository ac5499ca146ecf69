/**
 * Child processes of the benches (Bastion, origins, peers, load generators):
 * spawned with their output kept (the last 40 lines) and watched line by line,
 * waited for by a ready line, and all stopped on exit or Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Every child still running, for {@link stopChildren}. */
const children = new Set<BenchChild>();

export class BenchChild {
  readonly proc: ChildProcess;
  readonly name: string;
  readonly tail: string[] = [];
  /** Exit code or signal, or the spawn error's message; null while running. */
  exited: number | string | null = null;
  readonly #listeners = new Set<(line: string) => void>();

  constructor(name: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.name = name;
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    children.add(this);
    for (const s of [this.proc.stdout, this.proc.stderr]) {
      createInterface({ input: s! }).on('line', (line) => {
        this.tail.push(line);
        if (this.tail.length > 40) this.tail.shift();
        for (const l of this.#listeners) l(line);
      });
    }
    this.proc.on('error', (e) => {
      this.exited = e.message;
      this.tail.push(`spawn error: ${e.message}`);
    });
    this.proc.on('exit', (code, sig) => {
      this.exited = code ?? sig;
      children.delete(this);
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Calls `fn` with every line the child prints (stdout and stderr) from now on. */
  onLine(fn: (line: string) => void): void {
    this.#listeners.add(fn);
  }

  /** Resolves with the first line (stdout or stderr) matching `re`; rejects on exit or after `timeoutMs`, with the last lines. */
  waitFor(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(onLine);
        this.proc.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms: ${this.lastLines(5)}`));
      }, timeoutMs);
      const onLine = (line: string): void => {
        const m = line.match(re);
        if (m) {
          done();
          resolve(m);
        }
      };
      const onExit = (code: number | null, sig: string | null): void => {
        // Let the last lines through readline first.
        setTimeout(() => {
          done();
          reject(new Error(`${this.name} exited (${code ?? sig}): ${this.lastLines(5)}`));
        }, 50);
      };
      this.#listeners.add(onLine);
      this.proc.on('exit', onExit);
    });
  }

  /** The last `n` non-empty lines, joined with ` | `. */
  lastLines(n = 6): string {
    return this.tail
      .filter((l) => l.trim() !== '')
      .slice(-n)
      .join(' | ');
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  async stop(): Promise<void> {
    if (this.exited !== null || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

/** Stops every child still running. */
export async function stopChildren(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop()));
}
