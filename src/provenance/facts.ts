/**
 * The facts provenance-aware policy decides a `tools/call` on (issue 13;
 * docs/injection-defense.md): the tool's labels, the conversation's taint, and
 * for every argument value where it came from. They go into the Cedar context
 * (src/policy/cedar-schema.ts) and into the audit record and approval preview
 * (argument names and origins only, never values).
 *
 * ## An argument's provenance
 *
 * Each leaf of the arguments (strings and numbers; booleans, null and values
 * under two characters are trivial and skipped) is looked up by its forms
 * (src/provenance/values.ts) and gets the set of origins it was **seen** with:
 * - `user`: in the end user's messages (model door, same conversation);
 * - `config`: it matches the agent's `trustedValues`, an `enum` of the tool's
 *   input schema at that argument, or (a URL or host) the agent's network allowlist;
 * - `untrusted`: in a result of a tool labelled `untrusted` — mentioned inside
 *   its free text, or as a whole field (a sender's address, a file name);
 * - `trusted`: in a trusted tool's result, or a tool's own handle (an `id`);
 * - `model`: none of these (the model produced it).
 * Its **effective** origin is the first that applies of: `user`; `untrusted`
 * when mentioned inside untrusted free text; `config`; `untrusted` as a whole
 * field; `trusted`; `model`. The end user's word endorses a value whatever
 * else showed it. A value a third party's text *mentions* is where an injected
 * instruction points, so it outranks the config's endorsement (an attacker
 * naming a colleague's address to remove, or a file to delete); a value that
 * is only a field of third-party data (a colleague as a message's author) is
 * endorsed by the config. An untrusted showing outranks a trusted one (an
 * attacker can plant a value that also exists elsewhere). A handle takes,
 * from its record's other fields, the user's naming of them and third-party
 * prose mentioning them (not a mention inside another record's short label:
 * shared vocabulary). A long value (more than a few words) that was not
 * seen whole takes, besides `model`, the origins of the addresses, hosts,
 * IBANs and phone numbers inside it.
 *
 * That is how free text is judged: a long value (a body, a message) by where
 * it could send anyone, the addresses, hosts, IBANs and phone numbers inside
 * it. Free text with none of them (a forwarded email's words, a summary) is
 * content, not a destination: it is reported (`content: true`) but left out
 * of `argsFrom`, so forwarding third-party words to a recipient the user
 * named is not held, while a body carrying a link or an address a third party
 * supplied is.
 *
 * `argsFrom` is the set of effective origins over all leaves, so one
 * attacker-chosen recipient among endorsed ones still shows `untrusted`.
 */
import type { Origin, ResolvedAgent, ResolvedGuard } from '../config/types.ts';
import type { PolicyFacts } from '../policy/engine.ts';
import type { ToolLabel } from '../policy/labels.ts';
import { hostMatchesAny } from '../net/host-pattern.ts';
import { SEEN, type ProvenanceTracker, type Taint } from './tracker.ts';
import { emailsOfValue, formsOfValue, hostsOfValue, normalizeText } from './values.ts';

/** The order in which an origin wins as a leaf's effective origin. */
export const ORIGIN_ORDER: readonly Origin[] = Object.freeze(['user', 'config', 'untrusted', 'trusted', 'model']);

/** Most argument leaves looked at; more are refused as unrepresentable by the policy engine anyway. */
export const MAX_LEAVES = 1000;

/** One argument leaf's provenance. */
export interface LeafProvenance {
  /** JSON Pointer (RFC 6901) of the leaf in the arguments. */
  readonly pointer: string;
  /** The top-level argument it belongs to. */
  readonly name: string;
  /** Every origin it was seen with (`model` alone when none). */
  readonly seen: readonly Origin[];
  /** The effective origin (see the module docs). */
  readonly from: Origin;
  /** Free text (more than five words) with no address, host, IBAN or phone number inside: reported, but not in `argsFrom`. */
  readonly content?: true;
}

/** What policy learns about one call. */
export interface CallFacts {
  readonly label: ToolLabel;
  readonly taint: Taint;
  readonly leaves: readonly LeafProvenance[];
  /** Effective origins over all leaves, in {@link ORIGIN_ORDER}. */
  readonly argsFrom: readonly Origin[];
  /** Hosts the arguments send to (URL hosts; host-named arguments). */
  readonly hosts: readonly string[];
  /** Email addresses in the arguments, and their domains. */
  readonly emails: readonly string[];
  readonly emailDomains: readonly string[];
  /** Ids of short forms whose `hostNotIn` / `recipientNotIn` hold for this call. */
  readonly outside: readonly string[];
}

