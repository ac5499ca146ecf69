/**
 * The contract between the CLI dispatcher and its commands, and the exit codes
 * (stable; documented in README).
 */

/** Exit codes of `bastion`. */
export const EXIT = Object.freeze({
  /** Success; for checks: the check passed (chain intact, decision allow). */
  OK: 0,
  /** The command ran and the answer is negative: chain broken, decision deny/approve, config invalid in `config check`. */
  FAILED: 1,
  /** Bad usage: unknown command or flag, missing argument. */
  USAGE: 2,
  /** The config could not be loaded (not found, invalid) by a command that needs it. */
  CONFIG: 3,
  /** The store could not be opened or read. */
  STORE: 4,
  /** A named thing does not exist (approval id). */
  NOT_FOUND: 5,
  /** An unexpected internal error. */
  INTERNAL: 70,
});

/** Where a command writes. Commands never call `process.stdout` directly, so tests capture output. */
export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The environment (only config loading reads it). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The working directory relative flags resolve against. */
  readonly cwd: string;
  /**
   * Reads all of standard input (bounded; see {@link readStdin}). Absent when the
   * command runs without one (tests, embedding); commands that need input refuse then.
   * The caller zeroes the buffer after use.
   */
  readonly stdin?: () => Promise<Buffer>;
}

/** Largest standard input {@link readStdin} accepts by default, in bytes. */
export const MAX_STDIN_BYTES = 1024 * 1024;

/** Options of {@link readStdin}. */
export interface ReadStdinOptions {
  /** Bytes accepted before the read fails with a `RangeError`. Default {@link MAX_STDIN_BYTES}. */
  readonly maxBytes?: number;
  /** Where a terminal prompt goes (stderr); called only when `input` is a TTY. */
  readonly prompt?: (text: string) => void;
}

/**
 * Reads `input` to its end, at most `maxBytes` bytes, into one buffer.
 *
 * On a terminal (`isTTY`), echo is turned off (raw mode) while one line is
 * read: Enter or Ctrl-D ends it, Backspace deletes, Ctrl-C rejects; the typed
 * text is never shown. Intermediate buffers are zeroed.
 * @throws RangeError (rejects) when the input exceeds `maxBytes`; Error on Ctrl-C or a read error
 */
export function readStdin(input: NodeJS.ReadStream, opts: ReadStdinOptions = {}): Promise<Buffer> {
  const maxBytes = opts.maxBytes ?? MAX_STDIN_BYTES;
  const tty = input.isTTY === true && typeof input.setRawMode === 'function';
  return new Promise((resolve, reject) => {
    const bytes: number[] = [];
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      if (tty) {
        input.setRawMode(false);
        opts.prompt?.('\n');
      }
      input.pause();
      const out = tty ? Buffer.from(bytes) : Buffer.concat(chunks);
      bytes.fill(0);
      for (const c of chunks) c.fill(0);
      if (err !== undefined) {
        out.fill(0);
        reject(err);
      } else resolve(out);
    };
    const onData = (chunk: Buffer): void => {
      if (tty) {
        for (const b of chunk) {
          if (b === 0x03) return finish(new Error('interrupted'));
          if (b === 0x0d || b === 0x0a || b === 0x04) return finish();
          if (b === 0x7f || b === 0x08) {
            // Delete one character: its UTF-8 continuation bytes, then its lead byte.
            while (bytes.length > 0 && ((bytes.at(-1) as number) & 0xc0) === 0x80) bytes.pop();
            bytes.pop();
            continue;
          }
          if (bytes.length >= maxBytes) return finish(new RangeError(`input exceeds ${maxBytes} bytes`));
          bytes.push(b);
        }
        chunk.fill(0);
        return;
      }
      total += chunk.length;
      if (total > maxBytes) return finish(new RangeError(`input exceeds ${maxBytes} bytes`));
      chunks.push(Buffer.from(chunk));
      chunk.fill(0);
    };
    const onEnd = (): void => finish();
    const onError = (err: Error): void => finish(err);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    if (tty) {
      opts.prompt?.('(input hidden; press Enter when done) ');
      input.setRawMode(true);
    }
    input.resume();
  });
}

/** A CLI command: parses its own argv (after the command words) and returns an exit code. */
export type CliCommand = (argv: readonly string[], io: CliIO) => Promise<number>;
