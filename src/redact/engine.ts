/**
 * The redaction engine: replaces every occurrence of a known value, in every
 * form of src/redact/forms.ts, in a byte string (whole) or a byte stream (a
 * Transform), with one marker per merged span. The stream's output equals the
 * whole function's output for any split of the input into chunks.
 *
 * ## What is searched
 *
 * Each encoded form (raw, base64/base64url at three alignments, hex) is
 * searched in three texts: the bytes as they are, their decoded view (JSON
 * escapes, HTML character references, percent-encoding and `+`, decoded once:
 * src/redact/decode-view.ts) and the view decoded a second time. A match in a
 * view is mapped back to the bytes its characters came from. Every occurrence
 * counts, overlapping ones too; occurrences that overlap (in source bytes)
 * are merged into one span and replaced by one marker, so no part of a
 * value survives when one secret contains another or a match in a view
 * covers half an escape.
 *
 * ## Streaming
 *
 * The stream keeps the bytes after the point up to which nothing can change
 * and emits the rest. For each of the three texts that point is the earlier of
 * (a) where its longest suffix that is a proper prefix of a form begins and
 * (b) where its decoding stops being decided (a `%`, `\` or `&` within
 * MAX_TOKEN_BYTES of the end); a merged span reaching past the point moves it
 * back to the span's start, and the point is moved back out of any token it
 * falls into, so the kept bytes always start where the whole input's
 * decoding has a token boundary. What is held is bounded by the longest form
 * times the longest token, squared for the second pass (in practice a few
 * bytes: only a tail that could still begin a value is held).
 *
 * A glued match (below) is held the same way: its token not yet decided, the
 * form's first part is a tail of the view that (a) holds; a decided token
 * whose source ends with a form's first bytes, followed to the end of the
 * view by a prefix of the form's rest, holds from that token's start.
 *
 * ## Glued escapes
 *
 * A value can end with bytes that are literal in it but, glued to the text
 * after it, begin an escape (`…%` before `3d`, `…\` before `n`, `…&` before
 * `lt;`): every view then decodes the escape and shows another byte, and the
 * value is found nowhere. Left alone that is harmless (no reader sees the
 * value), but once a marker for another match splits that escape (the hex
 * form `3d5c…` starting at its `3d`), the bytes left before the marker read as
 * the value. So at each view level (the mixed view, each scheme alone, the
 * second pass) a form `f = p + s` also counts when `p` (not empty) ends in the
 * view right before a token whose parent bytes (the input for the first pass,
 * the first view for the second; a first-pass token copied as is into the
 * second pass counts too, with the input as parent) begin with `s` and are
 * longer: the span runs from `p` into the token, to the end of `s`. The
 * mirror at the start: a token whose parent bytes end with `f`'s first bytes
 * (and are longer), followed in the view by the rest of `f`. A split can only
 * happen where some form holds a `%`, `\` or `&` within MAX_TOKEN_BYTES of its
 * end (only such a form's match ends inside a token), so sets without one
 * (most secrets, every base64 and hex form) skip this search entirely; with
 * one, the start side is searched only at tokens such a form could split.
 * Not covered: an escape's head left before a marker that decodes, alone, as
 * a shorter escape (`&#6` of `&#65;`), and a split `\\` whose second `\`
 * begins a new escape with what follows.
 *
 * Cost: O(n · f · 3) comparisons for n bytes and f forms (Buffer#indexOf per
 * form), plus O(h · f) per chunk for the held tail h; with a form holding an
 * escape character, O(t · g) more for t tokens and g such form tails.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { decodeView, MAX_TOKEN_BYTES, SCHEME_TRIGGERS, sourceOf, sourceStart, type DecodedView } from './decode-view.ts';
import { encodedForms } from './forms.ts';

/** The rule id of a known value's redaction (audit records list it among the rules). */
export const VAULT_RULE = 'vault-secret';
/** What replaces a redacted value. */
export const REDACTED_VALUE = `[REDACTED:${VAULT_RULE}]`;
const MARKER = Buffer.from(REDACTED_VALUE);

/**
 * The compiled search for a set of known values: their encoded forms
 * (deduplicated). Build once per request with {@link compileRedaction};
 * immutable.
 */
