/**
 * Per-conversation taint and provenance (issue 13; docs/injection-defense.md).
 *
 * A conversation (its key: agent, end user and the `Bastion-Conversation` name,
 * else the MCP session id) accumulates:
 * - its **taint**: whether it read a result of an `untrusted` tool, which tools
 *   those were (`sources`), and whether a result was **flagged** by the
 *   injection detector or the hidden-character check (a stronger taint, with
 *   the rules that fired);
 * - the **values** it saw, as keyed hashes of their forms (src/provenance/values.ts),
 *   each with the origins it was seen in: the end user's messages (model door),
 *   a trusted tool's result, an untrusted tool's result;
 * - its **budgets**: calls and argument bytes spent per `agents.X.limits` entry.
 *
 * Values are never kept in clear: a form is hashed with SHA-512/256 over a
 * per-process random 256-bit key prefix (truncated SHA-2 has no length
 * extension, so a key prefix makes it a keyed hash; HMAC would cost seven
 * times as much per form, and a result holds thousands of forms), truncated to
 * 128 bits. The key never leaves the process, so the hashes mean nothing
 * outside it.
 *
 * Bounds: at most `maxValues` hashes per conversation and `maxTotalValues`
 * overall (the oldest are evicted first; taint is never evicted, so an evicted
 * conversation stays tainted); at most `maxConversations` conversations (the
 * least recently active is dropped); a conversation idle for `ttlMs` starts
 * again empty. In memory, per process: a deployment of several instances keeps
 * one conversation on one instance (or accepts that taint is per instance)
 * until the store holds it (issue 14).
 */
import { hash, randomBytes } from 'node:crypto';
import { MAX_NGRAM, type Reading } from './values.ts';

/** Origins a reading can be recorded with; `config` and `model` are decided at lookup. */
export type SeenOrigin = 'user' | 'trusted' | 'untrusted';

/**
 * How a value was seen, as bits: said by the end user; shown by a trusted tool
 * (or a tool's own handle); mentioned inside an untrusted result's free text;
 * a whole field of an untrusted result; mentioned in untrusted *prose* (text
 * longer than a label: where an instruction stands), which implies `untrustedText`.
 */
export const SEEN = Object.freeze({ user: 1, trusted: 2, untrustedText: 4, untrustedField: 8, untrustedProse: 16 });

/** A conversation's taint as policy reads it. */
export interface Taint {
  readonly tainted: boolean;
  readonly flagged: boolean;
  /** Exposed names of the untrusted tools whose results the conversation read (first 64). */
  readonly sources: readonly string[];
  /** Detector rules that flagged a result (first 64). */
  readonly flaggedBy: readonly string[];
}

/** Bounds of a {@link ProvenanceTracker}. */
export interface TrackerOptions {
  /** Most value hashes per conversation. */
  readonly maxValues: number;
  /** Most value hashes over all conversations. */
  readonly maxTotalValues: number;
  /** Most conversations tracked. */
  readonly maxConversations: number;
  /** Idle time (ms) after which a conversation starts again empty. */
  readonly ttlMs: number;
  /** Clock (ms); default `Date.now`. */
  readonly now?: () => number;
}

interface Conversation {
  values: Map<number, number>;
  /** Handle hash → hashes of its record's other fields. */
  links: Map<number, number[]>;
  tainted: boolean;
  flagged: boolean;
  sources: Set<string>;
  flaggedBy: Set<string>;
  spent: Map<string, { calls: number; bytes: number }>;
  touched: number;
}

const MAX_LISTED = 64;
/** Most words whose keyed hashes are cached. */
const WORD_CACHE = 100_000;
const NONE: Taint = Object.freeze({ tainted: false, flagged: false, sources: Object.freeze([]), flaggedBy: Object.freeze([]) });

/** The key of a conversation: agent, end user and conversation name. */
export function conversationKey(agent: string, user: string | null, conversation: string): string {
  return `${agent}\u0000${user ?? ''}\u0000${conversation}`;
}

/** Per-conversation taint, value hashes and budgets, bounded (see the module docs). */
export class ProvenanceTracker {
  readonly #opts: TrackerOptions;
  readonly #key: string = randomBytes(32).toString('base64');
  readonly #conversations = new Map<string, Conversation>();
  /** Word → keyed hash lanes (see {@link ProvenanceTracker.#hash}); holds no clear text outside this process's memory. */
  readonly #words = new Map<string, readonly [number, number]>();
  readonly #now: () => number;
  #total = 0;

