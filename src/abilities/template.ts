/**
 * An ability's URL template (RFC 6570) and its safe expansion.
 *
 * Parsing is strict and done once per ability: expressions are checked against
 * the RFC 6570 §2 grammar (url-template itself accepts anything), and only the
 * operators whose expansion percent-encodes every reserved character are
 * allowed: simple `{x}` (level 1) and `{.x}`, `{/x}`, `{;x}`, `{?x}`, `{&x}`
 * (level 3). Reserved `{+x}` and fragment `{#x}` (level 2) pass `/`, `?`, `#`
 * and `%XX` through unencoded, which is exactly what a parameter must not do;
 * level 4 modifiers (`{x:3}`, `{x*}`) are refused too.
 *
 * Expansion is url-template's, one expression at a time, so Bastion knows for
 * each value whether it lands in the path or in the query. A value in the path
 * fills one segment and is refused ({@link unsafePathValue}) when it is empty,
 * a dot segment, or holds `/`, `\`, `?`, `#`, `@` or a control character, in
 * itself or after percent-decoding (any depth: `%2F`, `%252F`, `%2e%2e`). The
 * expanded URL is then parsed (WHATWG) and must keep the ability's origin, no
 * credentials, no fragment, and a pathname equal to the expanded path (a
 * difference means the parser resolved something, such as a dot segment).
 *
 * Pure: no I/O.
 */
import { parseTemplate, type PrimitiveValue } from 'url-template';

/** The operators an ability template may use (see the module docs). */
export type TemplateOperator = '' | '.' | '/' | ';' | '?' | '&';

/** One part of a parsed template. `inQuery`: the part comes after the start of the query. */
export type TemplatePart =
  | { readonly kind: 'literal'; readonly text: string; readonly inQuery: boolean }
  | { readonly kind: 'expression'; readonly operator: TemplateOperator; readonly names: readonly string[]; readonly inQuery: boolean };

/** A parsed URL template: the literal `scheme://authority` prefix, then the parts of the rest. */
export interface UrlTemplate {
  /** `https://api.example.com` as written (no expression can reach into it). */
  readonly authority: string;
  readonly parts: readonly TemplatePart[];
  /** Every variable name, in order of first use. */
  readonly names: readonly string[];
}

