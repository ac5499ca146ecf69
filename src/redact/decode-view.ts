/**
 * Decoded views of a haystack for the escape-style encodings: a decoder (a
 * JSON parser, a browser, a URL parser) accepts any mix of escaped and plain
 * characters, so instead of listing escaped forms of a value the engine
 * decodes the haystack and searches the value's forms in the result, mapping
 * each match back to the original bytes it came from.
 *
 * One decoding pass reads, left to right, a token at each position:
 *
 * | token | decodes to | source |
 * | --- | --- | --- |
 * | `%HH` (either case) | the byte 0xHH | RFC 3986 §2.1 |
 * | `\uXXXX`, `\uD8xx\uDCxx` | the code point, UTF-8 | RFC 8259 §7, ECMA-262 |
 * | `\"` `\\` `\/` `\'` `\b` `\f` `\n` `\r` `\t` | the character | RFC 8259 §7, ECMA-262 |
 * | `\xHH` | the code point U+00HH, UTF-8 | ECMA-262, Python |
 * | `&#DDD;` `&#xHHH;` (up to 16 digits, leading zeros allowed, `;` optional) | the code point, UTF-8 | WHATWG HTML §13.2.5.72–80 |
 * | `&name;` for the named references of ASCII characters and `&nbsp;` (`;` optional for amp, lt, gt, quot) | the character, UTF-8 | WHATWG HTML named character references |
 *
 * Anything else is a literal byte. Besides this mixed view, each scheme is also
 * decoded alone (`only`), since a decoder of one scheme leaves the others' bytes
 * as they are. `+` is not decoded here (a value holding a
 * `+` must survive the decoding of its JSON escapes): form encoding's `+` for
 * a space is a form of the value instead (src/redact/forms.ts). A lone
 * surrogate decodes to U+FFFD. Two
 * passes are searched (a value percent-encoded inside a JSON string, `%2541`
 * double-encoded); a third layer of encoding is not undone.
 *
 * For streaming, a token that could still grow with more input (a trigger
 * character within {@link MAX_TOKEN_BYTES} of the end) is *unsettled*: the
 * view stops before it and the caller holds the input from there on.
 *
 * A token can hide a value that ends (or starts) with bytes the token takes
 * from it (`…%` before `3d`): the engine also searches for such glued
 * matches, from the tokens' `ts`/`te` (src/redact/engine.ts, "Glued escapes").
 */

/** Longest token in bytes (`&#x` + 16 digits + `;`); a token is decided by at most this many bytes from its start. */
export const MAX_TOKEN_BYTES = 20;
const MAX_DIGITS = 16;

/**
 * A decoded view of `src[0, settled)`. `bytes` is the decoded text (never
 * longer than its source: every token is at least as long as its UTF-8
 * output). Token i turned source bytes `[ts[i], te[i])` into view bytes
 * `[tv[i], tv[i] + tl[i])`; every other view byte maps to one source byte
 * linearly. `changed` is false when nothing was decoded (the view is the
 * source and need not be searched).
 */
export interface DecodedView {
  readonly bytes: Buffer;
  readonly settled: number;
  readonly changed: boolean;
  readonly count: number;
  readonly tv: Int32Array;
  readonly tl: Int32Array;
  readonly ts: Int32Array;
  readonly te: Int32Array;
}