/**
 * Characters a `*` of a trusted-value or recipient pattern never stands for: one pattern matches
 * one address or token, never a list, and never crosses a URL's structure (`*.example.com` must not
 * match `https://evil.example/?.example.com`; URLs are endorsed by their host instead).
 */
const STAR_STOPS = new Set([' ', '\t', '\n', '\r', ',', ';', '@', '<', '>', '"', "'", '/', '?', '#', ':', '\\']);

/**
 * Whether `text` matches `pattern`, where `*` is any run of characters other
 * than white space, `, ; @ < > " ' / ? # : \` (so `*@example.com` matches one
 * address, never `evil@x.example, a@example.com`). An NFA walk over the pattern's
 * positions: O(|pattern| · |text|), whatever the input.
 */
export function globMatch(pattern: string, text: string): boolean {
  const m = pattern.length;
  // live[j]: the pattern's first j characters match the text read so far.
  let live = new Uint8Array(m + 1);
  live[0] = 1;
  const close = (row: Uint8Array): void => {
    for (let j = 0; j < m; j++) if (row[j] === 1 && pattern[j] === '*') row[j + 1] = 1;
  };
  close(live);
  for (const c of text) {
    const next = new Uint8Array(m + 1);
    let any = false;
    for (let j = 0; j < m; j++) {
      if (live[j] !== 1) continue;
      const p = pattern[j];
      if (p === '*') {
        if (!STAR_STOPS.has(c)) {
          next[j] = 1;
          any = true;
        }
      } else if (p === c) {
        next[j + 1] = 1;
        any = true;
      }
    }
    if (!any) return false;
    close(next);
    live = next;
  }
  return live[m] === 1;
}

/** The `enum` of the schema at a property path (properties / items), if any. */
function enumAt(schema: unknown, path: readonly string[]): readonly unknown[] | undefined {
  let s: unknown = schema;
  for (const key of path) {
    if (s === null || typeof s !== 'object') return undefined;
    const o = s as Record<string, unknown>;
    if (/^\d+$/.test(key) && o.items !== undefined) s = o.items;
    else if (o.properties !== null && typeof o.properties === 'object' && Object.hasOwn(o.properties, key)) s = (o.properties as Record<string, unknown>)[key];
    else return undefined;
  }
  if (s === null || typeof s !== 'object') return undefined;
  const e = (s as Record<string, unknown>).enum;
  if (Array.isArray(e)) return e;
  const c = (s as Record<string, unknown>).const;
  return c === undefined ? undefined : [c];
}

interface Leaf {
  readonly pointer: string;
  readonly path: readonly string[];
  readonly value: string | number;
}

