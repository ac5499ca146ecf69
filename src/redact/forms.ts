/**
 * THE definition of the encoded forms of a known secret value: what the
 * redaction engine (src/redact/engine.ts) searches for in a response, a tool
 * result, a model answer or a log line. docs/redaction.md has the table.
 *
 * Two families:
 *
 * - **Encoded forms**, searched as byte strings: the value's UTF-8 bytes
 *   (`raw`), with `+` for each space (`raw-plus`: form encoding) and with its
 *   own escape-like sequences decoded (`raw-decoded`); base64 and base64url
 *   (RFC 4648 §4, §5) of the value at each of the three byte alignments it can
 *   have inside a larger encoded blob; lowercase and uppercase hex (RFC 4648
 *   §8). Computed with node's Buffer codecs only.
 * - **Escape-style encodings** (JSON `\uXXXX` and short escapes, HTML character
 *   references, percent-encoding): a decoder accepts any mix of escaped and
 *   plain characters, so no finite list of forms covers them. The engine
 *   decodes the haystack instead (src/redact/decode-view.ts) and searches the
 *   encoded forms above in the decoded views too.
 *   {@link literalForms} lists the usual fully-escaped renderings for callers
 *   that can only search literal strings (the model door's text redactor).
 *
 * ## base64 at every alignment
 *
 * A value of `L` bytes that starts at byte offset `o` of a larger blob occupies
 * the bits `[8a, 8a + 8L)` of its 3-byte group sequence, where `a = o mod 3`.
 * A base64 character `c` covers bits `[6c, 6c + 6)`, so it is determined by the
 * value alone when `6c ≥ 8a` and `6c + 6 ≤ 8(a + L)`: the characters
 * `[⌈8a/6⌉, ⌊8(a + L)/6⌋)` of `base64(zeros(a) ‖ value)`, the *core* at
 * alignment `a` (a = 0: from 0; a = 1: from 2; a = 2: from 3). The character
 * after the core (when `8(a + L)` is not a multiple of 6) mixes the value's
 * last 2 or 4 bits with the bits after it; when the value ends the blob those
 * bits are zero, so the core plus that character (and `=` padding) is a form
 * too. The character before the core (a = 1: 4 bits of the value, a = 2: 2
 * bits) depends on the bytes before the value and is not searched: at most 4
 * bits of the value stay visible in front of a redacted core.
 */

import { isUtf8 } from 'node:buffer';
import { decodeView } from './decode-view.ts';

/**
 * Values shorter than this many UTF-8 bytes are searched raw only (in the
 * haystack and its decoded views), not as base64 or hex: a short value's
 * base64 core is a few characters that ordinary base64 and hex text contains
 * by chance, and redacting them would corrupt unrelated data. A value this
 * short is a weak secret anyway.
 */
export const MIN_ENCODED_VALUE_BYTES = 8;

/** Which encoding a form is. */
export type FormKind = 'raw' | 'raw-plus' | 'raw-decoded' | 'base64' | 'base64url' | 'hex-lower' | 'hex-upper';

/** One encoded form: its bytes (ASCII for every kind but `raw`) and, for base64, the byte alignment (offset mod 3) it covers. */
export interface EncodedForm {
  readonly kind: FormKind;
  readonly alignment?: 0 | 1 | 2;
  readonly bytes: Buffer;
}

/** The three byte alignments of a value inside a base64 blob. */
export const ALIGNMENTS = [0, 1, 2] as const;

/**
 * The base64 (or base64url) forms of `value` at byte alignment `a`: the core
 * (characters determined by the value alone), the core plus the following
 * character zero-filled (the value ends the blob), and that with `=` padding.
 * Empty when the core would be empty.
 */
export function base64Forms(value: Buffer, a: 0 | 1 | 2, alphabet: 'base64' | 'base64url'): string[] {
  const padded = Buffer.concat([Buffer.alloc(a), value]).toString('base64');
  const encoded = alphabet === 'base64' ? padded : Buffer.concat([Buffer.alloc(a), value]).toString('base64url');
  const first = Math.ceil((8 * a) / 6);
  const bits = 8 * (a + value.length);
  const last = Math.floor(bits / 6);
  if (last <= first) return [];
  const core = encoded.slice(first, last);
  if (bits % 6 === 0) return [core];
  const withLast = encoded.slice(first, last + 1);
  const pad = padded.length - padded.replace(/=+$/, '').length;
  return [core, withLast, withLast + '='.repeat(pad)];
}

