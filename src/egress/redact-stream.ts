/**
 * The egress proxy's names for the redaction engine (src/redact/), kept so
 * callers written against them keep working: `redactionForms` compiles values
 * into the engine's encoded forms, `redactValuesInString` and `ValueRedactor`
 * run the engine (every form, decoded views) on a string and on a stream.
 * New code imports src/redact/ directly.
 */
import { compileRedaction, REDACTED_VALUE, RedactStream, redactString, setOfForms } from '../redact/engine.ts';

export { REDACTED_VALUE };

/** The byte forms of `values` searched for (src/redact/forms.ts; deduplicated, empty strings dropped). */
export function redactionForms(values: readonly string[]): Buffer[] {
  return [...compileRedaction(values).forms];
}

/** Replaces every occurrence of any form in `text` (a whole string, e.g. a header value); overlapping occurrences are redacted as one. */
export function redactValuesInString(text: string, forms: readonly Buffer[]): string {
  return redactString(text, setOfForms(forms)).text;
}

/** A Transform that redacts `forms` from a byte stream; `redactions` counts replacements made. */
export class ValueRedactor extends RedactStream {
  constructor(forms: readonly Buffer[]) {
    super(setOfForms(forms));
  }
}