/** The named character references that decode to ASCII characters (and nbsp), WHATWG HTML §13.5. */
const NAMED: ReadonlyMap<string, number> = new Map(
  Object.entries({
    Tab: 9, NewLine: 10, excl: 33, quot: 34, QUOT: 34, num: 35, dollar: 36, percnt: 37, amp: 38, AMP: 38, apos: 39, lpar: 40, rpar: 41,
    ast: 42, midast: 42, plus: 43, comma: 44, period: 46, sol: 47, colon: 58, semi: 59, lt: 60, LT: 60, equals: 61, gt: 62, GT: 62,
    quest: 63, commat: 64, lsqb: 91, lbrack: 91, bsol: 92, rsqb: 93, rbrack: 93, Hat: 94, lowbar: 95, UnderBar: 95, grave: 96,
    DiacriticalGrave: 96, lcub: 123, lbrace: 123, verbar: 124, vert: 124, VerticalLine: 124, rcub: 125, rbrace: 125, nbsp: 160,
    NonBreakingSpace: 160,
  }),
);
/** Named references a browser decodes without the `;` (the ASCII ones of the legacy list). */
const LEGACY = new Set(['amp', 'AMP', 'lt', 'LT', 'gt', 'GT', 'quot', 'QUOT', 'nbsp']);
const SIMPLE: ReadonlyMap<number, number> = new Map([
  [0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x27, 0x27], [0x62, 8], [0x66, 12], [0x6e, 10], [0x72, 13], [0x74, 9],
]);

function hexVal(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isAlnum(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a));
}

/** `\uXXXX` at `p`: the code unit, or -1. */
function unit(src: Uint8Array, p: number, m: number): number {
  if (p + 6 > m || src[p] !== 0x5c || src[p + 1] !== 0x75) return -1;
  let u = 0;
  for (let k = 2; k < 6; k++) {
    const h = hexVal(src[p + k]);
    if (h < 0) return -1;
    u = u * 16 + h;
  }
  return u;
}

/** The token at `p` (a trigger byte): `[decoded code point or byte, length, isByte]`, or null for a literal. */
function tokenAt(src: Uint8Array, p: number, m: number): [number, number, boolean] | null {
  const c = src[p];
  if (c === 0x25) {
    const h1 = hexVal(src[p + 1]);
    const h2 = p + 2 < m ? hexVal(src[p + 2]) : -1;
    return h1 >= 0 && h2 >= 0 && p + 2 < m ? [h1 * 16 + h2, 3, true] : null;
  }
  if (c === 0x5c) {
    if (p + 1 >= m) return null;
    const n = src[p + 1] as number;
    const simple = SIMPLE.get(n);
    if (simple !== undefined) return [simple, 2, false];
    if (n === 0x78) {
      const h1 = p + 2 < m ? hexVal(src[p + 2]) : -1;
      const h2 = p + 3 < m ? hexVal(src[p + 3]) : -1;
      return h1 >= 0 && h2 >= 0 ? [h1 * 16 + h2, 4, false] : null;
    }
    const u = unit(src, p, m);
    if (u < 0) return null;
    if (u >= 0xd800 && u <= 0xdbff) {
      const lo = unit(src, p + 6, m);
      if (lo >= 0xdc00 && lo <= 0xdfff) return [0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00), 12, false];
      return [0xfffd, 6, false];
    }
    return [u >= 0xdc00 && u <= 0xdfff ? 0xfffd : u, 6, false];
  }
  if (c === 0x26) {
    if (src[p + 1] === 0x23) {
      const hex = src[p + 2] === 0x78 || src[p + 2] === 0x58;
      let q = p + (hex ? 3 : 2);
      const from = q;
      let cp = 0;
      while (q < m && q - from < MAX_DIGITS) {
        const d = hex ? hexVal(src[q]) : (src[q] as number) >= 0x30 && (src[q] as number) <= 0x39 ? (src[q] as number) - 0x30 : -1;
        if (d < 0) break;
        cp = cp * (hex ? 16 : 10) + d;
        q++;
      }
      if (q === from || cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
      if (q < m && src[q] === 0x3b) q++;
      return [cp, q - p, false];
    }
    let q = p + 1;
    while (q < m && q - p <= 17 && isAlnum(src[q])) q++;
    const name = Buffer.from(src.subarray(p + 1, q)).toString('latin1');
    const cp = NAMED.get(name);
    if (cp === undefined) return null;
    if (q < m && src[q] === 0x3b) return [cp, q + 1 - p, false];
    return LEGACY.has(name) ? [cp, q - p, false] : null;
  }
  return null;
}

