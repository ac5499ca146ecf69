/**
 * Credential detection and redaction: pure, linear-time, offsets exact.
 *
 * The rules live in `secret-rules.ts` (about 150 of them; {@link SECRET_RULES}
 * lists the ids, which are stable: they appear in `[REDACTED:<rule>]`, audit
 * records and `bastion detect secrets`). They are, by family:
 * - provider tokens with a distinctive prefix: GitHub (`github-token`,
 *   `github-fine-grained-pat`), GitLab, Slack (`slack-token`, `slack-webhook-url`),
 *   Anthropic, OpenAI (only keys holding OpenAI's `T3BlbkFJ` marker), Stripe,
 *   AWS (access key id, Bedrock keys), Google API keys, npm, PyPI, Hugging Face,
 *   Grafana, Vault, DigitalOcean, Doppler, SendGrid, Shopify, age, 1Password,
 *   and a table of further prefixes (`providerTokens`: Brevo, Dynatrace, Mailgun,
 *   Plaid, Shippo, Twitter bearer, ...): exact length and alphabet, a token boundary
 *   on both sides, and a least entropy so filler (`ghp_xxxx...`) does not match;
 * - the secret half of an AWS key pair beside its access key id (the console's
 *   credentials CSV) or in prose (`my aws secret key is ...`);
 * - provider secrets recognised by a name and a value shape
 *   (`CLOUDFLARE_API_KEY: <40 chars>`, `heroku ... = <uuid>`, `aws_secret_access_key`), and a
 *   table of providers whose keys carry no prefix (`providerNamed`: Mixpanel, Loggly, Jira, ...):
 *   the provider's name, then within 40 characters a value of its exact documented shape;
 * - structured credentials: PEM private keys (`private-key`), JWTs and
 *   base64-encoded JWTs, `Authorization: Bearer|Token|Basic` headers, curl
 *   `-H`/`-u` credentials, `user:password@` in URLs, Kubernetes `kind: Secret`
 *   data, NuGet passwords;
 * - `generic-secret`: the value of `<name> = <value>` (also `:`, `:=`, `=>`,
 *   `?=`, `.=`, XML elements and `getenv("NAME", "value")`) where the name holds
 *   password, secret, token, key, auth, access or credential as a word, and the
 *   value has digits (or is generated letters), entropy ≥ {@link GENERIC_MIN_ENTROPY} bits per
 *   character (2.5 for a quoted password; 2.8 for hex and generated values, whose alphabets
 *   cap it), and is not a reference (`$VAR`,
 *   `{{ x }}`, `process.env.X`, `ALL_CAPS`), a URL, a path, a dotted or
 *   snake_case code name, base64 of plain text, a placeholder (`EXAMPLE`,
 *   `xxxx`, `12345678`, a repeated chunk) or a version-1 UUID.
 * A handful of credential-shaped values that are public (Google's sample API
 * keys, documentation examples) are recognised by SHA-256 digest and skipped.
 * {@link secretRuleHosts} names the API hosts each provider credential belongs to.
 *
 * ## How it runs: keyword prefilter
 *
 * Every rule names literal keywords (`ghp_`, `xox`, `sk-ant-`, `password`...).
 * One Aho-Corasick automaton over all keywords, compiled once at load, walks
 * the text a single time (one table lookup per UTF-16 code unit, ASCII case
 * folded). A rule runs only where one of its keywords occurs, and only there:
 * its pattern is sticky (`y`) and tried once at the keyword (or a fixed number
 * of characters before it). Text with no keyword costs the walk and nothing else.
 * {@link findSecretsInLatin1} walks bytes read as latin1 (a request body) the same
 * way and makes their text only at the first keyword, so such bytes are never copied.
 *
 * ## Why every pattern runs in linear time
 *
 * The walk is one step per character. Each attempt is one sticky match whose
 * quantifiers are all bounded (`{m,n}`, checked by a test over the rule
 * table) and never nested, so an attempt costs at most the rule's longest
 * match, a constant; a keyword occurrence inside a match the same rule already
 * made is not tried again. Patterns with long bodies (`jwt`) begin with a
 * negative lookbehind on the body's own alphabet, so attempts inside a run
 * fail in O(1). PEM blocks are found with `indexOf` and sticky patterns, never
 * with a lazy `[\s\S]*?`; Kubernetes manifests are read in a bounded window
 * around `kind: Secret`. Checks after a match (entropy, JSON decoding of a JWT
 * header) run on the bounded match only. Tests time every rule on adversarial
 * inputs made of its own keywords at sizes n and 4n (test/detect/).
 *
 * Overlapping findings are merged (the earliest start wins; at the same start,
 * the rule listed first), so redaction never leaves part of a credential behind.
 */