  constructor(opts: TrackerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Number of value hashes held over all conversations. */
  get size(): number {
    return this.#total;
  }

  /**
   * The keyed fingerprint of a form, a 53-bit integer. A `t:` form of at most
   * {@link MAX_NGRAM} words is fingerprinted from its words' keyed hashes
   * (one SHA-512/256 per distinct word, cached), mixed in order with a
   * 64-bit integer mix: a result's runs of words cost one hash per word, not
   * per run. Any other form is hashed whole. Without the key no fingerprint
   * can be computed, so none tells which value it stands for.
   */
  #hash(form: string): number {
    if (form.startsWith('t:')) {
      const words = form.slice(2).split(' ');
      if (words.length <= MAX_NGRAM) {
        let a = 0x6a09e667;
        let b = 0xbb67ae85;
        for (const w of words) {
          const [x, y] = this.#word(w);
          a = Math.imul(a ^ x, 0x85ebca6b);
          a ^= a >>> 13;
          b = Math.imul(b ^ y ^ a, 0xc2b2ae35);
          b ^= b >>> 16;
          a = Math.imul(a ^ (b >>> 7), 0xcc9e2d51);
        }
        return (a >>> 0) * 0x200000 + ((b >>> 0) >>> 11);
      }
    }
    const d = hash('sha512-256', this.#key + form, 'buffer');
    return d.readUInt32LE(0) * 0x200000 + (d.readUInt32LE(4) >>> 11);
  }

  /** A word's keyed hash as two 32-bit lanes, cached (bounded: the cache starts over when full). */
  #word(w: string): readonly [number, number] {
    let h = this.#words.get(w);
    if (h === undefined) {
      const d = hash('sha512-256', `${this.#key}w:${w}`, 'buffer');
      h = [d.readUInt32LE(0), d.readUInt32LE(4)];
      if (this.#words.size >= WORD_CACHE) this.#words.clear();
      this.#words.set(w, h);
    }
    return h;
  }

  /** The live conversation for `key` (created when `create`), refreshed as most recently active. */
  #get(key: string, create: boolean): Conversation | undefined {
    const now = this.#now();
    let c = this.#conversations.get(key);
    if (c !== undefined && now - c.touched > this.#opts.ttlMs) {
      this.#drop(key, c);
      c = undefined;
    }
    if (c === undefined) {
      if (!create) return undefined;
      c = { values: new Map(), links: new Map(), tainted: false, flagged: false, sources: new Set(), flaggedBy: new Set(), spent: new Map(), touched: now };
      while (this.#conversations.size >= this.#opts.maxConversations) {
        const [oldKey, old] = this.#conversations.entries().next().value as [string, Conversation];
        this.#drop(oldKey, old);
      }
    } else {
      this.#conversations.delete(key);
    }
    c.touched = now;
    this.#conversations.set(key, c);
    return c;
  }

