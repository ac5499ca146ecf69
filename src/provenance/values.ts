/**
 * Values and their normalized forms, for provenance (issue 13; docs/injection-defense.md).
 *
 * Provenance asks where an argument's value came from: did it appear in an
 * untrusted tool result, in the end user's own messages, in a trusted tool's
 * result, or nowhere? Texts are read into a set of *forms* (strings with a
 * one-letter kind prefix) and an argument value into the forms it would have
 * had in a text; a value "appeared" in a text when one of its forms is among
 * the text's. Pure and linear in the text's length: texts are split on white
 * space into tokens, and every pattern runs on one token (or, for IBANs and
 * phone numbers written in groups, a bounded window of tokens).
 *
 * ## Normalization (both sides)
 *
 * Unicode NFKC, lower case, white space (and `<`, `>`: markup) runs to one space, and the
 * punctuation that wraps words in prose stripped from each token's ends
 * (quotes, brackets, `, . ; : ! ? *`); `@ $ € % / # + - _` stay.
 *
 * ## Forms
 *
 * | form | of a text | of an argument value |
 * | --- | --- | --- |
 * | `t:` words | every run of 1–{@link MAX_NGRAM} tokens; every line and every JSON string leaf, whole (first {@link MAX_FORM_CHARS} characters) | the value's tokens when there are at most {@link MAX_NGRAM}, else its first {@link MAX_FORM_CHARS} characters (a value too large to track is tracked by its prefix, not skipped) |
 * | `e:` address | each token that is an email address (`mailto:` and `<>` removed) | the value when it is one |
 * | `h:` host | the host of each `http(s)://` URL and each token that is a domain name; an address's domain | the value's host when it is a URL or domain |
 * | `n:` number | each token that is a number (`1,000.50`, `€100`, `100.00` → `1000.5`, `100`) and JSON number leaves | the value when it is a number (or a numeric string) |
 * | `i:` IBAN | each IBAN (ISO 13616, grouped in fours or not) | the value, spaces removed, when it is one |
 * | `d:` digits | each phone-like run of 7–20 digits with `+ ( ) - .` and spaces | the value's digits when it is phone-like |
 *
 * An argument value longer than {@link MAX_NGRAM} words (an email body, a
 * message) also carries *inner* forms: the addresses, hosts, IBANs and
 * phone numbers inside it, so a body that smuggles an address read from an
 * untrusted page is traced to that page.
 */

/** Longest run of tokens recorded as one form: names, subjects, file names and phrases up to this many words. */
export const MAX_NGRAM = 5;
/** Longest form in characters; longer lines, leaves and values are taken by this prefix. */
export const MAX_FORM_CHARS = 512;
/** Most characters of one text read (the rest of a longer result is not recorded). */
export const MAX_TEXT_CHARS = 256 * 1024;
/** Shortest normalized value whose provenance is asked (shorter ones are trivial: `a`, `1`). */
export const MIN_VALUE_CHARS = 2;