import { findK8sSecretValues, GENERIC_MIN_ENTROPY, SECRET_RULE_TABLE, shannonEntropy, type SecretRule } from './secret-rules.ts';

export { GENERIC_MIN_ENTROPY, shannonEntropy };
/** Longest PEM block (header to END line) treated as one key, in characters. */
export const MAX_PEM_CHARS = 64 * 1024;
/** Deepest nesting {@link redactDeep} walks; anything deeper is replaced whole. */
export const MAX_REDACT_DEPTH = 64;

/** One credential found: the rule and the UTF-16 offsets `[start, end)` of the secret. */
export interface SecretFinding {
  readonly rule: string;
  readonly start: number;
  readonly end: number;
}

const PRIVATE_KEY = 'private-key';

/** The rule ids, in priority order (at equal start offsets, an earlier rule names the finding). */
export const SECRET_RULES: readonly string[] = Object.freeze([...new Set([PRIVATE_KEY, ...SECRET_RULE_TABLE.map((r) => r.id)])]);
const PRIORITY = new Map(SECRET_RULES.map((id, i) => [id, i]));
const HOSTS = new Map<string, readonly string[]>(SECRET_RULE_TABLE.map((r) => [r.id, Object.freeze([...(r.hosts ?? [])])] as const).reverse());
const NO_HOSTS: readonly string[] = Object.freeze([]);

/**
 * The API hosts a credential found by rule `ruleId` belongs to: exact host
 * names, or `*.suffix` meaning any subdomain of `suffix` (not `suffix` itself).
 * Empty for rules with no single home (`generic-secret`, `jwt`, `private-key`,
 * `bearer-token`, ...) and for unknown ids. The egress proxy blocks a credential
 * leaving for a host outside this list; the model door uses it to say where a
 * pasted secret works.
 */
export function secretRuleHosts(ruleId: string): readonly string[] {
  return HOSTS.get(ruleId) ?? NO_HOSTS;
}

// ---------------------------------------------------------------------------
// Keyword prefilter: one Aho-Corasick automaton over every rule's keywords,
// compiled once. Characters are folded to lowercase ASCII classes; any other
// code unit (class 0) matches no keyword.

interface Prefilter {
  /**
   * Next-state table: `delta[state + cls]` is the next state, states stored
   * premultiplied by the class count; a state that ends a keyword is stored as
   * its bitwise complement (negative), so the scan tests one value per character.
   */
  readonly delta: Int32Array;
  /** Character class of every UTF-16 code unit (0 for all but the keywords' ASCII characters). */
  readonly cls: Uint8Array;
  /** Per premultiplied state: 1 + index into `out` when the state ends a keyword, else 0. */
  readonly outAt: Int32Array;
  /** The keyword indices each accepting state ends. */
  readonly out: ReadonlyArray<readonly number[]>;
  readonly keywordLength: readonly number[];
  /** Per keyword: the rule indices it gates (private-key is -1). */
  readonly keywordRules: ReadonlyArray<readonly number[]>;
}