export interface RedactionSet {
  readonly forms: readonly Buffer[];
}

/** The empty set: redacts nothing. */
export const NO_VALUES: RedactionSet = Object.freeze({ forms: Object.freeze([]) });

/** Compiles `values` (empty strings dropped) into their encoded forms. Throws `TypeError` for a non-string value. */
export function compileRedaction(values: readonly string[]): RedactionSet {
  const seen = new Map<string, Buffer>();
  for (const v of values) {
    for (const f of encodedForms(v)) seen.set(f.bytes.toString('latin1'), f.bytes);
  }
  return setOfForms([...seen.values()]);
}

/** A {@link RedactionSet} from forms already computed (e.g. by the egress proxy's `redactionForms`). */
export function setOfForms(forms: readonly Buffer[]): RedactionSet {
  const list = forms.filter((f) => f.length > 0);
  if (list.length === 0) return NO_VALUES;
  return Object.freeze({ forms: Object.freeze(list) });
}

/** A text searched: its bytes and how an interval of them maps to the input's bytes. */
interface Level {
  readonly bytes: Uint8Array;
  readonly length: number;
  /** Source start of offset j (j may equal length). */
  readonly start: (j: number) => number;
  /** Source end of offset j (the byte at j, inclusive of its token). */
  readonly end: (j: number) => number;
  /** Whether occurrences must be searched (false: same text as a level already searched). */
  readonly search: boolean;
  /** Where a cut at source offset `c` must move to so it falls between tokens (the start of the token strictly containing `c`, else `c`). */
  readonly boundary: (c: number) => number;
  /** The tokens a glued form may split (none for the input itself), computed on demand. */
  readonly tokens: () => GlueToken[];
}

/**
 * A token of a level, as a glued match sees it: its decoded bytes are the
 * level's `[v, ve)`, its parent bytes `parent[ps, pe)`; `srcStart(x)` is the
 * input offset where parent byte `x` begins, `srcEnd(x)` where the parent's
 * bytes `[.., x)` end.
 */
interface GlueToken {
  readonly v: number;
  readonly ve: number;
  readonly parent: Uint8Array;
  readonly ps: number;
  readonly pe: number;
  readonly srcStart: (x: number) => number;
  readonly srcEnd: (x: number) => number;
}

const NO_TOKENS = (): GlueToken[] => [];
const SAME = (x: number): number => x;

/** The tokens of `view` (decoded from `parent`), with the parent offsets mapped to the input by `srcStart`/`srcEnd`. */
function tokensOf(view: DecodedView, parent: Uint8Array, srcStart: (x: number) => number, srcEnd: (x: number) => number): GlueToken[] {
  const out: GlueToken[] = [];
  for (let i = 0; i < view.count; i++) {
    const v = view.tv[i] as number;
    out.push({ v, ve: v + (view.tl[i] as number), parent, ps: view.ts[i] as number, pe: view.te[i] as number, srcStart, srcEnd });
  }
  return out;
}

/**
 * The tokens of the second pass: its own (parent: the first view) and the
 * first pass's tokens it copies as they are (parent: the input), at their
 * offsets in the second view.
 */
function secondPassTokens(buf: Buffer, v1: DecodedView, v2: DecodedView, s1: (j: number) => number, e1: (j: number) => number): GlueToken[] {
  const out = tokensOf(v2, v1.bytes, s1, (x) => e1(x - 1));
  let k = 0;
  let shrink = 0;
  for (let i = 0; i < v1.count; i++) {
    const a = v1.tv[i] as number;
    const b = a + (v1.tl[i] as number);
    while (k < v2.count && (v2.te[k] as number) <= a) {
      shrink += (v2.te[k] as number) - (v2.ts[k] as number) - (v2.tl[k] as number);
      k++;
    }
    if (k < v2.count && (v2.ts[k] as number) < b) continue;
    out.push({ v: a - shrink, ve: b - shrink, parent: buf, ps: v1.ts[i] as number, pe: v1.te[i] as number, srcStart: SAME, srcEnd: SAME });
  }
  return out;
}

/**
 * The forms' tails a glued match may end with: `form[len - k, len)` starting
 * with an escape character, `k < MAX_TOKEN_BYTES`, `k < len`. Empty (no glued
 * search at all) for a set whose forms hold no escape character near their end.
 */
