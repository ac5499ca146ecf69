/**
 * The provider rules of the secret detector: one entry per credential format,
 * with the literal keywords that gate it, its pattern, the least entropy of the
 * secret and the API hosts the credential belongs to. The engine that runs them
 * (keyword prefilter, merging, redaction) is in `secrets.ts`; its header says
 * why every pattern here runs in linear time.
 *
 * How a rule is written (checked by test/detect/secret-rules.test.ts):
 * - `keywords` are lowercase literals; the rule runs only where one occurs
 *   (case-insensitively), and its pattern is anchored there (sticky, `y`) at
 *   the keyword's first character, or `back` characters before it for formats
 *   whose distinctive literal is not at the start.
 * - Every quantifier is bounded (`{m,n}`), no quantified group contains another
 *   quantifier, and every pattern begins with its keyword (or a fixed-length
 *   run before it), so one attempt costs at most the pattern's longest match.
 * - `group` names the capture holding the secret (`d` flag); without it the
 *   whole match is the secret.
 *
 * Formats are public facts (vendor documentation, and the fixtures of the
 * gitleaks, detect-secrets and secretlint projects); the patterns are written
 * here from those facts.
 */

import { sha256Hex } from '../util/crypto.ts';

/** What a rule's `accept` sees: the whole text and where the match and its secret lie. */
export interface RuleContext {
  readonly text: string;
  /** Offset of the keyword occurrence that started the attempt. */
  readonly at: number;
  readonly matchStart: number;
  readonly matchEnd: number;
}

/** One credential format. */
export interface SecretRule {
  /** Stable id: appears in `[REDACTED:<id>]`, audit records and the CLI. */
  readonly id: string;
  /** Lowercase literals; the rule runs only at their occurrences. */
  readonly keywords: readonly string[];
  /** Sticky pattern, tried at each keyword occurrence (minus `back`). */
  readonly re: RegExp;
  /** Characters before the keyword where the match starts (fixed offset). */
  readonly back?: number;
  /** Capture group holding the secret (pattern compiled with `d`). */
  readonly group?: number;
  /** Least Shannon entropy (bits per character) of the secret. */
  readonly minEntropy?: number;
  /** API hosts the credential is issued for: exact names, or `*.suffix` for any subdomain (not the apex). */
  readonly hosts?: readonly string[];
  /** Further checks on the secret; false drops the match. */
  readonly accept?: (secret: string, ctx: RuleContext) => boolean;
  /** Moves the finding's start back over a part that belongs to it (a URL scheme). */
  readonly extendStart?: (text: string, start: number) => number;
  /** A cheap test run before the pattern (bounded scan): false skips the attempt. */
  readonly precheck?: (text: string, at: number) => boolean;
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

/**
 * Filler a human typed into a sample: a run of one character (`xxxx`, `0000`),
 * an ascending run (`12345678`, `abcdefgh`), a repeated chunk, or a marker word (`EXAMPLE`,
 * `placeholder`, `your_`...). Real credentials are random and almost never hold
 * a run of 8 or a word from this list.
 */
export function looksLikePlaceholder(s: string): boolean {
  if (PLACEHOLDER_WORD.test(s)) return true;
  let same = 1;
  let up = 1;
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const p = s.charCodeAt(i - 1);
    same = c === p ? same + 1 : 1;
    up = c === p + 1 && isAlnumCode(c) ? up + 1 : 1;
    if (same >= 8 || up >= 8) return true;
  }
  return hasRepeatedChunk(s);
}

/** A chunk of 2-8 characters repeated back to back over 12+ characters (`abcd1234abcd1234`, `ababab...`). */
function hasRepeatedChunk(s: string): boolean {
  for (let p = 2; p <= 8; p++) {
    let run = 0;
    for (let i = 0; i + p < s.length; i++) {
      run = s.charCodeAt(i) === s.charCodeAt(i + p) ? run + 1 : 0;
      if (run >= 12 && run >= 2 * p) return true;
    }
  }
  return false;
}
const PLACEHOLDER_WORD = /example|placeholder|your[_-]|changeme|change_me|dummy|redacted|insert[_-]|replace[_-]?me|xxxxx|\*\*\*/i;
function isAlnumCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Whether a base64url segment decodes to a JSON object (a JWT header does). */
export function isJsonObject(segment: string): boolean {
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

// ---------------------------------------------------------------------------
// Pattern helpers. Every helper composes bounded pieces only.

/** Not preceded by a token character: a match starts at the start of a token. */
const START = '(?<![A-Za-z0-9_-])';
/** Not followed by a token character: the secret is the whole token. */
const END = '(?![A-Za-z0-9_-])';
/** Not followed by a base64 character (for formats whose alphabet includes + / =). */
const END64 = '(?![A-Za-z0-9_+/=-])';
/**
 * The assignment between a name and its value, after the keyword: the rest of
 * the name, an optional type word (`var x string =`), closing quote or bracket,
 * an operator (`=`, `:=`, `::=`, `?=`, `.=`, `=>`, `:`, `>` of an XML element,
 * `,` of a call such as `getenv("API_TOKEN", "...")`, ` - ` of a list written by
 * hand: `stripe token - 'sk_...'`), and an opening quote.
 */
const ASSIGN = String.raw`[\w.-]{0,24}(?:[ \t]{1,4}[A-Za-z]{1,12})?["'\]>]{0,2}[ \t]{0,4}(?:[:.?+]{0,3}=>?|:|>|,|\|\||(?<=[ \t])-(?=[ \t]))[ \t]{0,5}(?:\r?\n[ \t]{0,12})?[\x60'"]{0,2}`;
/** After a value: a delimiter, an escaped line break, or the end. */
const AFTER = String.raw`(?=[\x60'"\s;,)}\]<>&|]|\\[nrt]|$)`;

function sticky(source: string, flags = ''): RegExp {
  return new RegExp(source, `y${flags}`);
}

/** A token that starts with one of `prefixes` (literal, case-sensitive) and whose body is `body`. */
function prefixed(prefixes: readonly string[], body: string, end = END): RegExp {
  return sticky(`${START}(?:${prefixes.map(escapeRe).join('|')})${body}${end}`);
}

/** `keyword[name] <assign> value`, case-insensitive; the value is group 1. */
function assigned(name: string, value: string): RegExp {
  return sticky(`${name}${ASSIGN}(${value})${AFTER}`, 'di');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

// ---------------------------------------------------------------------------
// Generic assignments: `<name containing a secret word> = <value>`.

/** Words which, anywhere in the name, say the value is not a credential. */
const NOT_SECRET_WORDS = new Set([
  'id', 'ids', 'name', 'names', 'url', 'uri', 'urls', 'endpoint', 'length', 'len', 'size', 'file', 'path', 'dir',
  'version', 'public', 'pub', 'publishable', 'csrf', 'xsrf', 'type', 'format', 'field', 'header', 'prefix',
  'label', 'hint', 'count', 'expiry', 'expires', 'expiration', 'ttl', 'timeout', 'store', 'vault', 'ref',
  'mode', 'policy', 'algorithm', 'alg', 'kind', 'placeholder', 'example', 'sample', 'test', 'dummy', 'fake',
  'mock', 'schema', 'sequence', 'bucket', 'primary', 'foreign', 'index', 'idx', 'alias', 'pair', 'fingerprint',
  'hash', 'digest', 'checksum', 'salt', 'iv', 'nonce', 'reference', 'provider', 'issuer', 'audience', 'scope',
  'scopes', 'method', 'env', 'variable', 'var', 'param', 'key_id',
  // Names that say the value is not a working credential (test data in code), and UI events.
  'non', 'invalid', 'wrong', 'bad', 'bogus', 'malformed', 'event', 'events',
]);

/** The words of an identifier: split at `_ - .`, camelCase humps and digits, lowercased. */
function identifierWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter((w) => w.length > 0);
}

const NAME_CHAR = /[\w.-]/;
/** The identifier around a keyword occurrence at `at`: back to the start of the name (at most 64 characters). */
function nameAround(text: string, at: number, end: number): string {
  let s = at;
  while (s > 0 && at - s < 64 && NAME_CHAR.test(text[s - 1] as string)) s--;
  let e = at;
  while (e < end && e - at < 64 && NAME_CHAR.test(text[e] as string)) e++;
  return text.slice(s, e);
}

/** An identifier made of short words joined by `_` (`struct_X509_pubkey_st`): code, not a value. */
const SNAKE_CODE = /^_?[A-Za-z][A-Za-z0-9]{0,11}(?:_[A-Za-z0-9]{1,12}){1,8}$/;

/**
 * Not a credential value: a reference to one (`$VAR`, `${VAR}`, `%VAR%`,
 * `{{ .Values.x }}`, `<placeholder>`, `process.env.X`, `ALL_CAPS_NAME`), a URL,
 * an email address, a path, or a dotted name (`pkg.Class.member`, `host.example.com`).
 */
const REFERENCE = new RegExp(
  [
    String.raw`^[$%{<]`,
    String.raw`^[A-Za-z][A-Za-z0-9+.-]*:\/\/`,
    String.raw`^[^@\s]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$`,
    String.raw`^\.{0,2}\/`,
    String.raw`^[\w.-]+\.(?:pem|p12|pfx|cer|crt|key|keytab|jks|json|ya?ml|txt|env|cfg|conf|ini|xml)$`,
    String.raw`^[A-Za-z]:\\`,
  ].join('|'),
);
/**
 * A name in one case (`ALL_CAPS_NAME`, `lower.dotted-name`) or snake_case words: a
 * reference to a value in code, unless {@link looksGenerated} (a lowercase random
 * token such as `cjz5ip6ug319jnzv` is a value).
 */
const CODE_NAME = new RegExp([String.raw`^[A-Z][A-Z0-9_.-]*$`, String.raw`^[a-z][a-z0-9_.-]*$`, SNAKE_CODE.source].join('|'));

/**
 * Letters only, but as a generator leaves them (`wjXKCFzOWEPRqhTmmbWtVQ`): 16 or more,
 * 30-70% upper case, the case changing at a third of the positions or more. CamelCase
 * names (`XMLHttpRequestHandler`) change case far less often.
 */
export function looksGeneratedLetters(value: string): boolean {
  if (value.length < 16 || !/^[A-Za-z]+$/.test(value)) return false;
  let changes = 0;
  let upper = 0;
  for (let i = 0; i < value.length; i++) {
    const isUpper = value.charCodeAt(i) <= 90;
    if (isUpper) upper++;
    if (i > 0 && isUpper !== value.charCodeAt(i - 1) <= 90) changes++;
  }
  return upper >= value.length * 0.3 && upper <= value.length * 0.7 && changes >= value.length / 3;
}

/**
 * Letters and digits interleaved as a generator leaves them: at least 3 digits and
 * at least 5 changes between a letter and a digit (separators skipped). Names people
 * write (`user_id_2`, `sha256_v2`, `struct_X509_pubkey_st`) change a few times at most.
 */
export function looksGenerated(value: string): boolean {
  let digits = 0;
  let changes = 0;
  let prev = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const kind = c >= 48 && c <= 57 ? 2 : (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? 1 : 0;
    if (kind === 0) continue;
    if (kind === 2) digits++;
    if (prev !== 0 && kind !== prev) changes++;
    prev = kind;
  }
  return digits >= 3 && changes >= 5;
}
/**
 * Lowercase letters as a generator leaves them, not words: 16 or more letters (digits and
 * separators skipped), at most 20% of them vowels and a run of 5 consonants (`kzrvqtmwxp…`).
 * Random letters hold about 19% vowels, English names about 38% (`user_session_cache`);
 * abbreviations with few vowels are short (`xmlhttprequest` has 14 letters). Upper case: false.
 */
export function looksRandomLower(value: string): boolean {
  let letters = 0;
  let vowels = 0;
  let run = 0;
  let maxRun = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 97 || c > 122) {
      if (c >= 65 && c <= 90) return false;
      continue;
    }
    letters++;
    if (c === 97 || c === 101 || c === 105 || c === 111 || c === 117) {
      vowels++;
      run = 0;
    } else if (++run > maxRun) maxRun = run;
  }
  return letters >= 16 && vowels <= letters * 0.2 && maxRun >= 5;
}

