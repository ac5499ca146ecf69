/**
 * The instance registry: each serving instance writes a heartbeat to Redis, a
 * key `<keyPrefix>instances:<id>` holding one JSON {@link InstanceInfo} with a
 * TTL (PX), refreshed every {@link REGISTRY_DEFAULTS.heartbeatMs}. An instance
 * that stops or loses Redis disappears when its key expires; a clean stop
 * deletes it. `bastion status` lists the keys (SCAN + MGET).
 *
 * Nothing secret goes in: no URLs with credentials, no keys; the config is
 * named by its digest only.
 */
import type { Redis } from 'ioredis';

/** Registry timings, in ms. */
export const REGISTRY_DEFAULTS = Object.freeze({
  /** How often an instance refreshes its entry, in ms. */
  heartbeatMs: 5_000,
  /** How long an entry lives without a refresh, in ms (three missed beats). */
  ttlMs: 15_000,
});

/** Largest entry read back, in bytes (a larger value is not ours and is skipped). */
const MAX_ENTRY_BYTES = 64 * 1024;

/** One check's state as the heartbeat carries it. */
export interface InstanceCheck {
  readonly ok: boolean;
  readonly detail?: string;
}

/** What an instance tells the others about itself. Times ISO 8601. */
export interface InstanceInfo {
  readonly id: string;
  readonly pid: number;
  /** `os.hostname()`. */
  readonly host: string;
  /** The HTTP listener, `host:port`. */
  readonly listen: string;
  readonly started: string;
  /** Bastion's version (package.json). */
  readonly version: string;
  /** SHA-256 hex of the config file's bytes: instances with different digests run different configs. */
  readonly configDigest: string;
  /** The instance's readiness at its last beat. */
  readonly ready: boolean;
  /** Upstream health by upstream name (readiness checks `upstream:<name>`). */
  readonly upstreams: Readonly<Record<string, InstanceCheck>>;
  readonly lastSeen: string;
}

/** The key of instance `id`'s entry. */
export function instanceKey(keyPrefix: string, id: string): string {
  return `${keyPrefix}instances:${id}`;
}

/** `text` with the glob characters of a Redis MATCH pattern escaped. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Writes (or refreshes) `info` under its key with a TTL of `ttlMs` (ms).
 * Rejects when Redis cannot answer (the caller retries at the next beat).
 */
export async function writeInstance(redis: Redis, keyPrefix: string, info: InstanceInfo, ttlMs: number = REGISTRY_DEFAULTS.ttlMs): Promise<void> {
  await redis.set(instanceKey(keyPrefix, info.id), JSON.stringify(info), 'PX', ttlMs);
}

/** Deletes instance `id`'s entry (a clean stop). Rejects when Redis cannot answer. */
export async function removeInstance(redis: Redis, keyPrefix: string, id: string): Promise<void> {
  await redis.del(instanceKey(keyPrefix, id));
}

/**
 * Every live entry under `keyPrefix`, sorted by `started` then `id`. Entries
 * that are not valid JSON objects with a string `id` are skipped.
 * @throws the client's error when Redis cannot answer.
 */
export async function listInstances(redis: Redis, keyPrefix: string): Promise<InstanceInfo[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${escapeGlob(keyPrefix)}instances:*`, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0' && keys.length < 10_000);
  if (keys.length === 0) return [];
  const values = await redis.mget(...new Set(keys));
  const out: InstanceInfo[] = [];
  for (const v of values) {
    if (v === null || v.length > MAX_ENTRY_BYTES) continue;
    try {
      const parsed = JSON.parse(v) as unknown;
      if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { id?: unknown }).id === 'string') out.push(parsed as InstanceInfo);
    } catch {
      // Not an entry of ours.
    }
  }
  return out.sort((a, b) => (a.started < b.started ? -1 : a.started > b.started ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Refreshes this instance's entry every `heartbeatMs` until stopped. A failed
 * beat is retried at the next one (the entry expires after `ttlMs` of failures).
 */
export class InstanceHeartbeat {
  readonly #redis: Redis;
  readonly #keyPrefix: string;
  readonly #describe: () => Promise<InstanceInfo>;
  readonly #ttlMs: number;
  readonly #timer: NodeJS.Timeout;
  #beating: Promise<void> | undefined;
  #stopped = false;

  /**
   * Starts beating at once.
   * @param describe the entry to write, built afresh each beat (`lastSeen` now, readiness now)
   */
  constructor(redis: Redis, keyPrefix: string, id: string, describe: () => Promise<InstanceInfo>, opts: { heartbeatMs?: number; ttlMs?: number } = {}) {
    this.#redis = redis;
    this.#keyPrefix = keyPrefix;
    this.#describe = describe;
    this.#ttlMs = opts.ttlMs ?? REGISTRY_DEFAULTS.ttlMs;
    this.id = id;
    this.#timer = setInterval(() => void this.beat(), opts.heartbeatMs ?? REGISTRY_DEFAULTS.heartbeatMs);
    this.#timer.unref();
    void this.beat();
  }

  readonly id: string;

  /** Writes the entry now; resolves true when Redis took it. Never rejects. */
  async beat(): Promise<boolean> {
    if (this.#stopped) return false;
    if (this.#beating) await this.#beating.catch(() => undefined);
    let ok = false;
    this.#beating = (async () => {
      const info = await this.#describe();
      await writeInstance(this.#redis, this.#keyPrefix, info, this.#ttlMs);
      ok = true;
    })().catch(() => undefined);
    await this.#beating;
    return ok;
  }

  /** Stops beating and deletes the entry (best effort, bounded by the client's command timeout). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#beating?.catch(() => undefined);
    await removeInstance(this.#redis, this.#keyPrefix, this.id).catch(() => undefined);
  }
}