interface GlueTails {
  readonly tails: readonly { readonly form: Buffer; readonly k: number }[];
  /** `tails` by their first byte (`%`, `\\`, `&`): a token's parent bytes begin with that byte. */
  readonly byTrigger: ReadonlyMap<number, readonly { readonly form: Buffer; readonly k: number }[]>;
  /** The forms by their first byte. */
  readonly byFirst: ReadonlyMap<number, readonly Buffer[]>;
  readonly longest: number;
}
const NO_FORMS: readonly Buffer[] = [];
const NO_TAILS: readonly { readonly form: Buffer; readonly k: number }[] = [];
const glueCache = new WeakMap<readonly Buffer[], GlueTails>();

function glueTails(forms: readonly Buffer[]): GlueTails {
  let g = glueCache.get(forms);
  if (g) return g;
  const tails: { form: Buffer; k: number }[] = [];
  const byTrigger = new Map<number, { form: Buffer; k: number }[]>(SCHEME_TRIGGERS.map((c) => [c, []]));
  const byFirst = new Map<number, Buffer[]>();
  let longest = 0;
  for (const form of forms) {
    longest = Math.max(longest, form.length);
    const first = byFirst.get(form[0] as number);
    if (first) first.push(form);
    else byFirst.set(form[0] as number, [form]);
    for (let k = 1; k < Math.min(form.length, MAX_TOKEN_BYTES); k++) {
      const list = byTrigger.get(form[form.length - k] as number);
      if (list) {
        tails.push({ form, k });
        list.push({ form, k });
      }
    }
  }
  g = { tails, byTrigger, byFirst, longest };
  glueCache.set(forms, g);
  return g;
}

/** Whether `a[ai, ai + len)` equals `b[bi, bi + len)` (both in range). */
function same(a: Uint8Array, ai: number, b: Uint8Array, bi: number, len: number): boolean {
  for (let x = 0; x < len; x++) if (a[ai + x] !== b[bi + x]) return false;
  return true;
}

/** Whether a form's match could end inside `t` (its parent bytes begin with a form's tail, and are longer). */
function splittable(t: GlueToken, g: GlueTails): boolean {
  const len = t.pe - t.ps;
  for (const { form, k } of g.byTrigger.get(t.parent[t.ps] as number) ?? NO_TAILS) {
    if (k < len && same(t.parent, t.ps, form, form.length - k, k)) return true;
  }
  return false;
}

/** The spans of the glued matches at level `lv` (module header, "Glued escapes"), pushed to `found`. */
function gluedMatches(lv: Level, g: GlueTails, found: [number, number][]): void {
  const view = lv.bytes;
  for (const t of lv.tokens()) {
    const len = t.pe - t.ps;
    // The end: `p` ends in the view at t.v, the tail `s` begins the token's parent bytes.
    let split = false;
    for (const { form, k } of g.byTrigger.get(t.parent[t.ps] as number) ?? NO_TAILS) {
      const p = form.length - k;
      if (k >= len || !same(t.parent, t.ps, form, p, k)) continue;
      split = true;
      if (p <= t.v && same(view, t.v - p, form, 0, p)) found.push([lv.start(t.v - p), t.srcEnd(t.ps + k)]);
    }
    if (!split) continue;
    // The start: the token's parent bytes end with the form's first k bytes, the view goes on with the rest.
    for (let k = 1; k < len; k++) {
      for (const form of g.byFirst.get(t.parent[t.pe - k] as number) ?? NO_FORMS) {
        const r = form.length - k;
        if (r > 0 && t.ve + r <= lv.length && same(t.parent, t.pe - k, form, 0, k) && same(view, t.ve, form, k, r)) found.push([t.srcStart(t.pe - k), lv.end(t.ve + r - 1)]);
      }
    }
  }
}

