/**
 * Rate limits for the model door: requests and tokens per fixed window, per end user and per agent.
 *
 * Counters live in memory (one process) or in Redis (shared by every Bastion process that uses the same
 * Redis and key prefix). Each window starts with the first request that a key sees and lasts `windowS`
 * seconds (rate-limiter-flexible's fixed window).
 *
 * Scopes. The user scope is keyed by agent *and* user: end-user ids are asserted by the agent, so one
 * agent's "alice" is not another agent's "alice", and no agent can spend another agent's users' budgets.
 * The agent scope is keyed by agent. Names are percent-encoded (`encodeURIComponent`, which encodes `:`)
 * and each scope has its own key prefix, so no pair of names can map onto another pair's key
 * (agent "a:b" + user "c" vs agent "a" + user "b:c").
 *
 * Order of checks in {@link ModelRateLimiter.admit} (so that a refused request spends no point of a scope
 * it did not pass):
 * 1. token budgets, user then agent: read-only, nothing is spent;
 * 2. user requests: one point is consumed;
 * 3. agent requests: one point is consumed; when refused, the user's point from step 2 is given back.
 * A user over its own limit therefore never touches the agent's counter, and cannot exhaust the agent's
 * budget faster than its own limit allows. The give-back is best effort (a store failure at that moment
 * leaves the point spent: over-counting, never under-counting).
 *
 * Fail closed: a store error or a store call slower than `redisTimeoutMs` refuses the request with
 * `limit: 'store.error'`; nothing is ever allowed because the store could not answer.
 */
import type { Redis } from 'ioredis';
import { failFastRedis } from '../util/redis.ts';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { BastionError } from '../errors.ts';

/** Rate-limit defaults (to move into src/defaults.ts). */
export const RATE_LIMIT_DEFAULTS = Object.freeze({
  /** Longest one Redis round trip (or the first connect in `create`) may take, in ms; slower counts as a store error. */
  redisTimeoutMs: 500,
  /** The `retryAfterMs` returned when the store failed, in ms. */
  storeErrorRetryAfterMs: 1_000,
  /** Prefix of every counter key in Redis (and in memory). */
  keyPrefix: 'bastion:rl',
});

/** At most `points` per window of `windowS` seconds (requests, or tokens). */
export interface WindowLimit {
  /** Positive integer: requests, or tokens, allowed per window. */
  readonly points: number;
  /** Positive integer: the window's length in seconds. */
  readonly windowS: number;
}

/** The limits of one scope. An absent limit is not enforced. */
export interface ScopeLimits {
  readonly requests?: WindowLimit;
  readonly tokens?: WindowLimit;
}

/** Limits per end user (keyed by agent + user) and per agent. An absent scope is not enforced. */
export interface RateLimits {
  readonly perUser?: ScopeLimits;
  readonly perAgent?: ScopeLimits;
}

/** Which limit refused a request; `store.error`: the counter store failed or timed out (fail closed). */
export type RateLimitName = 'user.requests' | 'user.tokens' | 'agent.requests' | 'agent.tokens' | 'store.error';

/** The rate-limit decision for one request. `retryAfterMs` (ms, integer ≥ 1) is for a `Retry-After` header (round up to s). */
export type RateDecision =
  | { readonly ok: true }
  | { readonly ok: false; readonly limit: RateLimitName; readonly retryAfterMs: number };

/** Options of {@link ModelRateLimiter.create}. */
export interface RateLimiterOptions {
  /**
   * `redis://` or `rediss://` URL (may hold a password; never echoed). When set, counters live in Redis
   * and are shared by every limiter on the same Redis and `keyPrefix`; otherwise they are in memory.
   */
  readonly redisUrl?: string;
  /** Prefix of every counter key. Default `bastion:rl`. */
  readonly keyPrefix?: string;
  /** Bound on each Redis round trip and on the first connect, in ms. Default 500. */
  readonly redisTimeoutMs?: number;
  /** `retryAfterMs` returned with `store.error`, in ms. Default 1000. */
  readonly storeErrorRetryAfterMs?: number;
  /**
   * Called once per failed or timed-out store call of `admit` or `chargeTokens` with a short error code
   * (`ECONNREFUSED`, `timeout`, `ERR_REDIS`; never a message or URL): the gateway counts it in
   * `bastion_errors_total{component="redis"}`. Must not throw.
   */
  readonly onStoreError?: (code: string) => void;
}

/** Longest accepted agent or user name, in UTF-16 code units (keys stay short; ids are far shorter). */
const MAX_NAME_LENGTH = 1024;