  #drop(key: string, c: Conversation): void {
    this.#total -= c.values.size;
    this.#conversations.delete(key);
  }

  /**
   * Records a {@link Reading} (src/provenance/values.ts) as seen in
   * `conversation` with `origin`: from the end user, every form is theirs; from
   * a tool, free text and fields get the tool's source label (`untrusted`
   * taints the conversation with `source`, a tool's exposed name), and the
   * tool's handles are recorded as trusted, linked to their records' fields.
   * The oldest hashes are evicted beyond the bounds; taint stays.
   */
  record(conversation: string, origin: SeenOrigin, reading: Reading, source?: string): void {
    const c = this.#get(conversation, true) as Conversation;
    if (origin === 'untrusted') {
      c.tainted = true;
      if (source !== undefined && c.sources.size < MAX_LISTED) c.sources.add(source);
    }
    const textBit = origin === 'user' ? SEEN.user : origin === 'trusted' ? SEEN.trusted : SEEN.untrustedText | SEEN.untrustedProse;
    const labelBit = origin === 'user' ? SEEN.user : origin === 'trusted' ? SEEN.trusted : SEEN.untrustedText;
    const fieldBit = origin === 'user' ? SEEN.user : origin === 'trusted' ? SEEN.trusted : SEEN.untrustedField;
    this.#add(c, reading.text, textBit);
    this.#add(c, reading.labels, labelBit);
    this.#add(c, reading.fields, fieldBit);
    if (origin !== 'user') {
      this.#add(c, reading.handles.keys(), SEEN.trusted);
      for (const [handle, siblings] of reading.handles) {
        const h = this.#hash(handle);
        c.links.delete(h);
        c.links.set(h, siblings.map((f) => this.#hash(f)));
        if (c.links.size > this.#opts.maxValues) c.links.delete(c.links.keys().next().value as number);
      }
    }
    this.#bound();
  }

  #add(c: Conversation, forms: Iterable<string>, bit: number): void {
    for (const form of forms) {
      const h = this.#hash(form);
      const had = c.values.get(h);
      if (had !== undefined) {
        // Seen again with a new origin: refreshed (moved to the newest end, evicted last). Seen again
        // as before: left in place (most repeats are common words; moving them costs more than it keeps).
        if ((had | bit) !== had) {
          c.values.delete(h);
          c.values.set(h, had | bit);
        }
        continue;
      }
      c.values.set(h, bit);
      this.#total++;
      if (c.values.size > this.#opts.maxValues) this.#evictOne(c);
    }
  }

  #bound(): void {
    while (this.#total > this.#opts.maxTotalValues) {
      // The least recently active conversation with values gives up its oldest.
      let victim: Conversation | undefined;
      for (const other of this.#conversations.values()) {
        if (other.values.size > 0) {
          victim = other;
          break;
        }
      }
      if (victim === undefined) break;
      this.#evictOne(victim);
    }
  }

  #evictOne(c: Conversation): void {
    const oldest = c.values.keys().next();
    if (oldest.done === true) return;
    c.values.delete(oldest.value);
    this.#total--;
  }

  /** Marks `conversation` flagged (a stronger taint) by detector `rules` on a result of `source`. */
  flag(conversation: string, rules: readonly string[], source?: string): void {
    const c = this.#get(conversation, true) as Conversation;
    c.tainted = true;
    c.flagged = true;
    if (source !== undefined && c.sources.size < MAX_LISTED) c.sources.add(source);
    for (const r of rules) if (c.flaggedBy.size < MAX_LISTED) c.flaggedBy.add(r);
  }

  /** The conversation's taint (untainted when unknown or expired). */
  taint(conversation: string): Taint {
    const c = this.#get(conversation, false);
    if (c === undefined) return NONE;
    return { tainted: c.tainted, flagged: c.flagged, sources: [...c.sources], flaggedBy: [...c.flaggedBy] };
  }

  /**
   * How `forms` were seen in `conversation`: the union of their {@link SEEN}
   * bits (0 when never). A form that is a tool's handle also takes, from its
   * record's fields, whether the end user said one (`user`) and whether
   * untrusted prose mentioned one (as `untrustedText`): a handle stands for the
   * object those fields name. A mention inside another record's short label
   * (`Streamly Premium December` naming `Streamly Premium`) is shared
   * vocabulary, not an instruction, and is not inherited.
   */
  seenBits(conversation: string, forms: readonly string[]): number {
    const c = this.#get(conversation, false);
    if (c === undefined) return 0;
    let bits = 0;
    for (const form of forms) {
      const h = this.#hash(form);
      bits |= c.values.get(h) ?? 0;
      for (const sibling of c.links.get(h) ?? []) {
        const sb = c.values.get(sibling) ?? 0;
        bits |= (sb & SEEN.user) | (sb & SEEN.untrustedProse ? SEEN.untrustedText : 0);
      }
    }
    return bits;
  }

  /**
   * Spends one call of `bytes` argument bytes from budget `id` of `conversation`
   * when it stays within `limits`; returns false (nothing spent) when it would not.
   */
  spend(conversation: string, id: string, bytes: number, limits: { readonly calls?: number; readonly bytes?: number }): boolean {
    const c = this.#get(conversation, true) as Conversation;
    const s = c.spent.get(id) ?? { calls: 0, bytes: 0 };
    if (limits.calls !== undefined && s.calls + 1 > limits.calls) return false;
    if (limits.bytes !== undefined && s.bytes + bytes > limits.bytes) return false;
    c.spent.set(id, { calls: s.calls + 1, bytes: s.bytes + bytes });
    return true;
  }
}
