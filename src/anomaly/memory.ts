/**
 * Bounded in-memory state of the anomaly engine: an LRU map, sliding-window
 * counters and learned sets. Every structure has a cap fixed at construction,
 * so the engine's memory does not grow with the number of agents, tools or
 * sessions it sees (docs/anomalies.md "Memory").
 */

/** A `Map` holding at most `max` entries; reading or writing an entry makes it the most recent, the least recent is dropped beyond. */
export class LruMap<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();

  /** @throws RangeError when `max` is not a positive integer. */
  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('LruMap: max must be a positive integer');
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done === true) break;
      this.#map.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }
}

/** What one counter holds: times (ms) and record seqs, oldest first, at most `max + 1`. */
interface Window {
  times: number[];
  seqs: number[];
}

/**
 * Sliding-window counters by key: `add` records one event and answers how many
 * fell within the window, up to `max + 1` (all the rules need is "more than
 * max"), with their record seqs. At most `maxKeys` keys (LRU), each holding at
 * most `max + 1` entries.
 */
export class WindowCounters {
  readonly #keys: LruMap<string, Window>;

  constructor(maxKeys: number) {
    this.#keys = new LruMap(maxKeys);
  }

  /** Keys held. */
  get size(): number {
    return this.#keys.size;
  }

  /** Entries held over all keys. */
  get entries(): number {
    let n = 0;
    for (const w of this.#keys.values()) n += w.times.length;
    return n;
  }

  /** Adds the event (`seq` at `now`, ms) and returns the seqs within `(now - windowMs, now]`, oldest first, at most `max + 1`. */
  add(key: string, seq: number, now: number, windowMs: number, max: number): number[] {
    let w = this.#keys.get(key);
    if (w === undefined) {
      w = { times: [], seqs: [] };
      this.#keys.set(key, w);
    }
    w.times.push(now);
    w.seqs.push(seq);
    let drop = 0;
    const from = now - windowMs;
    while (drop < w.times.length && w.times[drop]! <= from) drop++;
    drop = Math.max(drop, w.times.length - (max + 1));
    if (drop > 0) {
      w.times.splice(0, drop);
      w.seqs.splice(0, drop);
    }
    return [...w.seqs];
  }
}

/**
 * Learned pairs per agent (secret@host, tool+tool), with the time each agent
 * was first seen (for the learning period). At most `maxAgents` agents and
 * `maxPairs` pairs per agent, both LRU: a forgotten pair is new again.
 */
export class LearnedSets {
  readonly #agents: LruMap<string, { readonly firstSeen: number; readonly pairs: LruMap<string, true> }>;
  readonly #maxPairs: number;

  constructor(maxAgents: number, maxPairs: number) {
    this.#agents = new LruMap(maxAgents);
    if (!Number.isSafeInteger(maxPairs) || maxPairs < 1) throw new RangeError('LearnedSets: maxPairs must be a positive integer');
    this.#maxPairs = maxPairs;
  }

  /** Agents held. */
  get agents(): number {
    return this.#agents.size;
  }

  /** Pairs held over all agents. */
  get pairs(): number {
    let n = 0;
    for (const a of this.#agents.values()) n += a.pairs.size;
    return n;
  }

  /** Learns `pairs` for `agent` (first seen now when unknown); returns the agent's first-seen time and the pairs that were new. */
  learn(agent: string, pairs: readonly string[], now: number): { firstSeen: number; fresh: string[] } {
    let a = this.#agents.get(agent);
    if (a === undefined) {
      a = { firstSeen: now, pairs: new LruMap(this.#maxPairs) };
      this.#agents.set(agent, a);
    }
    const fresh: string[] = [];
    for (const p of pairs) {
      if (a.pairs.get(p) === undefined) fresh.push(p);
      a.pairs.set(p, true);
    }
    return { firstSeen: a.firstSeen, fresh };
  }
}
