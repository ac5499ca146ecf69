/**
 * Redaction of what a model sends back to an agent: credentials the detector
 * finds (`[REDACTED:<rule>]`, src/detect/secrets.ts) and known secret values
 * (`[REDACTED:vault-secret]`: the end user's vaulted secrets, searched in the
 * literal forms of src/redact/forms.ts: as they are, JSON-, HTML- and
 * percent-escaped, base64 at every alignment, hex), in whole texts, in streams of text, and inside
 * JSON (tool-call arguments).
 *
 * ## One redaction, whole or streamed
 *
 * {@link redactText} is the definition: the detector's findings and the known
 * values' occurrences in the whole text, overlapping ones merged (the earliest
 * start names the merged span), each span replaced by one marker.
 * {@link StreamingTextRedactor} produces the same output for any split of the
 * text into chunks: concatenating what `push()` and `end()` return equals
 * `redactText(whole).text`. It emits a character only once no later text can
 * change whether it is redacted, and holds back the rest:
 *
 * - the trailing run of non-whitespace characters (no secret of the detector's
 *   rules contains ASCII whitespace, except those below), capped at the longest
 *   match a rule can make ({@link MAX_RUN_HOLD_CHARS}: 32 777 characters, set by
 *   the JWT rule; beyond it the run is emitted in steps of {@link RUN_STEP_CHARS});
 * - from the keyword of each rule whose secret may contain whitespace (those
 *   whose secret is the whole `name = value` match, `curl -u "user:pass word"`,
 *   NuGet passwords: found by reading the rules' patterns at load), until the
 *   longest match from that keyword has arrived, or, for patterns that cannot
 *   cross a line, until the line ends;
 * - from `-----BEGIN ` until the block is decided: its header turns out not to
 *   be a private key's, its END line is in (at most {@link MAX_PEM_CHARS}
 *   characters on), or no END line can come in range; a truncated key (no END)
 *   longer than that is redacted as it streams, one line at a time;
 * - around Kubernetes `kind: Secret` manifests: from a `data:` line for
 *   {@link K8S_WINDOW} characters (a later `kind: Secret` line reaches back
 *   that far), and the unfinished line near a `kind:`;
 * - for the known values, the longest tail that could still begin one (a proper
 *   prefix of one of their forms), and a whole occurrence reaching into that tail.
 *
 * Every rule's left context (the `password =` before a value, the `curl` before
 * `-u`) is read from a window of already emitted text, so a finding is the same
 * whether its keyword was emitted long ago or not. The detector is run on the
 * window and the held text only when something can be emitted, so the work per
 * chunk is bounded by the window, not by the length of the stream.
 *
 * A span that begins before the point up to which text can go is certain
 * (every hold ends before anything still undecided), though its end may not
 * be: its marker goes out at once and later calls swallow the rest, so a long
 * truncated key or a 30 000-character token does not stall the stream.
 *
 * Exactness has one limit. The window begins just after a whitespace
 * character found at most 512 characters before {@link CONTEXT_CHARS} back
 * (2·K8S_WINDOW + 128 near a `kind:`; {@link MAX_RUN_HOLD_CHARS} further inside
 * a run emitted in steps). Only a text with no whitespace for tens of
 * kilobytes can make it begin inside a token, where a look-behind at its start
 * reads nothing and the detector may decide otherwise than on the whole text.
 * A span that then seems to begin in emitted text is redacted from there on
 * (over-redaction, never a leak of what the window shows). The tests check
 * equality on random texts and on adversarial long runs, and that no
 * credential the detector finds in the whole text survives in the stream.
 */
import { findSecrets, MAX_PEM_CHARS, MAX_REDACT_DEPTH, PEM_PATTERN_SOURCES, redactDeep } from '../detect/secrets.ts';
import { K8S_WINDOW, SECRET_RULE_TABLE, type SecretRule } from '../detect/secret-rules.ts';
import { REDACTED_VALUE } from '../redact/engine.ts';
import { literalForms } from '../redact/forms.ts';

export { K8S_WINDOW, MAX_PEM_CHARS };

/** What to redact besides the detector's findings. */
export interface TextRedactionOptions {
  /** Known secret values (non-empty strings); each is searched in every literal form of src/redact/forms.ts. */
  readonly values?: readonly string[];
}

/** A redacted text: the text with each redacted span replaced, how many spans, and which rules named them (each once, in order of first use). */
export interface TextRedaction {
  readonly text: string;
  readonly count: number;
  readonly rules: readonly string[];
}

/** The rule id of a known value's marker. */
export const VAULT_RULE = 'vault-secret';

// ---------------------------------------------------------------------------
// Known values.

interface Forms {
  readonly forms: readonly string[];
  /** Longest form in UTF-16 code units (0 without values). */
  readonly longest: number;
}

const NO_FORMS: Forms = Object.freeze({ forms: Object.freeze([]), longest: 0 });
const FORMS_CACHE = new WeakMap<readonly string[], Forms>();

/**
 * The forms searched for `values`: the literal forms of each value
 * (`literalForms`, src/redact/forms.ts), deduplicated, empty strings dropped.
 * A value that cannot be percent-encoded (a lone surrogate) is searched in its
 * other forms. Throws `TypeError` for a non-string.
 */
function formsOf(opts: TextRedactionOptions | undefined): Forms {
  const values = opts?.values;
  if (values === undefined || values.length === 0) return NO_FORMS;
  const cached = FORMS_CACHE.get(values);
  if (cached) return cached;
  const set = new Set<string>();
  for (const v of values) {
    if (typeof v !== 'string') throw new TypeError('redactText: values must be strings');
    for (const f of literalForms(v)) set.add(f);
  }
  const forms = Object.freeze([...set]);
  const out: Forms = Object.freeze({ forms, longest: Math.max(0, ...forms.map((f) => f.length)) });
  FORMS_CACHE.set(values, out);
  return out;
}

// ---------------------------------------------------------------------------
// Spans and their replacement.

