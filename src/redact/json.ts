/**
 * Known values split across JSON fields: an upstream that stores what the
 * agent sends can hand a value back in pieces (`{"a":"sk-12","b":"34…"}`, or
 * two MCP content items `{"type":"text","text":"sk-12"}`,
 * `{"type":"text","text":"34…"}`), each piece too short to match. For JSON
 * (tool results, and responses with a JSON media type) the engine also reads
 * the *leaves* (object keys, strings and numbers, decoded) in the order the
 * agent sees them and searches every form in three concatenations of them,
 * nothing put between the pieces:
 *
 * 1. every leaf, keys included (a value split across keys);
 * 2. the values alone (the keys between `"a"` and `"b"` do not hide the split);
 * 3. for each property name, the values under it (a value's property name is
 *    the nearest one on its path: array items take their array's), so pieces in
 *    records of one shape (`text` of content items, `name` of rows) are read
 *    together, whatever fields lie between them.
 *
 * An occurrence that spans two or more leaves blanks every leaf it touches
 * (each replaced whole by the marker string); one inside a single leaf is left
 * to the byte or string pass, which redacts just the value.
 *
 * Memory is linear in the document: each concatenation is at most the size of
 * its leaves (a JSON body is read whole, up to the caller's cap). Not found: a
 * value split with other content between the pieces that none of the three
 * readings removes (a piece, an unrelated value of another field, the rest),
 * and a split in a stream that is not one JSON document (NDJSON, server-sent
 * events, form bodies, HTML).
 */
import { MAX_REDACT_DEPTH } from '../detect/secrets.ts';
import { findSpans, redactBytes, redactString, REDACTED_VALUE, type RedactionSet } from './engine.ts';

/** One leaf of a JSON document: its decoded text and, for a value, its nearest property name (null for a key, or a value with no property above it). */
export interface JsonLeaf {
  readonly text: string;
  readonly key: boolean;
  readonly field: string | null;
}

/**
 * The leaves to blank (indices into `leaves`, in reading order): those touched
 * by an occurrence that spans two or more leaves in one of the three readings
 * of the module header. `count`: such occurrences.
 */
export function splitAcross(leaves: readonly JsonLeaf[], set: RedactionSet): { blank: Set<number>; count: number } {
  const blank = new Set<number>();
  let count = 0;
  const read = (indices: readonly number[]): void => {
    if (indices.length < 2) return;
    const r = splitLeaves(
      indices.map((i) => (leaves[i] as JsonLeaf).text),
      set,
    );
    count += r.count;
    for (const j of r.blank) blank.add(indices[j] as number);
  };
  const all = leaves.map((_l, i) => i);
  read(all);
  const values = all.filter((i) => !(leaves[i] as JsonLeaf).key);
  if (values.length < all.length) read(values);
  const fields = new Map<string, number[]>();
  for (const i of values) {
    const f = (leaves[i] as JsonLeaf).field;
    if (f === null) continue;
    let list = fields.get(f);
    if (!list) fields.set(f, (list = []));
    list.push(i);
  }
  // One field holding every value is reading 2 again.
  if (fields.size > 1 || (fields.size === 1 && ([...fields.values()][0] as number[]).length < values.length)) for (const list of fields.values()) read(list);
  return { blank, count };
}

/** The indices of the leaves that an occurrence spanning two or more of them touches, and how many such occurrences. */
export function splitLeaves(leaves: readonly string[], set: RedactionSet): { blank: Set<number>; count: number } {
  const blank = new Set<number>();
  if (set.forms.length === 0 || leaves.length < 2) return { blank, count: 0 };
  // One encoding of the joined leaves, with each leaf's byte offset from its UTF-8 length (no
  // buffer per leaf). Leaves that end and begin with halves of a surrogate pair would encode
  // differently joined: then each leaf is encoded on its own.
  const lengths = leaves.map((l) => Buffer.byteLength(l, 'utf8'));
  const starts: number[] = [];
  let at = 0;
  for (const n of lengths) {
    starts.push(at);
    at += n;
  }
  let joined = Buffer.from(leaves.join(''), 'utf8');
  if (joined.length !== at) joined = Buffer.concat(leaves.map((l) => Buffer.from(l, 'utf8')));
  const leafAt = (offset: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    // Empty leaves share their start with the next one: take the last leaf that holds the byte.
    while (lo > 0 && lengths[lo] === 0) lo--;
    return lo;
  };
  let count = 0;
  for (const [s, e] of findSpans(joined, set)) {
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
  const leaves: JsonLeaf[] = [];
  const collect = (v: unknown, depth: number, field: string | null): void => {
    if (typeof v === 'string') leaves.push({ text: v, key: false, field });
    else if (typeof v === 'number' && Number.isFinite(v)) leaves.push({ text: JSON.stringify(v), key: false, field });
    else if (typeof v === 'object' && v !== null && depth < MAX_REDACT_DEPTH) {
      if (Array.isArray(v)) for (const x of v) collect(x, depth + 1, field);
      else
        for (const [k, x] of Object.entries(v)) {
          leaves.push({ text: k, key: true, field: null });
          collect(x, depth + 1, k);
        }
    }
  };
  collect(value, 0, null);
  const split = splitAcross(leaves, set);
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
 * The leaves of a JSON text that `JSON.parse` accepted, in source order, with
 * their `[start, end)` UTF-16 offsets. In a valid JSON text outside strings
 * there are only structural characters, whitespace, numbers and literals, so
 * a string token is a `"` up to the next unescaped `"` (a key when a `:`
 * follows), and a number a run of `-+.0-9eE`; `{` and `[` open a container
 * whose values take the nearest property name.
 */
function jsonLeaves(text: string): (JsonLeaf & { start: number; end: number })[] {
  const out: (JsonLeaf & { start: number; end: number })[] = [];
  const n = text.length;
  /** Per open container: whether it is an object, and the nearest property name above its values. */
  const stack: { obj: boolean; field: string | null }[] = [];
  let pending: string | null = null;
  const fieldOfValue = (): string | null => {
    const top = stack.at(-1);
    return top === undefined ? null : top.obj ? pending : top.field;
  };
  for (let i = 0; i < n; ) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (j < n && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const leaf = JSON.parse(text.slice(i, j + 1)) as string;
      let k = j + 1;
      while (k < n && /[ \t\r\n]/.test(text[k] as string)) k++;
      const key = text[k] === ':' && stack.at(-1)?.obj === true;
      out.push({ start: i, end: j + 1, text: leaf, key, field: key ? null : fieldOfValue() });
      if (key) pending = leaf;
      i = j + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[-+.0-9eE]/.test(text[j] as string)) j++;
      out.push({ start: i, end: j, text: text.slice(i, j), key: false, field: fieldOfValue() });
      i = j;
    } else {
      if (c === 0x7b || c === 0x5b) stack.push({ obj: c === 0x7b, field: fieldOfValue() });
      else if (c === 0x7d || c === 0x5d) stack.pop();
      i++;
    }
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
  const { blank, count } = splitAcross(tokens, set);
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
