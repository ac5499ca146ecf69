/**
 * Credential detection and redaction: pure, linear-time, offsets exact.
 *
 * Rules (ids are stable; they appear in `[REDACTED:<rule>]` and audit records):
 * - `github-token`            `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + 36–255 alphanumerics
 * - `github-fine-grained-pat` `github_pat_` + 50–255 of `[A-Za-z0-9_]`
 * - `aws-access-key-id`       `AKIA`/`ASIA`/`ABIA`/`ACCA`/`A3T?` + 16 base32 characters
 * - `slack-token`             `xox[abposre]-` or `xapp-` + 10–250 of `[A-Za-z0-9-]` holding a digit
 * - `slack-webhook-url`       `https://hooks.slack.com/services/...` (also workflows/, triggers/)
 * - `anthropic-api-key`       `sk-ant-<kind><2 digits>-` + 32–255 of `[A-Za-z0-9_-]`
 * - `openai-api-key`          `sk-` (optionally `proj-`, `svcacct-`, `admin-`) + 20–255 of
 *                             `[A-Za-z0-9_-]`: must hold OpenAI's `T3BlbkFJ` marker, or be 32+
 *                             characters with letters, digits and entropy ≥ 3.5 bits/char
 * - `stripe-secret-key`       `sk_`/`rk_` + `live_`/`test_`/`prod_` + 10–247 alphanumerics
 * - `google-api-key`          `AIza` + 35 of `[A-Za-z0-9_-]`
 * - `private-key`             a PEM `-----BEGIN ... PRIVATE KEY-----` block through its
 *                             `-----END ...-----` line (20+ base64 characters between); without
 *                             an END line (truncated output), the header and the base64 after it
 * - `jwt`                     `eyJ<header>.eyJ<payload>[.<signature>]` (base64url parts)
 * - `bearer-token`            the credential in `Authorization: Bearer <token>` header text
 *                             (also `"Authorization": "Bearer ..."` and `authorization=bearer ...`)
 * - `generic-secret`          the value in `<name> = <value>` / `<name>: <value>` (also `:=`,
 *                             `=>`, `.=`) where the name contains api_key, apikey, secret, token,
 *                             password, passwd, pwd, credential, access_key or auth, the value is
 *                             16–256 characters with Shannon entropy ≥ {@link GENERIC_MIN_ENTROPY}
 *                             bits/char, and it is not a code or environment reference
 *                             (`process.env.X`, `ALL_CAPS_NAME`), a URL or an email address
 *
 * Token rules also refuse filler bodies (`ghp_xxxx...`, `sk_live_AAAA...`: entropy < 2.5
 * bits/char), and `jwt` requires a header that decodes to a JSON object.
 *
 * ## Why every pattern runs in linear time
 *
 * No pattern nests quantifiers, and every one starts with a literal. A pattern
 * with an unbounded body (`jwt`) begins with a negative lookbehind on the body's
 * own character class, so an attempt can only begin at the start of a token:
 * positions inside a run are rejected in O(1) and each run is scanned from its
 * start once. Every other quantifier is bounded, so a failing attempt costs at
 * most a constant, and a successful one consumes what it scanned. PEM blocks
 * are found with `indexOf` and sticky patterns, never with a lazy `[\s\S]*?`.
 * Tests time every rule on adversarial inputs of size n and 4n.
 *
 * Overlapping findings are merged (the earliest start wins; at the same start,
 * the rule listed first), so redaction never leaves part of a credential behind.
 */

/** Least Shannon entropy (bits per character) of a `generic-secret` value. */
export const GENERIC_MIN_ENTROPY = 3.5;
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

interface PatternRule {
  readonly id: string;
  /** Global (and `d` when `group` is set). */
  readonly re: RegExp;
  /** The capture group holding the secret; the whole match when absent. */
  readonly group?: number;
  readonly accept?: (secret: string) => boolean;
}