function compilePrefilter(): Prefilter {
  const keywordIndex = new Map<string, number>();
  const keywordRules: number[][] = [];
  const add = (kw: string, rule: number): void => {
    if (kw !== kw.toLowerCase() || kw.length === 0 || /[^\x20-\x7e]/.test(kw)) throw new Error(`secret rule keyword must be lowercase printable ASCII: ${kw}`);
    let k = keywordIndex.get(kw);
    if (k === undefined) {
      k = keywordRules.length;
      keywordIndex.set(kw, k);
      keywordRules.push([]);
    }
    const list = keywordRules[k] as number[];
    if (!list.includes(rule)) list.push(rule);
  };
  add('-----begin ', -1);
  SECRET_RULE_TABLE.forEach((r, i) => {
    for (const kw of r.keywords) add(kw, i);
  });
  const keywords = [...keywordIndex.keys()];
  const cls = new Uint8Array(65536);
  let classes = 1;
  for (const kw of keywords) {
    for (const ch of kw) {
      const c = ch.charCodeAt(0);
      if (cls[c] === 0) {
        cls[c] = classes;
        if (c >= 97 && c <= 122) cls[c - 32] = classes;
        classes++;
      }
    }
  }
  // Trie (goto function), then failure links by breadth-first search, folded into a full table.
  const next: number[][] = [new Array<number>(classes).fill(-1)];
  const outs: number[][] = [[]];
  keywords.forEach((kw, k) => {
    let s = 0;
    for (const ch of kw) {
      const c = cls[ch.charCodeAt(0)] as number;
      const row = next[s] as number[];
      if (row[c] === -1) {
        row[c] = next.length;
        next.push(new Array<number>(classes).fill(-1));
        outs.push([]);
      }
      s = row[c] as number;
    }
    (outs[s] as number[]).push(k);
  });
  const fail = new Array<number>(next.length).fill(0);
  const queue: number[] = [];
  const root = next[0] as number[];
  for (let c = 0; c < classes; c++) {
    const t = root[c] as number;
    if (t === -1) root[c] = 0;
    else queue.push(t);
  }
  root[0] = 0; // class 0 (no keyword character) always returns to the root
  while (queue.length > 0) {
    const s = queue.shift() as number;
    const row = next[s] as number[];
    for (let c = 0; c < classes; c++) {
      const t = row[c] as number;
      const viaFail = (next[fail[s] as number] as number[])[c] as number;
      if (t === -1 || c === 0) row[c] = c === 0 ? 0 : viaFail;
      else {
        fail[t] = viaFail;
        (outs[t] as number[]).push(...(outs[viaFail] as number[]));
        queue.push(t);
      }
    }
  }
  const delta = new Int32Array(next.length * classes);
  next.forEach((row, s) => row.forEach((t, c) => (delta[s * classes + c] = (outs[t] as number[]).length > 0 ? ~(t * classes) : t * classes)));
  const outAt = new Int32Array(next.length * classes);
  const out: number[][] = [];
  outs.forEach((o, st) => {
    if (o.length === 0) return;
    out.push(o);
    outAt[st * classes] = out.length;
  });
  return { delta, cls, outAt, out, keywordLength: keywords.map((k) => k.length), keywordRules };
}

const PREFILTER = compilePrefilter();

// ---------------------------------------------------------------------------
// PEM private keys.

const PEM_BEGIN = '-----BEGIN ';
const PEM_END = '-----END ';
const PEM_HEADER = /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
const PEM_FOOTER = /-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
/**
 * One line of a PEM body after a line break (also a JSON-escaped `\n`): a run of
 * base64 (a truncated last line may be cut anywhere, so the run may end in the
 * middle of a line: over-redacting a word beats leaving key material), or an
 * RFC 1421 header line such as `Proc-Type: 4,ENCRYPTED`.
 */
const PEM_LINE = /(?:\r?\n|\\n|\\r\\n){1,4}(?:[A-Za-z-]{1,32}: [^\r\n\\]{0,200}(?=\r?\n|\\n|\\r|$)|[A-Za-z0-9+/=]{1,1024}(?![A-Za-z0-9+/=]))/y;
/** Fewest base64 characters in a PEM body: the smallest private key (Ed25519, PKCS #8) has 64. */
const PEM_MIN_BODY = 64;
/**
 * The sources of the three PEM patterns above (compile with the `y` flag). The
 * streaming redactor of the model door (src/model/redact-text.ts) reads them to
 * know how long a block that began in a stream can still change, so it holds
 * back exactly what this detector would redact.
 */
export const PEM_PATTERN_SOURCES: Readonly<{ header: string; footer: string; line: string }> = Object.freeze({
  header: PEM_HEADER.source,
  footer: PEM_FOOTER.source,
  line: PEM_LINE.source,
});

function isBase64Code(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
}