function leavesOf(args: Record<string, unknown>): Leaf[] {
  const out: Leaf[] = [];
  const walk = (v: unknown, path: string[], depth: number): void => {
    if (out.length >= MAX_LEAVES || depth > 32) return;
    // A string holding a JSON object or array (a tool taking encoded JSON) is traced by its own leaves too.
    if (typeof v === 'string' && /^\s*[[{]/.test(v) && v.length <= 1 << 20) {
      let inner: unknown;
      try {
        inner = JSON.parse(v);
      } catch {
        inner = undefined;
      }
      if (inner !== null && typeof inner === 'object') walk(inner, path, depth + 1);
    }
    if (typeof v === 'string' || typeof v === 'number') {
      out.push({ pointer: '/' + path.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/'), path, value: v });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, [...path, String(i)], depth + 1));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k], depth + 1);
    }
  };
  walk(args, [], 0);
  return out;
}

/** What {@link callFacts} reads. */
export interface FactsInput {
  readonly agent: Pick<ResolvedAgent, 'trustedValues' | 'network' | 'guards'>;
  readonly label: ToolLabel;
  /** The tool's input schema (for `enum` endorsement), untrusted: any shape. */
  readonly inputSchema: unknown;
  readonly args: Record<string, unknown>;
  /** The conversation's key ({@link conversationKey}), or null when the call names none. */
  readonly conversation: string | null;
}

/**
 * The facts of one call. Pure but for reading `tracker`. Never throws on any
 * arguments or schema (a throw from a bug is the caller's to turn into a deny).
 */
export function callFacts(tracker: ProvenanceTracker, input: FactsInput): CallFacts {
  const taint = input.conversation === null ? { tainted: false, flagged: false, sources: [], flaggedBy: [] } : tracker.taint(input.conversation);
  const trusted = input.agent.trustedValues.map((p) => normalizeText(p));
  // Host-shaped trusted values (`bluesparrow.example`, `*.bluesparrow.example`) endorse URLs to those hosts.
  const trustedHosts = trusted.filter((p) => /^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(p));
  const allowHosts = input.agent.network.map((r) => r.host);
  const leaves: LeafProvenance[] = [];
  const hosts = new Set<string>();
  const emails = new Set<string>();
  for (const leaf of leavesOf(input.args)) {
    const leafHosts = typeof leaf.value === 'string' ? hostsOfValue(leaf.value, leaf.path.at(-1) ?? '') : [];
    for (const h of leafHosts) hosts.add(h);
    if (typeof leaf.value === 'string') for (const e of emailsOfValue(leaf.value)) emails.add(e);
    const forms = formsOfValue(leaf.value);
    if (forms === undefined) continue;
    let bits = 0;
    if (input.conversation !== null) {
      bits = tracker.seenBits(input.conversation, forms.own);
      // Free text is judged by where it could send anyone: the addresses, hosts, IBANs and phone numbers in it.
      if (forms.long && (bits & SEEN.user) === 0 && forms.inner.length > 0) bits = tracker.seenBits(input.conversation, forms.inner);
    }
    const seen = new Set<Origin>();
    if (bits & SEEN.user) seen.add('user');
    if (bits & (SEEN.untrustedText | SEEN.untrustedField)) seen.add('untrusted');
    if (bits & SEEN.trusted) seen.add('trusted');
    const norm = typeof leaf.value === 'string' ? normalizeText(leaf.value) : String(leaf.value);
    const enumValues = enumAt(input.inputSchema, leaf.path);
    if (
      trusted.some((p) => globMatch(p, norm)) ||
      (enumValues !== undefined && enumValues.some((e) => e === leaf.value)) ||
      (leafHosts.length > 0 && norm.split(' ').length === 1 && leafHosts.every((h) => hostMatchesAny(allowHosts, h) || hostMatchesAny(trustedHosts, h)))
    ) {
      seen.add('config');
    }
    if (seen.size === 0) seen.add('model');
    const from: Origin =
      bits & SEEN.user ? 'user' : bits & SEEN.untrustedText ? 'untrusted' : seen.has('config') ? 'config' : bits & SEEN.untrustedField ? 'untrusted' : bits & SEEN.trusted ? 'trusted' : 'model';
    const content = forms.long && forms.inner.length === 0 && (bits & SEEN.user) === 0;
    leaves.push({ pointer: leaf.pointer, name: leaf.path[0] ?? '', seen: ORIGIN_ORDER.filter((o) => seen.has(o)), from, ...(content ? { content: true as const } : {}) });
  }
  const argsFrom = ORIGIN_ORDER.filter((o) => leaves.some((l) => l.content !== true && l.from === o));
  const emailList = [...emails];
  const outside = input.agent.guards.filter((g) => guardOutside(g, [...hosts], emailList)).map((g) => g.id);
  return {
    label: input.label,
    taint,
    leaves,
    argsFrom,
    hosts: [...hosts],
    emails: emailList,
    emailDomains: [...new Set(emailList.map((e) => e.slice(e.lastIndexOf('@') + 1)))],
    outside,
  };
}

/** Whether a short form's `hostNotIn` / `recipientNotIn` hold (each given one): some host, or some address, falls outside its list. */
function guardOutside(g: ResolvedGuard, hosts: readonly string[], emails: readonly string[]): boolean {
  if (g.hostNotIn === undefined && g.recipientNotIn === undefined) return false;
  const hostOut = g.hostNotIn === undefined || hosts.some((h) => !hostMatchesAny(g.hostNotIn as readonly string[], h));
  const mailOut = g.recipientNotIn === undefined || emails.some((e) => !(g.recipientNotIn as readonly string[]).some((p) => globMatch(p, e)));
  return hostOut && mailOut;
}

/** The per-argument provenance as recorded and shown in approval previews: top-level name → effective origins. */
export function provenanceByArgument(facts: CallFacts): Record<string, Origin[]> {
  const byName = new Map<string, Set<Origin>>();
  for (const l of facts.leaves) {
    let set = byName.get(l.name);
    if (set === undefined) byName.set(l.name, (set = new Set()));
    set.add(l.from);
  }
  return Object.fromEntries([...byName].map(([k, set]) => [k, ORIGIN_ORDER.filter((o) => set.has(o))]));
}

/** The facts as the policy engine's context reads them. */
export function policyFacts(f: CallFacts): PolicyFacts {
  return {
    conversation: { tainted: f.taint.tainted, flagged: f.taint.flagged, sources: f.taint.sources, flaggedBy: f.taint.flaggedBy },
    tool: { source: f.label.source, effects: f.label.effects },
    argsFrom: f.argsFrom,
    provenance: provenanceByArgument(f),
    hosts: f.hosts,
    emails: f.emails,
    emailDomains: f.emailDomains,
    outside: f.outside,
  };
}