/** Where a stream must hold from at `lv` for a glued match at the start not yet decided (a prefix of its rest ends the view), or `cut`. */
function gluedHold(lv: Level, g: GlueTails, cut: number): number {
  const view = lv.bytes;
  for (const t of lv.tokens()) {
    if (t.ve + g.longest <= lv.length || !splittable(t, g)) continue;
    const len = t.pe - t.ps;
    const avail = lv.length - t.ve;
    for (let k = 1; k < len; k++) {
      for (const form of g.byFirst.get(t.parent[t.pe - k] as number) ?? NO_FORMS) {
        if (avail < form.length - k && same(t.parent, t.pe - k, form, 0, k) && same(view, t.ve, form, k, avail)) cut = Math.min(cut, t.srcStart(t.pe - k));
      }
    }
  }
  return cut;
}

const NOT_A_TOKEN = (c: number): number => c;

function levelsOf(buf: Buffer, final: boolean): Level[] {
  const n = buf.length;
  const levels: Level[] = [{ bytes: buf, length: n, start: (j) => j, end: (j) => j + 1, search: true, boundary: NOT_A_TOKEN, tokens: NO_TOKENS }];
  const v1 = decodeView(buf, n, final);
  const s1 = (j: number): number => sourceStart(v1, j);
  const e1 = (j: number): number => sourceOf(v1, j)[1];
  const b1 = (c: number): number => outOfToken(v1.count, (i) => v1.ts[i] as number, (i) => v1.te[i] as number, c);
  levels.push({ bytes: v1.bytes, length: v1.bytes.length, start: s1, end: e1, search: v1.changed, boundary: b1, tokens: () => tokensOf(v1, buf, SAME, SAME) });
  // Each scheme decoded alone: where tokens of several schemes mix, a token of one may swallow
  // bytes of a value that only a decoder of another scheme shows (`100%deadbeef&#45;…`).
  if (v1.changed) {
    for (const only of SCHEME_TRIGGERS) {
      const vs = decodeView(buf, n, final, only);
      const search = vs.changed && !vs.bytes.equals(v1.bytes);
      // In a stream a view with nothing to search still holds back the tail that may begin a value in it.
      if (!search && final) continue;
      const b = (c: number): number => outOfToken(vs.count, (i) => vs.ts[i] as number, (i) => vs.te[i] as number, c);
      levels.push({ bytes: vs.bytes, length: vs.bytes.length, start: (j) => sourceStart(vs, j), end: (j) => sourceOf(vs, j)[1], search, boundary: b, tokens: () => tokensOf(vs, buf, SAME, SAME) });
    }
  }
  // Nothing decoded in the whole input: a second pass would read the same bytes. (In a
  // stream the second pass still matters: an escape character near where the first view
  // stops may begin a second-pass escape with bytes the first pass decodes later.)
  if (!v1.changed && final) return levels;
  const v2: DecodedView = decodeView(v1.bytes, v1.bytes.length, final);
  const s2 = (j: number): number => (j >= v2.bytes.length ? s1(v2.settled) : s1(sourceOf(v2, j)[0]));
  const e2 = (j: number): number => e1(sourceOf(v2, j)[1] - 1);
  const b2 = (c: number): number => outOfToken(v2.count, (i) => s1(v2.ts[i] as number), (i) => e1((v2.te[i] as number) - 1), c);
  levels.push({ bytes: v2.bytes, length: v2.bytes.length, start: s2, end: e2, search: v2.changed, boundary: b2, tokens: () => secondPassTokens(buf, v1, v2, s1, e1) });
  return levels;
}