type Scope = 'user' | 'agent';
type Kind = 'requests' | 'tokens';

/** One compiled limit: the limiter and the name reported when it refuses. */
interface CompiledLimit {
  readonly name: Exclude<RateLimitName, 'store.error'>;
  readonly limiter: RateLimiterAbstract;
  readonly points: number;
}

/** Thrown internally when a store call outlives `redisTimeoutMs`. */
class StoreTimeout extends Error {
  constructor(ms: number) {
    super(`rate limit store did not answer within ${ms} ms`);
    this.name = 'StoreTimeout';
  }
}

/**
 * Per-user and per-agent request and token limits for the model door. Create with {@link ModelRateLimiter.create}.
 */
export class ModelRateLimiter {
  readonly #limits: ReadonlyMap<`${Scope}.${Kind}`, CompiledLimit>;
  readonly #redis: Redis | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #storeErrorRetryAfterMs: number;
  readonly #onStoreError: ((code: string) => void) | undefined;
  #closed = false;

  private constructor(
    limits: ReadonlyMap<`${Scope}.${Kind}`, CompiledLimit>,
    redis: Redis | undefined,
    timeoutMs: number | undefined,
    storeErrorRetryAfterMs: number,
    onStoreError: ((code: string) => void) | undefined,
  ) {
    this.#limits = limits;
    this.#redis = redis;
    this.#timeoutMs = timeoutMs;
    this.#storeErrorRetryAfterMs = storeErrorRetryAfterMs;
    this.#onStoreError = onStoreError;
  }

  /**
   * Validates `limits` and `opts` and builds the limiter. With `redisUrl`, connects to Redis, waiting at
   * most `redisTimeoutMs` for the first connection; an unreachable Redis does not fail `create`: the
   * client keeps reconnecting in the background (backoff up to 2 s) and until then every `admit` answers
   * `store.error`.
   *
   * @throws BastionError `ERR_CONFIG_INVALID` for a limit whose `points`/`windowS` is not a positive integer,
   *   a `redisUrl` that is not a `redis:`/`rediss:` URL (the URL is not echoed), or a bad option.
   */
  static async create(limits: RateLimits, opts: RateLimiterOptions = {}): Promise<ModelRateLimiter> {
    const keyPrefix = opts.keyPrefix ?? RATE_LIMIT_DEFAULTS.keyPrefix;
    if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) {
      throw new BastionError('ERR_CONFIG_INVALID', 'rateLimit.keyPrefix must be a non-empty string');
    }
    const timeoutMs = opts.redisTimeoutMs ?? RATE_LIMIT_DEFAULTS.redisTimeoutMs;
    assertPositiveInteger(timeoutMs, 'rateLimit.redisTimeoutMs');
    const storeErrorRetryAfterMs = opts.storeErrorRetryAfterMs ?? RATE_LIMIT_DEFAULTS.storeErrorRetryAfterMs;
    assertPositiveInteger(storeErrorRetryAfterMs, 'rateLimit.storeErrorRetryAfterMs');

    const specs: { scope: Scope; kind: Kind; limit: WindowLimit }[] = [];
    for (const scope of ['user', 'agent'] as const) {
      const scopeLimits = scope === 'user' ? limits.perUser : limits.perAgent;
      for (const kind of ['requests', 'tokens'] as const) {
        const limit = scopeLimits?.[kind];
        if (limit === undefined) continue;
        const path = `rateLimit.${scope === 'user' ? 'perUser' : 'perAgent'}.${kind}`;
        assertPositiveInteger(limit.points, `${path}.points`);
        assertPositiveInteger(limit.windowS, `${path}.windowS`);
        specs.push({ scope, kind, limit });
      }
    }

    let redis: Redis | undefined;
    if (opts.redisUrl !== undefined) {
      redis = openRedis(opts.redisUrl, timeoutMs);
      // A failed first connect is not fatal (see above); ioredis keeps retrying per retryStrategy.
      await bound(redis.connect(), timeoutMs).catch(() => undefined);
    }