/** A dotted code name (`process.env.API_KEY`, `config.auth.token`). */
const DOTTED = /^(?:[A-Za-z_$][\w$]{0,63}\.){1,16}[A-Za-z_$][\w$]{0,63}$/;
/** A qualified type name (`clm:AgencyIdentificationCodeContentType`, XML Schema): a prefix, then three or more capitalised words. */
const QUALIFIED_NAME = /^[A-Za-z][\w.-]{0,31}:(?:[A-Z][a-z]{1,24}){3,16}$/;
const HAS_DIGIT = /[0-9]/;
const HAS_LETTER = /[A-Za-z]/;
/** A slug such as `cmp2-qat-1208358310` or `jjwt-jackson-0.11.2`: lowercase words and versions joined by `-`. */
const SLUG = /^[a-z][a-z0-9]*(?:[-.][a-z0-9]+){2,}$/;
/** Lowercase or uppercase hex digits only. */
const HEX_ONLY = /^(?:[0-9a-f]+|[0-9A-F]+)$/;
/** A UUID with no other content: an identifier unless the name says otherwise (checked by the caller). */
const UUID_ONLY = new RegExp(`^${UUID}$`, 'i');

/** Least Shannon entropy (bits per character) of a `generic-secret` value. */
export const GENERIC_MIN_ENTROPY = 3.5;

function acceptGeneric(value: string, ctx: RuleContext): boolean {
  // Cheapest checks first: this runs for every assignment to a secret-like name.
  if (!HAS_DIGIT.test(value) && !looksGeneratedLetters(value.replace(SEPARATORS, '')) && !looksRandomLower(value)) return false;
  // Digits only: a secret when long and varied (a numeric client secret or id such as
  // Discord's); shorter numbers under such names are counts, ports and timestamps.
  if (!HAS_LETTER.test(value) && (value.length < 16 || !/^\d+$/.test(value) || shannonEntropy(value) < 2)) return false;
  const { text, at } = ctx;
  const name = nameAround(text, at, ctx.matchEnd);
  const words = identifierWords(name);
  const quoted = isQuoted(text, ctx.matchEnd - value.length);
  const isPassword = PASSWORD_NAME.test(words.at(-1) ?? '');
  if (value.length < (isPassword && quoted ? 8 : 10)) return false;
  if (looksLikeReference(value) || looksLikePlaceholder(value) || isEncodedText(value)) return false;
  if (SLUG.test(value) && !UUID_ONLY.test(value) && !looksGenerated(value) && !looksRandomLower(value)) return false;
  // A quoted password is typed by a person: a lower bar than a generated key. A UUID's
  // dashes and hex alphabet cap its entropy; version 4 is random by construction (checked below).
  // Hex has 16 symbols: a random hex string of 20-40 characters has less entropy than the bar, so it gets its own.
  // A short generated value (15 characters of [a-z0-9]) cannot reach 3.5 bits: interleaving is evidence enough there.
  const minEntropy = isPassword && quoted ? 2.5 : /^\d+$/.test(value) ? 2 : HEX_ONLY.test(value) || looksGenerated(value) ? 2.8 : GENERIC_MIN_ENTROPY;
  if (!UUID_ONLY.test(value) && shannonEntropy(value) < minEntropy) return false;
  if (words.some((w) => NOT_SECRET_WORDS.has(w))) return false;
  // Tokens and API keys are issued in the b64token alphabet (RFC 6750 section 2.1, plus `:`, and `%` of percent-encoding):
  // other punctuation under such a name is not one. Passwords and secrets may hold any character.
  if (!isPassword && !words.some((w) => w === 'secret' || w === 'secrets') && NOT_TOKEN_CHAR.test(value) && !SANCTUM_TOKEN.test(value)) return false;
  // `credentials file:` then, on the next line, `client_id: …`: the value caught is that line's key.
  if (!isPassword && value.endsWith(':')) return false;
  // The keyword must be a word of the name ("token", "apiKey", "passwords", "authToken"), not part of a
  // longer one ("keyboard", "author", "monkeys"); lowercase compounds such as "apikey" are listed.
  const kwEnd = keywordEnd(text, at);
  const next = text.charCodeAt(kwEnd) || 0;
  if (next >= 97 && next <= 122) return false;
  const prev = text.charCodeAt(at - 1) || 0;
  const first = text.charCodeAt(at);
  if (first >= 97 && first <= 122 && prev >= 97 && prev <= 122 && !COMPOUND_BEFORE.test(text.slice(Math.max(0, at - 12), at))) return false;
  if (!matchesProviderFormat(name, value)) return false;
  if (looksHandMadeHex(value) || hasCountingPattern(value) || hasTypedRun(value) || looksLikeHostName(value)) return false;
  // A token starts with a letter, a digit or `_ - + /` (base64, base64url); `=value`, `?value`
  // is a doubled operator or an edited sample. Passwords may start with anything.
  if (!isPassword && !/^[\w+/-]/.test(value)) return false;
  if (isKnownPublicValue(value)) return false;
  // An unquoted value after a call's argument label (`f(token: value)`) is code, not a literal.
  let lead = at - leadingNameLength(text, at) - 1;
  while (lead >= 0 && (text[lead] === '"' || text[lead] === "'")) lead--;
  const leadChar = lead >= 0 ? text[lead] : '';
  // After `,` with `=` it is a field of a connection string (`host:6380,password=…`, `Server=…;Password=…`).
  if (!isQuoted(text, ctx.matchEnd - value.length) && (leadChar === '(' || (leadChar === ',' && !text.slice(keywordEnd(text, at), ctx.matchEnd - value.length).includes('=')))) return false;
  // A UUID is a secret only when random (version 4) and named as one; version 1 UUIDs are timestamps.
  // A version-1 UUID is a timestamp and a node id; any other under a secret's name is treated as random.
  if (UUID_ONLY.test(value) && (value[14] === '1' || !words.some((w) => SECRET_WORDS_STRICT.has(w)))) return false;
  return true;
}
const NOT_TOKEN_CHAR = /[^A-Za-z0-9\-._~+/=:%]/;
/** A Laravel Sanctum personal access token: the token's row id, `|`, and 40 random characters (48 in later releases). */
const SANCTUM_TOKEN = /^\d{1,10}\|[A-Za-z0-9]{40,48}$/;
const SECRET_WORDS_STRICT = new Set(['token', 'secret', 'password', 'passwd', 'pwd', 'apikey', 'key']);
const PASSWORD_NAME = /^(?:password|passwd|pwd|pass)s?$/;
/** Lowercase words that form one word with a following keyword: `apikey`, `accesstoken`, `dbpassword`. */
const COMPOUND_BEFORE = /(?:^|[^a-z])(?:api|secret|access|auth|private|client|master|session|app|bot|user|admin|service|db|root|refresh|bearer|encryption|signing|license|webhook|my|id|oauth|sas|account|consumer|shared|storage|storageaccount|sql|cloud|iam|token)$/;

/**
 * Providers whose credential has one documented shape: a value under such a
 * name that lacks the shape is not that credential (a ciphertext, a different
 * id), and the provider's own rule reports the ones that have it.
 */
const PROVIDER_FORMATS: ReadonlyArray<readonly [RegExp, RegExp]> = [
  [/aws.{0,8}secret|secret.{0,8}access.{0,4}key/i, /^[A-Za-z0-9/+]{40}$/],
  [/meraki/i, /^[0-9a-f]{40}$/],
  [/cloudflare/i, /^(?:[a-f0-9]{37}|[A-Za-z0-9_-]{40}|v1\.0-[a-f0-9-]{150,200}|cf(?:k|ut|at)_[A-Za-z0-9]{40}[a-f0-9]{8})$/],
  [/mailchimp/i, /^[a-f0-9]{32}-us\d{1,2}$/],
  [/telegram/i, /^\d{5,16}:A[\w-]{34}$/],
];
function matchesProviderFormat(name: string, value: string): boolean {
  for (const [n, v] of PROVIDER_FORMATS) if (n.test(name) && !v.test(value)) return false;
  return true;
}

/**
 * Hex a person edited, not a generator's output: 24+ letters and digits of which all but one or
 * two are hex digits (`3f9c…0q7e…`). A random value over [a-z0-9] holds about 55% letters past `f`, so one or two is
 * practically never seen (for 24 characters, under one in 10^6).
 */
function looksHandMadeHex(value: string): boolean {
  if (value.length < 24 || !/^[A-Za-z0-9]+$/.test(value)) return false;
  let nonHex = 0;
  let upper = 0;
  let lower = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i) | 0x20;
    if (c >= 0x61 && c <= 0x7a && c > 0x66) nonHex++;
    else if (c >= 0x61 && c <= 0x66) {
      if (value.charCodeAt(i) < 0x61) upper++;
      else lower++;
    }
    if (nonHex > 2) return false;
  }
  return nonHex > 0;
}

const SEPARATORS = /[-_]/g;

/** Keyboard rows a person types as filler. */
const KEYBOARD_RUN = /qwert|asdfg|zxcvb|yxcvb|azert/i;
/**
 * A run a person typed: 6 or more ascending letters or digits (`abcdef`, `123456`, `mnopqr`) or a
 * keyboard row (`qwert`, `zxcvb`). {@link looksLikePlaceholder} asks for 8 (it also guards provider
 * tokens); a generator's value of 64 characters holds an ascending run of 6 with odds under 10^-6.
 */
function hasTypedRun(value: string): boolean {
  if (KEYBOARD_RUN.test(value)) return true;
  let up = 1;
  for (let i = 1; i < value.length; i++) {
    const c = value.charCodeAt(i) | 0x20;
    const p = value.charCodeAt(i - 1) | 0x20;
    up = c === p + 1 && isAlnumCode(value.charCodeAt(i)) && isAlnumCode(value.charCodeAt(i - 1)) ? up + 1 : 1;
    if (up >= 6) return true;
  }
  return false;
}

