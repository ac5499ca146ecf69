/**
 * Streaming redaction of known values (the real secret values Bastion swapped
 * into a request) from a response on its way back to the agent, so an upstream
 * that echoes a credential cannot hand it to the agent.
 *
 * Works on bytes: each value is searched as its UTF-8 encoding, its JSON-string
 * escaping and its percent-encoding (`encodeURIComponent`), the forms an echo
 * most often takes. A value split across chunks is found: the transform holds
 * back the last `longest − 1` bytes of what it has seen until more arrives or
 * the stream ends, and never emits a byte that could begin an occurrence.
 * Cost is O(n · v) for n bytes and v forms (each `indexOf` is linear).
 */
import { Transform, type TransformCallback } from 'node:stream';

/** What replaces a redacted value. */
export const REDACTED_VALUE = '[REDACTED:vault-secret]';

/** The byte forms of `values` searched for (deduplicated, empty strings dropped). */
export function redactionForms(values: readonly string[]): Buffer[] {
  const forms = new Map<string, Buffer>();
  for (const v of values) {
    if (v.length === 0) continue;
    for (const f of [v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]) forms.set(f, Buffer.from(f, 'utf8'));
  }
  return [...forms.values()];
}

/** Replaces every occurrence of any form in `text` (a whole string, e.g. a header value). */
export function redactValuesInString(text: string, forms: readonly Buffer[]): string {
  let out = text;
  for (const f of forms) {
    const s = f.toString('utf8');
    if (out.includes(s)) out = out.split(s).join(REDACTED_VALUE);
  }
  return out;
}

/** A Transform that redacts `forms` from a byte stream; `redactions` counts replacements made. */
export class ValueRedactor extends Transform {
  readonly #forms: readonly Buffer[];
  readonly #hold: number;
  readonly #replacement = Buffer.from(REDACTED_VALUE, 'utf8');
  #carry: Buffer = Buffer.alloc(0);
  redactions = 0;

  constructor(forms: readonly Buffer[]) {
    super();
    this.#forms = forms;
    this.#hold = Math.max(0, ...forms.map((f) => f.length)) - 1;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const buf = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { out, rest } = this.#scan(buf, false);
    this.#carry = rest;
    if (out.length > 0) this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const { out } = this.#scan(this.#carry, true);
    this.#carry = Buffer.alloc(0);
    if (out.length > 0) this.push(out);
    done();
  }

  #scan(buf: Buffer, final: boolean): { out: Buffer; rest: Buffer } {
    const parts: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let best = -1;
      let bestLen = 0;
      for (const f of this.#forms) {
        const i = buf.indexOf(f, pos);
        if (i >= 0 && (best < 0 || i < best || (i === best && f.length > bestLen))) {
          best = i;
          bestLen = f.length;
        }
      }
      if (best < 0) break;
      parts.push(buf.subarray(pos, best), this.#replacement);
      this.redactions++;
      pos = best + bestLen;
    }
    const safe = final ? buf.length : Math.max(pos, buf.length - this.#hold);
    parts.push(buf.subarray(pos, safe));
    return { out: Buffer.concat(parts), rest: Buffer.from(buf.subarray(safe)) };
  }
}