/** Length of the longest suffix of `bytes[0, m)` that is a proper prefix of some form. */
function prefixTail(bytes: Uint8Array, m: number, forms: readonly Buffer[]): number {
  let best = 0;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, m);
  for (const f of forms) {
    const first = f[0];
    for (let k = Math.min(f.length - 1, m); k > best; k--) {
      if (view[m - k] === first && view.compare(f, 0, k, m - k, m) === 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

/** Merged `[start, end)` source intervals of every occurrence of every form at every level. */
function occurrences(levels: readonly Level[], forms: readonly Buffer[]): [number, number][] {
  const found: [number, number][] = [];
  const g = glueTails(forms);
  for (const lv of levels) {
    if (!lv.search || lv.length === 0) continue;
    const hay = Buffer.from(lv.bytes.buffer, lv.bytes.byteOffset, lv.length);
    for (const f of forms) {
      for (let i = hay.indexOf(f); i >= 0; i = hay.indexOf(f, i + 1)) found.push([lv.start(i), lv.end(i + f.length - 1)]);
    }
    if (g.tails.length > 0) gluedMatches(lv, g, found);
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

/** The start of the token (of `count`, sorted and disjoint, token i spanning `[start(i), end(i))`) that strictly contains `c`, or `c`. */
function outOfToken(count: number, start: (i: number) => number, end: (i: number) => number, c: number): number {
  let lo = 0;
  let hi = count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = start(mid);
    const e = end(mid);
    if (e <= c) lo = mid + 1;
    else if (s >= c) hi = mid - 1;
    else return s;
  }
  return c;
}

/**
 * Redacts what of `buf` can be decided now: returns the redacted output for
 * `buf[0, cut)`, the number of spans replaced, and `cut` (the input from `cut`
 * on must be kept and given again with what follows). `final`: nothing follows.
 */
export function redactPrefix(buf: Buffer, set: RedactionSet, final: boolean): { out: Buffer; count: number; cut: number } {
  const n = buf.length;
  if (set.forms.length === 0) return { out: buf, count: 0, cut: n };
  const levels = levelsOf(buf, final);
  const spans = occurrences(levels, set.forms);
  let cut = n;
  if (!final) {
    const g = glueTails(set.forms);
    for (const lv of levels) {
      const k = lv.length > 0 ? prefixTail(lv.bytes, lv.length, set.forms) : 0;
      cut = Math.min(cut, lv.start(lv.length - k));
      if (g.tails.length > 0) cut = gluedHold(lv, g, cut);
    }
    for (let moved = true; moved; ) {
      moved = false;
      for (const [s, e] of spans) {
        if (s < cut && e > cut) {
          cut = s;
          moved = true;
        }
      }
      for (const lv of levels) {
        const c = lv.boundary(cut);
        if (c < cut) {
          cut = c;
          moved = true;
        }
      }
    }
  }
  const parts: Buffer[] = [];
  let pos = 0;
  let count = 0;
  for (const [s, e] of spans) {
    if (s >= cut) break;
    parts.push(buf.subarray(pos, s), MARKER);
    pos = e;
    count++;
  }
  if (count === 0) return { out: buf.subarray(0, cut), count: 0, cut };
  parts.push(buf.subarray(pos, cut));
  return { out: Buffer.concat(parts), count, cut };
}

/** The merged source spans `[start, end)` of every occurrence of `set`'s values in `buf` (whole), sorted. Pure. */
export function findSpans(buf: Buffer, set: RedactionSet): [number, number][] {
  return set.forms.length === 0 ? [] : occurrences(levelsOf(buf, true), set.forms);
}

/** Redacts every occurrence of `set`'s values in `buf` (whole). Pure. */
export function redactBytes(buf: Buffer, set: RedactionSet): { out: Buffer; count: number } {
  const { out, count } = redactPrefix(buf, set, true);
  return { out, count };
}

/** Redacts every occurrence of `set`'s values in `text` (its UTF-8 bytes; a lone surrogate comes back as U+FFFD). Pure. */
export function redactString(text: string, set: RedactionSet): { text: string; count: number } {
  if (set.forms.length === 0 || text.length === 0) return { text, count: 0 };
  const { out, count } = redactBytes(Buffer.from(text), set);
  return count === 0 ? { text, count } : { text: out.toString(), count };
}

/**
 * A Transform that redacts `set` from a byte stream: its output equals
 * {@link redactBytes} of the whole input for any chunking. `redactions` counts
 * the spans replaced.
 */
export class RedactStream extends Transform {
  readonly #set: RedactionSet;
  #carry: Buffer = Buffer.alloc(0);
  redactions = 0;

  constructor(set: RedactionSet) {
    super();
    this.#set = set;
  }

  /** Bytes received but not yet emitted. */
  get held(): number {
    return this.#carry.length;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const buf = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { out, count, cut } = redactPrefix(buf, this.#set, false);
    this.#carry = Buffer.from(buf.subarray(cut));
    this.redactions += count;
    if (out.length > 0) this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const { out, count } = redactPrefix(this.#carry, this.#set, true);
    this.#carry = Buffer.alloc(0);
    this.redactions += count;
    if (out.length > 0) this.push(out);
    done();
  }
}
