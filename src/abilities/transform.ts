/**
 * The response transform of an ability: what the model gets back from the API.
 *
 * A JSON response (a `…/json` or `…+json` content type, or no content type and
 * a body that parses) keeps only the `response.select` fields (dotted paths;
 * at any level an array is mapped item by item), and is serialized compactly.
 * Anything else is text (UTF-8). The text is capped at `response.maxBytes`
 * bytes, marker included: a JSON array keeps as many whole items as fit, any
 * other text is cut on a UTF-8 character boundary; both end with a line saying
 * what was cut.
 *
 * Pure: no I/O. Bounded: selection only descends as deep as the paths and at
 * most {@link MAX_ARRAY_DEPTH} nested arrays.
 */

/** Nested arrays deeper than this are dropped by a selection (no API answers like that). */
const MAX_ARRAY_DEPTH = 16;
/** Bytes kept free for the truncation marker line. */
const MARKER_BUDGET = 64;

/** A compiled selection: field name → the whole value (`true`) or a nested selection. */
type Selection = ReadonlyMap<string, Selection | true>;

function compile(paths: readonly string[]): Selection {
  const root = new Map<string, Map<string, unknown> | true>();
  for (const path of paths) {
    let node: Map<string, unknown> = root as Map<string, unknown>;
    const names = path.split('.');
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const existing = node.get(name);
      if (existing === true) break; // a shorter path already keeps the whole value
      if (i === names.length - 1) {
        node.set(name, true);
        break;
      }
      let next = existing as Map<string, unknown> | undefined;
      if (next === undefined) node.set(name, (next = new Map()));
      node = next;
    }
  }
  return root as Selection;
}

const ABSENT: unique symbol = Symbol('absent');

function apply(value: unknown, sel: Selection, arrays: number): unknown {
  if (Array.isArray(value)) {
    if (arrays >= MAX_ARRAY_DEPTH) return ABSENT;
    return value.map((v) => apply(v, sel, arrays + 1)).filter((v) => v !== ABSENT);
  }
  if (value === null || typeof value !== 'object') return ABSENT;
  const out: [string, unknown][] = [];
  for (const [name, sub] of sel) {
    if (!Object.hasOwn(value, name)) continue;
    const v = (value as Record<string, unknown>)[name];
    const kept = sub === true ? v : apply(v, sub, 0);
    if (kept !== ABSENT) out.push([name, kept]);
  }
  // fromEntries defines own properties: a `__proto__` field stays a field.
  return Object.fromEntries(out);
}

/**
 * `value` with only the `paths` kept (see the module docs). A top-level value
 * that is neither an object nor an array is returned as it is.
 */
export function selectFields(value: unknown, paths: readonly string[]): unknown {
  if (value === null || typeof value !== 'object') return value;
  const out = apply(value, compile(paths), 0);
  return out === ABSENT ? [] : out;
}

/** Whether a `content-type` names JSON (`application/json`, `…+json`, `text/json`). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return essence === 'application/json' || essence === 'text/json' || /^application\/[a-z0-9!#$&^_.-]+\+json$/.test(essence);
}

/** What the model gets: `text`, whether it was cut, and whether the response was read as JSON. */
export interface Shaped {
  readonly text: string;
  readonly truncated: boolean;
  readonly json: boolean;
}

/** The longest prefix of `text` of at most `max` UTF-8 bytes that ends on a character boundary. */
export function cutUtf8(text: string, max: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return text;
  let end = Math.max(0, max);
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/**
 * The body as JSON when it is a JSON response (a JSON content type, or none
 * and a body that parses), else undefined.
 */
export function parseJsonBody(body: string, contentType: string | undefined): { readonly value: unknown } | undefined {
  if (!isJsonContentType(contentType) && !(contentType === undefined && body.length > 0)) return undefined;
  try {
    return { value: JSON.parse(body) as unknown };
  } catch {
    return undefined;
  }
}

/**
 * Shapes a response body (already free of echoed secrets) for the model.
 * `select` applies to JSON only; `maxBytes` caps the returned text.
 */
export function shapeResponse(body: string, contentType: string | undefined, select: readonly string[] | undefined, maxBytes: number): Shaped {
  const parsed = parseJsonBody(body, contentType);
  let value: unknown = parsed?.value;
  let json = parsed !== undefined;
  let text = body;
  if (json) {
    try {
      if (select !== undefined) value = selectFields(value, select);
      text = JSON.stringify(value);
    } catch {
      // Too deep to serialize (stack): fall back to the text as received.
      json = false;
      text = body;
    }
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, truncated: false, json };
  const budget = Math.max(0, maxBytes - MARKER_BUDGET);
  if (json && Array.isArray(value)) {
    // Keep whole items: the model gets valid JSON.
    let used = 2;
    let kept = 0;
    for (const item of value) {
      const size = Buffer.byteLength(JSON.stringify(item) ?? 'null', 'utf8') + (kept > 0 ? 1 : 0);
      if (used + size > budget) break;
      used += size;
      kept++;
    }
    if (budget >= 2) {
      const out = `${JSON.stringify(value.slice(0, kept))}\n[truncated by Bastion: ${kept} of ${value.length} items]`;
      return { text: cutUtf8(out, maxBytes), truncated: true, json };
    }
  }
  const head = cutUtf8(text, budget);
  // A maxBytes smaller than the marker still bounds the whole text.
  return { text: cutUtf8(`${head}\n[truncated by Bastion: ${Buffer.byteLength(head, 'utf8')} of ${bytes} bytes]`, maxBytes), truncated: true, json };
}