interface Span {
  readonly start: number;
  readonly end: number;
  readonly rule: string;
  /** Streaming: how far the span certainly reaches (a known value's extent is certain; a detector finding's may still grow by merging). */
  readonly sure?: number;
}

/** Occurrences of each form in `text` from `from` on (leftmost, non-overlapping per form), offset by `base`. */
function valueSpans(text: string, forms: readonly string[], from: number, base: number, out: Span[]): void {
  for (const f of forms) {
    for (let i = text.indexOf(f, from); i >= 0; i = text.indexOf(f, i + f.length)) {
      out.push({ start: base + i, end: base + i + f.length, rule: VAULT_RULE, sure: base + i + f.length });
    }
  }
}

/**
 * Merges overlapping spans: sorted by start, longer first, a known value
 * before a detector finding at the same span; an overlapping span extends the
 * earlier one, which keeps its rule.
 */
function mergeSpans(spans: Span[]): Span[] {
  if (spans.length <= 1) return spans;
  spans.sort((a, b) => a.start - b.start || b.end - a.end || (a.rule === VAULT_RULE ? -1 : 0) - (b.rule === VAULT_RULE ? -1 : 0));
  const merged: Span[] = [];
  for (const s of spans) {
    const last = merged.at(-1);
    if (last && s.start < last.end) {
      if (s.end > last.end || (s.sure ?? -1) > (last.sure ?? -1)) {
        merged[merged.length - 1] = { start: last.start, end: Math.max(s.end, last.end), rule: last.rule, sure: Math.max(s.sure ?? -1, last.sure ?? -1) };
      }
    } else merged.push(s);
  }
  return merged;
}

function marker(rule: string): string {
  return rule === VAULT_RULE ? REDACTED_VALUE : `[REDACTED:${rule}]`;
}

/**
 * Redacts `text`: every credential {@link findSecrets} finds and every
 * occurrence of a known value (in any of its forms), overlapping spans merged
 * into one `[REDACTED:<rule>]` (`[REDACTED:vault-secret]` for known values).
 * Pure. Throws `TypeError` when `text` or a value is not a string.
 */
export function redactText(text: string, opts?: TextRedactionOptions): TextRedaction {
  if (typeof text !== 'string') throw new TypeError('redactText: text must be a string');
  const { forms } = formsOf(opts);
  const spans: Span[] = findSecrets(text);
  valueSpans(text, forms, 0, 0, spans);
  if (spans.length === 0) return { text, count: 0, rules: [] };
  const merged = mergeSpans(spans);
  let out = '';
  let at = 0;
  const rules = new Set<string>();
  for (const s of merged) {
    out += text.slice(at, s.start) + marker(s.rule);
    rules.add(s.rule);
    at = s.end;
  }
  return { text: out + text.slice(at), count: merged.length, rules: [...rules] };
}

/**
 * Redacts every string in a JSON value with {@link redactText} (object keys are
 * kept), like `redactDeep` of the detector plus known values. Returns a new
 * value; the input is not modified. A container nested deeper than
 * `MAX_REDACT_DEPTH` is replaced whole by `"[REDACTED:too-deep]"` (counted,
 * rule `too-deep`).
 */
export function redactValue(value: unknown, opts?: TextRedactionOptions): { value: unknown; count: number; rules: string[] } {
  return redactDeep(value, (text) => redactText(text, opts));
}

// ---------------------------------------------------------------------------
// What the detector's patterns can match, read from their sources at load.
// Every rule pattern is bounded (checked by test/detect/secret-rules.test.ts),
// so the longest match and whether a match can hold whitespace are computable.

type Node =
  | { readonly t: 'seq'; readonly items: readonly Node[] }
  | { readonly t: 'alt'; readonly alts: readonly Node[] }
  | { readonly t: 'group'; readonly capture: number; readonly look: 'ahead' | 'behind' | null; readonly body: Node }
  | { readonly t: 'atom'; readonly ws: boolean; readonly nl: boolean }
  | { readonly t: 'quant'; readonly min: number; readonly max: number; readonly body: Node }
  | { readonly t: 'empty' };

/** The characters the streaming redactor treats as ending a token. */
const WS_CHARS = [' ', '\t', '\n', '\r', '\f', '\v'];
const EMPTY: Node = { t: 'empty' };

/** Parses a regular expression source (the subset the rules use) into a tree; throws `Error` on backreferences or bad syntax. */
function parsePattern(source: string, flags: string): Node {
  const testFlags = flags.replace(/[gyd]/g, '');
  let i = 0;
  let groups = 0;
  const atom = (tok: string): Node => {
    const re = new RegExp(`^(?:${tok})$`, testFlags);
    return { t: 'atom', ws: WS_CHARS.some((c) => re.test(c)), nl: re.test('\n') || re.test('\r') };
  };
  const quantified = (node: Node): Node => {
    let min: number;
    let max: number;
    const c = source[i];
    if (c === '*' || c === '+' || c === '?') {
      min = c === '+' ? 1 : 0;
      max = c === '?' ? 1 : Infinity;
      i++;
    } else if (c === '{') {
      const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(source.slice(i, i + 24));
      if (!m) return node;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] ? Number(m[3]) : Infinity;
      i += m[0].length;
    } else return node;
    if (source[i] === '?') i++;
    return { t: 'quant', min, max, body: node };
  };
  const term = (): Node => {
    const c = source[i] as string;
    if (c === '(') {
      i++;
      let look: 'ahead' | 'behind' | null = null;
      let capture = 0;
      if (source.startsWith('?:', i)) i += 2;
      else if (source.startsWith('?=', i) || source.startsWith('?!', i)) {
        look = 'ahead';
        i += 2;
      } else if (source.startsWith('?<=', i) || source.startsWith('?<!', i)) {
        look = 'behind';
        i += 3;
      } else if (source.startsWith('?<', i)) {
        i = source.indexOf('>', i) + 1;
        capture = ++groups;
      } else capture = ++groups;
      const body = alternation();
      if (source[i] !== ')') throw new Error(`pattern: unbalanced group at ${i}`);
      i++;
      return { t: 'group', capture, look, body };
    }
    if (c === '[') {
      const start = i++;
      if (source[i] === '^') i++;
      while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
      i++;
      return atom(source.slice(start, i));
    }
    if (c === '\\') {
      const n = source[i + 1] ?? '';
      if (n === 'b' || n === 'B') {
        i += 2;
        return EMPTY;
      }
      if (/[1-9k]/.test(n)) throw new Error('pattern: backreferences are not bounded');
      const len = n === 'x' ? 4 : n === 'u' ? 6 : n === 'c' ? 3 : 2;
      const tok = source.slice(i, i + len);
      i += len;
      return atom(tok);
    }
    i++;
    if (c === '^' || c === '$') return EMPTY;
    return atom(c === '.' ? '.' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  };
  const sequence = (): Node => {
    const items: Node[] = [];
    while (i < source.length && source[i] !== '|' && source[i] !== ')') items.push(quantified(term()));
    return { t: 'seq', items };
  };
  const alternation = (): Node => {
    const alts = [sequence()];
    while (source[i] === '|') {
      i++;
      alts.push(sequence());
    }
    return alts.length === 1 ? (alts[0] as Node) : { t: 'alt', alts };
  };
  const tree = alternation();
  if (i !== source.length) throw new Error(`pattern: unexpected ")" at ${i}`);
  return tree;
}