const ALLOWED_OPERATORS: ReadonlySet<string> = new Set(['.', '/', ';', '?', '&']);
/** `varname` of RFC 6570 §2.3 without pct-encoded characters (they cannot name a JSON property usefully). */
const VARNAME = /^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$/;
/** Characters RFC 6570 §2.1 forbids in literals (besides `{` and `}`, handled by the tokenizer). */
const BAD_LITERAL = /[\u0000-\u0020\u007f"'<>\\^`|]/;

/**
 * Parses an ability URL template. `authority` must be the literal
 * `scheme://host[:port]` prefix of `template` (from `abilityOrigin`'s match).
 * @returns the template, or a message saying what is wrong (no value is echoed).
 */
export function parseUrlTemplate(template: string): UrlTemplate | { readonly error: string } {
  const m = /^https?:\/\/[^/?#{}]+/.exec(template);
  if (!m) return { error: 'must start with a literal http(s)://host' };
  const authority = m[0];
  const parts: TemplatePart[] = [];
  const names: string[] = [];
  let inQuery = false;
  let i = authority.length;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    const close = template.indexOf('}', i);
    if (close !== -1 && (open === -1 || close < open)) return { error: `unbalanced } at character ${close + 1}` };
    const end = open === -1 ? template.length : open;
    if (end > i) {
      const text = template.slice(i, end);
      if (BAD_LITERAL.test(text)) return { error: 'a literal part holds a space, control character, quote or one of <>\\^`|' };
      if (/%(?![0-9A-Fa-f]{2})/.test(text)) return { error: 'a literal % must begin a percent-encoded octet' };
      if (text.includes('#')) return { error: 'must not hold a fragment (#): it is never sent' };
      parts.push({ kind: 'literal', text, inQuery });
      if (text.includes('?')) inQuery = true;
    }
    if (open === -1) break;
    const stop = template.indexOf('}', open + 1);
    if (stop === -1) return { error: `unbalanced { at character ${open + 1}` };
    const body = template.slice(open + 1, stop);
    if (body.includes('{')) return { error: `nested { at character ${open + 1}` };
    const first = body.charAt(0);
    let operator: TemplateOperator = '';
    let list = body;
    if (first === '+' || first === '#') {
      return { error: `{${first}…} (reserved or fragment expansion) passes /, ? and # through unencoded; use {name}, {/name} or {?name}` };
    }
    if (ALLOWED_OPERATORS.has(first)) {
      operator = first as TemplateOperator;
      list = body.slice(1);
    } else if (/^[=,!@|]/.test(first)) return { error: `operator ${first} is reserved by RFC 6570` };
    const vars = list.split(',');
    for (const v of vars) {
      if (/[:*]/.test(v)) return { error: `{${body}}: prefix (:n) and explode (*) modifiers are RFC 6570 level 4, not supported` };
      if (!VARNAME.test(v)) return { error: `{${body}}: ${JSON.stringify(v.slice(0, 64))} is not a variable name (A-Z a-z 0-9 _, dot-separated)` };
      if (!names.includes(v)) names.push(v);
    }
    if (operator === '?' || operator === '&') inQuery = true;
    parts.push({ kind: 'expression', operator, names: vars, inQuery });
    i = stop + 1;
  }
  return { authority, parts, names };
}

/** Why a value cannot fill a path segment; undefined when it can. */
export type UnsafeReason = 'empty' | 'dot_segment' | 'separator' | 'control' | 'type';

/**
 * Whether a value may fill one path segment (see the module docs). Percent
 * sequences are decoded byte by byte, repeatedly, and every layer is checked,
 * so no depth of encoding hides a separator or a dot segment.
 */
export function unsafePathValue(value: string): UnsafeReason | undefined {
  let cur = value;
  for (let depth = 0; depth < 8; depth++) {
    if (cur === '') return 'empty';
    if (cur === '.' || cur === '..') return 'dot_segment';
    if (/[\u0000-\u001f\u007f]/.test(cur)) return 'control';
    if (/[/\\?#@]/.test(cur)) return 'separator';
    const next = cur.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === cur) return undefined;
    cur = next;
  }
  // Eight layers of encoding: no legitimate value looks like that.
  return 'separator';
}

/** A parameter value as url-template takes it, or undefined when it must not go in a URL. */
function urlValue(v: unknown, arrays: boolean): PrimitiveValue | PrimitiveValue[] | undefined | null {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (arrays && Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean')) return v as PrimitiveValue[];
  return null;
}

/** The expanded URL, or the parameter that could not be placed and why. */
export type Expansion =
  | { readonly ok: true; readonly url: URL; readonly path: string }
  | { readonly ok: false; readonly param: string | null; readonly reason: UnsafeReason | 'origin' | 'normalized' | 'missing' };

/**
 * Expands `template` with `args` and checks the result (see the module docs).
 * `arrayParams` are the names whose schema allows an array. `origin` is the
 * ability's origin (`URL.origin` form).
 */
export function expandUrl(template: UrlTemplate, args: Readonly<Record<string, unknown>>, origin: string, arrayParams: ReadonlySet<string>): Expansion {
  const context: Record<string, PrimitiveValue | PrimitiveValue[]> = {};
  for (const name of template.names) {
    const raw = args[name];
    // An empty list expands to nothing, like an absent value.
    if (raw === undefined || raw === null || (Array.isArray(raw) && raw.length === 0)) continue;
    const v = urlValue(raw, arrayParams.has(name));
    if (v === null || v === undefined) return { ok: false, param: name, reason: 'type' };
    context[name] = v;
  }
  let rest = '';
  for (const part of template.parts) {
    if (part.kind === 'literal') {
      rest += parseTemplate(part.text).expand({});
      continue;
    }
    if (!part.inQuery) {
      for (const name of part.names) {
        const v = context[name];
        if (v === undefined) {
          // A simple {x} in the path with no value would leave an empty segment.
          if (part.operator === '') return { ok: false, param: name, reason: 'missing' };
          continue;
        }
        for (const one of Array.isArray(v) ? v : [v]) {
          const why = unsafePathValue(String(one));
          if (why !== undefined) return { ok: false, param: name, reason: why };
        }
      }
    }
    const sub: Record<string, PrimitiveValue | PrimitiveValue[]> = {};
    for (const name of part.names) if (context[name] !== undefined) sub[name] = context[name];
    rest += parseTemplate(`{${part.operator}${part.names.join(',')}}`).expand(sub);
  }
  const expanded = template.authority + rest;
  let url: URL;
  try {
    url = new URL(expanded);
  } catch {
    return { ok: false, param: null, reason: 'origin' };
  }
  if (url.origin !== origin || url.username !== '' || url.password !== '' || url.hash !== '') return { ok: false, param: null, reason: 'origin' };
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  if (url.pathname !== (rawPath === '' ? '/' : rawPath)) return { ok: false, param: null, reason: 'normalized' };
  return { ok: true, url, path: url.pathname };
}