/** PEM private-key blocks, found with indexOf and sticky patterns only (linear). */
function findPrivateKeys(text: string, out: SecretFinding[]): void {
  // Position of the next END marker (-1: none left, -2: not searched yet); searched
  // again only once the scan has passed it, so the text is walked once overall.
  let nextEnd = -2;
  let i = text.indexOf(PEM_BEGIN);
  while (i >= 0) {
    PEM_HEADER.lastIndex = i;
    if (!PEM_HEADER.test(text)) {
      i = text.indexOf(PEM_BEGIN, i + 1);
      continue;
    }
    const bodyStart = PEM_HEADER.lastIndex;
    if (nextEnd !== -1 && nextEnd < bodyStart) nextEnd = text.indexOf(PEM_END, bodyStart);
    let stop = -1;
    if (nextEnd >= 0 && nextEnd - i <= MAX_PEM_CHARS) {
      PEM_FOOTER.lastIndex = nextEnd;
      if (PEM_FOOTER.test(text)) {
        let b64 = 0;
        for (let k = bodyStart; k < nextEnd && b64 < PEM_MIN_BODY; k++) if (isBase64Code(text.charCodeAt(k))) b64++;
        if (b64 >= PEM_MIN_BODY) stop = PEM_FOOTER.lastIndex;
        else {
          // A placeholder such as "..." or a short sample: not a key. Continue after its footer.
          i = text.indexOf(PEM_BEGIN, PEM_FOOTER.lastIndex);
          continue;
        }
      }
    }
    if (stop < 0) {
      // No END line: truncated output. Redact the header and the body lines that follow it.
      stop = bodyStart;
      PEM_LINE.lastIndex = stop;
      while (PEM_LINE.test(text)) stop = PEM_LINE.lastIndex;
    }
    out.push({ rule: PRIVATE_KEY, start: i, end: stop });
    i = text.indexOf(PEM_BEGIN, stop);
  }
}

// ---------------------------------------------------------------------------
// Running the rules.

/** Tries `rule` once where its keyword begins at `at`; pushes a finding and returns the end of the match, or -1. */
function tryRule(text: string, rule: SecretRule, at: number, out: SecretFinding[]): number {
  if (rule.id === 'kubernetes-secret') {
    const values = findK8sSecretValues(text, at);
    for (const [start, end] of values) out.push({ rule: rule.id, start, end });
    return values.length > 0 ? at + 1 : -1;
  }
  if (rule.precheck && !rule.precheck(text, at)) return -1;
  const re = rule.re;
  const from = rule.back === undefined ? at : Math.max(0, at - rule.back);
  re.lastIndex = from;
  // test() first: most attempts fail, and a failing test() allocates nothing.
  if (!re.test(text)) return -1;
  re.lastIndex = from;
  const m = re.exec(text);
  if (m === null) return -1;
  const matchEnd = m.index + m[0].length;
  let start = m.index;
  let secret = m[0];
  if (rule.group !== undefined) {
    const g = m[rule.group];
    const span = m.indices?.[rule.group];
    if (g !== undefined && span) {
      start = span[0];
      secret = g;
    }
  }
  if (rule.minEntropy !== undefined && shannonEntropy(secret) < rule.minEntropy) return -1;
  if (rule.accept && !rule.accept(secret, { text, at, matchStart: m.index, matchEnd })) return -1;
  const end = start + secret.length;
  if (rule.extendStart) start = rule.extendStart(text, start);
  out.push({ rule: rule.id, start, end });
  return matchEnd;
}

/**
 * The credentials in `text`, sorted by offset, overlapping findings merged.
 * Offsets are UTF-16 indices (`text.slice(start, end)` is the secret).
 * Throws `TypeError` when `text` is not a string.
 */
export function findSecrets(text: string): SecretFinding[] {
  if (typeof text !== 'string') throw new TypeError('findSecrets: text must be a string');
  return scanFrom(text, 0, 0);
}

/**
 * {@link findSecrets} of `bytes` read as latin1 (one character per byte, so
 * offsets are byte offsets): the same findings as
 * `findSecrets(Buffer.from(bytes).toString('latin1'))`, without making that
 * string unless a keyword occurs. The keyword walk runs over the bytes; at the
 * first keyword the text is made (by `text`, when given: it must return that
 * latin1 string, e.g. one the caller caches) and the walk goes on over it from
 * there, in the same state. A body without any keyword (most bulk data) is
 * walked once and never copied. Linear time, like {@link findSecrets}.
 * Throws `TypeError` when `bytes` is not a Uint8Array or `text()` does not
 * return a string of `bytes.length` characters.
 */
export function findSecretsInLatin1(bytes: Uint8Array, text?: () => string): SecretFinding[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('findSecretsInLatin1: bytes must be a Uint8Array');
  const { delta, cls } = PREFILTER;
  const n = bytes.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const t = delta[s + (cls[bytes[i] as number] as number)] as number;
    if (t < 0) {
      const str = text ? text() : Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1');
      if (typeof str !== 'string' || str.length !== n) throw new TypeError('findSecretsInLatin1: text() must return the bytes as latin1');
      // Character i is read again there, from state s: the walk goes on exactly as findSecrets would.
      return scanFrom(str, i, s);
    }
    s = t;
  }
  return [];
}