/** Most characters a match can examine from where it starts (lookaheads counted as consumed, lookbehinds not). */
function extent(n: Node): number {
  switch (n.t) {
    case 'seq':
      return n.items.reduce((a, x) => a + extent(x), 0);
    case 'alt':
      return Math.max(...n.alts.map(extent));
    case 'group':
      return n.look === 'behind' ? 0 : extent(n.body);
    case 'atom':
      return 1;
    case 'quant': {
      const e = extent(n.body);
      return e === 0 ? 0 : n.max * e;
    }
    case 'empty':
      return 0;
  }
}

/** Whether a consuming character (outside lookarounds) can be whitespace (`ws`) or a line break (`nl`). */
function admits(n: Node, what: 'ws' | 'nl'): boolean {
  switch (n.t) {
    case 'seq':
      return n.items.some((x) => admits(x, what));
    case 'alt':
      return n.alts.some((x) => admits(x, what));
    case 'group':
      return n.look === null && admits(n.body, what);
    case 'atom':
      return n[what];
    case 'quant':
      return n.max > 0 && admits(n.body, what);
    case 'empty':
      return false;
  }
}

/** The path from `n` to capture group `g` (ancestors first), or null. */
function pathTo(n: Node, g: number): Node[] | null {
  if (n.t === 'group' && n.capture === g) return [n];
  const kids = n.t === 'seq' ? n.items : n.t === 'alt' ? n.alts : n.t === 'group' || n.t === 'quant' ? [n.body] : [];
  for (const k of kids) {
    const p = pathTo(k, g);
    if (p) return [n, ...p];
  }
  return null;
}

/** What the streaming redactor needs to know about one rule. */
interface RuleShape {
  readonly rule: SecretRule;
  /** Most characters from the keyword that an attempt examines (match and lookahead). */
  readonly reach: number;
  /** Whether the secret (or what the match holds after it) can contain whitespace: the rule needs a hold from its keyword. */
  readonly wsInSecret: boolean;
  /** Whether a match can contain a line break. */
  readonly crossesLines: boolean;
  /** Most characters of the match before its secret begins. */
  readonly prefix: number;
}

function shapeOf(rule: SecretRule): RuleShape {
  const tree = parsePattern(rule.re.source, rule.re.flags);
  const back = rule.back ?? 0;
  const reach = extent(tree) + back;
  const crossesLines = admits(tree, 'nl');
  const path = rule.group === undefined ? null : pathTo(tree, rule.group);
  // The secret is the group only when the group always takes part in a match: not
  // inside an alternative or an optional part (then the whole match can be the secret).
  const solid = path !== null && path.every((n) => n.t !== 'alt' && (n.t !== 'quant' || n.min > 0));
  if (!solid || path === null) return { rule, reach, wsInSecret: admits(tree, 'ws'), crossesLines, prefix: back };
  let ws = admits(path.at(-1) as Node, 'ws');
  let prefix = back;
  for (let d = 0; d < path.length - 1; d++) {
    const n = path[d] as Node;
    const child = path[d + 1] as Node;
    if (n.t === 'seq') {
      const at = n.items.indexOf(child);
      for (const x of n.items.slice(0, at)) prefix += extent(x);
      for (const x of n.items.slice(at + 1)) ws ||= admits(x, 'ws');
    } else if (n.t === 'quant' && n.max > 1) ws ||= admits(n.body, 'ws');
  }
  return { rule, reach, wsInSecret: ws, crossesLines, prefix };
}

const K8S_RULE = 'kubernetes-secret';
const SHAPES: readonly RuleShape[] = SECRET_RULE_TABLE.filter((r) => r.id !== K8S_RULE).map(shapeOf);
/** The rules whose secret can contain whitespace: held from their keyword. */
const HOLD_SHAPES = SHAPES.filter((s) => s.wsInSecret);

/**
 * Most characters a finding of a rule whose secret has no whitespace can span
 * from its start to the last character its pattern reads (PEM and Kubernetes
 * rules aside): the cap on the held run of non-whitespace characters.
 */
export const MAX_RUN_HOLD_CHARS = Math.max(...SHAPES.filter((s) => !s.wsInSecret).map((s) => s.reach)) + 1;
/** A run longer than {@link MAX_RUN_HOLD_CHARS} is emitted in steps of this many characters (so the detector does not re-read the run at every chunk). */
export const RUN_STEP_CHARS = 4096;
/** Characters of the left context read by rule checks beyond the pattern (the `curl` a `-u` needs within 1024 characters; names of 64). */
const ACCEPT_LOOKBACK = 1024 + 128;
/** Left context the detector reads before the held text, in characters (more near a `kind:`). */
export const CONTEXT_CHARS = ACCEPT_LOOKBACK + Math.max(...SHAPES.map((s) => s.prefix));
/** How far back the window's start looks for a whitespace character to begin after. */
const ALIGN_CHARS = 512;
/** Left context near a `kind:` line: a Kubernetes Secret reaches back K8S_WINDOW characters, and its data a further K8S_WINDOW. */
const K8S_CONTEXT_CHARS = 2 * K8S_WINDOW + 128;
/** Longest Kubernetes data entry line (a key of 64 characters and a value of 8192, with indentation and quotes). */
const K8S_LINE_CHARS = 8192 + 256;

