/**
 * Sanitizing what comes back from an upstream before the agent sees it:
 * credential-looking strings in text are redacted, hidden characters are
 * detected (flagged in the audit record), and results larger than
 * `maxResultBytes` (bytes of their JSON) are withheld.
 *
 * Detector findings are redacted in text-bearing fields only (`text` of content
 * items and embedded resources, prompt message text, and every string in
 * `structuredContent`); base64 `data`/`blob` fields are left intact by the
 * detector, since redacting inside them would corrupt images and audio without
 * protecting anything readable.
 *
 * Known values (`known`: the secrets swapped into the call) are redacted by the
 * one redaction engine (src/redact/) from every string, `data` and `blob`
 * included (a value base64-encoded into an "image" is readable to an agent
 * that decodes it), in every encoded form, and across adjacent fields.
 */
import { findHiddenCharacters } from '../detect/hidden.ts';
import { redactSecrets } from '../detect/secrets.ts';
import { NO_VALUES, VAULT_RULE, type RedactionSet } from '../redact/engine.ts';
import { redactJsonValue } from '../redact/json.ts';

export interface SanitizeOptions {
  readonly maxResultBytes: number;
  readonly redactSecrets: boolean;
}

export interface Sanitized {
  readonly value: unknown;
  readonly redactions: number;
  readonly rules: readonly string[];
  readonly hidden: readonly string[];
  readonly tooLarge: boolean;
  readonly bytes: number;
}

/** Keys whose string values are opaque binary encodings, never text. */
const BINARY_KEYS = new Set(['data', 'blob']);
const MAX_DEPTH = 64;

/**
 * Redacts known values (`known`, compiled with `compileRedaction`) everywhere
 * and credentials in text fields, and collects hidden-character kinds. Known
 * values are redacted whatever `opts.redactSecrets` says (they are secrets
 * Bastion released for this call). Pure.
 */
export function sanitizeResult(value: unknown, opts: SanitizeOptions, known: RedactionSet = NO_VALUES): Sanitized {
  let redactions = 0;
  const rules = new Set<string>();
  const hidden = new Set<string>();
  if (known.forms.length > 0) {
    const r = redactJsonValue(value, known);
    if (r.count > 0) {
      redactions += r.count;
      rules.add(VAULT_RULE);
    }
    value = r.value;
  }
  const walk = (v: unknown, key: string | undefined, depth: number): unknown => {
    if (depth > MAX_DEPTH) return v;
    if (typeof v === 'string') {
      if (key !== undefined && BINARY_KEYS.has(key)) return v;
      for (const f of findHiddenCharacters(v)) hidden.add(f.kind);
      if (!opts.redactSecrets) return v;
      const r = redactSecrets(v);
      if (r.count > 0) {
        redactions += r.count;
        for (const rule of r.rules) rules.add(rule);
        return r.text;
      }
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined, depth + 1));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, k, depth + 1);
      return out;
    }
    return v;
  };
  const sanitized = walk(value, undefined, 0);
  const bytes = Buffer.byteLength(JSON.stringify(sanitized) ?? '', 'utf8');
  return { value: sanitized, redactions, rules: [...rules], hidden: [...hidden], tooLarge: bytes > opts.maxResultBytes, bytes };
}
