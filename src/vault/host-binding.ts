/**
 * The one check of a secret's host binding: may a secret be sent to hosts
 * matching `pattern`? A binding must name a namespace one party controls, so
 * a pattern is refused when anyone can create names it matches. The judge is
 * the Public Suffix List (https://publicsuffix.org/list/), ICANN *and* PRIVATE
 * sections, as shipped by `tldts`.
 *
 * Used by config load (`secrets.NAME.hosts`), `bastion secret add --hosts`,
 * {@link normalizeSecretMeta} (every `Vault.add`), the hosts a detector rule
 * proposes for a pasted credential, and `bastion secret pasted bind`.
 *
 * | pattern                              | verdict                                    |
 * | ------------------------------------ | ------------------------------------------ |
 * | `api.github.com`, `*.slack.com`      | ok                                         |
 * | `com`, `co.uk`                       | `host.public_suffix`                       |
 * | `*.com`, `*.co.uk`                   | `wildcard.public_suffix`                   |
 * | `*.github.io`, `*.s3.amazonaws.com`  | `wildcard.shared_suffix`                   |
 * | `*.amazonaws.com`                    | `wildcard.covers_suffix` (a suffix lies below: `s3.amazonaws.com`) |
 * | `*.mybucket.s3.amazonaws.com`        | `wildcard.under_shared_suffix` (bucket names may hold dots) |
 * | `github.io`, `s3.amazonaws.com`      | `host.shared_suffix` (overridable)         |
 * | `someone.github.io`                  | `host.under_shared_suffix` (overridable)   |
 * | IP literals, `localhost`, `*.internal`, names under TLDs the list does not know | ok (as before: not a public namespace) |
 *
 * Only the two exact-host verdicts yield to the admin's explicit
 * `unsafeAllowSharedSuffix` (config) / `--unsafe-allow-shared-suffix` (CLI):
 * an exact host names one tenant's name (your Shopify store, your bucket), which
 * only its registrant can serve while it exists. No override makes a wildcard
 * over a namespace anyone can register in acceptable.
 *
 * Patterns are compared in their normalized form ({@link normalizeHost}: lower
 * case, one trailing dot removed) and must be ASCII: IDNs are written as
 * punycode (`*.xn--3e0b707e`), as the WHATWG URL parser hands destinations to
 * the egress matcher. Pure: no I/O; the suffix data is read once from `tldts`.
 */
import { createRequire } from 'node:module';
import { domainToASCII } from 'node:url';
import { isIP } from 'node:net';
import { parse as parseDomain } from 'tldts';
import { HostPattern } from '../config/schema.ts';
import { normalizeHost } from '../net/host-pattern.ts';

/** Why a host binding is refused: a closed set (see the module table). */
export type HostBindingRefusal =
  | 'host.invalid'
  | 'host.public_suffix'
  | 'host.shared_suffix'
  | 'host.under_shared_suffix'
  | 'wildcard.public_suffix'
  | 'wildcard.shared_suffix'
  | 'wildcard.covers_suffix'
  | 'wildcard.under_shared_suffix'
  | 'suffix_list.unavailable';

/** Each refusal reason with its explanation (for messages; never holds the pattern). */
export const HOST_BINDING_REFUSALS: Readonly<Record<HostBindingRefusal, string>> = Object.freeze({
  'host.invalid': 'not a host name, *.domain or IP literal (ASCII; write IDNs as punycode)',
  'host.public_suffix': 'is a public suffix (ICANN section of the Public Suffix List): anyone can register names under it',
  'host.shared_suffix': 'is a shared suffix (PRIVATE section of the Public Suffix List) under which anyone can create names',
  'host.under_shared_suffix': 'is a name under a shared suffix (PRIVATE section of the Public Suffix List) that another tenant may come to hold',
  'wildcard.public_suffix': 'is a wildcard over a public suffix (ICANN section of the Public Suffix List): anyone can register names it matches',
  'wildcard.shared_suffix': 'is a wildcard over a shared suffix (PRIVATE section of the Public Suffix List): anyone can create names it matches',
  'wildcard.covers_suffix': 'is a wildcard covering a public or shared suffix below it (Public Suffix List): anyone can create names it matches',
  'wildcard.under_shared_suffix': 'is a wildcard under a shared suffix (PRIVATE section of the Public Suffix List): other tenants can create names it matches',
  'suffix_list.unavailable': 'cannot be checked: the Public Suffix List data could not be read',
});

/** The refusals `unsafeAllowSharedSuffix` lifts: exact hosts only. */
export const OVERRIDABLE_REFUSALS: ReadonlySet<HostBindingRefusal> = new Set(['host.shared_suffix', 'host.under_shared_suffix']);

/** {@link checkHostBinding}'s answer. `host` is the normalized pattern. */
export type HostBindingCheck =
  | {
      readonly ok: true;
      readonly host: string;
      /** Set when the pattern passed only because of `unsafeAllowSharedSuffix`: the refusal it would have had. */
      readonly overridden?: HostBindingRefusal;
    }
  | { readonly ok: false; readonly host: string; readonly reason: HostBindingRefusal };