const PEM_HEADER = new RegExp(PEM_PATTERN_SOURCES.header, 'y');
const PEM_LINE = new RegExp(PEM_PATTERN_SOURCES.line, 'y');
const PEM_HEADER_CHARS = extent(parsePattern(PEM_PATTERN_SOURCES.header, '')) + 1;
const PEM_FOOTER_CHARS = extent(parsePattern(PEM_PATTERN_SOURCES.footer, '')) + 1;
const PEM_LINE_CHARS = extent(parsePattern(PEM_PATTERN_SOURCES.line, '')) + 1;
const PEM_BEGIN = '-----BEGIN ';
const PEM_END = '-----END ';
/** How long a PEM block can stay undecided: its END line may begin up to MAX_PEM_CHARS after `-----BEGIN`. */
const PEM_DECIDE_CHARS = MAX_PEM_CHARS + PEM_END.length;

/** Trigger literals, found in each new chunk: keywords of the whitespace rules, PEM markers, `kind:` and `ata:` of Kubernetes manifests. */
const TRIGGER_WORDS = [...new Set([...HOLD_SHAPES.flatMap((s) => s.rule.keywords), PEM_BEGIN.toLowerCase(), PEM_END.toLowerCase(), 'kind:', 'ata:'])];
const TRIGGER_RE = new RegExp(TRIGGER_WORDS.map((w) => w.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('|'), 'gi');
const TRIGGER_OVERLAP = Math.max(...TRIGGER_WORDS.map((w) => w.length)) - 1;
const HOLD_BY_KEYWORD = new Map<string, RuleShape[]>();
for (const s of HOLD_SHAPES) {
  for (const k of s.rule.keywords) HOLD_BY_KEYWORD.set(k, [...(HOLD_BY_KEYWORD.get(k) ?? []), s]);
}

function isWs(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** A hold from a keyword: text from `start` is held until `until` characters exist, or (`lineBound`) a line break follows `from`. */
interface KeywordHold {
  readonly start: number;
  readonly from: number;
  readonly until: number;
  readonly lineBound: boolean;
}

/** A `-----BEGIN ` being watched: header pending, END pending, or a truncated key (no END in range) whose lines are still coming. */
interface PemWatch {
  readonly at: number;
  bodyStart: number;
  truncated: boolean;
  /** Truncated keys: where the next body line is searched (the start of the last line not yet settled). */
  linesFrom: number;
}

// ---------------------------------------------------------------------------
// The streaming redactor.

/**
 * Incremental redactor of one text stream: the concatenation of what
 * {@link StreamingTextRedactor.push} and {@link StreamingTextRedactor.end}
 * return equals {@link redactText} of the whole text, for any split into
 * chunks (see the module header for what is held back, and its one limit).
 * Offsets and counts are UTF-16 code units. Not reusable after `end()`.
 */
export class StreamingTextRedactor {
  readonly #forms: Forms;
  /** Text from absolute offset #base to the end of what was pushed: left context, then the held text. */
  #buf = '';
  #base = 0;
  /** Absolute offset of the first character not yet emitted. */
  #emitted = 0;
  #lastWs = -1;
  #lastNl = -1;
  #lastKind = -Infinity;
  /** The last characters pushed (for trigger literals cut by a chunk boundary). */
  #tail = '';
  #holds: KeywordHold[] = [];
  #pems: PemWatch[] = [];
  #ends: number[] = [];
  #data: number[] = [];
  /** A truncated PEM key being streamed: `[start, end)` is certainly redacted, more may follow. */
  #pemOpen: { start: number; end: number } | null = null;
  /** The span replaced last (absolute; `end`: how far it has been swallowed), which later text may continue. */
  #last: Span | null = null;
  #count = 0;
  readonly #rules = new Set<string>();
  #ended = false;

  /**
   * `opts.values`: known secret values. `context`: text that came before the
   * stream and was emitted already (read as left context only, never emitted).
   * Throws `TypeError` for a value that is not a string.
   */
  constructor(opts?: TextRedactionOptions, context = '') {
    this.#forms = formsOf(opts);
    if (context.length > 0) {
      // Holds that begin in the context still apply: a `curl -u "` there is continued here.
      this.#append(context.slice(-K8S_CONTEXT_CHARS));
      this.#emitted = this.#end;
    }
  }

  /** Spans redacted so far. */
  get count(): number {
    return this.#count;
  }

  /** Rules of the spans redacted so far (each once, in order of first use). */
  get rules(): readonly string[] {
    return [...this.#rules];
  }

  /** Characters pushed but not yet emitted. */
  get held(): number {
    return this.#ended ? 0 : this.#end - this.#emitted;
  }

  get #end(): number {
    return this.#base + this.#buf.length;
  }

  /** Feeds `chunk`; returns the redacted text that is safe to emit now (possibly ''). Throws `TypeError` after `end()` or for a non-string. */
  push(chunk: string): string {
    if (this.#ended) throw new TypeError('StreamingTextRedactor: push after end');
    if (typeof chunk !== 'string') throw new TypeError('StreamingTextRedactor: chunk must be a string');
    if (chunk.length === 0) return '';
    this.#append(chunk);
    const safe = this.#safePoint();
    return safe > this.#emitted ? this.#emit(safe, false) : '';
  }

  /** Ends the stream: returns the held remainder, redacted. Idempotent ('' the second time). */
  end(): string {
    if (this.#ended) return '';
    this.#pemHold(true);
    const out = this.#end > this.#emitted ? this.#emit(this.#end, true) : '';
    this.#ended = true;
    this.#buf = '';
    this.#base = this.#emitted;
    this.#holds = [];
    this.#pems = [];
    this.#ends = [];
    this.#data = [];
    return out;
  }

  #append(chunk: string): void {
    const from = this.#end;
    this.#buf += chunk;
    for (let i = chunk.length - 1; i >= 0; i--) {
      if (isWs(chunk.charCodeAt(i))) {
        this.#lastWs = from + i;
        break;
      }
    }
    const nl = chunk.lastIndexOf('\n');
    if (nl >= 0) this.#lastNl = from + nl;
    this.#scanTriggers(chunk, from);
  }

  /**
   * Finds trigger literals in `chunk` (which begins at absolute offset `from`),
   * with the end of the previous text before it for literals cut by a chunk
   * boundary. Reads only the chunk and that tail, never the whole buffer.
   */
  #scanTriggers(chunk: string, from: number): void {
    const text = this.#tail + chunk;
    const off = from - this.#tail.length;
    this.#tail = text.slice(-TRIGGER_OVERLAP);
    TRIGGER_RE.lastIndex = 0;
    for (let m = TRIGGER_RE.exec(text); m !== null; m = TRIGGER_RE.exec(text)) {
      const at = off + m.index;
      const word = m[0];
      TRIGGER_RE.lastIndex = m.index + 1; // overlapping literals (`--user` holds `-u`)
      if (at + word.length <= from) continue; // found in the previous chunk
      const lower = word.toLowerCase();
      if (lower === 'kind:') this.#lastKind = at;
      else if (word === 'ata:') this.#data.push(at);
      else if (word === PEM_BEGIN) this.#pems.push({ at, bodyStart: -1, truncated: false, linesFrom: -1 });
      // An END line matters only to a block that began before it.
      else if (word === PEM_END && this.#pems.length > 0) this.#ends.push(at);
      for (const s of HOLD_BY_KEYWORD.get(lower) ?? []) {
        const start = at - (s.rule.back ?? 0);
        this.#holds.push({ start, from: at, until: start + s.reach + 1, lineBound: !s.crossesLines });
      }
    }
  }

  /** The absolute offset up to which the held text can be emitted now. */
  #safePoint(): number {
    const end = this.#end;
    const emitted = this.#emitted;
    // The trailing run of non-whitespace, capped; a long run moves in steps.
    const run = this.#lastWs + 1;
    let safe: number;
    if (end - run <= MAX_RUN_HOLD_CHARS) safe = run;
    else {
      const capped = end - MAX_RUN_HOLD_CHARS;
      safe = capped - emitted >= RUN_STEP_CHARS ? capped : Math.max(emitted, run);
    }
    // Known values: hold only the tail that could begin one (the longest suffix that is a
    // proper prefix of a form), and any whole occurrence reaching into that tail (a later
    // occurrence overlapping it is redacted together with it).
    if (this.#forms.longest > 0) safe = Math.min(safe, this.#valueHold());
    // Keywords of the rules whose secret can hold whitespace.
    if (this.#holds.length > 0) {
      this.#holds = this.#holds.filter((h) => end < h.until && !(h.lineBound && this.#lastNl >= h.from));
      for (const h of this.#holds) safe = Math.min(safe, h.start);
    }
    if (this.#pems.length > 0) safe = Math.min(safe, this.#pemHold(false));
    if (this.#lastKind > -Infinity || this.#data.length > 0) safe = Math.min(safe, this.#k8sHold());
    if (safe <= emitted) return emitted;
    // Never between the two halves of a surrogate pair.
    if (safe < end) {
      const c = this.#buf.charCodeAt(safe - this.#base - 1);
      if (c >= 0xd800 && c <= 0xdbff) safe--;
    }
    return safe;
  }

  /**
   * The offset from which known-value text must be held: the start of the longest
   * suffix of the buffer that is a proper prefix of some form, moved back to the
   * start of a complete occurrence that reaches past it. Reads at most about twice
   * the longest form's length per form, so ordinary prose is held only while it
   * could still spell the start of a value.
   */
  #valueHold(): number {
    const buf = this.#buf;
    const n = buf.length;
    let best = 0;
    for (const f of this.#forms.forms) {
      const first = f.charCodeAt(0);
      for (let k = Math.min(f.length - 1, n); k > best; k--) {
        if (buf.charCodeAt(n - k) === first && buf.startsWith(f.slice(0, k), n - k)) {
          best = k;
          break;
        }
      }
    }
    let hold = n - best;
    if (best > 0) {
      for (const f of this.#forms.forms) {
        // A complete occurrence [i, i + f.length) with i < hold < i + f.length.
        const from = Math.max(0, hold - f.length + 1);
        for (let i = buf.indexOf(f, from); i !== -1 && i < hold; i = buf.indexOf(f, i + 1)) {
          if (i + f.length > hold) {
            hold = i;
            break;
          }
        }
      }
    }
    return this.#base + hold;
  }

  /**
   * Where the first undecided PEM block begins (`#end` when none), deciding
   * watches front to back (later ones wait). A truncated key (no END line in
   * range) is followed line by line: `#pemOpen` marks its settled part, which
   * can be replaced now. `final`: the text is complete, everything is decided.
   */
  #pemHold(final: boolean): number {
    const end = this.#end;
    while (this.#pems.length > 0) {
      const w = this.#pems[0] as PemWatch;
      if (!w.truncated) {
        // The detector reads the whole block from the window: nothing to do at the end,
        // and before it, hold until the block is decided.
        if (final) return end;
        if (w.bodyStart < 0) {
          PEM_HEADER.lastIndex = w.at - this.#base;
          if (PEM_HEADER.test(this.#buf)) w.bodyStart = this.#base + PEM_HEADER.lastIndex;
          else if (end - w.at >= PEM_HEADER_CHARS) {
            this.#pems.shift(); // not a private key's header
            continue;
          } else return w.at;
        }
        const e = this.#ends.find((x) => x >= w.bodyStart);
        if (e !== undefined && e - w.at <= MAX_PEM_CHARS) {
          if (end - e < PEM_FOOTER_CHARS) return w.at;
          // Decided: a whole key, a short sample, or body lines that stop before a foreign END line.
          this.#pems.shift();
          this.#ends = this.#ends.filter((x) => x > w.at);
          continue;
        }
        if (e === undefined && end - w.at < PEM_DECIDE_CHARS) return w.at;
        w.truncated = true;
        w.linesFrom = w.bodyStart;
      }
      // A truncated key: its header and the body lines that follow. Follow them
      // from the last line not yet settled (a line can still grow, or vanish).
      let stop = w.linesFrom;
      let lastStart = stop;
      PEM_LINE.lastIndex = stop - this.#base;
      while (PEM_LINE.test(this.#buf)) {
        lastStart = stop;
        stop = this.#base + PEM_LINE.lastIndex;
      }
      if (final || end - stop >= PEM_LINE_CHARS) {
        this.#pems.shift();
        this.#pemOpen = { start: w.at, end: stop };
        continue;
      }
      const settled = end - lastStart >= PEM_LINE_CHARS ? stop : lastStart;
      w.linesFrom = settled;
      this.#pemOpen = { start: w.at, end: settled };
      return settled;
    }
    return end;
  }

  /** Where Kubernetes Secret data still undecided begins (`#end` when none). */
  #k8sHold(): number {
    const end = this.#end;
    const reach = K8S_WINDOW + 64;
    let safe = end;
    while (this.#data.length > 0 && (this.#data[0] as number) < end - reach) this.#data.shift();
    for (const d of this.#data) {
      // A `data:` or `stringData:` line: spaces, then a line break (or, so far, the end).
      const c = this.#buf[d - 1 - this.#base];
      if (c !== 'd' && c !== 'D') continue;
      let i = d + 4 - this.#base;
      while (i < this.#buf.length && (this.#buf[i] === ' ' || this.#buf[i] === '\t')) i++;
      if (i < this.#buf.length && this.#buf[i] !== '\n' && this.#buf[i] !== '\r') continue;
      safe = d; // a `kind: Secret` line up to K8S_WINDOW on would read the entries after it
      break;
    }
    // The unfinished line near a `kind:` may be a data entry whose end decides it.
    const lineStart = this.#lastNl + 1;
    if (this.#lastKind >= lineStart - reach && end - lineStart <= K8S_LINE_CHARS) safe = Math.min(safe, lineStart);
    return safe;
  }

  /**
   * Emits the held text up to `safe`. A span that begins before `safe` is
   * certain (every hold ends before the start of anything still undecided), but
   * its end may not be (the detector merges it with findings still open): its
   * marker goes out now with the text up to `safe`, and later calls swallow the
   * rest as the continuation of `#last`: the part known for sure (known values,
   * a truncated key's settled lines) from `#last.sure`, the rest from their
   * window, which reaches back to where the span began.
   */
  #emit(safe: number, final: boolean): string {
    const b = this.#emitted;
    const lo = this.#windowStart(b);
    const spans: Span[] = [];
    for (const f of findSecrets(this.#buf.slice(lo - this.#base))) {
      if (lo + f.end > b) spans.push({ start: lo + f.start, end: lo + f.end, rule: f.rule });
    }
    valueSpans(this.#buf, this.#forms.forms, b - this.#base, this.#base, spans);
    const open = this.#pemOpen;
    this.#pemOpen = null;
    if (open !== null && open.end > b) spans.push({ start: open.start, end: open.end, rule: 'private-key', sure: open.end });
    const last = this.#last;
    if (last !== null && last.sure !== undefined && last.sure > b) spans.push({ start: last.start, end: last.sure, rule: last.rule, sure: last.sure });
    let out = '';
    let pos = b;
    for (const s of mergeSpans(spans)) {
      if (s.start >= safe) break;
      const continues = s.start < b && last !== null && s.start < last.end && last.end >= b;
      if (!continues) {
        // A span that begins in emitted text yet continues none: only past the
        // window limit of the module header. Replaced from here on.
        out += (s.start >= b ? this.#buf.slice(pos - this.#base, s.start - this.#base) : '') + marker(s.rule);
        this.#count++;
        this.#rules.add(s.rule);
      }
      pos = Math.min(s.end, safe);
      const sure = Math.max(pos, s.sure ?? -1, continues ? (last.sure ?? -1) : -1);
      this.#last = continues ? { start: last.start, end: pos, rule: last.rule, sure } : { start: s.start, end: pos, rule: s.rule, sure };
      if (s.end > safe && !final) break;
    }
    if (pos < safe) {
      out += this.#buf.slice(pos - this.#base, safe - this.#base);
      pos = safe;
    }
    this.#emitted = pos;
    this.#trim();
    return out;
  }

  /**
   * Where the detector's window begins for text emitted from `b`: far enough
   * back for every rule's left context (more near a `kind:`), moved back to just
   * after a whitespace character so the window never begins inside a token
   * (a look-behind at its start then reads as it does in the whole text).
   */
  #windowStart(b: number): number {
    const lo = b - (this.#lastKind >= b - (K8S_WINDOW + 64) ? K8S_CONTEXT_CHARS : CONTEXT_CHARS);
    if (lo <= this.#base) return this.#base;
    // Inside a long run that was emitted in steps, look back to its start (within reason).
    const inRun = !isWs(this.#buf.charCodeAt(b - 1 - this.#base));
    const floor = Math.max(this.#base, lo - (inRun ? MAX_RUN_HOLD_CHARS : ALIGN_CHARS));
    for (let i = lo - 1; i >= floor; i--) if (isWs(this.#buf.charCodeAt(i - this.#base))) return i + 1;
    return floor;
  }

  /** Drops context no window can reach, once there is as much to drop as to keep (amortized O(1) per character). */
  #trim(): void {
    const keep = K8S_CONTEXT_CHARS + ALIGN_CHARS;
    let cut = this.#emitted - keep;
    const run = this.#lastWs + 1;
    if (run < this.#emitted) cut = Math.min(cut, Math.max(run - 1, cut - MAX_RUN_HOLD_CHARS));
    if (cut - this.#base < keep) return;
    this.#buf = this.#buf.slice(cut - this.#base);
    this.#base = cut;
  }
}

// ---------------------------------------------------------------------------
// JSON texts: tool-call arguments.

type JsonState = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma' | 'end';

const JSON_LITERAL = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)$/;
const LITERAL_CHAR = /[-+.0-9A-Za-z]/;
const MAX_LITERAL_CHARS = 1024;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const TOO_DEEP = '"[REDACTED:too-deep]"';

/** `text` as the inside of a JSON string (what JSON.stringify writes between the quotes). */
function jsonEscape(text: string): string {
  return text.length === 0 ? '' : JSON.stringify(text).slice(1, -1);
}

/**
 * Incremental redactor of one JSON text streamed in fragments (a tool call's
 * arguments): each string value is decoded, redacted by its own
 * {@link StreamingTextRedactor} (object keys are kept, as `redactDeep` keeps
 * them) and written back JSON-escaped, so a marker never lands inside an
 * escape and the output stays valid JSON; numbers, literals and structure pass
 * through as they came. A container nested deeper than `MAX_REDACT_DEPTH` is
 * replaced by `"[REDACTED:too-deep]"`. The concatenated output is the same for
 * any split of the input, equals {@link redactJsonText} of the whole, and
 * parses to {@link redactValue} of the input's value.
 *
 * Input that is not JSON (the model's arguments can be anything) is noticed
 * where it stops being JSON: from there on the rest is redacted as plain text
 * (with the JSON before it as left context), so nothing passes unredacted,
 * though the output then differs from {@link redactJsonText}, which redacts an
 * unparsable text whole.
 */
export class StreamingJsonRedactor {
  readonly #opts: TextRedactionOptions | undefined;
  #stack = '';
  #state: JsonState = 'value';
  /** The string being read: a key (passed as it came) or a value (with its redactor). */
  #str: { readonly key: boolean; readonly r: StreamingTextRedactor | null } | null = null;
  /** An escape sequence begun in a string (`\`, `\u`, `\u0`...), '' when none. */
  #esc = '';
  /** A number or literal being read (emitted once complete and valid). */
  #lit = '';
  /** Depth of a too-deep subtree being dropped; its string state. */
  #skip = 0;
  #skipStr = false;
  #skipEsc = false;
  /** After a syntax error: the redactor of the rest, and whether its output goes inside a JSON string. */
  #raw: StreamingTextRedactor | null = null;
  #rawInString = false;
  #failed = false;
  /** The last input, left context for the text redactor after a syntax error. */
  #recent = '';
  #count = 0;
  readonly #rules = new Set<string>();
  #ended = false;

  /** `opts.values`: known secret values. Throws `TypeError` for a value that is not a string. */
  constructor(opts?: TextRedactionOptions) {
    formsOf(opts);
    this.#opts = opts;
  }

  /** Spans redacted so far (in strings completed so far, and too-deep subtrees). */
  get count(): number {
    return this.#count + (this.#str?.r?.count ?? 0) + (this.#raw !== null && this.#raw !== this.#str?.r ? this.#raw.count : 0);
  }

  /** Rules of the spans redacted so far (each once). */
  get rules(): readonly string[] {
    return [...new Set([...this.#rules, ...(this.#str?.r?.rules ?? []), ...(this.#raw?.rules ?? [])])];
  }

  /** Whether the input so far has been JSON (false once a syntax error switched to plain-text redaction). */
  get isJson(): boolean {
    return !this.#failed;
  }

  /** Feeds a fragment; returns the output that is safe to emit now (possibly ''). Throws `TypeError` after `end()`. */
  push(chunk: string): string {
    if (this.#ended) throw new TypeError('StreamingJsonRedactor: push after end');
    if (typeof chunk !== 'string') throw new TypeError('StreamingJsonRedactor: chunk must be a string');
    let out = '';
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#raw !== null) {
        out += this.#rawOut(this.#raw.push(chunk.slice(i)));
        break;
      }
      if (this.#str !== null) {
        const r = this.#str.r;
        if (this.#esc === '') {
          let j = i;
          while (j < n) {
            const c = chunk.charCodeAt(j);
            if (c === 34 || c === 92 || c < 32) break;
            j++;
          }
          if (j > i) {
            const run = chunk.slice(i, j);
            out += r === null ? run : jsonEscape(r.push(run));
            i = j;
            if (i === n) break;
          }
          const c = chunk[i] as string;
          if (c === '"') {
            if (r === null) {
              out += '"';
              this.#state = 'colon';
            } else {
              out += jsonEscape(r.end()) + '"';
              this.#absorb(r);
              this.#afterValue();
            }
            this.#str = null;
            i++;
          } else if (c === '\\') {
            this.#esc = '\\';
            i++;
          } else {
            out += this.#fail(chunk, i);
            break;
          }
          continue;
        }
        const c = chunk[i] as string;
        let decoded: string | null = null;
        if (this.#esc === '\\') {
          if (c === 'u') this.#esc = '\\u';
          else if (SIMPLE_ESCAPES[c] !== undefined) decoded = SIMPLE_ESCAPES[c];
          else {
            out += this.#fail(chunk, i);
            break;
          }
        } else if (/[0-9A-Fa-f]/.test(c)) {
          this.#esc += c;
          if (this.#esc.length === 6) decoded = String.fromCharCode(parseInt(this.#esc.slice(2), 16));
        } else {
          out += this.#fail(chunk, i);
          break;
        }
        i++;
        if (decoded !== null) {
          // A key keeps its escapes as they came; a value's decoded character is redacted and escaped again.
          out += r === null ? this.#esc + (this.#esc === '\\' ? c : '') : jsonEscape(r.push(decoded));
          this.#esc = '';
        }
        continue;
      }
      if (this.#skip > 0) {
        i = this.#skipThrough(chunk, i);
        continue;
      }
      const c = chunk[i] as string;
      if (this.#lit !== '') {
        if (LITERAL_CHAR.test(c) && this.#lit.length < MAX_LITERAL_CHARS) {
          this.#lit += c;
          i++;
          continue;
        }
        if (!JSON_LITERAL.test(this.#lit)) {
          out += this.#fail(chunk, i);
          break;
        }
        out += this.#lit;
        this.#lit = '';
        this.#afterValue();
        continue;
      }
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
        out += c;
        i++;
        continue;
      }
      const state = this.#state;
      if (state === 'value' || state === 'value-or-close') {
        if (c === '{' || c === '[') {
          if (this.#stack.length >= MAX_REDACT_DEPTH) {
            out += TOO_DEEP;
            this.#count++;
            this.#rules.add('too-deep');
            this.#skip = 1;
          } else {
            this.#stack += c;
            out += c;
            this.#state = c === '{' ? 'key-or-close' : 'value-or-close';
          }
        } else if (c === '"') {
          out += '"';
          this.#str = { key: false, r: new StreamingTextRedactor(this.#opts) };
        } else if (c === ']' && state === 'value-or-close') out += this.#close(c);
        else if (LITERAL_CHAR.test(c)) this.#lit = c;
        else {
          out += this.#fail(chunk, i);
          break;
        }
      } else if (state === 'key' || state === 'key-or-close') {
        if (c === '"') {
          out += '"';
          this.#str = { key: true, r: null };
        } else if (c === '}' && state === 'key-or-close') out += this.#close(c);
        else {
          out += this.#fail(chunk, i);
          break;
        }
      } else if (state === 'colon' && c === ':') {
        out += c;
        this.#state = 'value';
      } else if (state === 'comma' && c === ',') {
        out += c;
        this.#state = this.#stack.endsWith('{') ? 'key' : 'value';
      } else if (state === 'comma' && ((c === '}' && this.#stack.endsWith('{')) || (c === ']' && this.#stack.endsWith('[')))) {
        out += this.#close(c);
      } else {
        out += this.#fail(chunk, i);
        break;
      }
      i++;
    }
    this.#remember(chunk);
    return out;
  }

  /** Ends the input: returns the rest of the output (an unterminated string stays unterminated). Idempotent. */
  end(): string {
    if (this.#ended) return '';
    this.#ended = true;
    let out = '';
    if (this.#raw !== null) {
      out = this.#rawOut(this.#raw.end());
      this.#absorb(this.#raw);
    } else if (this.#str !== null) {
      if (this.#str.r !== null) {
        out = jsonEscape(this.#str.r.push(this.#esc) + this.#str.r.end());
        this.#absorb(this.#str.r);
      } else out = this.#esc;
    } else if (this.#lit !== '') {
      if (JSON_LITERAL.test(this.#lit)) out = this.#lit;
      else {
        const r = new StreamingTextRedactor(this.#opts, this.#recent.slice(0, -this.#lit.length));
        out = r.push(this.#lit) + r.end();
        this.#absorb(r);
      }
    }
    this.#str = null;
    this.#raw = null;
    return out;
  }

  #afterValue(): void {
    this.#state = this.#stack.length === 0 ? 'end' : 'comma';
  }

  #close(c: string): string {
    this.#stack = this.#stack.slice(0, -1);
    this.#afterValue();
    return c;
  }

  /** Reads a too-deep subtree without output; returns where reading stopped. */
  #skipThrough(chunk: string, i: number): number {
    for (; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.#skipStr) {
        if (this.#skipEsc) this.#skipEsc = false;
        else if (c === '\\') this.#skipEsc = true;
        else if (c === '"') this.#skipStr = false;
      } else if (c === '"') this.#skipStr = true;
      else if (c === '{' || c === '[') this.#skip++;
      else if ((c === '}' || c === ']') && --this.#skip === 0) {
        this.#afterValue();
        return i + 1;
      }
    }
    return i;
  }

  /** Not JSON from `chunk[i]` on: the rest is redacted as plain text. */
  #fail(chunk: string, i: number): string {
    const pending = this.#lit + this.#esc;
    this.#failed = true;
    this.#lit = '';
    this.#esc = '';
    if (this.#str?.r) {
      // Inside a string value: its redactor reads on, so a credential cut by the error is whole.
      this.#raw = this.#str.r;
      this.#rawInString = true;
    } else {
      // Left context: the input before the pending literal or escape.
      const before = this.#recent + chunk.slice(0, i);
      this.#raw = new StreamingTextRedactor(this.#opts, before.slice(0, before.length - pending.length));
      this.#rawInString = false;
    }
    this.#str = null;
    return this.#rawOut(this.#raw.push(pending + chunk.slice(i)));
  }

  #rawOut(text: string): string {
    return this.#rawInString ? jsonEscape(text) : text;
  }

  #absorb(r: StreamingTextRedactor): void {
    this.#count += r.count;
    for (const id of r.rules) this.#rules.add(id);
  }

  #remember(chunk: string): void {
    this.#recent += chunk;
    if (this.#recent.length > 2 * CONTEXT_CHARS) this.#recent = this.#recent.slice(-CONTEXT_CHARS);
  }
}

/**
 * Redacts a JSON text (a tool call's `arguments`) as {@link StreamingJsonRedactor}
 * does in one piece: string values redacted, keys, numbers and layout kept.
 * Text that does not parse as JSON is redacted whole with {@link redactText}.
 */
export function redactJsonText(text: string, opts?: TextRedactionOptions): TextRedaction {
  if (typeof text !== 'string') throw new TypeError('redactJsonText: text must be a string');
  try {
    JSON.parse(text);
  } catch {
    return redactText(text, opts);
  }
  const r = new StreamingJsonRedactor(opts);
  const out = r.push(text) + r.end();
  return { text: out, count: r.count, rules: r.rules };
}
