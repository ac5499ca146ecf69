/**
 * Known values split across adjacent JSON fields: an upstream that stores what
 * the agent sends can hand a value back in pieces (`{"a":"sk-12","b":"34…"}`),
 * each piece too short to match. For JSON (tool results, and responses with a
 * JSON media type) the engine also reads the *leaves* (object keys, strings and
 * numbers) in the order the agent sees them, decoded, concatenated with
 * nothing between them, and searches every form there (with the decoded views
 * of src/redact/engine.ts). An occurrence that spans two or more leaves blanks
 * every leaf it touches (each replaced whole by the marker string); one inside
 * a single leaf is left to the byte or string pass, which redacts just the
 * value.
 *
 * Memory is linear in the document: the concatenation is at most the size of
 * its strings (a JSON body is read whole, up to the caller's cap). A value
 * split with other content between the pieces (a piece, then an unrelated
 * field, then the rest) is not found; neither is a split in a stream that is
 * not one JSON document (NDJSON, server-sent events, form bodies, HTML).
 */
import { MAX_REDACT_DEPTH } from '../detect/secrets.ts';
import { findSpans, redactBytes, redactString, REDACTED_VALUE, type RedactionSet } from './engine.ts';

/**
 * The leaves to blank in a document whose leaves are `leaves` (in reading
 * order; `isKey[i]` marks object keys): those touched by an occurrence that
 * spans two or more adjacent leaves, searched twice, among the values alone
 * (`{"a":"sk-12","b":"34…"}`: the key between does not hide the split) and
 * among keys and values together. `count`: such occurrences.
 */
export function splitAcross(leaves: readonly string[], isKey: readonly boolean[], set: RedactionSet): { blank: Set<number>; count: number } {
  const all = splitLeaves(leaves, set);
  const valueIdx: number[] = [];
  for (let i = 0; i < leaves.length; i++) if (!isKey[i]) valueIdx.push(i);
  if (valueIdx.length === leaves.length) return all;
  const values = splitLeaves(
    valueIdx.map((i) => leaves[i] as string),
    set,
  );
  for (const j of values.blank) all.blank.add(valueIdx[j] as number);
  return { blank: all.blank, count: all.count + values.count };
}

/** The indices of the leaves that an occurrence spanning two or more of them touches, and how many such occurrences. */
export function splitLeaves(leaves: readonly string[], set: RedactionSet): { blank: Set<number>; count: number } {
  const blank = new Set<number>();
  if (set.forms.length === 0 || leaves.length < 2) return { blank, count: 0 };
  const bufs = leaves.map((l) => Buffer.from(l, 'utf8'));
  const starts: number[] = [];
  let at = 0;
  for (const b of bufs) {
    starts.push(at);
    at += b.length;
  }
  const leafAt = (offset: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    // Empty leaves share their start with the next one: take the last leaf that holds the byte.
    while (lo > 0 && (bufs[lo] as Buffer).length === 0) lo--;
    return lo;
  };
  let count = 0;
  for (const [s, e] of findSpans(Buffer.concat(bufs), set)) {
    const first = leafAt(s);
    const last = leafAt(e - 1);
    if (first === last) continue;
    count++;
    for (let i = first; i <= last; i++) blank.add(i);
  }
  return { blank, count };
}

const TOO_DEEP = '[REDACTED:too-deep]';

/**
 * Redacts `set`'s values from a JSON value (a tool result): every string and
 * key redacted as text ({@link redactString}), and every leaf that is part of
 * a value split across adjacent leaves (in `JSON.stringify` order: the order
 * the agent reads) replaced whole. Returns a new value; the input is not
 * modified. A container deeper than `MAX_REDACT_DEPTH` is replaced by
 * `"[REDACTED:too-deep]"` (counted), as `redactDeep` does.
 */