/** The keyword walk of {@link findSecrets} from offset `from` in (premultiplied, non-accepting) state `state`, then the merge. */
function scanFrom(text: string, from: number, state: number): SecretFinding[] {
  const raw: SecretFinding[] = [];
  const { delta, cls, outAt, out, keywordLength, keywordRules } = PREFILTER;
  const rules = SECRET_RULE_TABLE;
  // Per rule: where its last match ended (keyword occurrences inside it are not tried again)
  // and the last offset it was tried at (two keywords of one rule at one offset: one try).
  // Made at the first keyword: most short texts (a header block, a path) have none.
  let doneUntil: Int32Array | undefined;
  let lastTried: Int32Array | undefined;
  let pem = false;
  const n = text.length;
  let s = state;
  for (let i = from; i < n; i++) {
    s = delta[s + (cls[text.charCodeAt(i)] as number)] as number;
    if (s >= 0) continue;
    s = ~s;
    if (doneUntil === undefined || lastTried === undefined) {
      doneUntil = new Int32Array(rules.length);
      lastTried = new Int32Array(rules.length).fill(-1);
    }
    for (const k of out[(outAt[s] as number) - 1] as readonly number[]) {
      const at = i + 1 - (keywordLength[k] as number);
      for (const r of keywordRules[k] as readonly number[]) {
        if (r < 0) {
          pem = true;
          continue;
        }
        if (at < (doneUntil[r] as number) || lastTried[r] === at) continue;
        lastTried[r] = at;
        const end = tryRule(text, rules[r] as SecretRule, at, raw);
        if (end > 0) doneUntil[r] = end;
      }
    }
  }
  if (pem) findPrivateKeys(text, raw);
  if (raw.length === 0) return raw;
  raw.sort((a, b) => a.start - b.start || (PRIORITY.get(a.rule) ?? 0) - (PRIORITY.get(b.rule) ?? 0) || b.end - a.end);
  const merged: SecretFinding[] = [];
  for (const f of raw) {
    const last = merged.at(-1);
    if (last && f.start < last.end) {
      if (f.end > last.end) merged[merged.length - 1] = { rule: last.rule, start: last.start, end: f.end };
    } else {
      merged.push(f);
    }
  }
  return merged;
}

/** What {@link redactSecrets} returns: the text with each finding replaced, how many, and which rules fired (each once). */
export interface Redaction {
  readonly text: string;
  readonly count: number;
  readonly rules: readonly string[];
}

/** Replaces every finding of {@link findSecrets} with `[REDACTED:<rule>]`. */
export function redactSecrets(text: string): Redaction {
  const findings = findSecrets(text);
  if (findings.length === 0) return { text, count: 0, rules: [] };
  let out = '';
  let at = 0;
  for (const f of findings) {
    out += text.slice(at, f.start) + `[REDACTED:${f.rule}]`;
    at = f.end;
  }
  out += text.slice(at);
  return { text: out, count: findings.length, rules: [...new Set(findings.map((f) => f.rule))] };
}

/**
 * Redacts every string in a JSON value (object keys are kept as they are).
 * Returns a new value; the input is not modified. A subtree deeper than
 * {@link MAX_REDACT_DEPTH} is replaced whole by `"[REDACTED:too-deep]"` (counted,
 * rule `too-deep`), since it was not inspected. `redact` replaces {@link redactSecrets}
 * for callers that redact more (known values too).
 */
export function redactDeep(value: unknown, redact: (text: string) => Redaction = redactSecrets): { value: unknown; count: number; rules: string[] } {
  let count = 0;
  const rules = new Set<string>();
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') {
      const r = redact(v);
      count += r.count;
      for (const id of r.rules) rules.add(id);
      return r.text;
    }
    if (typeof v !== 'object' || v === null) return v;
    if (depth >= MAX_REDACT_DEPTH) {
      count++;
      rules.add('too-deep');
      return '[REDACTED:too-deep]';
    }
    if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1));
    // fromEntries defines own properties, so a "__proto__" key stays data.
    return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, depth + 1)]));
  };
  const out = walk(value, 0);
  return { value: out, count, rules: [...rules] };
}
