/**
 * Streaming redaction of known values (the real secret values Bastion swapped
 * into a request) from a response on its way back to the agent, so an upstream
 * that echoes a credential cannot hand it to the agent.
 *
 * Works on bytes: each value is searched as its UTF-8 encoding, its JSON-string
 * escaping and its percent-encoding (`encodeURIComponent`), the forms an echo
 * most often takes. A value split across chunks is found: the transform holds
 * back the last `longest − 1` bytes of what it has seen (and any occurrence
 * reaching into them) until more arrives or the stream ends, and never emits a
 * byte that could begin an occurrence. Overlapping occurrences (one secret
 * containing another) are redacted as one, so no part of either comes through,
 * however the stream is cut. Cost is O(n · v) for n bytes and v forms, plus
 * the occurrences found.
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

/** Replaces every occurrence of any form in `text` (a whole string, e.g. a header value); overlapping occurrences are redacted as one. */
export function redactValuesInString(text: string, forms: readonly Buffer[]): string {
  if (forms.length === 0) return text;
  const buf = Buffer.from(text, 'utf8');
  const { out } = redactBuffer(buf, forms, buf.length, Buffer.from(REDACTED_VALUE, 'utf8'));
  return out.toString('utf8');
}

/**
 * The occurrences of every form in `buf` (leftmost, non-overlapping per form),
 * with occurrences of different forms that overlap merged: disjoint
 * `[start, end)` intervals sorted by start.
 */
function occurrences(buf: Buffer, forms: readonly Buffer[]): [number, number][] {
  const found: [number, number][] = [];
  for (const f of forms) {
    for (let i = buf.indexOf(f); i >= 0; i = buf.indexOf(f, i + f.length)) found.push([i, i + f.length]);
  }
  found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: [number, number][] = [];
  for (const [s, e] of found) {
    const last = merged.at(-1);
    if (last && s < last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  return merged;
}

/**
 * Redacts the occurrences in `buf` that lie before `safe` (the bytes after it may
 * still be the start of an occurrence); an occurrence reaching past `safe` is
 * kept whole for later, since more bytes could extend it. Returns the redacted
 * output, the bytes kept, and how many occurrences were replaced.
 */
function redactBuffer(buf: Buffer, forms: readonly Buffer[], safe: number, replacement: Buffer): { out: Buffer; rest: Buffer; count: number } {
  const intervals = occurrences(buf, forms);
  let cut = safe;
  for (const [s, e] of intervals) {
    if (e > cut || (e === cut && cut < buf.length)) {
      cut = Math.min(cut, s);
      break;
    }
  }
  const parts: Buffer[] = [];
  let pos = 0;
  let count = 0;
  for (const [s, e] of intervals) {
    if (s >= cut) break;
    parts.push(buf.subarray(pos, s), replacement);
    pos = e;
    count++;
  }
  parts.push(buf.subarray(pos, cut));
  return { out: Buffer.concat(parts), rest: Buffer.from(buf.subarray(cut)), count };
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
    const safe = final ? buf.length : Math.max(0, buf.length - this.#hold);
    const { out, rest, count } = redactBuffer(buf, this.#forms, safe, this.#replacement);
    this.redactions += count;
    return { out, rest };
  }
}