export function redactJsonValue(value: unknown, set: RedactionSet): { value: unknown; count: number } {
  if (set.forms.length === 0) return { value, count: 0 };
  const leaves: string[] = [];
  const isKey: boolean[] = [];
  const collect = (v: unknown, depth: number): void => {
    if (typeof v === 'string') {
      leaves.push(v);
      isKey.push(false);
    } else if (typeof v === 'number' && Number.isFinite(v)) {
      leaves.push(JSON.stringify(v));
      isKey.push(false);
    } else if (typeof v === 'object' && v !== null && depth < MAX_REDACT_DEPTH) {
      if (Array.isArray(v)) for (const x of v) collect(x, depth + 1);
      else
        for (const [k, x] of Object.entries(v)) {
          leaves.push(k);
          isKey.push(true);
          collect(x, depth + 1);
        }
    }
  };
  collect(value, 0);
  const split = splitAcross(leaves, isKey, set);
  let count = split.count;
  let i = 0;
  const text = (s: string): string => {
    if (split.blank.has(i++)) return REDACTED_VALUE;
    const r = redactString(s, set);
    count += r.count;
    return r.text;
  };
  const rebuild = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return text(v);
    if (typeof v === 'number' && Number.isFinite(v)) return split.blank.has(i++) ? REDACTED_VALUE : v;
    if (typeof v !== 'object' || v === null) return v;
    if (depth >= MAX_REDACT_DEPTH) {
      count++;
      return TOO_DEEP;
    }
    if (Array.isArray(v)) return v.map((x) => rebuild(x, depth + 1));
    // fromEntries defines own properties, so a "__proto__" key stays data.
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [text(k), rebuild(x, depth + 1)]));
  };
  return { value: rebuild(value, 0), count };
}

/**
 * The string and number tokens of a JSON text that `JSON.parse` accepted, in
 * source order: `[start, end)` in UTF-16 offsets and the decoded leaf. In a
 * valid JSON text outside strings there are only structural characters,
 * whitespace, numbers and literals, so a string token is a `"` up to the next
 * unescaped `"`, and a number a run of `-+.0-9eE`.
 */
function jsonLeaves(text: string): { start: number; end: number; leaf: string; key: boolean }[] {
  const out: { start: number; end: number; leaf: string; key: boolean }[] = [];
  const n = text.length;
  for (let i = 0; i < n; ) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (j < n && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const raw = text.slice(i, j + 1);
      let k = j + 1;
      while (k < n && /[ \t\r\n]/.test(text[k] as string)) k++;
      out.push({ start: i, end: j + 1, leaf: JSON.parse(raw) as string, key: text[k] === ':' });
      i = j + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[-+.0-9eE]/.test(text[j] as string)) j++;
      out.push({ start: i, end: j, leaf: text.slice(i, j), key: false });
      i = j;
    } else i++;
  }
  return out;
}

/**
 * Redacts `set`'s values from a JSON body (whole, read up to the caller's
 * cap): the byte engine over the body, plus the leaves of a value split across
 * adjacent fields, each replaced in place by `"[REDACTED:vault-secret]"` (the
 * rest of the body keeps its bytes). A body that is not valid JSON (UTF-8) gets
 * the byte engine only. Pure.
 */
export function redactJsonBody(buf: Buffer, set: RedactionSet): { out: Buffer; count: number; split: number } {
  if (set.forms.length === 0) return { out: buf, count: 0, split: 0 };
  const text = buf.toString('utf8');
  try {
    JSON.parse(text);
  } catch {
    return { ...redactBytes(buf, set), split: 0 };
  }
  const tokens = jsonLeaves(text);
  const { blank, count } = splitAcross(
    tokens.map((t) => t.leaf),
    tokens.map((t) => t.key),
    set,
  );
  if (blank.size === 0) return { ...redactBytes(buf, set), split: 0 };
  let rewritten = '';
  let at = 0;
  const marker = JSON.stringify(REDACTED_VALUE);
  for (const i of [...blank].sort((a, b) => a - b)) {
    const t = tokens[i] as { start: number; end: number };
    rewritten += text.slice(at, t.start) + marker;
    at = t.end;
  }
  rewritten += text.slice(at);
  const r = redactBytes(Buffer.from(rewritten, 'utf8'), set);
  return { out: r.out, count: r.count + count, split: count };
}

/** Whether a Content-Type names JSON (`application/json`, `text/json`, any `+json` suffix, RFC 6839 §3.1), parameters ignored. */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return type === 'application/json' || type === 'text/json' || /^[a-z]+\/[!#$&^_.+\-a-z0-9]+\+json$/.test(type);
}
