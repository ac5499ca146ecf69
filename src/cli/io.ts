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
}

/** A CLI command: parses its own argv (after the command words) and returns an exit code. */
export type CliCommand = (argv: readonly string[], io: CliIO) => Promise<number>;
