/**
 * The redaction engine (docs/redaction.md): one definition of the encoded
 * forms of a known value, one byte engine (whole and streamed), the JSON pass
 * for values split across fields, and the log-line redactor.
 */
export { ALIGNMENTS, base64Forms, encodedForms, literalForms, MIN_ENCODED_VALUE_BYTES, type EncodedForm, type FormKind } from './forms.ts';
export { MAX_TOKEN_BYTES } from './decode-view.ts';
export { compileRedaction, findSpans, NO_VALUES, redactBytes, REDACTED_VALUE, RedactStream, redactString, setOfForms, VAULT_RULE, type RedactionSet } from './engine.ts';
export { isJsonMediaType, redactJsonBody, redactJsonValue, splitAcross, splitLeaves, type JsonLeaf } from './json.ts';
export { ResponseRedactor, type ResponseRedactorOptions } from './response.ts';
export { redactLogLine } from './log.ts';
export { redactionForms, redactValuesInString } from './values.ts';
