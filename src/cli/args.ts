/**
 * Flag parsing shared by every `bastion` command: node:util `parseArgs` in
 * strict mode, one wording for usage errors (exit 2) and `--help` (exit 0).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT, type CliIO } from './io.ts';

type Options = NonNullable<ParseArgsConfig['options']>;
export type ParsedFlags<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: true }>>['values'];

/**
 * Parses `argv` for command `name`. Returns the flags and positionals, or an
 * exit code: on a usage error (unknown flag, missing value, more than
 * `maxPositionals` positionals) it writes the error and returns `EXIT.USAGE`;
 * on `--help`/`-h` it prints `usage` and returns `EXIT.OK`. `--help` is added to
 * `options` for every command.
 */
export function parseFlags<O extends Options>(
  name: string,
  usage: string,
  argv: readonly string[],
  options: O,
  io: CliIO,
  maxPositionals = 0,
): { values: ParsedFlags<O>; positionals: string[] } | number {
  let parsed: { values: ParsedFlags<O>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true }) as never;
  } catch (err) {
    io.stderr(`bastion ${name}: ${err instanceof Error ? err.message : 'invalid arguments'}\nRun 'bastion ${name} --help' for usage.\n`);
    return EXIT.USAGE;
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout(usage.endsWith('\n') ? usage : `${usage}\n`);
    return EXIT.OK;
  }
  if (parsed.positionals.length > maxPositionals) {
    io.stderr(`bastion ${name}: unexpected argument "${parsed.positionals[maxPositionals]}"\nRun 'bastion ${name} --help' for usage.\n`);
    return EXIT.USAGE;
  }
  return parsed;
}