const WRAP = /^[\s"'`()[\]{}<>,.;:!?*\u2018\u2019\u201c\u201d\u00ab\u00bb]+|[\s"'`()[\]{}<>,.;:!?*\u2018\u2019\u201c\u201d\u00ab\u00bb]+$/g;
const EMAIL = /^[a-z0-9._%+-]{1,64}@([a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,8})$/;
const DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,8}[a-z]{2,24}$/;
const NUMBER = /^[$€£]?[-+]?(?:\d{1,3}(?:,\d{3}){1,6}|\d{1,16})(?:\.\d{1,8})?(?:[$€£%])?$/;
const IBAN = /^[a-z]{2}\d{2}[a-z0-9]{10,30}$/;
const PHONE_CHARS = /^[+(]?[\d()\-. ]{7,40}$/;

/** The normalized text: NFKC, lower case, white space runs as one space, trimmed. */
export function normalizeText(s: string): string {
  // `<` and `>` separate words (markup: `<p>a@b.example</p>` holds the address a@b.example); format
  // characters (zero-width, bidi controls) are dropped, so `ev\u200bil@x.example` is `evil@x.example`.
  return s.normalize('NFKC').toLowerCase().replace(/\p{Cf}+/gu, '').replace(/[\s<>]+/g, ' ').trim();
}

/** One token with its wrapping punctuation stripped. */
function stripToken(t: string): string {
  // Most tokens are bare words: skip the regular expression when both ends are letters or digits.
  if (isWordChar(t.charCodeAt(0)) && isWordChar(t.charCodeAt(t.length - 1))) return t;
  return t.replace(WRAP, '');
}

/** ASCII letters and digits (the common case of a token's first and last character). */
function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

/** Whether a token can hold an entity at all: every one has a digit, `@`, `.` or `:`. */
const ENTITY_HINT = /[\d@.:]/;

/** The tokens of a normalized text (empty ones dropped). */
function tokensOf(norm: string): string[] {
  const out: string[] = [];
  for (const raw of norm.split(' ')) {
    const t = stripToken(raw);
    if (t !== '') out.push(t);
  }
  return out;
}

/** The canonical form of a number token (`1,000.50` → `1000.5`), or undefined. */
function numberForm(t: string): string | undefined {
  if (!NUMBER.test(t)) return undefined;
  const n = Number(t.replace(/[$€£%,+]/g, ''));
  return Number.isFinite(n) ? String(n) : undefined;
}

/** The host of a URL token (WHATWG URL parser), or undefined. */
function urlHost(t: string): string | undefined {
  if (!t.startsWith('http://') && !t.startsWith('https://')) return undefined;
  try {
    const host = new URL(t).hostname;
    return host === '' ? undefined : host.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/** The entity forms of one token (address, host, number, IBAN, digits). */
function entityForms(t: string, out: Set<string>): void {
  if (!ENTITY_HINT.test(t)) return;
  const bare = t.startsWith('mailto:') ? t.slice(7) : t;
  const email = EMAIL.exec(bare);
  if (email !== null) {
    out.add(`e:${bare}`);
    out.add(`h:${email[1] as string}`);
    return;
  }
  const host = urlHost(t);
  if (host !== undefined) {
    out.add(`h:${host}`);
    return;
  }
  if (DOMAIN.test(t)) out.add(`h:${t}`);
  const n = numberForm(t);
  if (n !== undefined) out.add(`n:${n}`);
  if (IBAN.test(t)) out.add(`i:${t}`);
  // An IBAN written with dashes or dots between its groups.
  else if (/^[a-z]{2}\d{2}[a-z0-9.-]{10,48}$/.test(t)) {
    const compact = t.replace(/[.-]/g, '');
    if (IBAN.test(compact)) out.add(`i:${compact}`);
  }
  if (PHONE_CHARS.test(t)) {
    const digits = t.replace(/\D/g, '');
    if (digits.length >= 7 && digits.length <= 20) out.add(`d:${digits}`);
  }
}

/**
 * IBANs and phone numbers written in groups across tokens (`DE89 3704 0044 …`,
 * `+1 (555) 010-0199`): joined windows of up to 9 tokens starting at each
 * token that could begin one.
 */
function groupedForms(tokens: readonly string[], out: Set<string>): void {
  for (let i = 0; i < tokens.length; i++) {
    const first = tokens[i] as string;
    // Both kinds start with digits within their first four characters (an IBAN's check digits, a number).
    if (!/\d/.test(first.slice(0, 4))) continue;
    if (/^[a-z]{2}\d{2}$/.test(first) || /^[a-z]{2}\d{2}[a-z0-9]{1,4}$/.test(first)) {
      let joined = first;
      for (let k = i + 1; k < tokens.length && k <= i + 8 && /^[a-z0-9]{1,4}$/.test(tokens[k] as string); k++) {
        joined += tokens[k] as string;
        if (IBAN.test(joined)) out.add(`i:${joined}`);
      }
    }
    if (/^[+(]?\d[\d()\-.]*$/.test(first)) {
      let digits = first.replace(/\D/g, '');
      for (let k = i + 1; k < tokens.length && k <= i + 5 && /^[(]?\d[\d()\-.]*$/.test(tokens[k] as string); k++) {
        digits += (tokens[k] as string).replace(/\D/g, '');
        if (digits.length >= 7 && digits.length <= 20) out.add(`d:${digits}`);
      }
    }
  }
}

/** The `t:` form of a normalized value: its tokens when few, else its prefix. */
function wordsForm(norm: string, tokens: readonly string[]): string {
  return tokens.length <= MAX_NGRAM ? `t:${tokens.join(' ')}` : `t:${norm.slice(0, MAX_FORM_CHARS)}`;
}

/**
 * What one text (a tool result, a user message) shows, split by how it shows it:
 * - `text`: forms inside free text (a line, a string of more than a few words,
 *   a plain-text page): prose, where an instruction and the values it names live;
 * - `labels`: forms inside short labels (a JSON string of two to five words: a
 *   subject, a name, a title): text too, but not prose;
 * - `fields`: whole values of structured fields (a JSON string leaf without
 *   spaces: an address, a file name, a date; a number leaf);
 * - `handles`: identifiers the tool itself assigns (leaves under keys such as
 *   `id`, `file_id`, `uuid`), each with the forms of its record's other short
 *   fields (its siblings): a handle is linked to what names the object it
 *   identifies, so an argument that is a handle inherits where its object's
 *   name was mentioned (a file the user named, or that a third party's text
 *   named).
 */
export interface Reading {
  readonly text: Set<string>;
  /** Words inside short labels (a JSON string leaf of two to {@link MAX_NGRAM} words: a subject, a name): text, but not prose. */
  readonly labels: Set<string>;
  readonly fields: Set<string>;
  readonly handles: Map<string, string[]>;
}

/** An empty {@link Reading}. */
export function newReading(): Reading {
  return { text: new Set(), labels: new Set(), fields: new Set(), handles: new Map() };
}

/** Keys whose values are identifiers the tool assigns (`id`, `file_id`, `eventId`, `uuid`, `ref`). */
const HANDLE_KEY = /^(?:id|uuid|guid|ref|key)$|(?:[_-]id|[a-z]Id|[_-]uuid|[_-]ref)$/;
/** Most siblings linked to one handle. */
const MAX_SIBLINGS = 8;

function size(r: Reading): number {
  return r.text.size + r.labels.size + r.fields.size + r.handles.size;
}

/**
 * Reads `text` into `into` (see {@link Reading}), stopping once it holds
 * `budget` forms. A text that parses as JSON is read leaf by leaf.
 */
export function readText(text: string, into: Reading, budget: number = Number.POSITIVE_INFINITY): void {
  const before = new Set(into.handles.keys());
  readTextInner(text, into, budget);
  distinctSiblings(into, before);
}

/**
 * Keeps, as a handle's siblings, only what tells its record apart: a field
 * value shared by several records of the same reading (a folder `inbox`, a
 * status `unread`) names none of them, and a single short word (under six
 * characters) is too common to stand for one object.
 */
function distinctSiblings(into: Reading, before: ReadonlySet<string>): void {
  const count = new Map<string, number>();
  const fresh = [...into.handles].filter(([h]) => !before.has(h));
  for (const [, siblings] of fresh) for (const f of new Set(siblings)) count.set(f, (count.get(f) ?? 0) + 1);
  for (const [h, siblings] of fresh) into.handles.set(h, siblings.filter((f) => (count.get(f) ?? 0) < 2 && (f.includes(' ') || f.length >= 8)));
}

function readTextInner(text: string, into: Reading, budget: number): void {
  const src = text.length > MAX_TEXT_CHARS ? text.slice(0, MAX_TEXT_CHARS) : text;
  const first = src.trimStart()[0];
  if (first === '{' || first === '[') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(src);
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined) {
      readJsonInner(parsed, into, budget, 0);
      return;
    }
  }
  readPlain(src, into.text, budget, into);
}

/** Reads a JSON value (a structured result) into `into`, within `budget`. */
export function readJson(value: unknown, into: Reading, budget: number = Number.POSITIVE_INFINITY): void {
  const before = new Set(into.handles.keys());
  readJsonInner(value, into, budget, 0);
  distinctSiblings(into, before);
}

function readJsonInner(value: unknown, into: Reading, budget: number, depth: number): void {
  if (size(into) >= budget || depth > 32) return;
  if (typeof value === 'string') {
    readLeaf(value, into, budget);
    return;
  }
  if (typeof value === 'number') {
    if (Number.isFinite(value)) into.fields.add(`n:${String(value)}`);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) readJsonInner(v, into, budget, depth + 1);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const entries = Object.entries(value);
  let handle: string[] | undefined;
  const siblings: string[] = [];
  for (const [k, v] of entries) {
    if (HANDLE_KEY.test(k) && (typeof v === 'number' || (typeof v === 'string' && v.length <= 128))) {
      // A handle is the tool's own identifier, not content: recorded as a handle only.
      const forms = formsOfValue(v);
      if (forms !== undefined) handle = [...(handle ?? []), ...forms.own];
      continue;
    } else if (typeof v === 'string' && siblings.length < MAX_SIBLINGS) {
      const forms = formsOfValue(v);
      if (forms !== undefined && tokensOf(normalizeText(v.slice(0, MAX_FORM_CHARS))).length <= MAX_NGRAM) siblings.push(...forms.own.filter((f) => f.startsWith('t:')));
    }
    readJsonInner(v, into, budget, depth + 1);
  }
  if (handle !== undefined) for (const h of handle) into.handles.set(h, siblings.slice(0, MAX_SIBLINGS));
}

/** One JSON string leaf: a field when it is one token, else free text (its whole value a field too). */
function readLeaf(value: string, into: Reading, budget: number): void {
  const v = value.length > MAX_TEXT_CHARS ? value.slice(0, MAX_TEXT_CHARS) : value;
  if (!/\s/.test(v.trim())) {
    const forms = formsOfValue(v);
    if (forms !== undefined) for (const f of forms.own) into.fields.add(f);
    return;
  }
  const whole = formsOfValue(v);
  if (whole !== undefined) for (const f of whole.own) if (f.startsWith('t:')) into.fields.add(f);
  // A leaf of a few words is a label (a subject, a name, a title): the words inside it are text, but
  // not prose, where an instruction naming an object would stand (see the tracker's handle links).
  const label = whole !== undefined && !whole.long;
  readPlain(v, label ? into.labels : into.text, budget, into, whole?.own.find((f) => f.startsWith('t:')));
}

/** Obfuscations of `@` and `.` in addresses and host names written to get past filters: `[at]`, `(dot)`, `[.]`, ` at `, ` dot `. */
const OBFUSCATED = /\[at\]|\(at\)|\{at\}|\[dot\]|\(dot\)|\{dot\}|\[\.\]|\(\.\)| at [a-z0-9-]+ dot /;

/** The line with obfuscated `@` and `.` written plainly (only called when {@link OBFUSCATED} matches). */
function deobfuscate(norm: string): string {
  return norm
    .replace(/ ?(?:\[at\]|\(at\)|\{at\}) ?/g, '@')
    .replace(/ ?(?:\[dot\]|\(dot\)|\{dot\}|\[\.\]|\(\.\)) ?/g, '.')
    .replace(/([a-z0-9._%+-]{1,64}) at ([a-z0-9-]{1,63}(?: dot [a-z0-9-]{1,63}){1,8})\b/g, (_m, user: string, host: string) => `${user}@${host.replace(/ dot /g, '.')}`);
}

function readPlain(text: string, out: Set<string>, budget: number, into: Reading, skip?: string): void {
  for (const line of text.split(/\r?\n/)) {
    if (size(into) >= budget) return;
    const norm = normalizeText(line);
    if (norm === '') continue;
    if (OBFUSCATED.test(norm)) for (const t of tokensOf(deobfuscate(norm))) entityForms(t, out);
    const tokens = tokensOf(norm);
    if (tokens.length === 0) continue;
    // The whole line (a subject, a file name with spaces, a sentence), unless it is the leaf read as a field.
    const whole = wordsForm(norm.replace(WRAP, ''), tokens);
    if (whole !== skip) out.add(whole);
    for (let i = 0; i < tokens.length && size(into) < budget; i++) {
      let form = 't:';
      for (let n = 0; n < MAX_NGRAM && i + n < tokens.length; n++) {
        form = n === 0 ? form + (tokens[i] as string) : `${form} ${tokens[i + n] as string}`;
        // The run that is the whole leaf is the field's form, not a mention inside text.
        if (form !== skip) out.add(form);
      }
      entityForms(tokens[i] as string, out);
    }
    groupedForms(tokens, out);
  }
}

/** The forms an argument value is looked up by: `own` (the value as a whole), `inner` (entities inside a long value). */
export interface ValueForms {
  readonly own: readonly string[];
  readonly inner: readonly string[];
  /** More than {@link MAX_NGRAM} words: free text (a body, a message), not a single value. */
  readonly long: boolean;
}

/**
 * The forms of one argument value (a string or number leaf), or undefined for a
 * trivial value (a boolean, null, a string under {@link MIN_VALUE_CHARS}
 * normalized characters). Never throws.
 */
export function formsOfValue(value: unknown): ValueForms | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? { own: [`n:${String(value)}`], inner: [], long: false } : undefined;
  if (typeof value !== 'string') return undefined;
  const norm = normalizeText(value.length > MAX_TEXT_CHARS ? value.slice(0, MAX_TEXT_CHARS) : value).replace(WRAP, '');
  if (norm.length < MIN_VALUE_CHARS) return undefined;
  const tokens = tokensOf(norm);
  if (tokens.length === 0) return undefined;
  const own = new Set<string>([wordsForm(norm, tokens)]);
  if (tokens.length === 1) entityForms(tokens[0] as string, own);
  else {
    const compact = norm.replace(/ /g, '');
    if (IBAN.test(compact)) own.add(`i:${compact}`);
    if (PHONE_CHARS.test(norm)) {
      const digits = norm.replace(/\D/g, '');
      if (digits.length >= 7 && digits.length <= 20) own.add(`d:${digits}`);
    }
  }
  const inner = new Set<string>();
  if (tokens.length > MAX_NGRAM) {
    for (const t of tokens) {
      const found = new Set<string>();
      entityForms(t, found);
      for (const f of found) if (!f.startsWith('n:')) inner.add(f);
    }
    const grouped = new Set<string>();
    groupedForms(tokens, grouped);
    for (const f of grouped) inner.add(f);
  }
  return { own: [...own], inner: [...inner], long: tokens.length > MAX_NGRAM };
}

/**
 * The hosts a value sends to, for host policy (`hostNotIn`, `context.hosts`):
 * the host of every `http(s)://` URL in it, and the value itself when the
 * argument is named like a host (`host`, `hostname`, `domain`, `server`) and
 * is a domain name or address. Bare domain-like words in prose (`report.pdf`)
 * are not hosts. Lower case.
 */
export function hostsOfValue(value: string, argName = ''): string[] {
  const out = new Set<string>();
  const tokens = tokensOf(normalizeText(value.slice(0, MAX_TEXT_CHARS)));
  for (const t of tokens) {
    const host = urlHost(t);
    if (host !== undefined) out.add(host);
  }
  if (tokens.length === 1 && /host|domain|server/i.test(argName)) {
    const t = tokens[0] as string;
    // A port after a name or IPv4 address is not part of the host.
    const bare = /^[^:]+:\d{1,5}$/.test(t) ? t.slice(0, t.lastIndexOf(':')) : t;
    if (DOMAIN.test(bare) || /^[\d.]+$/.test(bare) || /^[0-9a-f:]+$/.test(t)) out.add(/^[0-9a-f:]+$/.test(t) && !/^[^:]+:\d{1,5}$/.test(t) ? t : bare);
  }
  return [...out];
}

/** The email addresses in a value (lower case). */
export function emailsOfValue(value: string): string[] {
  const forms = new Set<string>();
  for (const t of tokensOf(normalizeText(value.slice(0, MAX_TEXT_CHARS)))) entityForms(t, forms);
  return [...forms].filter((f) => f.startsWith('e:')).map((f) => f.slice(2));
}