function isTrigger(c: number): boolean {
  return c === 0x25 || c === 0x5c || c === 0x26;
}

/** The trigger byte of each escape scheme: `%` (percent-encoding), `\\` (JSON and JavaScript escapes), `&` (HTML character references). */
export const SCHEME_TRIGGERS: readonly number[] = Object.freeze([0x25, 0x5c, 0x26]);

/**
 * Decodes `src[0, m)` once (the table in the module header). Unless `final`,
 * stops before the first trigger byte whose token is not yet decided (fewer
 * than {@link MAX_TOKEN_BYTES} bytes follow it): `settled` says where.
 * `only` (one of {@link SCHEME_TRIGGERS}): decode that scheme's tokens alone,
 * every other byte literal, as a decoder of that one scheme reads the text (in
 * the mixed view a `%de` token can swallow the start of a value written with
 * HTML or JSON escapes only).
 */
export function decodeView(src: Uint8Array, m: number, final: boolean, only?: number): DecodedView {
  let out: Buffer | null = null;
  let cap = 0;
  let tv: Int32Array = EMPTY;
  let tl: Int32Array = EMPTY;
  let ts: Int32Array = EMPTY;
  let te: Int32Array = EMPTY;
  let count = 0;
  let v = 0;
  let lit = 0;
  let p = 0;
  let settled = m;
  while (p < m) {
    if (only !== undefined) {
      const q = src.indexOf(only, p);
      if (q < 0 || q >= m) {
        p = m;
        break;
      }
      p = q;
    } else if (!isTrigger(src[p] as number)) {
      p++;
      continue;
    }
    if (!final && p + MAX_TOKEN_BYTES > m) {
      settled = p;
      break;
    }
    const t = tokenAt(src, p, m);
    if (t === null) {
      p++;
      continue;
    }
    const [value, len, isByte] = t;
    if (out === null) out = Buffer.allocUnsafe(m);
    if (count === cap) {
      cap = Math.max(256, cap * 2);
      [tv, tl, ts, te] = [grow(tv, cap), grow(tl, cap), grow(ts, cap), grow(te, cap)];
    }
    if (p > lit) {
      out.set(src.subarray(lit, p), v);
      v += p - lit;
    }
    let n = 1;
    if (isByte) out[v] = value;
    else n = out.write(String.fromCodePoint(value), v, 'utf8');
    tv[count] = v;
    tl[count] = n;
    ts[count] = p;
    te[count] = p + len;
    count++;
    v += n;
    p += len;
    lit = p;
  }
  const end = Math.min(p, settled);
  if (out === null) return { bytes: Buffer.from(src.buffer, src.byteOffset, end), settled, changed: false, count: 0, tv, tl, ts, te };
  if (end > lit) {
    out.set(src.subarray(lit, end), v);
    v += end - lit;
  }
  return { bytes: out.subarray(0, v), settled, changed: true, count, tv, tl, ts, te };
}

const EMPTY: Int32Array = new Int32Array(0);

function grow(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

/** The last token with `tv ≤ j` (binary search), or -1. */
function tokenBefore(view: DecodedView, j: number): number {
  let lo = 0;
  let hi = view.count - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((view.tv[mid] as number) <= j) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/** The source range `[start, end)` of view byte `j`. */
export function sourceOf(view: DecodedView, j: number): [number, number] {
  const i = tokenBefore(view, j);
  if (i < 0) return [j, j + 1];
  const v = view.tv[i] as number;
  const l = view.tl[i] as number;
  if (j < v + l) return [view.ts[i] as number, view.te[i] as number];
  const s = (view.te[i] as number) + (j - v - l);
  return [s, s + 1];
}

/** The source start of view offset `j` (`j` may equal the view's length: then where the view ends in the source). */
export function sourceStart(view: DecodedView, j: number): number {
  if (j >= view.bytes.length) return view.settled;
  return sourceOf(view, j)[0];
}