/** Options of {@link checkHostBinding}. */
export interface HostBindingOptions {
  /** Accept an exact host that is or lies under a PRIVATE-section suffix (audited by the caller). Default false. */
  readonly unsafeAllowSharedSuffix?: boolean | undefined;
}

/**
 * Whether a secret may be bound to host `pattern` (see the module docs).
 * Never throws: malformed input is `host.invalid`, unreadable suffix data is
 * `suffix_list.unavailable` (fail closed).
 */
export function checkHostBinding(pattern: unknown, opts: HostBindingOptions = {}): HostBindingCheck {
  if (typeof pattern !== 'string') return { ok: false, host: '', reason: 'host.invalid' };
  const host = normalizeHost(pattern);
  if (!HostPattern.safeParse(host).success) return { ok: false, host, reason: 'host.invalid' };
  const wildcard = host.startsWith('*.');
  const name = wildcard ? host.slice(2) : host;
  if (isIP(name) !== 0) return { ok: true, host };
  const index = suffixIndex();
  if (index === undefined) return { ok: false, host, reason: 'suffix_list.unavailable' };
  // The schema's IP-literal branch lets through hex-and-dot strings that are no address (`a..b`).
  if (name.split('.').includes('')) return { ok: false, host, reason: 'host.invalid' };
  const refusal = wildcard ? wildcardRefusal(name, index) : exactRefusal(name);
  if (refusal === undefined) return { ok: true, host };
  if (opts.unsafeAllowSharedSuffix === true && OVERRIDABLE_REFUSALS.has(refusal)) return { ok: true, host, overridden: refusal };
  return { ok: false, host, reason: refusal };
}

/** A one-line message for a refused pattern: `"*.github.io" is a wildcard over ... (wildcard.shared_suffix)`. Patterns are not secret. */
export function hostBindingMessage(check: Extract<HostBindingCheck, { ok: false }>, shown: string = check.host): string {
  const hint = OVERRIDABLE_REFUSALS.has(check.reason) ? '; bind the exact host only if you control it, with unsafeAllowSharedSuffix (--unsafe-allow-shared-suffix)' : '';
  return `${JSON.stringify(shown.slice(0, 256))} ${HOST_BINDING_REFUSALS[check.reason]} (${check.reason})${hint}`;
}

/**
 * The patterns of `proposed` that pass {@link checkHostBinding} without any
 * override, normalized and deduplicated, in order: what a detector rule may
 * bind a pasted credential to on its own. The rest wait for an admin's
 * `bastion secret pasted bind`.
 */
export function bindableHosts(proposed: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of proposed) {
    const c = checkHostBinding(p);
    if (c.ok && !out.includes(c.host)) out.push(c.host);
  }
  return out;
}

/**
 * Whether a host already stored with a binding (before this check existed, or
 * through an override) may still be used: everything but the refusals no
 * override lifts. Runtime lookups filter stored hosts with it.
 */
export function isUsableStoredHost(host: string): boolean {
  return checkHostBinding(host, { unsafeAllowSharedSuffix: true }).ok;
}

// ---------------------------------------------------------------------------

function exactRefusal(name: string): HostBindingRefusal | undefined {
  const p = parseDomain(name, { allowPrivateDomains: true, extractHostname: false });
  // Names under a TLD the list does not know (`localhost`, `*.internal`) match only the implicit `*` rule: isIcann and isPrivate are false.
  if (p.publicSuffix === null || (p.isIcann !== true && p.isPrivate !== true)) return undefined;
  if (p.publicSuffix === name) return p.isPrivate === true ? 'host.shared_suffix' : 'host.public_suffix';
  return p.isPrivate === true ? 'host.under_shared_suffix' : undefined;
}

function wildcardRefusal(base: string, index: SuffixIndex): HostBindingRefusal | undefined {
  const exact = exactRefusal(base);
  if (exact === 'host.public_suffix') return 'wildcard.public_suffix';
  if (exact === 'host.shared_suffix') return 'wildcard.shared_suffix';
  if (index.ancestors.has(base)) return 'wildcard.covers_suffix';
  if (exact === 'host.under_shared_suffix') return 'wildcard.under_shared_suffix';
  return undefined;
}

/** What is read once from the suffix data. */
export interface SuffixIndex {
  /** Every proper ancestor domain of a rule (`amazonaws.com` for `s3.amazonaws.com`), ASCII. */
  readonly ancestors: ReadonlySet<string>;
  /** Every rule, ASCII (`*.compute.amazonaws.com` as written), with its section. */
  readonly rules: ReadonlyMap<string, 'icann' | 'private'>;
}

let cached: SuffixIndex | null | undefined;

/** Bounds of the one walk over the suffix data (the list has about 10,000 rules of at most a few labels). */
const MAX_TRIE_VISITS = 1_000_000;
const MAX_RULE_LABELS = 64;