    const compiled = new Map<`${Scope}.${Kind}`, CompiledLimit>();
    for (const { scope, kind, limit } of specs) {
      const limiterOpts = {
        points: limit.points,
        duration: limit.windowS,
        // Distinct per scope and kind: a user key can never equal an agent key.
        keyPrefix: `${keyPrefix}${keyPrefix.endsWith(':') ? '' : ':'}${scope}.${kind}`,
      };
      const limiter: RateLimiterAbstract =
        redis === undefined
          ? new RateLimiterMemory(limiterOpts)
          : new RateLimiterRedis({ ...limiterOpts, storeClient: redis, rejectIfRedisNotReady: true });
      compiled.set(`${scope}.${kind}`, { name: `${scope}.${kind}`, limiter, points: limit.points });
    }
    return new ModelRateLimiter(compiled, redis, redis === undefined ? undefined : timeoutMs, storeErrorRetryAfterMs, opts.onStoreError);
  }

  /**
   * Decides whether `user` of `agent` may send one more model request now. Checks the token budgets
   * (read only), then consumes one request point for the user and one for the agent (see the module doc
   * for the order and the give-back). Never throws for store failures: they refuse with `store.error`.
   *
   * @param agent the authenticated agent id (non-empty, at most 1024 characters)
   * @param user the end-user id the agent asserted (non-empty, at most 1024 characters)
   * @throws TypeError / RangeError when `agent` or `user` is not a non-empty string of at most 1024 characters
   *   (a caller bug, not a rate decision)
   */
  async admit(agent: string, user: string): Promise<RateDecision> {
    const keys = scopeKeys(agent, user);
    if (this.#closed) return this.#storeError();
    try {
      const [userTokens, agentTokens] = await Promise.all([
        this.#exhausted('user.tokens', keys.user),
        this.#exhausted('agent.tokens', keys.agent),
      ]);
      if (userTokens !== undefined) return userTokens;
      if (agentTokens !== undefined) return agentTokens;

      const userRequests = this.#limits.get('user.requests');
      if (userRequests !== undefined) {
        const refused = await this.#consume(userRequests, keys.user);
        if (refused !== undefined) return refused;
      }
      const agentRequests = this.#limits.get('agent.requests');
      if (agentRequests !== undefined) {
        let refused: RateDecision | undefined;
        try {
          refused = await this.#consume(agentRequests, keys.agent);
        } catch (err) {
          this.#giveBack(userRequests, keys.user);
          throw err;
        }
        if (refused !== undefined) {
          this.#giveBack(userRequests, keys.user);
          return refused;
        }
      }
      return { ok: true };
    } catch (err) {
      // Any store failure or timeout: fail closed.
      this.#reportStoreError(err);
      return this.#storeError();
    }
  }

  /**
   * Charges `tokens` (the response's input + output tokens) to the user's and the agent's token budgets.
   * The charge is never refused: a budget may go over its limit, and every `admit` in that window is then
   * refused with `user.tokens` / `agent.tokens` until the window ends.
   *
   * @param tokens a non-negative safe integer; 0 charges nothing
   * @throws RangeError when `tokens` is not a non-negative safe integer; TypeError/RangeError for bad names
   *   (as {@link admit}); BastionError `ERR_STORE` when the store failed or timed out (the charge may be
   *   lost: the caller records it in the audit record; the response has already been sent)
   */
  async chargeTokens(agent: string, user: string, tokens: number): Promise<void> {
    const keys = scopeKeys(agent, user);
    if (!Number.isSafeInteger(tokens) || tokens < 0) {
      throw new RangeError('tokens must be a non-negative safe integer');
    }
    if (tokens === 0) return;
    if (this.#closed) throw new BastionError('ERR_STORE', 'rate limiter is closed; tokens not charged');
    const charges: { scope: Scope; limit: CompiledLimit; key: string }[] = [];
    const userTokens = this.#limits.get('user.tokens');
    if (userTokens !== undefined) charges.push({ scope: 'user', limit: userTokens, key: keys.user });
    const agentTokens = this.#limits.get('agent.tokens');
    if (agentTokens !== undefined) charges.push({ scope: 'agent', limit: agentTokens, key: keys.agent });

    const results = await Promise.allSettled(charges.map((c) => this.#bound(c.limit.limiter.penalty(c.key, tokens))));
    const failed = charges.filter((_, i) => results[i]?.status === 'rejected').map((c) => c.scope);
    if (failed.length > 0) {
      const first = results.find((r) => r.status === 'rejected');
      this.#reportStoreError(first?.status === 'rejected' ? first.reason : undefined);
      throw new BastionError('ERR_STORE', 'rate limit store failed; tokens not charged', {
        cause: first?.status === 'rejected' ? first.reason : undefined,
        detail: { scopes: failed, tokens },
      });
    }
  }

  /** Releases the Redis connection (at once, without waiting for pending replies). Idempotent. Later calls fail closed. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    // disconnect(), not quit(): quit waits for a reply that an unreachable Redis never sends; disconnect also
    // stops the reconnect timer, so the process can exit.
    this.#redis?.disconnect(false);
    return Promise.resolve();
  }

  /** The refusal when a token budget is used up (consumed ≥ points in the current window), else undefined. */
  async #exhausted(name: 'user.tokens' | 'agent.tokens', key: string): Promise<RateDecision | undefined> {
    const limit = this.#limits.get(name);
    if (limit === undefined) return undefined;
    const res = await this.#bound(limit.limiter.get(key));
    if (res === null || res.msBeforeNext <= 0 || res.consumedPoints < limit.points) return undefined;
    return { ok: false, limit: limit.name, retryAfterMs: retryAfter(res.msBeforeNext) };
  }

  /** Consumes one point; the refusal when over the limit, undefined when within it. Throws on store failure. */
  async #consume(limit: CompiledLimit, key: string): Promise<RateDecision | undefined> {
    try {
      await this.#bound(limit.limiter.consume(key, 1));
      return undefined;
    } catch (err) {
      // rate-limiter-flexible rejects with a RateLimiterRes when over the limit, with an Error when the store failed.
      if (err instanceof RateLimiterRes) return { ok: false, limit: limit.name, retryAfterMs: retryAfter(err.msBeforeNext) };
      throw err;
    }
  }

  /** Best-effort return of a consumed point (the request was refused by a later scope). */
  #giveBack(limit: CompiledLimit | undefined, key: string): void {
    if (limit === undefined) return;
    // Failure leaves the point spent (over-counting); the request is refused either way.
    this.#bound(limit.limiter.reward(key, 1)).catch(() => undefined);
  }

  #bound<T>(p: Promise<T>): Promise<T> {
    return this.#timeoutMs === undefined ? p : bound(p, this.#timeoutMs);
  }

  #storeError(): RateDecision {
    return { ok: false, limit: 'store.error', retryAfterMs: this.#storeErrorRetryAfterMs };
  }

  /** Passes a store failure's short code (never its message, which may name the host) to `onStoreError`. */
  #reportStoreError(err: unknown): void {
    if (this.#onStoreError === undefined) return;
    const own = (err as { code?: unknown } | null | undefined)?.code;
    const code = err instanceof StoreTimeout ? 'timeout' : typeof own === 'string' && /^[A-Za-z0-9_]{1,32}$/.test(own) ? own : 'ERR_REDIS';
    try {
      this.#onStoreError(code);
    } catch {
      // Counting must not turn into a request failure.
    }
  }
}

