/**
 * The egress proxy's names for the redaction engine (src/redact/), kept so
 * callers written against them keep working: `redactionForms` compiles values
 * into the engine's encoded forms, `redactValuesInString` and `ValueRedactor`
 * run the engine (every form, decoded views) on a string and on a stream.
 * New code imports src/redact/ directly.
 */
import { REDACTED_VALUE, RedactStream, setOfForms } from '../redact/engine.ts';

export { REDACTED_VALUE };

export { redactionForms, redactValuesInString } from '../redact/values.ts';

/** A Transform that redacts `forms` from a byte stream; `redactions` counts replacements made. */
export class ValueRedactor extends RedactStream {
  constructor(forms: readonly Buffer[]) {
    super(setOfForms(forms));
  }
}
