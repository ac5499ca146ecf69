/**
 * Known values as byte forms, for callers that keep the compiled forms beside
 * a request (the tool door's pasted-secret swap, abilities, the egress proxy):
 * `redactionForms` compiles values into the engine's encoded forms
 * (src/redact/forms.ts), `redactValuesInString` runs the engine on a string.
 */
import { compileRedaction, redactString, setOfForms } from './engine.ts';

/** The byte forms of `values` searched for (src/redact/forms.ts; deduplicated, empty strings dropped). */
export function redactionForms(values: readonly string[]): Buffer[] {
  return [...compileRedaction(values).forms];
}

/** Replaces every occurrence of any form in `text` (a whole string, e.g. a header value); overlapping occurrences are redacted as one. */
export function redactValuesInString(text: string, forms: readonly Buffer[]): string {
  return redactString(text, setOfForms(forms)).text;
}