/**
 * The list's rules, for tests and docs: ASCII rule text (`s3.amazonaws.com`,
 * `*.compute.amazonaws.com`) → section. Undefined when the data cannot be read.
 */
export function publicSuffixRules(): ReadonlyMap<string, 'icann' | 'private'> | undefined {
  return suffixIndex()?.rules;
}

/**
 * tldts answers "what is the suffix of this name" but not "does any rule lie
 * below this domain", which a wildcard needs. Its rules ship as a flat trie
 * (tldts 7.x `dist/cjs/src/data/trie.js`: nodes with flags 1 = ICANN, 2 =
 * PRIVATE, edges labelled right to left, common tails shared); this walks it once. The shape is
 * checked, and anything unexpected (an upgrade that moved the data) makes every
 * check `suffix_list.unavailable`: fail closed, loudly, and the tests fail first.
 */
function suffixIndex(): SuffixIndex | undefined {
  if (cached === undefined) {
    try {
      cached = buildIndex(createRequire(import.meta.url)('tldts/dist/cjs/src/data/trie.js') as Record<string, unknown>);
    } catch {
      cached = null;
    }
  }
  return cached ?? undefined;
}

/**
 * The index of a tldts trie (the module object of `dist/cjs/src/data/trie.js`).
 * Exported for tests, which feed it data of other shapes.
 * @throws TypeError when a field is missing or of another type; RangeError when the walk leaves the arrays, runs past its bounds, or misses the rules every list holds.
 */
export function buildIndex(data: Record<string, unknown>): SuffixIndex {
  const { nodeFlags, edgeStart, edgeLength, edgeChild, labelText, rulesRoot } = data;
  if (
    !isIntArray(nodeFlags) ||
    !isIntArray(edgeStart) ||
    !isIntArray(edgeLength) ||
    !isIntArray(edgeChild) ||
    typeof labelText !== 'string' ||
    typeof rulesRoot !== 'number' ||
    edgeStart.length !== nodeFlags.length + 1 ||
    edgeChild.length !== edgeLength.length
  ) {
    throw new TypeError('unexpected tldts trie shape');
  }
  // Label text is laid out edge by edge in node order (as tldts's suffix-trie.js derives its offsets).
  const offsets = new Uint32Array(edgeLength.length);
  for (let e = 0, off = 0; e < edgeLength.length; e++) {
    offsets[e] = off;
    off += edgeLength[e] as number;
  }
  const rules = new Map<string, 'icann' | 'private'>();
  const stack: { node: number; labels: string[] }[] = [{ node: rulesRoot, labels: [] }];
  let visited = 0;
  while (stack.length > 0) {
    const { node, labels } = stack.pop() as { node: number; labels: string[] };
    // The trie shares common tails (a DAG), so nodes are visited once per rule through them: bound the walk.
    if (++visited > MAX_TRIE_VISITS) throw new RangeError('tldts trie misread: more than 1,000,000 visits');
    if (labels.length > MAX_RULE_LABELS) throw new RangeError('tldts trie misread: a rule of more than 64 labels');
    if (node < 0 || node >= nodeFlags.length) throw new RangeError('tldts trie misread: an edge leads outside the nodes');
    const flags = nodeFlags[node] as number;
    if (flags !== 0 && labels.length > 0) {
      const rule = ascii(labels.join('.'));
      if (rule !== '') rules.set(rule, (flags & 2) !== 0 ? 'private' : 'icann');
    }
    for (let e = edgeStart[node] as number; e < (edgeStart[node + 1] as number); e++) {
      const start = offsets[e] as number;
      stack.push({ node: edgeChild[e] as number, labels: [labelText.slice(start, start + (edgeLength[e] as number)), ...labels] });
    }
  }
  // The sanity checks that make a misread fail here rather than wave patterns through.
  if (rules.get('com') !== 'icann' || rules.get('co.uk') !== 'icann' || rules.get('github.io') !== 'private' || rules.get('s3.amazonaws.com') !== 'private' || rules.size < 5000) {
    throw new RangeError('tldts trie misread: rules every list holds are missing');
  }
  const ancestors = new Set<string>();
  for (const rule of rules.keys()) {
    for (let dot = rule.indexOf('.'); dot !== -1; dot = rule.indexOf('.', dot + 1)) ancestors.add(rule.slice(dot + 1));
  }
  return { ancestors, rules };
}

type IntArray = Uint8Array | Uint16Array | Uint32Array | Int32Array;

function isIntArray(x: unknown): x is IntArray {
  return x instanceof Uint8Array || x instanceof Uint16Array || x instanceof Uint32Array || x instanceof Int32Array;
}

/** A rule's ASCII (punycode) form; the list holds IDN rules in Unicode as well. `*` labels pass through. */
function ascii(rule: string): string {
  if (/^[\x20-\x7e]*$/.test(rule)) return rule.toLowerCase();
  const wildcard = rule.startsWith('*.');
  const a = domainToASCII(wildcard ? rule.slice(2) : rule);
  return a === '' ? '' : wildcard ? `*.${a}` : a;
}
