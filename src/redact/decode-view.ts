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
 * Anything else is a literal byte. `+` is not decoded here (a value holding a
 * `+` must survive the decoding of its JSON escapes): form encoding's `+` for
 * a space is a form of the value instead (src/redact/forms.ts). A lone
 * surrogate decodes to U+FFFD. Two
 * passes are searched (a value percent-encoded inside a JSON string, `%2541`
 * double-encoded); a third layer of encoding is not undone.
 *
 * For streaming, a token that could still grow with more input (a trigger
 * character within {@link MAX_TOKEN_BYTES} of the end) is *unsettled*: the
 * view stops before it and the caller holds the input from there on.
 */

/** Longest token in bytes (`&#x` + 16 digits + `;`); a token is decided by at most this many bytes from its start. */
export const MAX_TOKEN_BYTES = 20;
const MAX_DIGITS = 16;

/** One decoded token: view bytes `[v, v + len)` came from source bytes `[s, e)`. */
interface Token {
  readonly v: number;
  readonly len: number;
  readonly s: number;
  readonly e: number;
}

/**
 * A decoded view of `src[0, settled)`. `bytes` is the decoded text; tokens
 * record where decoding changed the length, and every other view byte maps to
 * one source byte linearly. `changed` is false when nothing was decoded (the
 * view equals the source and need not be searched).
 */
export interface DecodedView {
  readonly bytes: Buffer;
  readonly settled: number;
  readonly changed: boolean;
  readonly tokens: readonly Token[];
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

/**
 * Decodes `src[0, m)` once (the table in the module header). Unless `final`,
 * stops before the first trigger byte whose token is not yet decided (fewer
 * than {@link MAX_TOKEN_BYTES} bytes follow it): `settled` says where.
 */
export function decodeView(src: Uint8Array, m: number, final: boolean): DecodedView {
  const parts: Uint8Array[] = [];
  const tokens: Token[] = [];
  let v = 0;
  let lit = 0;
  let p = 0;
  let settled = m;
  while (p < m) {
    const c = src[p] as number;
    if (!isTrigger(c)) {
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
    if (p > lit) {
      parts.push(src.subarray(lit, p));
      v += p - lit;
    }
    const out = isByte ? Buffer.from([value]) : Buffer.from(String.fromCodePoint(value), 'utf8');
    parts.push(out);
    tokens.push({ v, len: out.length, s: p, e: p + len });
    v += out.length;
    p += len;
    lit = p;
  }
  const end = Math.min(p, settled);
  if (tokens.length === 0) return { bytes: Buffer.from(src.buffer, src.byteOffset, end), settled, changed: false, tokens };
  if (end > lit) parts.push(src.subarray(lit, end));
  return { bytes: Buffer.concat(parts), settled, changed: true, tokens };
}

/** The last token with `v ≤ j` (binary search), or -1. */
function tokenBefore(tokens: readonly Token[], j: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((tokens[mid] as Token).v <= j) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/** The source range `[start, end)` of view byte `j`. */
export function sourceOf(view: DecodedView, j: number): [number, number] {
  const i = tokenBefore(view.tokens, j);
  if (i < 0) return [j, j + 1];
  const t = view.tokens[i] as Token;
  if (j < t.v + t.len) return [t.s, t.e];
  const s = t.e + (j - t.v - t.len);
  return [s, s + 1];
}

/** The source start of view offset `j` (`j` may equal the view's length: then where the view ends in the source). */
export function sourceStart(view: DecodedView, j: number): number {
  if (j >= view.bytes.length) return view.settled;
  return sourceOf(view, j)[0];
}

/** The source ranges of the tokens, for boundary checks: each `[s, e)` with e − s > 1 or a length change. */
export function tokenRanges(view: DecodedView): readonly (readonly [number, number])[] {
  return view.tokens.map((t) => [t.s, t.e] as const);
}
