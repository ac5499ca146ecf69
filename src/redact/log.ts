/**
 * One redaction for every line Bastion writes to its own output (stderr
 * warnings, alerts, CLI messages): credentials the detector finds
 * (`[REDACTED:<rule>]`, src/detect/secrets.ts) and, when the writer knows
 * them, live secret values in every form of src/redact/forms.ts.
 */
import { redactSecrets } from '../detect/secrets.ts';
import { NO_VALUES, redactString, type RedactionSet } from './engine.ts';

/**
 * `line` with known values (`values`, compiled by `compileRedaction`) and
 * detector findings replaced. Pure; never throws for a string (a non-string is
 * written as `String(line)` first).
 */
export function redactLogLine(line: string, values: RedactionSet = NO_VALUES): string {
  const text = typeof line === 'string' ? line : String(line);
  return redactSecrets(redactString(text, values).text).text;
}