/** A host name with a common top-level domain, and perhaps a port (`abc123.redis.cache.windows.net:6380`). */
const HOST_NAME = /^(?:[A-Za-z0-9-]{1,63}\.){1,8}(?:com|net|org|io|dev|app|cloud|ai|co|us|eu|de|uk|info|biz|local|internal)(?::\d{1,5})?$/i;
function looksLikeHostName(value: string): boolean {
  return HOST_NAME.test(value);
}

/**
 * A counting pattern typed as a sample: letters and digits stepping up together at every other
 * position (`a1b2c3d4`, `1a2b3c4d`, `A1B2C3`) for 8 or more characters, separators skipped.
 */
function hasCountingPattern(value: string): boolean {
  // The last two letters or digits seen (lowercased), separators skipped.
  let prev2 = -1;
  let prev1 = -1;
  let run = 0;
  for (let i = 0; i < value.length; i++) {
    const raw = value.charCodeAt(i);
    if (!isAlnumCode(raw)) continue;
    const c = raw >= 65 && raw <= 90 ? raw + 32 : raw;
    run = prev2 >= 0 && c === prev2 + 1 ? run + 1 : 0;
    if (run >= 6) return true;
    prev2 = prev1;
    prev1 = c;
  }
  return false;
}

/** A reference, or a dotted code name whose parts are all words (not `s.<random>` of a Vault token). */
function looksLikeReference(value: string): boolean {
  if (/\{\{|\$\{|\$\(|\.\.\.|…/.test(value)) return true;
  if (REFERENCE.test(value) || QUALIFIED_NAME.test(value)) return true;
  if (CODE_NAME.test(value) && !looksGenerated(value) && !looksRandomLower(value)) return true;
  if (!DOTTED.test(value)) return false;
  return !value.split('.').some((seg) => seg.length >= 16 && HAS_DIGIT.test(seg) && shannonEntropy(seg) >= 3.5);
}

/** Base64 of ordinary text (`ZHVtbXkgdGV4dA==` is "dummy text"): encoded prose, not a key. */
function isEncodedText(value: string): boolean {
  if (value.length < 12 || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  const decoded = Buffer.from(value, 'base64').toString('latin1');
  return /^[\x20-\x7e]+$/.test(decoded) && /[a-z]{3,} [a-z]{3,}/i.test(decoded);
}


/** Characters of the name before `at` (bounded by 64). */
function leadingNameLength(text: string, at: number): number {
  let s = at;
  while (s > 0 && at - s < 64 && NAME_CHAR.test(text[s - 1] as string)) s--;
  return at - s;
}
const GENERIC_WORDS = ['password', 'passwd', 'pwd', 'secret', 'token', 'credential', 'creds', 'apikey', 'api_key', 'api-key', 'key', 'auth', 'access'];
/** End offset of the generic keyword that starts at `at`. */
function keywordEnd(text: string, at: number): number {
  const head = text.slice(at, at + 12).toLowerCase();
  for (const w of GENERIC_WORDS) if (head.startsWith(w)) return at + w.length + (head[w.length] === 's' ? 1 : 0);
  return at;
}
function isQuoted(text: string, valueStart: number): boolean {
  const c = text[valueStart - 1];
  return c === '"' || c === "'" || c === '`';
}

/** Character classes for {@link assignmentFollows}: 1 name character, 2 space or quote, 3 operator. */
const ASSIGN_CLASS = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-') ASSIGN_CLASS[c.charCodeAt(0)] = 1;
for (const c of ' \t"\'`]') ASSIGN_CLASS[c.charCodeAt(0)] = 2;
for (const c of '=:>,|?+') ASSIGN_CLASS[c.charCodeAt(0)] = 3;

/**
 * Whether an assignment operator follows the name that starts at `at`: name
 * characters, then at most one more word (`var x string =`), spaces and quotes,
 * then `= : > , | ? +`. At most 64 characters are read. Skips the generic
 * pattern for the many keyword occurrences in prose and code that assign nothing.
 */
export function assignmentFollows(text: string, at: number): boolean {
  const end = Math.min(text.length, at + 64);
  let i = at;
  let words = 0;
  let inName = true;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    const k = c < 128 ? (ASSIGN_CLASS[c] as number) : 0;
    if (k === 3) return true;
    // ` - ` between spaces: a hand-written list (`token - 'value'`).
    if (c === 45 && i > at && (text.charCodeAt(i - 1) === 32 || text.charCodeAt(i - 1) === 9) && (text.charCodeAt(i + 1) === 32 || text.charCodeAt(i + 1) === 9)) return true;
    if (k === 0) return false;
    if (k === 1) {
      if (!inName) {
        if (++words > 1) return false;
        inName = true;
      }
    } else inName = false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Rules that need more than one pattern.

/** Element names of XML configuration files whose content is a credential (lowercase; matched case-insensitively). */
const XML_CREDENTIAL_ELEMENTS = ['secret', 'password', 'passphrase', 'apitoken', 'privatekey', 'secretkey', 'clientsecret', 'secretaccesskey'];

/**
 * The content of an XML credential element is a secret when one of its words (split at
 * spaces and `{ }`) is a value: 8 or more characters, not a reference or placeholder, with a
 * digit or letters changing case as a generator leaves them, and at least 3 bits of entropy
 * per character. `<password>${env.DB_PASSWORD}</password>` and `<secret>changeme</secret>` are not.
 */
function acceptXmlElement(content: string): boolean {
  for (const word of content.split(/[\s{}]+/)) {
    if (word.length < 8) continue;
    if (looksLikeReference(word) || looksLikePlaceholder(word)) continue;
    if (!HAS_DIGIT.test(word) && !looksGeneratedLetters(word)) continue;
    if (shannonEntropy(word) >= 3) return true;
  }
  return false;
}

/** A JWT: base64url header and payload starting `eyJ`, header decoding to a JSON object. */
function acceptJwt(s: string): boolean {
  const dot = s.indexOf('.');
  const header = s.slice(0, dot);
  if (isJsonObject(header)) return true;
  // A header with a few damaged characters still reads as a JSON object; base64 noise does not.
  const json = Buffer.from(header, 'base64url').toString('latin1');
  if (!json.startsWith('{"') || !json.endsWith('}')) return false;
  let printable = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) printable++;
  }
  return printable / json.length >= 0.85 && /"(?:alg|typ|kid)"/.test(json);
}

/** A base64-encoded JWT (`ZXlK` = base64 of `eyJ`): its decoding must be a JWT. */
function acceptJwtBase64(s: string): boolean {
  const head = s.replace(/[\r\n]/g, '').slice(0, 400);
  const decoded = Buffer.from(head.slice(0, head.length - (head.length % 4)), 'base64').toString('latin1');
  return /^eyJ[A-Za-z0-9_-]{8}/.test(decoded);
}

/** `curl -u user:password`: a credential pair that is not a variable, template or placeholder. */
function acceptCurlUser(s: string, ctx: RuleContext): boolean {
  const lineStart = Math.max(0, ctx.at - 1024);
  const before = ctx.text.slice(lineStart, ctx.at);
  if (!/\bcurl\b/.test(before)) return false;
  const pair = s.replace(/^["']|["']$/g, '');
  const colon = pair.indexOf(':');
  if (colon < 0) return false;
  const user = pair.slice(0, colon).replace(/^["'{]+|["'}]+$/g, '');
  const pass = pair.slice(colon + 1).replace(/^["'{]+|["'}]+$/g, '');
  const secret = pass.length > 0 ? pass : user;
  if (secret.length < 3) return false;
  if (/\{\{|\$\{|\$\(/.test(pair) || /^[$<[{%]/.test(secret) || /^(?:change(?:it|me)|pass(?:word)?|pwd|test|token|secret|\*+|x+|y+)$/i.test(secret)) return false;
  if (/^(?:[$<[{]|\$\{)/.test(user) && pass.length === 0) return false;
  return shannonEntropy(pair) >= 2 && !looksLikePlaceholder(secret);
}

/**
 * A command-line credential flag's value: a generated value (digits, or letters changing case
 * as a generator leaves them), 3 bits of entropy per character or more, not a reference
 * (`$TOKEN`, `${{ secrets.X }}`) or filler.
 */
function acceptFlagValue(s: string): boolean {
  if (!HAS_DIGIT.test(s) && !looksGeneratedLetters(s.replace(/[^A-Za-z]/g, ''))) return false;
  if (/^[$%{<]/.test(s) || looksLikePlaceholder(s) || hasTypedRun(s)) return false;
  return shannonEntropy(s) >= 3.5;
}

/** A Docker config `auth`: base64 of `user:password` (both parts printable, the password non-empty). */
function acceptDockerAuth(s: string): boolean {
  const decoded = Buffer.from(s, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon < 1 || colon === decoded.length - 1) return false;
  if (!/^[\x20-\x7e]+$/.test(decoded.slice(0, colon))) return false;
  const password = decoded.slice(colon + 1);
  return !looksLikePlaceholder(password) && !/^(?:my[_-]?)?(?:password|passwd|pass|secret|changeme|x+)$/i.test(password);
}

/**
 * An AWS secret access key: 40 characters of base64 (30 random bytes), so upper and
 * lower case letters and digits all occur; not filler or a documentation example.
 */
function acceptAwsSecret(s: string): boolean {
  return /[a-z]/.test(s) && /[A-Z]/.test(s) && HAS_DIGIT.test(s) && !looksLikePlaceholder(s) && !isKnownPublicValue(s);
}

/** Values inside an `Authorization`/API-key header: not a variable, template or placeholder. */
function acceptHeaderValue(s: string): boolean {
  if (/^[$<{%[]|^\.\.\.|\$\(/.test(s)) return false;
  return !looksLikePlaceholder(s) && shannonEntropy(s) >= 2.75;
}

/** `Authorization: Basic <base64>`: the credential decodes to `user:password`. */
function acceptBasic(s: string): boolean {
  if (looksLikePlaceholder(s)) return false;
  const decoded = Buffer.from(s, 'base64').toString('latin1');
  return decoded.includes(':') || s.length >= 16;
}

/**
 * Credential-shaped values that are public: Google API keys published in
 * Google's own samples, and example values from vendor documentation (NuGet,
 * Kubernetes) (the
 * gitleaks project allowlists the same values). Stored as SHA-256 digests so
 * the repository holds no credential-shaped string; hashed only after a value
 * matched a rule, so this costs one hash per finding, not per byte.
 */
const KNOWN_PUBLIC_DIGESTS: ReadonlySet<string> = new Set<string>([
  'dba72c00f41f4e4c435e2491a5e1ce0140c7b5a6a498dc4847396b5e6368970c',
  '2f21fd9c81678e396751af8b2472e2bd209ff5ce38da144052fb6c024485982f',
  '27a9a42931dff7eb2f8434e20a9bce976ea364e7bee49187f19d5cfeca9c7045',
  '49f777db995e8260da7ca9ffdf0c08d66f0453e97ec967018baf2cdfe3b582d0',
  'a6c814bc555ae62c7bd8b58ec07bf559c7ed3a009976a1e0acc9cef0d4473b41',
  '8731261cb72d86267a32a532ebd3df429e2144e5e4ced7e13568bc9e6c8fb1b1',
  '37f8f09bdf12c2f2eae4ead7273a62ddb0c23459cbf902892f282b57f7ed6619',
  'eb540d2b6ee2a0a47c5779bc8a0141784c6b753840d4c6f4e2428a6e86e9e0b1',
  '2037abcaffb2b77785da716cf7ccff4ff4d00c4ea930db0167b7d71f50af7eb4',
  '3a8b61d0f636b007840c0d40ba12bcf48465dc054cdc1a68704a33521d84b665',
  '4c98242dcadc8b29005c6b4aad526552d5ea1842149154c0694adeec75847583',
  'ea9bb1082cf95663f5faca23b8b15ef2aa0fce0a5c6df9c32dcb85b2e0a4513d',
  '3f370c9dd8225c63b5c77de1f785edc9712958f18bb612d5fa2e0ae33aeca682',
  'a19f89ab3555eac10c40741f6df79ecf0935998f15569f8db9d67bce0181fff6',
  'e4a5542bb7fd7b67e943c71ad29c34b5972c9840597e7eda53e666f44d5da0b9',
  'dc0fcf046c61640cbd1e8b999ada3262d722c2ca4bf42dceac999020ffdbb614',
  'f56e323494a6ffc2064e7a955908957d84f0755e5f975dabd64328d0359a8f7c',
  '0b476bdf9acf2123d547b5ae76f1e59884d8ec9553ee0c47e9f31fd4768f3f3c',
  'a0702bc91d699f600970f4dc4992b13ede1a29d49fa0942dd4bed2b5e4b1016e',
  // The password of the Secret example in the Kubernetes documentation.
  'a7b580d711ef2807c7f11d881a1e7ff8a68c7e7d4e7c14e217bc9c522e3678ba',
  // The account key of the Azure Storage emulator (Azurite, `devstoreaccount1`), published by Microsoft.
  '0011cc25eb4320717494d2703e8cba85743e71b500283c21c8b88147992f9059',
  // The example token on jwt.io (HS256, `"admin": true`), signed with the secret printed beside it.
  'c794fa6d20c64efb9adf980ae93af472a1679775862d421ffe55d4a57fad5b3e',
]);

/** Whether `value` is a known-public example value (see {@link KNOWN_PUBLIC_DIGESTS}). */
export function isKnownPublicValue(value: string): boolean {
  return KNOWN_PUBLIC_DIGESTS.has(sha256Hex(value));
}

// ---------------------------------------------------------------------------
// Kubernetes Secret manifests.

const K8S_DATA_ENTRY = /[ \t]{1,16}(?:-[ \t]{1,4})?[\w.-]{1,64}:[ \t]{0,4}(?:[|>][-+]?[ \t]{0,4}\r?\n[ \t]{1,32})?["']?([A-Za-z0-9+/]{10,8192}={0,3})["']?[ \t]{0,16}(?=\r?\n|$)/y;

/**
 * A `kind: Secret` manifest: the values under its `data:` (or `stringData:`)
 * block. Searched within one YAML document (between `---` separators) and at
 * most {@link K8S_WINDOW} characters either side of the `kind:` line.
 */
export const K8S_WINDOW = 2048;

/** The secret values of a Kubernetes Secret whose `kind:` line begins at `at`, as [start, end) pairs. */
export function findK8sSecretValues(text: string, at: number): Array<[number, number]> {
  const head = /kind:[ \t]{0,8}["']?secret["']?[ \t]{0,16}(?=\r?\n|$)/iy;
  head.lastIndex = at;
  if (!head.test(text)) return [];
  // Search for document separators inside the window only: an unbounded indexOf
  // from every `kind:` would make a text full of them quadratic.
  const wlo = Math.max(0, at - K8S_WINDOW);
  const window = text.slice(wlo, Math.min(text.length, at + K8S_WINDOW));
  const rel = at - wlo;
  const sepBefore = window.lastIndexOf('\n---', rel);
  const sepAfter = window.indexOf('\n---', rel);
  const lo = wlo + (sepBefore >= 0 ? sepBefore + 4 : 0);
  const doc = window.slice(lo - wlo, sepAfter >= 0 ? sepAfter : window.length);
  const out: Array<[number, number]> = [];
  const dataRe = /(?:^|\n)[ \t]{0,16}(?:string)?[dD]ata:[ \t]*\r?\n/g;
  for (const m of doc.matchAll(dataRe)) {
    let pos = m.index + m[0].length - 1; // at the newline, entries start after it
    for (let k = 0; k < 64; k++) {
      if (doc[pos] !== '\n') break;
      // skip comment lines
      const lineEnd = doc.indexOf('\n', pos + 1);
      const lineText = doc.slice(pos + 1, lineEnd < 0 ? doc.length : lineEnd);
      if (/^[ \t]*#/.test(lineText)) {
        pos = lineEnd < 0 ? doc.length : lineEnd;
        continue;
      }
      if (!/^[ \t]{1,16}\S/.test(lineText)) break; // the block ends at a line that is not indented
      K8S_DATA_ENTRY.lastIndex = pos + 1;
      const e = K8S_DATA_ENTRY.exec(doc);
      if (!e) {
        pos = lineEnd < 0 ? doc.length : lineEnd;
        continue;
      }
      const v = e[1] as string;
      const vStart = lo + e.index + e[0].indexOf(v, e[0].indexOf(':'));
      if (!isKnownPublicValue(v)) out.push([vStart, vStart + v.length]);
      pos = K8S_DATA_ENTRY.lastIndex;
    }
  }
  return out;
}

/**
 * Rules for provider tokens with a distinctive prefix: `[id, keywords, pattern, hosts]`,
 * each pattern a literal prefix and a bounded body. The token is the whole match, with a
 * token boundary on both sides; its least entropy (after the prefix) keeps filler out.
 */
function providerTokens(list: ReadonlyArray<readonly [string, readonly string[], string, readonly string[]]>): SecretRule[] {
  return list.map(([id, keywords, body, hosts]) => ({
    id,
    keywords,
    re: sticky(`${START}(?:${body})(?![A-Za-z0-9_%+/=-])`),
    accept: (s: string) => {
      // The body after the prefix (a Twitter bearer token's prefix is its run of `A`).
      const rest = s.startsWith('AAAA') ? s.replace(/^A{1,64}/, '') : s.slice(s.search(/[-_.]/) + 1);
      return !looksLikePlaceholder(rest) && shannonEntropy(rest) >= 3;
    },
    ...(hosts.length > 0 ? { hosts } : {}),
  }));
}

/**
 * Rules for webhook URLs: `[id, keywords, pattern, hosts]`, each pattern the host and path
 * from the keyword on, with a bounded secret part; the scheme is added to the finding.
 */
const HOST_CHAR = /[A-Za-z0-9.-]/;
function webhookUrls(list: ReadonlyArray<readonly [string, readonly string[], string, readonly string[]]>): SecretRule[] {
  return list.map(([id, keywords, body, hosts]) => ({
    id,
    keywords,
    re: sticky(`${body}(?![\\w@/-])`),
    accept: (s: string) => !looksLikePlaceholder(s.slice(s.indexOf('/'))),
    extendStart: (text: string, start: number) => {
      // Back over the rest of the host name (`contoso.webhook.office.com`), then the scheme.
      let s = start;
      while (s > 0 && start - s < 64 && HOST_CHAR.test(text[s - 1] as string)) s--;
      return text.startsWith('https://', s - 8) ? s - 8 : text.startsWith('http://', s - 7) ? s - 7 : s;
    },
    hosts,
  }));
}

/** Most characters between a provider's name and its credential (the name's rest, an operator, quotes, a short phrase). */
const PROVIDER_NAME_WINDOW = 40;

/** `kw` matched case-insensitively inside a pattern whose value part is case-sensitive (`mixpanel` → `[mM][iI]…`). */
function caseless(kw: string): string {
  return [...kw].map((c) => (/[a-z]/.test(c) ? `[${c}${c.toUpperCase()}]` : escapeRe(c))).join('');
}

/**
 * Credentials that carry no prefix of their own, recognised as the providers' detectors do: the
 * provider's name, then within {@link PROVIDER_NAME_WINDOW} characters (any, line breaks too) a
 * value of that provider's documented shape, exact length and alphabet, as a whole token
 * (`mixpanel <32 letters and digits>`, `api2cart key is <32 hex>`, `luno '<43 base64url>'`).
 * `[id, provider names (lowercase), value shape, hosts]`; the value is the finding. The shape
 * does the work a generic rule cannot: a value one character longer or in another alphabet is
 * not taken, and the name alone (a word in prose) is not enough. The value must hold a digit and
 * must not be filler, a typed run or a counting pattern.
 */
function providerNamed(list: ReadonlyArray<readonly [string, readonly string[], string, readonly string[]]>): SecretRule[] {
  return list.map(([id, names, shape, hosts]) => ({
    id,
    keywords: names,
    re: sticky(
      // The name starts a word: after a non-letter, or at a camelCase hump (`getBetterStackToken`).
      `(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z]))(?:${names.map(caseless).join('|')})[^]{0,${PROVIDER_NAME_WINDOW}}?(?<![A-Za-z0-9_+/-])(${shape})(?![A-Za-z0-9_+/=-])`,
      'd',
    ),
    group: 1,
    accept: acceptNamedValue,
    ...(hosts.length > 0 ? { hosts } : {}),
  }));
}
function acceptNamedValue(s: string): boolean {
  return HAS_DIGIT.test(s) && shannonEntropy(s) >= 2.8 && !looksLikePlaceholder(s) && !hasTypedRun(s) && !hasCountingPattern(s);
}

/**
 * An Azure Storage account key (64 random bytes in base64: 86 characters and `==`) after a name
 * that says so (`AccountKey`, `account_key`, `storageAccountKey`, `-storagekey`), within
 * {@link PROVIDER_NAME_WINDOW} characters: across a line break, a brace or `||` of code too.
 */
function acceptAzureStorageKey(s: string): boolean {
  return shannonEntropy(s) >= 4.5 && !looksLikePlaceholder(s) && !isKnownPublicValue(s);
}

// ---------------------------------------------------------------------------
// The rules. Order is priority: at equal start offsets, the earlier rule names a finding.

const GITHUB_HOSTS = ['github.com', '*.github.com', '*.githubusercontent.com', 'ghcr.io'];
const SLACK_HOSTS = ['slack.com', '*.slack.com'];
const AWS_HOSTS = ['*.amazonaws.com', '*.amazonaws.com.cn', '*.api.aws'];

export const SECRET_RULE_TABLE: readonly SecretRule[] = [
  {
    id: 'github-fine-grained-pat',
    keywords: ['github_pat_'],
    re: prefixed(['github_pat_'], '[A-Za-z0-9_]{50,255}', '(?![A-Za-z0-9_])'),
    accept: (s) => shannonEntropy(s.slice(11)) >= 3,
    hosts: GITHUB_HOSTS,
  },
  {
    id: 'github-token',
    keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
    re: prefixed(['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'], '[A-Za-z0-9]{36,255}'),
    accept: (s) => shannonEntropy(s.slice(4)) >= 3,
    hosts: GITHUB_HOSTS,
  },
  {
    id: 'gitlab-token',
    keywords: ['glpat-', 'gldt-', 'glptt-', 'glrt-', 'glcbt-', 'glimt-', 'glagent-', 'gloas-', 'glsoat-', 'glft-', 'glffct-', 'gr1348941'],
    re: sticky(
      START +
        String.raw`(?:glpat-[\w-]{27,300}\.[0-9a-z]{2}[0-9a-z]{7}|glrt-t\d_[\w-]{27,300}\.[0-9a-z]{2}[0-9a-z]{7}|(?:glpat|gldt|glrt|glsoat|glft|glffct)-[\w-]{20}|glptt-[0-9a-f]{40}|glcbt-[0-9a-f]{1,5}_[\w-]{20}|glimt-[\w-]{25}|glagent-[\w-]{50,1024}|gloas-[\w-]{64}|GR1348941[\w-]{20})` +
        END,
    ),
    accept: (s) => !looksLikePlaceholder(s) && shannonEntropy(s.slice(s.search(/[-_]/) + 1)) >= 3,
    hosts: ['gitlab.com', '*.gitlab.com'],
  },
  {
    id: 'aws-access-key-id',
    keywords: ['akia', 'asia', 'abia', 'acca', 'a3t'],
    re: sticky(`${START}(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])`),
    minEntropy: 3,
    accept: (s) => !s.endsWith('EXAMPLE') && shannonEntropy(s.slice(4)) >= 2.5,
    hosts: AWS_HOSTS,
  },
  {
    id: 'aws-secret-access-key',
    keywords: ['aws'],
    re: assigned(String.raw`aws_?(?:secret_?(?:access_?)?key|access_?key_?secret)`, '[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])'),
    group: 1,
    minEntropy: 4,
    accept: (s) => !looksLikePlaceholder(s),
    hosts: AWS_HOSTS,
  },
  {
    // The secret half of a key pair beside its access key id: a row of the credentials CSV the AWS
    // console hands out (`AKIA...,wJalr...`), or the two separated by `:`, `;`, `|` or a tab.
    id: 'aws-secret-access-key',
    keywords: ['akia', 'asia', 'abia', 'acca', 'a3t'],
    re: sticky(String.raw`${START}(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}["']?[ \t]{0,4}[,;|\t:][ \t]{0,4}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`, 'd'),
    group: 1,
    minEntropy: 4,
    accept: acceptAwsSecret,
    hosts: AWS_HOSTS,
  },
  {
    // Prose: "my AWS secret key is wJalr...", "AWS Secret Access Key: ...", "aws secret = ...".
    id: 'aws-secret-access-key',
    keywords: ['aws'],
    re: sticky(
      String.raw`aws[ _-]?(?:secret(?:[ _-]?access)?(?:[ _-]?key)?|access[ _-]?key[ _-]?secret)s?["']?[ \t]{0,4}(?:is|was|=|:|:=|->|=>)?[ \t]{0,4}(?:\r?\n[ \t]{0,8})?["'\x60]?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
      'di',
    ),
    group: 1,
    minEntropy: 4,
    accept: acceptAwsSecret,
    hosts: AWS_HOSTS,
  },
  {
    id: 'aws-bedrock-api-key',
    keywords: ['absk', 'bedrock-api-key-'],
    re: sticky(String.raw`(?:(?<![\w-])ABSK[A-Za-z0-9+/]{109,269}={0,2}${END64}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%&.-]{0,4096})`),
    minEntropy: 3,
    hosts: AWS_HOSTS,
  },
  {
    id: 'slack-webhook-url',
    keywords: ['hooks.slack.com'],
    re: sticky(String.raw`hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{20,255}`),
    extendStart: (text, start) =>
      text.startsWith('https://', start - 8) ? start - 8 : text.startsWith('http://', start - 7) ? start - 7 : start,
    hosts: ['hooks.slack.com'],
  },
  // Webhook URLs whose path is the credential: anyone holding the URL can post to the channel or
  // start the workflow. The finding is the path from the host on.
  ...webhookUrls([
    ['discord-webhook-url', ['discord.com/api/webhooks/', 'discordapp.com/api/webhooks/'], String.raw`discord(?:app)?\.com\/api\/webhooks\/\d{17,20}\/[\w-]{60,72}`, ['discord.com', 'discordapp.com']],
    ['microsoft-teams-webhook-url', ['webhook.office.com/webhookb2/'], String.raw`webhook\.office\.com\/webhookb2\/[\w@/-]{40,400}`, ['*.webhook.office.com']],
    ['zapier-webhook-url', ['hooks.zapier.com/hooks/catch/'], String.raw`hooks\.zapier\.com\/hooks\/catch\/[A-Za-z0-9/]{6,128}`, ['hooks.zapier.com']],
    ['tines-webhook-url', ['.tines.com/webhook/'], String.raw`\.tines\.com\/webhook\/[a-z0-9]{32}\/[a-z0-9]{32}`, ['*.tines.com']],
  ]),
  {
    // The signature of a pre-signed URL (Azure SAS `sig=`, AWS SigV4 `X-Amz-Signature=`, Google
    // `X-Goog-Signature=`): until it expires, it is the credential for what the URL names.
    id: 'url-signature',
    keywords: ['sig=', 'x-amz-signature=', 'x-goog-signature='],
    back: 1,
    re: sticky(String.raw`[?&](?:sig|x-amz-signature|x-goog-signature)=([A-Za-z0-9%+/_-]{32,1024}={0,2})(?![A-Za-z0-9%+/_=-])`, 'di'),
    group: 1,
    minEntropy: 3,
    accept: (s) => !looksLikePlaceholder(s),
  },
  {
    id: 'slack-token',
    keywords: ['xox', 'xapp-'],
    re: sticky(
      START +
        String.raw`(?:xoxe\.xox[bp]-\d-[A-Za-z0-9]{163,166}|xoxe-\d-[A-Za-z0-9]{146}|xoxb-[0-9]{10,13}-[0-9]{10,13}[A-Za-z0-9-]{0,64}|xoxb-[0-9]{8,14}-[A-Za-z0-9]{18,26}|xox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9-]{28,34}|xox[os]-\d{1,20}-\d{1,20}-\d{1,20}-[a-fA-F\d]{1,128}|xox[ar]-(?:\d-)?[0-9a-zA-Z]{8,48}|xapp-\d-[A-Za-z0-9]{1,32}-\d{1,20}-[a-z0-9]{1,128})` +
        '(?![A-Za-z0-9])',
    ),
    minEntropy: 2,
    hosts: SLACK_HOSTS,
  },
  {
    id: 'anthropic-api-key',
    keywords: ['sk-ant-'],
    re: sticky(String.raw`${START}sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA${END}`),
    hosts: ['api.anthropic.com'],
  },
  {
    id: 'openai-api-key',
    keywords: ['sk-'],
    re: sticky(String.raw`${START}sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,160}T3BlbkFJ[A-Za-z0-9_-]{20,160}${END}`),
    hosts: ['api.openai.com'],
  },
  {
    id: 'stripe-secret-key',
    keywords: ['sk_live_', 'sk_test_', 'sk_prod_', 'rk_live_', 'rk_test_', 'rk_prod_'],
    re: sticky(String.raw`(?<![A-Za-z0-9_])[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,247}(?![A-Za-z0-9_])`),
    accept: (s) => !looksLikePlaceholder(s.slice(8)) && shannonEntropy(s.slice(8)) >= 2.5,
    hosts: ['api.stripe.com', 'files.stripe.com', 'connect.stripe.com', 'meter-events.stripe.com'],
  },
  {
    id: 'google-api-key',
    keywords: ['aiza'],
    re: sticky(String.raw`${START}AIza[A-Za-z0-9_-]{35}${END}`),
    minEntropy: 4,
    accept: (s) => !looksLikePlaceholder(s.slice(4)) && !isKnownPublicValue(s),
    hosts: ['*.googleapis.com', '*.firebaseio.com'],
  },
  {
    id: 'jwt',
    keywords: ['eyj'],
    re: sticky(String.raw`${START}eyJ[A-Za-z0-9_-]{8,8192}\.eyJ[A-Za-z0-9_-]{8,16384}(?:\.[A-Za-z0-9_-]{0,8192})?`),
    accept: (s) => acceptJwt(s) && !isKnownPublicValue(s),
  },
  {
    id: 'jwt-base64',
    keywords: ['zxlk'],
    re: sticky(String.raw`(?<![A-Za-z0-9+/])ZXlK[A-Za-z0-9+/]{40,16384}={0,2}`),
    accept: acceptJwtBase64,
  },
  {
    id: 'bearer-token',
    keywords: ['authorization'],
    // `Authorization: Bearer …`, `"Authorization" = "Bearer …"`, and a header set in code: `set("Authorization", "Bearer …")`.
    re: sticky(String.raw`authorization["']?[ \t]{0,16}(?:[:=]|,)[ \t]{0,16}["']?(?:bearer|token|api-token)[ \t]{1,16}([A-Za-z0-9\-._~+/@=]{8,4096})`, 'di'),
    group: 1,
    accept: acceptHeaderValue,
  },
  {
    // A credential element of an XML configuration file: Jenkins' credentials.xml
    // (`<secret>{AQAAABAAAAAQ…}</secret>`, `<password>`, `<apiToken>`, `<passphrase>`,
    // `<privateKey>`), Maven settings.xml (`<password>`), and the like. The element's content
    // is the secret when a word of it is a value (see acceptXmlElement): an encrypted
    // Jenkins secret is a ciphertext that Jenkins' master key opens.
    id: 'xml-credential-element',
    keywords: XML_CREDENTIAL_ELEMENTS.map((e) => `<${e}>`),
    re: sticky(String.raw`<(?:${XML_CREDENTIAL_ELEMENTS.join('|')})>[ \t\r\n]{0,32}([^<>\s][^<>\r\n]{7,1023})(?:\r?\n[ \t]{0,32})?<\/`, 'di'),
    group: 1,
    accept: acceptXmlElement,
  },
  {
    id: 'basic-auth',
    keywords: ['authorization'],
    re: sticky(String.raw`authorization["']?[ \t]{0,16}(?:[:=]|,)[ \t]{0,16}["']?basic[ \t]{1,16}([A-Za-z0-9+/]{8,4096}={0,3})${END64}`, 'di'),
    group: 1,
    accept: acceptBasic,
  },
  {
    id: 'curl-auth-header',
    keywords: ['-h', '--header'],
    re: sticky(
      String.raw`(?:-H|--header)(?:=|[ \t]{1,5})["'](?:authorization:[ \t]{0,5}|(?:x-(?:[a-z]{1,32}-)?)?(?:api-?)?(?:key|token|apikey):[ \t]{0,5})([A-Za-z0-9\-._~+/@=]{8,4096})["']`,
      'di',
    ),
    group: 1,
    accept: acceptHeaderValue,
  },
  {
    id: 'curl-auth-user',
    keywords: ['-u', '--user'],
    re: sticky(
      String.raw`(?<![\w-])(?:-u|--user)(?:=|[ \t]{1,5})("[^"\r\n]{1,256}"(?::"[^"\r\n]{1,256}")?|'[^'\r\n]{1,256}'|[\w$@.{}-]{1,128}:(?:'[^'\r\n]{1,128}'|"[^"\r\n]{1,128}"|[^\s'"]{1,128}))(?=\s|$)`,
      'd',
    ),
    group: 1,
    accept: acceptCurlUser,
  },
  {
    // A password or token given on a command line (`docker login -u ci -p …`, `--password …`,
    // `-storagekey …`): the flag names the credential, the value follows a space or `=`.
    id: 'cli-credential-flag',
    keywords: ['-p ', '--password', '--passwd', '--token', '--api-key', '--apikey', '--secret', '--client-secret', '--access-key', '--secret-key', '-storagekey', '-accountkey'],
    re: sticky(
      String.raw`(?<=[ \t])-{1,2}(?:p|password|passwd|token|api-?key|secret|client-secret|access-key|secret-key|storagekey|accountkey)(?:=|[ \t]{1,4})["']?([A-Za-z0-9+/=_.~%!@#$^&*-]{12,512})["']?(?=\s|$)`,
      'di',
    ),
    group: 1,
    accept: acceptFlagValue,
  },
  {
    // The `auth` of a Docker registry in config.json (`{"auths": {"reg": {"auth": "<base64>"}}}`,
    // escaped inside a string too): base64 of `user:password`.
    id: 'docker-config-auth',
    keywords: ['"auth'],
    // `"auth"` or `"auth\"`, not `"author"`: skips the pattern for most occurrences in JSON.
    precheck: (text, at) => text.charCodeAt(at + 5) === 34 || text.charCodeAt(at + 5) === 92,
    re: sticky(String.raw`"auth\\{0,3}"[ \t]{0,4}:[ \t]{0,4}\\{0,3}"([A-Za-z0-9+/]{8,4096}={0,2})\\{0,3}"`, 'd'),
    group: 1,
    accept: acceptDockerAuth,
  },
  {
    id: 'url-credentials',
    keywords: ['://'],
    re: sticky(String.raw`:\/\/([A-Za-z0-9._~%!$&'()*+,;=-]{1,128}:[A-Za-z0-9._~%!$&'()*+,;=-]{3,128})@[A-Za-z0-9.-]{1,253}`, 'd'),
    group: 1,
    accept: (s) => {
      const colon = s.indexOf(':');
      const user = s.slice(0, colon);
      const pass = s.slice(colon + 1);
      if (pass === user || /^(?:pass(?:word)?|pwd|secret|test|changeme|mypassword|x+|\*+|1+)$/i.test(pass)) return false;
      if (/[${}<>]|^YOUR_|REPLACE/i.test(s)) return false;
      return pass.length >= 6 && !looksLikePlaceholder(pass) && shannonEntropy(pass) >= 2.5;
    },
  },
  // --- Further providers, alphabetical.
  {
    id: '1password-secret-key',
    keywords: ['a3-'],
    re: sticky(String.raw`(?<![A-Za-z0-9])A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}(?![A-Za-z0-9])`),
    minEntropy: 3.8,
    hosts: ['*.1password.com', '*.1password.eu', '*.1password.ca'],
  },
  {
    id: '1password-service-account-token',
    keywords: ['ops_eyj'],
    re: sticky(String.raw`${START}ops_eyJ[A-Za-z0-9+/]{250,8192}={0,3}`),
    minEntropy: 4,
    hosts: ['*.1password.com', '*.1password.eu', '*.1password.ca'],
  },
  {
    id: 'age-secret-key',
    keywords: ['age-secret-key-1'],
    re: sticky('AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}'),
  },
  {
    id: 'atlassian-api-token',
    keywords: ['atatt3', 'atlassian', 'confluence', 'jira'],
    re: sticky(
      String.raw`(?:(?<![\w-])ATATT3[A-Za-z0-9_=-]{186}${AFTER}|(?:atlassian|confluence|jira)${ASSIGN}([a-z0-9]{20}[a-f0-9]{4})${AFTER})`,
      'di',
    ),
    minEntropy: 3.5,
    hosts: ['*.atlassian.net', 'api.atlassian.com'],
  },
  {
    id: 'azure-ad-client-secret',
    keywords: ['q~'],
    back: 4,
    re: sticky(String.raw`(?<=^|[\\'"\x60\s>=:(,)])[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}(?=$|[\\'"\x60\s<),])`),
    minEntropy: 3,
    hosts: ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn'],
  },
  {
    id: 'clickhouse-cloud-api-secret',
    keywords: ['4b1d'],
    re: sticky(String.raw`(?<![A-Za-z0-9_])4b1d[A-Za-z0-9]{38}(?![A-Za-z0-9_])`),
    minEntropy: 3,
    hosts: ['api.clickhouse.cloud'],
  },
  {
    id: 'cloudflare-api-key',
    keywords: ['cloudflare'],
    re: assigned('cloudflare', String.raw`[a-f0-9]{37}|[a-z0-9_-]{40}`),
    group: 1,
    minEntropy: 2,
    hosts: ['api.cloudflare.com'],
  },
  {
    id: 'cloudflare-origin-ca-key',
    keywords: ['v1.0-'],
    re: sticky(String.raw`(?<![\w.-])v1\.0-[a-f0-9]{24}-[a-f0-9]{146}${END}`),
    minEntropy: 2,
    hosts: ['api.cloudflare.com'],
  },
  {
    id: 'databricks-api-token',
    keywords: ['dapi'],
    re: sticky(String.raw`(?<![A-Za-z0-9_])dapi[a-f0-9]{32}(?:-\d)?${END}`),
    minEntropy: 3,
    hosts: ['*.cloud.databricks.com', '*.azuredatabricks.net', '*.gcp.databricks.com'],
  },
  {
    id: 'digitalocean-token',
    keywords: ['dop_v1_', 'doo_v1_', 'dor_v1_'],
    re: prefixed(['dop_v1_', 'doo_v1_', 'dor_v1_'], '[a-f0-9]{64}'),
    minEntropy: 3,
    hosts: ['api.digitalocean.com', 'cloud.digitalocean.com'],
  },
  {
    id: 'docker-pat',
    keywords: ['dckr_pat_'],
    re: prefixed(['dckr_pat_'], '[A-Za-z0-9_-]{27}'),
    minEntropy: 3,
    hosts: ['hub.docker.com', 'registry-1.docker.io', 'auth.docker.io'],
  },
  {
    id: 'doppler-token',
    keywords: ['dp.pt.', 'dp.st.', 'dp.sa.', 'dp.ct.', 'dp.scim.', 'dp.audit.'],
    re: sticky(String.raw`(?<![\w.-])dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}${END}`),
    minEntropy: 3,
    hosts: ['api.doppler.com'],
  },
  {
    id: 'facebook-access-token',
    keywords: ['eaam', 'eaac'],
    re: sticky(String.raw`(?<![\w-])EAA[MC][A-Za-z0-9]{100,1024}${END}`),
    minEntropy: 4,
    hosts: ['graph.facebook.com', '*.facebook.com'],
  },
  {
    id: 'facebook-access-token',
    keywords: ['facebook'],
    re: sticky(String.raw`facebook[\w .":'=-]{0,40}?(?<![0-9])([0-9]{15,16}(?:\||%7C)[0-9A-Za-z_-]{27,40})${AFTER}`, 'di'),
    group: 1,
    minEntropy: 3,
    hosts: ['graph.facebook.com', '*.facebook.com'],
  },
  {
    id: 'facebook-app-secret',
    keywords: ['facebook'],
    re: assigned('facebook', '[a-f0-9]{32}'),
    group: 1,
    minEntropy: 3,
    hosts: ['graph.facebook.com', '*.facebook.com'],
  },
  {
    id: 'flyio-token',
    keywords: ['fo1_', 'fm1a_', 'fm1r_', 'fm2_'],
    re: sticky(String.raw`${START}(?:fo1_[\w-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,4096}={0,3}|fm2_[A-Za-z0-9+/]{100,4096}={0,3})${AFTER}`),
    minEntropy: 4,
    hosts: ['api.fly.io', 'api.machines.dev'],
  },
  {
    id: 'freemius-secret-key',
    keywords: ['secret_key'],
    re: sticky(String.raw`secret_key["']{1,2}[ \t]{0,8}=>[ \t]{0,8}["'](sk_[^\s"']{29})["']`, 'di'),
    group: 1,
    accept: (s) => !looksLikePlaceholder(s),
    hosts: ['api.freemius.com'],
  },
  {
    id: 'grafana-token',
    keywords: ['glc_', 'glsa_', 'eyjrijoi'],
    re: sticky(String.raw`${START}(?:glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|eyJrIjoi[A-Za-z0-9]{70,400}={0,3})${END64}`),
    minEntropy: 3,
    accept: (s) => !looksLikePlaceholder(s.slice(4)),
    hosts: ['*.grafana.net', 'grafana.com'],
  },
  {
    id: 'groq-api-key',
    keywords: ['gsk_'],
    re: prefixed(['gsk_'], '[A-Za-z0-9]{52}'),
    minEntropy: 3,
    hosts: ['api.groq.com'],
  },
  {
    id: 'hashicorp-tf-api-token',
    keywords: ['.atlasv1.'],
    back: 14,
    re: sticky(String.raw`(?<![A-Za-z0-9])[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}${END}`),
    minEntropy: 3.5,
    hosts: ['app.terraform.io'],
  },
  {
    id: 'heroku-api-key',
    keywords: ['heroku', 'hrku-aa'],
    re: sticky(String.raw`(?:(?<![\w-])HRKU-AA[0-9A-Za-z_-]{58}${END}|heroku${ASSIGN}(${UUID})${AFTER})`, 'di'),
    hosts: ['api.heroku.com'],
  },
  {
    id: 'hubspot-api-key',
    keywords: ['hubspot', 'pat-na1-', 'pat-eu1-'],
    re: sticky(String.raw`(?:hubspot${ASSIGN}(${UUID})${AFTER}|(?<![\w-])pat-(?:na|eu)1-${UUID}${END})`, 'di'),
    hosts: ['api.hubapi.com'],
  },
  {
    id: 'huggingface-token',
    keywords: ['hf_', 'api_org_'],
    re: sticky(String.raw`(?<![A-Za-z0-9_])(?:hf_|api_org_)[A-Za-z]{34}(?![A-Za-z0-9_])`),
    minEntropy: 2,
    accept: (s) => !looksLikePlaceholder(s) && !/fake/i.test(s),
    hosts: ['huggingface.co', '*.huggingface.co', '*.hf.space'],
  },
  {
    id: 'infracost-api-token',
    keywords: ['ico-'],
    re: sticky(String.raw`(?<![\w.-])ico-[A-Za-z0-9]{32}${AFTER}`),
    minEntropy: 3,
    hosts: ['pricing.api.infracost.io', 'dashboard.api.infracost.io'],
  },
  {
    id: 'intra42-client-secret',
    keywords: ['s-s4t2ud-', 's-s4t2af-'],
    re: prefixed(['s-s4t2ud-', 's-s4t2af-'], '[a-f0-9]{64}'),
    minEntropy: 3,
    hosts: ['api.intra.42.fr'],
  },
  {
    id: 'kubernetes-secret',
    keywords: ['kind:'],
    // Found by findK8sSecretValues (it looks both ways from the `kind:` line); the pattern is a gate.
    re: /kind:[ \t]{0,8}["']?secret["']?[ \t]{0,16}(?=\r?\n|$)/iy,
  },
  {
    id: 'linear-api-key',
    keywords: ['lin_api_'],
    re: prefixed(['lin_api_'], '[A-Za-z0-9]{40}'),
    minEntropy: 3,
    hosts: ['api.linear.app'],
  },
  {
    id: 'mailchimp-api-key',
    keywords: ['mailchimp'],
    re: assigned('mailchimp(?:sdk\\.initialize)?', String.raw`[a-f0-9]{32}-us\d{1,2}`),
    group: 1,
    hosts: ['*.api.mailchimp.com'],
  },
  {
    id: 'maxmind-license-key',
    keywords: ['_mmk'],
    back: 36,
    re: sticky(String.raw`(?<![A-Za-z0-9_])[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk${AFTER}`),
    minEntropy: 4,
    hosts: ['download.maxmind.com', 'geoip.maxmind.com'],
  },
  {
    id: 'messagebird-api-key',
    keywords: ['messagebird', 'message-bird', 'message_bird'],
    re: assigned('message[_-]?bird', `${UUID}|[a-z0-9]{25}`),
    group: 1,
    hosts: ['rest.messagebird.com'],
  },
  {
    id: 'notion-api-token',
    keywords: ['ntn_'],
    re: sticky(String.raw`(?<![A-Za-z0-9_])ntn_[0-9]{11}[A-Za-z0-9]{35}${END}`),
    minEntropy: 4,
    hosts: ['api.notion.com'],
  },
  {
    id: 'npm-token',
    keywords: ['npm_'],
    re: prefixed(['npm_'], '[A-Za-z0-9]{36}'),
    minEntropy: 3,
    hosts: ['registry.npmjs.org'],
  },
  {
    id: 'nuget-config-password',
    keywords: ['<add key='],
    re: sticky(String.raw`<add key="(?:ClearText)?Password"[ \t\r\n]{0,16}value="([^"\r\n]{8,256})"[ \t\r\n]{0,16}\/>`, 'di'),
    group: 1,
    minEntropy: 1,
    accept: (s) => !/^%\S.*%$/.test(s) && !isKnownPublicValue(s),
  },
  {
    id: 'octopus-deploy-api-key',
    keywords: ['api-'],
    re: sticky(String.raw`(?<![A-Za-z0-9_-])API-[A-Z0-9]{26}${AFTER}`),
    minEntropy: 3,
    accept: (s) => HAS_DIGIT.test(s.slice(4)),
  },
  {
    id: 'okta-access-token',
    keywords: ['okta'],
    re: sticky(String.raw`(?:okta|OKTA|Okta)${ASSIGN}(00[\w=-]{40})${AFTER}`, 'd'),
    group: 1,
    minEntropy: 4,
    hosts: ['*.okta.com', '*.oktapreview.com', '*.okta-emea.com'],
  },
  {
    id: 'openshift-user-token',
    keywords: ['sha256~'],
    re: sticky(String.raw`(?<![\w-])sha256~[\w-]{43}${END}`),
    minEntropy: 3.5,
  },
  {
    id: 'perplexity-api-key',
    keywords: ['pplx-'],
    re: prefixed(['pplx-'], '[A-Za-z0-9]{48}'),
    minEntropy: 4,
    hosts: ['api.perplexity.ai'],
  },
  {
    id: 'postman-api-key',
    keywords: ['pmak-'],
    re: prefixed(['PMAK-'], '[a-f0-9]{24}-[a-f0-9]{34}'),
    minEntropy: 3,
    hosts: ['api.getpostman.com', 'api.postman.com'],
  },
  {
    id: 'pulumi-access-token',
    keywords: ['pul-'],
    re: prefixed(['pul-'], '[a-f0-9]{40}'),
    minEntropy: 3,
    hosts: ['api.pulumi.com'],
  },
  {
    id: 'pypi-token',
    keywords: ['pypi-ageichlwas5vcmc'],
    re: sticky(String.raw`${START}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{70,1024}`),
    hosts: ['upload.pypi.org', 'pypi.org'],
  },
  {
    id: 'scalingo-api-token',
    keywords: ['tk-us-'],
    re: prefixed(['tk-us-'], '[\\w-]{48}'),
    minEntropy: 2,
    hosts: ['api.osc-fr1.scalingo.com', 'auth.scalingo.com'],
  },
  {
    id: 'sendgrid-api-key',
    keywords: ['sg.'],
    re: sticky(String.raw`(?<![\w.-])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}${END}`),
    minEntropy: 3,
    hosts: ['api.sendgrid.com'],
  },
  {
    id: 'sentry-token',
    keywords: ['sntrys_eyj', 'sntryu_'],
    // An org token is base64 JSON (`{"iat":...`), then `_` and a 43-character secret.
    re: sticky(String.raw`${START}(?:sntrys_eyJpYXQiO[A-Za-z0-9+/]{10,1024}={0,2}_[A-Za-z0-9+/]{43}|sntryu_[a-f0-9]{64})${END64}`),
    minEntropy: 4,
    hosts: ['sentry.io', '*.sentry.io'],
  },
  {
    id: 'shopify-token',
    keywords: ['shpat_', 'shpca_', 'shppa_', 'shpss_'],
    re: prefixed(['shpat_', 'shpca_', 'shppa_', 'shpss_'], '[a-fA-F0-9]{32}'),
    minEntropy: 3,
    hosts: ['*.myshopify.com'],
  },
  {
    id: 'sidekiq-secret',
    keywords: ['bundle_enterprise__contribsys__com', 'bundle_gems__contribsys__com'],
    re: assigned('BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM', '[a-f0-9]{8}:[a-f0-9]{8}'),
    group: 1,
    hosts: ['gems.contribsys.com', 'enterprise.contribsys.com'],
  },
  {
    id: 'sidekiq-secret',
    keywords: ['@gems.contribsys.com', '@enterprise.contribsys.com'],
    back: 17,
    re: sticky(String.raw`(?<=\/\/)([a-f0-9]{8}:[a-f0-9]{8})@(?:gems|enterprise)\.contribsys\.com`, 'di'),
    group: 1,
    hosts: ['gems.contribsys.com', 'enterprise.contribsys.com'],
  },
  {
    id: 'snyk-api-token',
    keywords: ['snyk'],
    re: assigned(String.raw`snyk[_.-]?(?:(?:api|oauth)[_.-]?)?(?:key|token)`, UUID),
    group: 1,
    hosts: ['api.snyk.io', 'snyk.io', '*.snyk.io'],
  },
  {
    id: 'sonar-token',
    keywords: ['sonar', 'squ_', 'sqp_', 'sqa_'],
    re: sticky(String.raw`(?:sonar[_.-]?(?:login|token)${ASSIGN}((?:squ_|sqp_|sqa_)?[a-z0-9=_-]{40})${AFTER}|(?<![\w-])(?:squ|sqp|sqa)_[a-f0-9]{40}${END})`, 'di'),
    minEntropy: 2.5,
  },
  {
    id: 'sourcegraph-token',
    keywords: ['sgp_', 'sourcegraph'],
    re: sticky(String.raw`(?:(?<![\w-])sgp_(?:(?:[a-fA-F0-9]{16}|local)_)?[a-fA-F0-9]{40}${END}|sourcegraph${ASSIGN}([a-fA-F0-9]{40})${AFTER})`, 'di'),
    minEntropy: 3,
    hosts: ['sourcegraph.com', '*.sourcegraph.com', '*.sourcegraphcloud.com'],
  },
  {
    id: 'square-access-token',
    keywords: ['sq0atp-', 'sq0csp-', 'eaaa'],
    re: sticky(String.raw`${START}(?:EAAA|sq0atp-|sq0csp-)[\w-]{22,60}${AFTER}`),
    minEntropy: 2,
    accept: (s) => !looksLikePlaceholder(s),
    hosts: ['connect.squareup.com', 'connect.squareupsandbox.com'],
  },
  {
    id: 'sumologic-access-key',
    keywords: ['sumo'],
    re: sticky(String.raw`(?:sumo|Sumo|SUMO)${ASSIGN}(su[A-Za-z0-9]{12}|[A-Za-z0-9]{64})${AFTER}`, 'd'),
    group: 1,
    minEntropy: 3,
    hosts: ['*.sumologic.com'],
  },
  {
    id: 'telegram-bot-token',
    keywords: [':aa'],
    back: 10,
    re: sticky(String.raw`[^]{0,10}?(?<![A-Za-z0-9_])([0-9]{8,10}:AA[A-Za-z0-9_-]{33})${END}`, 'd'),
    group: 1,
    hosts: ['api.telegram.org'],
  },
  {
    id: 'twilio-api-key',
    keywords: ['twilio'],
    re: assigned(String.raw`twilio`, 'SK[0-9a-fA-F]{32}|[0-9a-f]{32}'),
    group: 1,
    minEntropy: 3,
    hosts: ['api.twilio.com', '*.twilio.com'],
  },
  {
    id: 'vault-token',
    keywords: ['hvs.', 'hvb.', 'hvr.'],
    re: sticky(String.raw`(?<![\w.-])(?:hvs\.[\w-]{90,120}|hvb\.[\w-]{138,300}|hvr\.[\w-]{90,120})${AFTER}`),
    minEntropy: 3.5,
  },
  // --- Provider tokens recognised by a prefix and an exact body (vendor documentation; the
  // gitleaks and trufflehog rule sets state the same formats). A boundary on both sides.
  ...providerTokens([
    ['adafruit-io-key', ['aio_'], String.raw`aio_[A-Za-z0-9]{28}`, ['io.adafruit.com']],
    ['adobe-client-secret', ['p8e-'], String.raw`p8e-[A-Za-z0-9]{32}`, ['ims-na1.adobelogin.com']],
    ['alibaba-access-key-id', ['ltai'], String.raw`LTAI[A-Za-z0-9]{20}`, ['*.aliyuncs.com']],
    ['artifactory-api-key', ['akcp'], String.raw`AKCp[A-Za-z0-9]{69}`, []],
    ['artifactory-reference-token', ['cmvmd'], String.raw`cmVmd[A-Za-z0-9]{59}`, []],
    ['apify-api-token', ['apify_api_'], String.raw`apify_api_[A-Za-z0-9]{36}`, ['api.apify.com']],
    ['brevo-api-key', ['xkeysib-'], String.raw`xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}`, ['api.brevo.com', 'api.sendinblue.com']],
    ['buildkite-token', ['bkua_'], String.raw`bkua_[a-z0-9]{40}`, ['api.buildkite.com']],
    ['dynatrace-api-token', ['dt0c01.'], String.raw`dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}`, ['*.live.dynatrace.com', '*.apps.dynatrace.com']],
    ['easypost-api-token', ['ezak', 'eztk'], String.raw`EZ[AT]K[A-Za-z0-9]{54}`, ['api.easypost.com']],
    ['figma-token', ['figd_'], String.raw`figd_[\w-]{40}`, ['api.figma.com']],
    ['flutterwave-key', ['flwseck', 'flwpubk'], String.raw`FLW(?:SECK|PUBK)(?:_TEST)?-(?:[a-h0-9]{32}-X|[a-h0-9]{12})`, ['api.flutterwave.com']],
    ['harness-api-key', ['pat.', 'sat.'], String.raw`(?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}`, ['app.harness.io']],
    ['langsmith-api-key', ['lsv2_'], String.raw`lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}`, ['api.smith.langchain.com']],
    ['lob-api-key', ['live_', 'test_'], String.raw`(?:live|test)_(?:pub_)?[a-f0-9]{35}`, ['api.lob.com']],
    ['mailgun-api-key', ['key-', 'pubkey-'], String.raw`(?:pub)?key-[a-f0-9]{32}`, ['api.mailgun.net', 'api.eu.mailgun.net']],
    ['mapbox-token', ['pk.', 'sk.'], String.raw`[ps]k\.[a-z0-9]{60}\.[a-z0-9]{22}`, ['api.mapbox.com']],
    ['netlify-token', ['nfp_'], String.raw`nfp_[A-Za-z0-9]{36}`, ['api.netlify.com']],
    ['new-relic-key', ['nrak-', 'nrjs-', 'nrii-'], String.raw`NR(?:AK-[A-Za-z0-9]{27}|JS-[a-f0-9]{19}|II-[A-Za-z0-9_-]{32})`, ['api.newrelic.com', 'api.eu.newrelic.com']],
    ['openrouter-api-key', ['sk-or-v1-'], String.raw`sk-or-v1-[a-f0-9]{64}`, ['openrouter.ai']],
    ['pganalyze-api-key', ['pgar_'], String.raw`pgar_[A-Za-z0-9]{27}`, ['app.pganalyze.com']],
    ['pinecone-api-key', ['pcsk_'], String.raw`pcsk_[A-Za-z0-9_]{40,90}`, ['*.pinecone.io']],
    ['plaid-access-token', ['access-sandbox-', 'access-development-', 'access-production-'], String.raw`access-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, ['*.plaid.com']],
    ['planetscale-token', ['pscale_'], String.raw`pscale_(?:tkn|oauth|pw)_[\w.=-]{32,64}`, ['api.planetscale.com']],
    ['prefect-api-key', ['pnu_'], String.raw`pnu_[A-Za-z0-9]{36}`, ['api.prefect.cloud']],
    ['readme-api-key', ['rdme_'], String.raw`rdme_[a-z0-9]{70}`, ['dash.readme.com']],
    ['replicate-api-token', ['r8_'], String.raw`r8_[A-Za-z0-9]{37}`, ['api.replicate.com']],
    ['rootly-api-key', ['rootly_'], String.raw`rootly_[a-f0-9]{64}`, ['api.rootly.com']],
    ['rubygems-api-key', ['rubygems_'], String.raw`rubygems_[a-f0-9]{48}`, ['rubygems.org']],
    ['settlemint-token', ['sm_pat_', 'sm_aat_', 'sm_sat_'], String.raw`sm_(?:pat|aat|sat)_[A-Za-z0-9]{16}`, []],
    ['shippo-api-token', ['shippo_live_', 'shippo_test_'], String.raw`shippo_(?:live|test)_[a-fA-F0-9]{40}`, ['api.goshippo.com']],
    ['spectralops-token', ['spu-'], String.raw`spu-[a-f0-9]{32}`, ['get.spectralops.io', 'api.spectralops.io']],
    ['supabase-token', ['sbp_'], String.raw`sbp_[a-f0-9]{40}`, ['api.supabase.com']],
    ['tailscale-key', ['tskey-'], String.raw`tskey-(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{6,20}-[A-Za-z0-9]{20,50}`, ['api.tailscale.com']],
    ['twitter-bearer-token', ['aaaaaaaaaaaaaaaaaaaaaa'], String.raw`A{22}[A-Za-z0-9%]{80,160}`, ['api.twitter.com', 'api.x.com']],
    ['typeform-api-token', ['tfp_'], String.raw`tfp_[A-Za-z0-9_.=-]{59}`, ['api.typeform.com']],
    ['xai-api-key', ['xai-'], String.raw`xai-[A-Za-z0-9]{80}`, ['api.x.ai']],
    ['besttime-api-key', ['pri_'], String.raw`pri_[a-f0-9]{32}`, ['besttime.app']],
    ['cloudflare-api-token', ['cfk_', 'cfut_', 'cfat_'], String.raw`cf(?:k|ut|at)_[A-Za-z0-9]{40}[a-f0-9]{8}`, ['api.cloudflare.com']],
    ['launchdarkly-key', ['api-', 'sdk-', 'mob-'], String.raw`(?:api|sdk|mob)-[a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12}`, ['app.launchdarkly.com']],
  ]),
  // --- Credentials with no prefix, after their provider's name (one table; see providerNamed).
  ...providerNamed([
    ['api2cart-api-key', ['api2cart'], '[a-f0-9]{32}', ['api.api2cart.com']],
    ['apimetrics-api-key', ['apimetrics'], '[A-Za-z0-9]{32}', ['client.apimetrics.io']],
    ['apitemplate-api-key', ['apitemplate'], '[A-Za-z0-9]{39}', ['rest.apitemplate.io']],
    ['betterstack-token', ['betterstack'], '[A-Za-z0-9]{24}', ['uptime.betterstack.com']],
    ['bitfinex-api-key', ['bitfinex'], '[A-Za-z0-9_-]{43}', ['api.bitfinex.com', 'api-pub.bitfinex.com']],
    ['cloudimage-api-key', ['cloudimage'], '[a-z0-9_]{30}', []],
    ['cloudmersive-api-key', ['cloudmersive'], '[a-z0-9-]{36}', ['api.cloudmersive.com']],
    ['cloudsmith-api-key', ['cloudsmith'], '[a-f0-9]{40}', ['api.cloudsmith.io']],
    ['freshworks-api-key', ['freshworks'], '[A-Za-z0-9_-]{22}', []],
    ['instamojo-api-key', ['instamojo'], '[A-Za-z0-9]{40}', ['api.instamojo.com']],
    ['invoiceocean-api-token', ['invoiceocean'], '[A-Za-z0-9]{20}', []],
    ['jira-api-token', ['jira'], '[A-Za-z0-9]{24}', ['*.atlassian.net']],
    ['kanban-tool-api-token', ['kanban'], '[A-Z0-9]{12}', ['*.kanbantool.com']],
    ['keen-io-key', ['keenio', 'keen.io'], '[A-Z0-9]{64}', ['api.keen.io']],
    ['liveagent-api-key', ['liveagent'], '[A-Za-z0-9]{32}', []],
    ['loggly-token', ['loggly'], '[a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12}', ['*.loggly.com']],
    ['luno-api-key', ['luno'], '[A-Za-z0-9_-]{43}', ['api.luno.com']],
    ['mattermost-token', ['mattermost'], '[a-z0-9]{26}', []],
    ['maxmind-license-key', ['geoip', 'maxmind'], '[A-Za-z0-9]{16}', ['download.maxmind.com', 'geoip.maxmind.com']],
    ['metaapi-token', ['metaapi'], '[a-f0-9]{64}', []],
    ['metabase-session-token', ['metabase'], '[A-Za-z0-9]{36}', []],
    ['mite-api-key', ['mite'], '[a-z0-9]{16}', []],
    ['mixpanel-secret', ['mixpanel'], '[A-Za-z0-9]{32}', ['api.mixpanel.com', 'mixpanel.com']],
    ['redhat-api-key', ['redhat'], '[a-z0-9]{32}', []],
    ['request-finance-api-key', ['requestfinance'], '[A-Z0-9]{7}-[A-Z0-9]{7}-[A-Z0-9]{7}-[A-Z0-9]{7}', ['api.request.finance']],
    ['scrapingbee-api-key', ['scrapingbee', 'scraping_bee', 'scraping bee'], '[A-Z0-9]{80}', ['app.scrapingbee.com']],
    ['smartsheet-token', ['smartsheet'], '[A-Za-z0-9]{37}|[A-Za-z0-9]{26}', ['api.smartsheet.com']],
    ['textmagic-api-key', ['textmagic'], '[A-Za-z0-9]{30}', ['rest.textmagic.com']],
    ['vouchery-api-key', ['vouchery'], '[a-z0-9]{36}', []],
    ['websitepulse-api-key', ['websitepulse'], '[a-f0-9]{32}', []],
  ]),
  {
    // A Tableau personal access token secret: 16 random bytes in base64 (22 characters and `==`),
    // `:`, then 32 letters and digits.
    id: 'tableau-pat-secret',
    keywords: ['==:'],
    back: 22,
    re: sticky(String.raw`(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{22}==:[A-Za-z0-9]{32}(?![A-Za-z0-9])`),
    minEntropy: 4,
    accept: (s) => !looksLikePlaceholder(s),
    hosts: ['*.online.tableau.com'],
  },
  {
    id: 'azure-storage-account-key',
    keywords: ['accountkey', 'account_key', 'storagekey', 'storage_key'],
    re: sticky(String.raw`(?:accountkey|account_key|storagekey|storage_key)[^]{0,${PROVIDER_NAME_WINDOW}}?(?<![A-Za-z0-9+/])([A-Za-z0-9+/]{86}==)(?![A-Za-z0-9+/=])`, 'di'),
    group: 1,
    accept: acceptAzureStorageKey,
    hosts: ['*.blob.core.windows.net', '*.file.core.windows.net', '*.queue.core.windows.net', '*.table.core.windows.net', '*.dfs.core.windows.net'],
  },
  {
    // A Microsoft Entra ID refresh token (`0.A…` or `1.A…`, then `.AgAB…`, its version bytes in
    // base64url): often longer than generic-secret's 1024 characters.
    id: 'azure-entra-refresh-token',
    keywords: ['refresh_token', 'refreshtoken', 'refresh-token'],
    re: sticky(String.raw`refresh[_-]?token["']?[ \t]{0,4}[:=][ \t]{0,4}["']?([01]\.A[\w-]{40,68}\.(?:1\.)?AgAB[\w-]{200,4096}(?:\.[\w-]{20,2048})?)(?![\w-])`, 'di'),
    group: 1,
    minEntropy: 4,
    accept: (s) => /\.(?:1\.)?AgAB/.test(s) && !looksLikePlaceholder(s),
    hosts: ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn'],
  },
  {
    id: 'generic-secret',
    keywords: ['password', 'passwd', 'pwd', 'secret', 'token', 'credential', 'creds', 'apikey', 'api_key', 'api-key', 'key', 'auth', 'access'],
    re: sticky(String.raw`(?:passw(?:or)?d|pwd|secret|token|credential|creds|api[_-]?key|key|auth|access)s?${ASSIGN}(?:bearer[ \t]{1,4}|(?<=['"]) )?((?:[A-Za-z0-9!#$%&*+\-./:=?@^_|~]{10,256}|[A-Za-z0-9!#$%&*+\-./:=?@^_|~]{256}[A-Za-z0-9!#$%*+\-./:?@^_~]{1,768}={0,3}))${AFTER}`, 'di'),
    group: 1,
    precheck: assignmentFollows,
    accept: acceptGeneric,
  },
];