/** Shannon entropy of `s` in bits per character (over UTF-16 code units). */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const HAS_DIGIT = /[0-9]/;
const HAS_LETTER = /[A-Za-z]/;
/** Not a credential value: a code or environment reference (`process.env.API_KEY`, `API_KEY`), a URL, an email address. */
const REFERENCE = /^(?:[A-Za-z_$][A-Za-z0-9_$]*\.)+[A-Za-z_$][A-Za-z0-9_$]*$|^[A-Z][A-Z0-9_-]*$|^[A-Za-z][A-Za-z0-9+.-]*:\/\/|^[^@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/;

/** Filler such as `xxxx` or `AAAA`: a credential body has some variety. */
function notPlaceholder(body: string): boolean {
  return shannonEntropy(body) >= 2.5;
}

/** Whether a base64url segment decodes to a JSON object (a JWT header does). */
function isJsonObject(segment: string): boolean {
  const json = Buffer.from(segment, 'base64url').toString('utf8').trim();
  // Cheap shape check first: a throwing JSON.parse per candidate would dominate adversarial input.
  if (!json.startsWith('{') || !json.endsWith('}')) return false;
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

const PATTERN_RULES: readonly PatternRule[] = [
  {
    id: 'github-fine-grained-pat',
    re: /(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{50,255}(?![A-Za-z0-9_])/g,
    accept: (s) => notPlaceholder(s.slice(11)),
  },
  {
    id: 'github-token',
    re: /(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9_])/g,
    accept: (s) => notPlaceholder(s.slice(4)),
  },
  {
    id: 'aws-access-key-id',
    re: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Za-z0-9])/g,
    accept: (s) => notPlaceholder(s.slice(4)),
  },
  {
    id: 'slack-webhook-url',
    re: /(?:https?:\/\/)?hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{20,255}/g,
  },
  {
    id: 'slack-token',
    re: /(?<![A-Za-z0-9_-])(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,250}/g,
    accept: (s) => HAS_DIGIT.test(s.slice(5)) && notPlaceholder(s.slice(5)),
  },
  {
    id: 'anthropic-api-key',
    re: /(?<![A-Za-z0-9_-])sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{32,255}/g,
    accept: (s) => notPlaceholder(s.slice(s.indexOf('-', 7) + 1)),
  },
  {
    id: 'openai-api-key',
    re: /(?<![A-Za-z0-9_-])sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,255}/g,
    accept: (s) => {
      if (s.includes('T3BlbkFJ')) return true;
      const body = s.slice(s.indexOf('-') + 1);
      return body.length >= 32 && HAS_DIGIT.test(body) && HAS_LETTER.test(body) && shannonEntropy(body) >= 3.5;
    },
  },
  {
    id: 'stripe-secret-key',
    re: /(?<![A-Za-z0-9_])[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,247}/g,
    accept: (s) => notPlaceholder(s.slice(s.indexOf('_', 3) + 1)),
  },
  {
    id: 'google-api-key',
    re: /(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])/g,
    accept: (s) => notPlaceholder(s.slice(4)),
  },
  {
    id: 'jwt',
    re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?/g,
    accept: (s) => isJsonObject(s.slice(0, s.indexOf('.'))),
  },
  {
    id: 'bearer-token',
    re: /authorization["']?[ \t]{0,16}[:=][ \t]{0,16}["']?bearer[ \t]{1,16}([A-Za-z0-9\-._~+/]{8,4096}={0,2})/dgi,
    group: 1,
  },
  {
    id: 'generic-secret',
    re: /(?:api[_-]?key|secret|token|passw(?:or)?d|pwd|credential|access[_-]?key|auth)[A-Za-z0-9_.-]{0,32}["']?[ \t]{0,16}(?:[.:]{0,3}=>?|:)[ \t]{0,16}["'`]?([A-Za-z0-9!#$%&*+\-./:=?@^_|~]{16,256})/dgi,
    group: 1,
    accept: (s) => !REFERENCE.test(s) && shannonEntropy(s) >= GENERIC_MIN_ENTROPY,
  },
];

/** The rule ids, in priority order (at equal start offsets, an earlier rule names the finding). */
export const SECRET_RULES: readonly string[] = Object.freeze([
  'private-key',
  ...PATTERN_RULES.map((r) => r.id),
]);
const PRIORITY = new Map(SECRET_RULES.map((id, i) => [id, i]));

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
const BASE64_CHAR = /[A-Za-z0-9+/]/;

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
        for (let k = bodyStart; k < nextEnd && b64 < 20; k++) if (BASE64_CHAR.test(text[k] as string)) b64++;
        if (b64 >= 20) stop = PEM_FOOTER.lastIndex;
        else {
          // A placeholder such as "...": not a key. Continue after its footer.
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
    out.push({ rule: 'private-key', start: i, end: stop });
    i = text.indexOf(PEM_BEGIN, stop);
  }
}

/**
 * The credentials in `text`, sorted by offset, overlapping findings merged.
 * Offsets are UTF-16 indices (`text.slice(start, end)` is the secret).
 */
export function findSecrets(text: string): SecretFinding[] {
  if (typeof text !== 'string') throw new TypeError('findSecrets: text must be a string');
  const raw: SecretFinding[] = [];
  findPrivateKeys(text, raw);
  for (const rule of PATTERN_RULES) {
    for (const m of text.matchAll(rule.re)) {
      let start = m.index;
      let secret = m[0];
      if (rule.group !== undefined) {
        const span = m.indices?.[rule.group];
        const g = m[rule.group];
        if (!span || g === undefined) continue;
        start = span[0];
        secret = g;
      }
      if (rule.accept && !rule.accept(secret)) continue;
      raw.push({ rule: rule.id, start, end: start + secret.length });
    }
  }
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
 * rule `too-deep`), since it was not inspected.
 */
export function redactDeep(value: unknown): { value: unknown; count: number; rules: string[] } {
  let count = 0;
  const rules = new Set<string>();
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') {
      const r = redactSecrets(v);
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
