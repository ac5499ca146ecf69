/**
 * `bastion detect secrets < FILE [--json]`: runs the secret detector over
 * standard input and lists what it finds, like grep: exit 0 when nothing is
 * found, 1 when something is, 2 on bad usage (including input over
 * {@link MAX_DETECT_INPUT_BYTES} or a terminal instead of a pipe).
 *
 * The secret itself is never printed: a line shows where it is, the rule and a
 * masked preview (at most its first 4 characters, then `…` and its length).
 * With `--json`, an array of `{rule, line, column, start, end, hosts}`.
 */
import { findSecrets, secretRuleHosts } from '../../detect/secrets.ts';
import { parseFlags } from '../args.ts';
import { EXIT, readStdin, type CliCommand } from '../io.ts';

/** Largest input accepted on standard input, in bytes (64 MiB). */
export const MAX_DETECT_INPUT_BYTES = 64 * 1024 * 1024;

const HELP = `Usage:
  bastion detect secrets [--json] < FILE

Scans standard input (UTF-8 text, at most 64 MiB) for credentials and prints one line per
finding: LINE:COLUMN RULE PREVIEW, where PREVIEW shows at most the first 4 characters and the
length, never the secret. --json prints [{rule, line, column, start, end, hosts}] instead
(start/end: UTF-16 offsets; line and column count from 1, columns in UTF-16 code units;
hosts: the API hosts the credential belongs to, empty when unknown).
Exit codes: 0 nothing found, 1 something found, 2 usage (bad flag, input too large, no input).`;

/** `first 4 characters…(length)`, fewer characters for a short secret, so the preview never reveals most of it. */
export function maskSecret(secret: string): string {
  const shown = Math.min(4, Math.floor(secret.length / 4));
  return `${secret.slice(0, shown)}…(${secret.length} chars)`;
}

/** 1-based line and column (UTF-16 code units) of each offset in `offsets` (ascending). */
function positions(text: string, offsets: readonly number[]): Array<{ line: number; column: number }> {
  const out: Array<{ line: number; column: number }> = [];
  let line = 1;
  let lineStart = 0;
  let at = 0;
  for (const off of offsets) {
    for (; at < off; at++) {
      if (text.charCodeAt(at) === 10) {
        line++;
        lineStart = at + 1;
      }
    }
    out.push({ line, column: off - lineStart + 1 });
  }
  return out;
}

export const detectSecrets: CliCommand = async (argv, io) => {
  const parsed = parseFlags('detect secrets', HELP, argv, { json: { type: 'boolean' } }, io);
  if (typeof parsed === 'number') return parsed;
  if (process.stdin.isTTY === true) {
    io.stderr('bastion detect secrets: reads standard input; pipe or redirect a file (bastion detect secrets < FILE)\n');
    return EXIT.USAGE;
  }
  // The shared io.stdin is sized for one secret (1 MiB); a scan reads files, so it reads the stream itself.
  let input: Buffer;
  try {
    input = await readStdin(process.stdin, { maxBytes: MAX_DETECT_INPUT_BYTES });
  } catch (err) {
    io.stderr(
      err instanceof RangeError
        ? `bastion detect secrets: input is larger than ${MAX_DETECT_INPUT_BYTES / 1048576} MiB; split it\n`
        : 'bastion detect secrets: cannot read standard input\n',
    );
    return EXIT.USAGE;
  }
  const text = input.toString('utf8');
  const findings = findSecrets(text);
  const where = positions(
    text,
    findings.map((f) => f.start),
  );
  if (parsed.values.json) {
    io.stdout(
      `${JSON.stringify(findings.map((f, i) => ({ rule: f.rule, line: where[i]?.line, column: where[i]?.column, start: f.start, end: f.end, hosts: secretRuleHosts(f.rule) })))}\n`,
    );
  } else {
    findings.forEach((f, i) => io.stdout(`${where[i]?.line}:${where[i]?.column} ${f.rule} ${maskSecret(text.slice(f.start, f.end))}\n`));
  }
  return findings.length > 0 ? EXIT.FAILED : EXIT.OK;
};