/**
 * Every encoded form of one value (deduplicated, in a fixed order: raw, then
 * raw with `+` for each space, raw with its own escape-like sequences decoded,
 * base64 by alignment, base64url by alignment, hex lower, hex upper). Values
 * under {@link MIN_ENCODED_VALUE_BYTES} bytes get the raw forms only; the empty
 * string gets none. Throws `TypeError` for a non-string.
 */
export function encodedForms(value: string): EncodedForm[] {
  if (typeof value !== 'string') throw new TypeError('encodedForms: value must be a string');
  if (value.length === 0) return [];
  const raw = Buffer.from(value);
  const out: EncodedForm[] = [{ kind: 'raw', bytes: raw }];
  const seen = new Set<string>([raw.toString('latin1')]);
  const add = (kind: FormKind, s: string, alignment?: 0 | 1 | 2): void => {
    if (s.length === 0 || seen.has(s)) return;
    seen.add(s);
    out.push({ kind, bytes: Buffer.from(s, 'latin1'), ...(alignment === undefined ? {} : { alignment }) });
  };
  // Form encoding writes a space as `+` (the decoded views leave `+` alone).
  if (value.includes(' ')) add('raw-plus', Buffer.from(value.replaceAll(' ', '+')).toString('latin1'));
  // A value that itself holds an escape-like sequence (`%41`, `&amp;`, `\n`) left as it is
  // reads, in the decoded view, as that sequence decoded.
  const decoded = decodeView(raw, raw.length, true);
  if (decoded.changed) add('raw-decoded', decoded.bytes.toString('latin1'));
  if (raw.length < MIN_ENCODED_VALUE_BYTES) return out;
  for (const alphabet of ['base64', 'base64url'] as const) {
    for (const a of ALIGNMENTS) for (const s of base64Forms(raw, a, alphabet)) add(alphabet, s, a);
  }
  add('hex-lower', raw.toString('hex'));
  add('hex-upper', raw.toString('hex').toUpperCase());
  return out;
}

/**
 * The usual fully-escaped renderings of `value` as strings, for a redactor
 * that searches literal strings and has no decoded view (the model door's
 * streaming text redactor): the value, its JSON string escaping
 * (`JSON.stringify`), every character as `\uXXXX` (lower and upper hex),
 * `encodeURIComponent`, every byte percent-encoded (upper and lower hex) and
 * with `+` for space, HTML-escaped (`& < > " '`), every code point as a
 * decimal and a hex character reference, and the encoded forms of
 * {@link encodedForms} (ASCII). Mixed escaping is not covered here; the byte
 * engine's decoded views cover it. Deduplicated; empty for ''. A value that
 * cannot be percent-encoded (a lone surrogate) skips those forms.
 */
export function literalForms(value: string): string[] {
  if (typeof value !== 'string') throw new TypeError('literalForms: value must be a string');
  if (value.length === 0) return [];
  const set = new Set<string>([value, JSON.stringify(value).slice(1, -1)]);
  const units = [...value].map((ch) => ch.split('').map((u) => u.charCodeAt(0).toString(16).padStart(4, '0')));
  const uEsc = units.map((us) => us.map((h) => `\\u${h}`).join('')).join('');
  set.add(uEsc);
  set.add(uEsc.replace(/\\u([0-9a-f]{4})/g, (_m, h: string) => `\\u${h.toUpperCase()}`));
  try {
    const uri = encodeURIComponent(value);
    set.add(uri);
    set.add(uri.replace(/%20/g, '+'));
  } catch {
    // A lone surrogate has no percent-encoding; the value cannot appear in that form.
  }
  const bytes = Buffer.from(value);
  const pctUpper = [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  set.add(pctUpper);
  set.add(pctUpper.toLowerCase());
  set.add(value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string));
  const points = [...value].map((ch) => ch.codePointAt(0) as number);
  set.add(points.map((p) => `&#${p};`).join(''));
  set.add(points.map((p) => `&#x${p.toString(16)};`).join(''));
  set.add(points.map((p) => `&#x${p.toString(16).toUpperCase()};`).join(''));
  // The value's other spellings (`+` for space, escapes decoded) are UTF-8 text: read back as such (latin1
  // would garble `ä`); only bytes that are no UTF-8 (a decoded `%FF`) are read one char per byte.
  for (const f of encodedForms(value)) if (f.kind !== 'raw') set.add(f.bytes.toString(isUtf8(f.bytes) ? 'utf8' : 'latin1'));
  return [...set];
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