/** The counter keys of one request: user scope = agent + user, agent scope = agent; both percent-encoded. */
function scopeKeys(agent: string, user: string): { user: string; agent: string } {
  assertName(agent, 'agent');
  assertName(user, 'user');
  const a = encodeURIComponent(agent);
  return { user: `${a}:${encodeURIComponent(user)}`, agent: a };
}

function assertName(v: unknown, label: string): asserts v is string {
  if (typeof v !== 'string') throw new TypeError(`${label} must be a string`);
  if (v.length === 0 || v.length > MAX_NAME_LENGTH) throw new RangeError(`${label} must be 1 to ${MAX_NAME_LENGTH} characters`);
}

function assertPositiveInteger(v: unknown, path: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new BastionError('ERR_CONFIG_INVALID', `${path} must be a positive integer`, { detail: { path } });
  }
}

function retryAfter(msBeforeNext: number): number {
  return Math.max(1, Math.ceil(msBeforeNext));
}

/** Rejects with {@link StoreTimeout} when `p` has not settled within `ms`; the timer never holds the process open. */
function bound<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreTimeout(ms)), ms);
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (reason: unknown) => {
        clearTimeout(timer);
        // Passed through unchanged: a RateLimiterRes rejection means "over the limit", not a store failure.
        reject(reason);
      },
    );
  });
}

/** An ioredis client that fails fast instead of queueing while disconnected; connects lazily (see `create`). */
function openRedis(redisUrl: string, timeoutMs: number): Redis {
  let url: URL;
  try {
    url = new URL(redisUrl);
  } catch {
    throw new BastionError('ERR_CONFIG_INVALID', 'rateLimit.redisUrl is not a valid URL', { detail: { path: 'rateLimit.redisUrl' } });
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new BastionError('ERR_CONFIG_INVALID', 'rateLimit.redisUrl must be a redis:// or rediss:// URL', {
      detail: { path: 'rateLimit.redisUrl', protocol: url.protocol },
    });
  }
  return failFastRedis(redisUrl, timeoutMs);
}
