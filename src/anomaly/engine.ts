/**
 * The anomaly engine: evaluates the anomaly rules (./config.ts,
 * docs/anomalies.md) on every committed audit record of this instance and
 * raises one admin alert per firing, carrying the seqs of the records that
 * triggered it; a rule with `isolate: true` also isolates the agent.
 *
 * Input: the committed path (`AuditLog.subscribe`), so every record has its
 * seq. Each instance sees the records it committed; with Redis (`redis`),
 * window counts (burst, denialSpike, pinChanges) and learned pairs
 * (newSecretHost, newToolCombination) are shared by every instance, and a
 * firing is claimed with `SET key NX PX` so it alerts once across the cluster.
 * When Redis fails, the engine counts in this process (one
 * `anomaly.redis_unavailable` alert per outage) and never throws into the log.
 *
 * Evaluation is off the request path: `observe` queues the record (at most
 * `maxBacklog`; more are dropped, counted and alerted once per backlog).
 */
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import picomatch from 'picomatch';
import type { Redis } from 'ioredis';
import type { AdminAlert } from '../alerts/notifier.ts';
import type { AuditEvent, AuditRecord } from '../audit/types.ts';
import { hostMatchesAny, normalizeHost, splitHostPort } from '../net/host-pattern.ts';
import { isRequestRecord } from '../observe/observer.ts';
import { sha256Hex } from '../util/crypto.ts';
import type { AnomalyRule, NewSecretHostAnomaly, NewToolCombinationAnomaly, OutsideHoursAnomaly, ResolvedAnomalies, SensitivePathAnomaly } from './config.ts';
import { LearnedSets, LruMap, WindowCounters } from './memory.ts';

/** Most record seqs an alert carries (the newest); the rest are counted in `detail.moreRecords`. */
export const MAX_RECORDS_IN_ALERT = 50;
/** Default most records queued for evaluation. */
export const DEFAULT_MAX_BACKLOG = 10_000;
/** While Redis is failing, how long (ms) the engine counts locally before trying Redis again. */
export const REDIS_RETRY_MS = 5_000;
/** Most strings of recorded arguments the sensitivePath rule looks at per record, and how deep. */
const MAX_ARG_STRINGS = 1_000;
const MAX_ARG_DEPTH = 16;
/** How long (ms) a firing of a learned-pair rule is claimed (two instances seeing the same new pair at once). */
const LEARNED_CLAIM_MS = 60_000;
/** Longest isolation reason passed on (the isolation service takes at most 500 characters). */
const MAX_ISOLATE_REASON_CHARS = 500;
/** Most firing claims remembered locally. */
const MAX_LOCAL_CLAIMS = 100_000;

/** Redis shared by the instances: a client (ioredis, fail-fast: src/util/redis.ts) and the key prefix. */
export interface AnomalyRedis {
  readonly client: Redis;
  readonly keyPrefix: string;
}

/** Options of {@link AnomalyEngine}. */
export interface AnomalyEngineOptions {
  /** The enabled rules (`config.anomalies`). */
  readonly rules: ResolvedAnomalies;
  /** Sends an alert (the gateway's `AlertNotifier.notify`). Must not throw; exceptions are ignored. */
  readonly notify: (alert: AdminAlert) => void;
  /** Audits an alert as a `system` record with method `alert` (the gateway's batched audit step). */
  readonly audit?: (event: AuditEvent) => void;
  /** Isolates an agent (`gateway.isolations.isolate`); called for rules with `isolate: true`, with `by` = `anomaly:<rule>`. */
  readonly isolate?: (agent: string, reason: string, by: string) => Promise<unknown>;
  /** Shared counters; none: this process only. The engine does not close the client. */
  readonly redis?: AnomalyRedis;
  /** Clock (ms since the epoch) for claims and Redis retries; records are windowed by their own `time`. */
  readonly now?: () => number;
  /** Most records queued for evaluation (default {@link DEFAULT_MAX_BACKLOG}). */
  readonly maxBacklog?: number;
  /** Told about an evaluation that failed unexpectedly (a bug, never input); default: ignored. */
  readonly onError?: (err: unknown) => void;
}

/** What a rule found: enough to claim, alert and isolate. */
interface Firing {
  /** Part of the claim key beside rule and agent (a tool, a pair); '' for the agent as a whole. */
  readonly subject: string;
  /** How long the claim holds (ms): no second alert for the same rule, agent and subject within it. */
  readonly claimMs: number;
  readonly records: readonly number[];
  readonly summary: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

interface CompiledGlob {
  readonly glob: string;
  readonly test: (path: string) => boolean;
}

/** Counts of what the engine holds, for the memory bounds (tests, metrics). */
export interface AnomalyEngineStats {
  /** Window-counter keys and entries held in memory, over all rules. */
  readonly counterKeys: number;
  readonly counterEntries: number;
  /** Agents and pairs held in learned sets, over all rules. */
  readonly learnedAgents: number;
  readonly learnedPairs: number;
  /** Sessions tracked by newToolCombination rules. */
  readonly sessions: number;
  /** Records dropped because the backlog was full. */
  readonly dropped: number;
  /** True while Redis is failing and counts are local. */
  readonly degraded: boolean;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** Evaluates anomaly rules over committed audit records. See the module docs. */
export class AnomalyEngine {
  readonly #rules: readonly AnomalyRule[];
  readonly #notify: (alert: AdminAlert) => void;
  readonly #audit: ((event: AuditEvent) => void) | undefined;
  readonly #isolate: AnomalyEngineOptions['isolate'];
  readonly #redis: AnomalyRedis | undefined;
  readonly #now: () => number;
  readonly #maxBacklog: number;
  readonly #onError: (err: unknown) => void;
  readonly #counters = new Map<string, WindowCounters>();
  readonly #learned = new Map<string, LearnedSets>();
  readonly #sessions = new Map<string, LruMap<string, LruMap<string, true>>>();
  readonly #globs = new Map<string, readonly CompiledGlob[]>();
  readonly #clocks = new Map<string, Intl.DateTimeFormat>();
  readonly #claims = new LruMap<string, number>(MAX_LOCAL_CLAIMS);
  #queue: AuditRecord[] = [];
  #draining: Promise<void> | undefined;
  #dropped = 0;
  #backlogAlerted = false;
  /** Redis is failing: until this time (ms) count locally. */
  #degradedUntil = 0;
  #degraded = false;
  #closed = false;

  /** Compiles the rules (globs, time zones). @throws RangeError for a bad `maxBacklog`. */
  constructor(opts: AnomalyEngineOptions) {
    this.#rules = [...opts.rules.values()];
    this.#notify = opts.notify;
    this.#audit = opts.audit;
    this.#isolate = opts.isolate;
    this.#redis = opts.redis;
    this.#now = opts.now ?? Date.now;
    this.#maxBacklog = opts.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    if (!Number.isSafeInteger(this.#maxBacklog) || this.#maxBacklog < 1) throw new RangeError('AnomalyEngine: maxBacklog must be a positive integer');
    this.#onError = opts.onError ?? (() => undefined);
    for (const rule of this.#rules) {
      switch (rule.kind) {
        case 'burst':
        case 'denialSpike':
        case 'pinChanges':
          this.#counters.set(rule.name, new WindowCounters(rule.maxKeys));
          break;
        case 'newSecretHost':
          this.#learned.set(rule.name, new LearnedSets(rule.maxAgents, rule.maxPairsPerAgent));
          break;
        case 'newToolCombination':
          this.#learned.set(rule.name, new LearnedSets(rule.maxAgents, rule.maxPairsPerAgent));
          this.#sessions.set(rule.name, new LruMap(rule.maxSessions));
          break;
        case 'sensitivePath':
          this.#globs.set(rule.name, rule.paths.map((glob) => ({ glob, test: picomatch(glob.normalize('NFC'), { dot: true, nocase: true }) })));
          break;
        case 'outsideHours':
          this.#clocks.set(rule.name, new Intl.DateTimeFormat('en-US', { timeZone: rule.timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }));
          break;
      }
    }
  }

  /** Subscribes to `log`'s committed records; returns the unsubscribe function. */
  attach(log: { subscribe(fn: (record: AuditRecord) => void): () => void }): () => void {
    return log.subscribe((record) => this.observe(record));
  }

  /** Queues one committed record for evaluation. Never throws, never waits. */
  observe(record: AuditRecord): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#maxBacklog) {
      this.#dropped++;
      if (!this.#backlogAlerted) {
        this.#backlogAlerted = true;
        this.#raise({ kind: 'anomaly.backlog', severity: 'warning', time: new Date(this.#now()).toISOString(), agent: null, user: null, summary: `anomaly rules are behind: records are skipped (more than ${this.#maxBacklog} queued)`, detail: { maxBacklog: this.#maxBacklog } }, 'anomalies');
      }
      return;
    }
    this.#queue.push(record);
    this.#draining ??= this.#drain();
  }

  /** Resolves when every record queued so far has been evaluated. Never rejects. */
  async idle(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  /** Stops taking records and waits for the queued ones. Does not close the Redis client. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
  }

  /** What the engine holds (memory bounds). */
  get stats(): AnomalyEngineStats {
    let counterKeys = 0;
    let counterEntries = 0;
    for (const c of this.#counters.values()) {
      counterKeys += c.size;
      counterEntries += c.entries;
    }
    let learnedAgents = 0;
    let learnedPairs = 0;
    for (const l of this.#learned.values()) {
      learnedAgents += l.agents;
      learnedPairs += l.pairs;
    }
    let sessions = 0;
    for (const s of this.#sessions.values()) sessions += s.size;
    return { counterKeys, counterEntries, learnedAgents, learnedPairs, sessions, dropped: this.#dropped, degraded: this.#degraded };
  }

  async #drain(): Promise<void> {
    try {
      for (let r = this.#queue.shift(); r !== undefined; r = this.#queue.shift()) await this.#evaluate(r);
    } catch (err) {
      this.#queue = [];
      try {
        this.#onError(err);
      } catch {
        // Nothing more to tell.
      }
    } finally {
      this.#draining = undefined;
      this.#backlogAlerted = false;
    }
  }

  async #evaluate(r: AuditRecord): Promise<void> {
    const agent = r.agent;
    // Records of admins, of the system (this engine's own alerts among them) and of unauthenticated requests are no agent's activity.
    if (typeof agent !== 'string' || agent.length === 0 || r.door === 'system' || r.door === 'admin') return;
    if (r.method === 'alert' || r.method === 'alert.failed') return;
    const parsed = Date.parse(r.time);
    const t = Number.isFinite(parsed) ? parsed : this.#now();
    const request = isRequestRecord(r);
    for (const rule of this.#rules) {
      try {
        const firing = await this.#check(rule, r, agent, t, request);
        if (firing !== undefined) await this.#fire(rule, firing, r, agent);
      } catch (err) {
        try {
          this.#onError(err);
        } catch {
          // A failing reporter must not stop the rules.
        }
      }
    }
  }

  #check(rule: AnomalyRule, r: AuditRecord, agent: string, t: number, request: boolean): Promise<Firing | undefined> | Firing | undefined {
    switch (rule.kind) {
      case 'burst': {
        if (!request) return undefined;
        const target = rule.per === 'tool' ? (r.target ?? '') : '';
        const subject = rule.per === 'tool' ? `${r.door}:${target}` : '';
        return this.#window(rule, agent, subject, r.seq, t, rule.windowS, rule.max, (n) => ({
          summary: `agent ${agent} made more than ${rule.max} requests${rule.per === 'tool' ? ` to ${target || '(no target)'}` : ''} within ${rule.windowS} s`,
          detail: { max: rule.max, windowS: rule.windowS, per: rule.per, counted: n, ...(rule.per === 'tool' ? { door: r.door, target } : {}) },
        }));
      }
      case 'denialSpike':
        if (!request || r.decision.effect !== 'deny') return undefined;
        return this.#window(rule, agent, '', r.seq, t, rule.windowS, rule.max, (n) => ({
          summary: `agent ${agent} was refused more than ${rule.max} times within ${rule.windowS} s`,
          detail: { max: rule.max, windowS: rule.windowS, counted: n, lastReason: r.decision.reason },
        }));
      case 'pinChanges':
        if (r.method !== 'tools/pin' || !rule.reasons.includes(r.decision.reason)) return undefined;
        return this.#window(rule, agent, '', r.seq, t, rule.windowS, rule.max, (n) => ({
          summary: `more than ${rule.max} pinned tool definitions of agent ${agent} changed within ${rule.windowS} s`,
          detail: { max: rule.max, windowS: rule.windowS, counted: n, lastTool: r.target ?? null, lastReason: r.decision.reason },
        }));
      case 'sensitivePath':
        return request ? this.#sensitive(rule, r, agent) : undefined;
      case 'newSecretHost':
        return this.#newSecretHost(rule, r, agent, t);
      case 'newToolCombination':
        return this.#newToolCombination(rule, r, agent, t);
      case 'outsideHours':
        return request ? this.#outsideHours(rule, r, agent, t) : undefined;
    }
  }

  /** Counts the record in the rule's sliding window; a firing when the count exceeds `max`. */
  async #window(
    rule: AnomalyRule,
    agent: string,
    subject: string,
    seq: number,
    t: number,
    windowS: number,
    max: number,
    describe: (counted: number) => Pick<Firing, 'summary' | 'detail'>,
  ): Promise<Firing | undefined> {
    const windowMs = windowS * 1000;
    const key = subject === '' ? agent : `${agent}\0${subject}`;
    const seqs = await this.#count(rule.name, key, seq, t, windowMs, max);
    if (seqs.length <= max) return undefined;
    return { subject, claimMs: windowMs, records: seqs, ...describe(seqs.length) };
  }

  /** Adds `seq` at `t` to the window `key` of `rule` and returns the seqs within the window (at most `max + 1`). */
  async #count(rule: string, key: string, seq: number, t: number, windowMs: number, max: number): Promise<number[]> {
    const redis = this.#useRedis();
    if (redis !== undefined) {
      const k = `${redis.keyPrefix}anomaly:win:${rule}:${digest(key)}`;
      try {
        const res = await redis.client
          .multi()
          .zadd(k, t, String(seq))
          .zremrangebyscore(k, '-inf', t - windowMs)
          .zremrangebyrank(k, 0, -(max + 2))
          .zrange(k, '0', '-1')
          .pexpire(k, windowMs)
          .exec();
        const members = res?.[3];
        if (res === null || members === undefined || members[0] !== null || !Array.isArray(members[1])) throw new Error('redis: no answer');
        this.#redisWorked();
        return (members[1] as unknown[]).map(Number).filter((n) => Number.isSafeInteger(n));
      } catch (err) {
        this.#redisFailed(err);
      }
    }
    return this.#counters.get(rule)!.add(key, seq, t, windowMs, max);
  }

  /** Learns `pairs` for `agent`: the new ones, and whether the agent is still in its learning period. */
  async #learn(rule: NewSecretHostAnomaly | NewToolCombinationAnomaly, agent: string, pairs: readonly string[], t: number): Promise<{ learning: boolean; fresh: string[] }> {
    const redis = this.#useRedis();
    const forgetMs = rule.forgetS * 1000;
    if (redis !== undefined) {
      const base = `${redis.keyPrefix}anomaly:learn:${rule.name}:${agent}:`;
      try {
        const m = redis.client.multi().set(`${base}seen`, String(t), 'PX', forgetMs, 'NX').get(`${base}seen`).pexpire(`${base}seen`, forgetMs);
        for (const p of pairs) m.set(`${base}${digest(p)}`, '1', 'PX', forgetMs, 'NX').pexpire(`${base}${digest(p)}`, forgetMs);
        const res = await m.exec();
        if (res === null || res.some(([err]) => err !== null)) throw new Error('redis: no answer');
        this.#redisWorked();
        const firstSeen = Number(res[1]![1]);
        const fresh = pairs.filter((_, i) => res[3 + 2 * i]![1] === 'OK');
        return { learning: !Number.isFinite(firstSeen) || t - firstSeen < rule.learningS * 1000, fresh };
      } catch (err) {
        this.#redisFailed(err);
      }
    }
    const { firstSeen, fresh } = this.#learned.get(rule.name)!.learn(agent, pairs, t);
    return { learning: t - firstSeen < rule.learningS * 1000, fresh };
  }

  async #newSecretHost(rule: NewSecretHostAnomaly, r: AuditRecord, agent: string, t: number): Promise<Firing | undefined> {
    const secrets = r.detail?.secrets;
    if (r.door !== 'network' || r.decision.effect !== 'allow' || typeof r.target !== 'string' || r.target.length === 0 || !Array.isArray(secrets)) return undefined;
    const target = r.target;
    const names = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length > 0))].slice(0, 32);
    if (names.length === 0) return undefined;
    const { learning, fresh } = await this.#learn(rule, agent, names.map((s) => `${s}@${target}`), t);
    if (learning || fresh.length === 0) return undefined;
    const newSecrets = fresh.map((p) => p.slice(0, p.lastIndexOf('@')));
    return {
      subject: fresh.join(','),
      claimMs: LEARNED_CLAIM_MS,
      records: [r.seq],
      summary: `agent ${agent} sent secret ${newSecrets.join(', ')} to ${target} for the first time`,
      detail: { secrets: newSecrets, target },
    };
  }

  async #newToolCombination(rule: NewToolCombinationAnomaly, r: AuditRecord, agent: string, t: number): Promise<Firing | undefined> {
    const session = r.session;
    const tool = r.target;
    if (r.door !== 'tool' || r.method !== 'tools/call' || r.decision.effect !== 'allow' || typeof session !== 'string' || session.length === 0 || typeof tool !== 'string' || tool.length === 0) return undefined;
    const sessions = this.#sessions.get(rule.name)!;
    const key = `${agent}\0${session}`;
    let tools = sessions.get(key);
    if (tools === undefined) {
      tools = new LruMap(rule.maxToolsPerSession);
      sessions.set(key, tools);
    }
    const pairs: string[] = [];
    if (!tools.has(tool)) {
      for (const other of tools.keys()) pairs.push(other < tool ? `${other} + ${tool}` : `${tool} + ${other}`);
    }
    tools.set(tool, true);
    if (pairs.length === 0) return undefined;
    pairs.sort();
    const { learning, fresh } = await this.#learn(rule, agent, pairs, t);
    if (learning || fresh.length === 0) return undefined;
    return {
      subject: fresh.join(','),
      claimMs: LEARNED_CLAIM_MS,
      records: [r.seq],
      summary: `agent ${agent} used ${fresh.length === 1 ? 'a tool pair' : `${fresh.length} tool pairs`} never seen together before: ${fresh.slice(0, 5).join('; ')}`,
      detail: { pairs: fresh.slice(0, 20), session, tool },
    };
  }

  #sensitive(rule: SensitivePathAnomaly, r: AuditRecord, agent: string): Firing | undefined {
    const found = this.#sensitiveMatch(rule, r);
    if (found === undefined) return undefined;
    return {
      subject: '',
      claimMs: rule.cooldownS * 1000,
      records: [r.seq],
      summary: `agent ${agent} reached for a sensitive ${found.via === 'host' ? 'host' : 'path'} (${found.via === 'reason' ? `refused: ${r.decision.reason}` : found.match})`,
      detail: { via: found.via, match: found.match, door: r.door, method: r.method, ...(typeof r.detail?.pathArgument === 'string' ? { pathArgument: r.detail.pathArgument } : {}) },
    };
  }

  /** How the record touches a sensitive path: a path-guard reason, a glob (never the value itself) or a host pattern. */
  #sensitiveMatch(rule: SensitivePathAnomaly, r: AuditRecord): { via: 'reason' | 'target' | 'arguments' | 'host'; match: string } | undefined {
    if (rule.reasons.includes(r.decision.reason)) return { via: 'reason', match: r.decision.rule };
    const globs = this.#globs.get(rule.name)!;
    if (r.door === 'network') {
      if (rule.hosts.length === 0 || typeof r.target !== 'string') return undefined;
      const host = splitHostPort(r.target)?.host;
      return host !== undefined && hostMatchesAny(rule.hosts, host) ? { via: 'host', match: normalizeHost(host) } : undefined;
    }
    if (typeof r.target === 'string') {
      const glob = matchPath(globs, r.target);
      if (glob !== undefined) return { via: 'target', match: glob };
    }
    if (r.args !== undefined) {
      let seen = 0;
      const walk = (v: unknown, depth: number): string | undefined => {
        if (seen >= MAX_ARG_STRINGS || depth > MAX_ARG_DEPTH) return undefined;
        if (typeof v === 'string') {
          seen++;
          return matchPath(globs, v);
        }
        if (typeof v !== 'object' || v === null) return undefined;
        for (const item of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
          const hit = walk(item, depth + 1);
          if (hit !== undefined) return hit;
        }
        return undefined;
      };
      const glob = walk(r.args, 0);
      if (glob !== undefined) return { via: 'arguments', match: glob };
    }
    return undefined;
  }

  #outsideHours(rule: OutsideHoursAnomaly, r: AuditRecord, agent: string, t: number): Firing | undefined {
    const local = localTime(this.#clocks.get(rule.name)!, t);
    if (local === undefined || withinHours(rule, local)) return undefined;
    const hhmm = `${String(Math.floor(local.minutes / 60)).padStart(2, '0')}:${String(local.minutes % 60).padStart(2, '0')}`;
    return {
      subject: '',
      claimMs: rule.cooldownS * 1000,
      records: [r.seq],
      summary: `agent ${agent} is active outside working hours (${local.day} ${hhmm} ${rule.timeZone})`,
      detail: { localDay: local.day, localTime: hhmm, timeZone: rule.timeZone, days: rule.days, from: rule.from, to: rule.to },
    };
  }

  /** Claims the firing (locally, then across instances with `SET NX PX`); false when it was already claimed. */
  async #claim(rule: AnomalyRule, agent: string, subject: string, ms: number): Promise<boolean> {
    const now = this.#now();
    const local = `${rule.name}\0${agent}\0${subject}`;
    const until = this.#claims.get(local);
    if (until !== undefined && until > now) return false;
    this.#claims.set(local, now + ms);
    const redis = this.#useRedis();
    if (redis === undefined) return true;
    try {
      const ok = await redis.client.set(`${redis.keyPrefix}anomaly:fired:${rule.name}:${agent}:${digest(subject)}`, '1', 'PX', ms, 'NX');
      this.#redisWorked();
      return ok === 'OK';
    } catch (err) {
      this.#redisFailed(err);
      return true;
    }
  }

  async #fire(rule: AnomalyRule, firing: Firing, r: AuditRecord, agent: string): Promise<void> {
    if (!(await this.#claim(rule, agent, firing.subject, firing.claimMs))) return;
    let isolation: string | undefined;
    if (rule.isolate) {
      if (this.#isolate === undefined) isolation = 'unavailable';
      else {
        try {
          await this.#isolate(agent, `anomaly rule ${rule.name}: ${firing.summary}`.slice(0, MAX_ISOLATE_REASON_CHARS), `anomaly:${rule.name}`);
          isolation = 'isolated';
        } catch (err) {
          isolation = `failed (${errorCode(err)})`;
        }
      }
    }
    const records = firing.records.slice(-MAX_RECORDS_IN_ALERT);
    this.#raise(
      {
        kind: `anomaly.${rule.name}`,
        severity: rule.alert,
        time: new Date(this.#now()).toISOString(),
        agent,
        user: r.user ?? null,
        summary: firing.summary,
        detail: {
          rule: rule.name,
          ruleKind: rule.kind,
          records,
          ...(firing.records.length > records.length ? { moreRecords: firing.records.length - records.length } : {}),
          ...firing.detail,
          ...(isolation !== undefined ? { isolation } : {}),
        },
      },
      `anomalies.${rule.name}`,
    );
  }

  /** Sends and audits one alert. Never throws. */
  #raise(alert: AdminAlert, rule: string): void {
    try {
      this.#notify(alert);
    } catch {
      // The notifier never throws by contract; a broken one must not stop the rules.
    }
    try {
      this.#audit?.({
        time: alert.time,
        door: 'system',
        agent: alert.agent,
        user: alert.user,
        method: 'alert',
        target: alert.kind,
        decision: { effect: 'allow', reason: 'system', rule },
        outcome: 'ok',
        durationMs: 0,
        detail: { severity: alert.severity, summary: alert.summary, ...alert.detail },
      });
    } catch {
      // The audit step reports its own failures.
    }
  }

  /** Redis, unless it is failing and the retry pause has not passed. */
  #useRedis(): AnomalyRedis | undefined {
    if (this.#redis === undefined) return undefined;
    return this.#degraded && this.#now() < this.#degradedUntil ? undefined : this.#redis;
  }

  #redisWorked(): void {
    this.#degraded = false;
  }

  #redisFailed(err: unknown): void {
    this.#degradedUntil = this.#now() + REDIS_RETRY_MS;
    if (this.#degraded) return;
    this.#degraded = true;
    this.#raise(
      {
        kind: 'anomaly.redis_unavailable',
        severity: 'warning',
        time: new Date(this.#now()).toISOString(),
        agent: null,
        user: null,
        summary: 'anomaly rules count in this instance only: Redis is unreachable (alerts may repeat across instances until it is back)',
        detail: { code: errorCode(err) },
      },
      'anomalies',
    );
  }
}

/** A short stable digest of a key part (tool names, hosts and pairs can be long or hold `:`). */
function digest(s: string): string {
  return s === '' ? '-' : sha256Hex(s).slice(0, 32);
}

/** The first glob matching `value` read as a path (an absolute POSIX path or a `file:` URL), or undefined. */
function matchPath(globs: readonly CompiledGlob[], value: string): string | undefined {
  let path: string;
  if (value.startsWith('/')) path = value;
  else if (/^file:/i.test(value)) {
    try {
      path = fileURLToPath(value);
    } catch {
      return undefined;
    }
  } else return undefined;
  if (path.length > 4096 || path.includes('\0')) return undefined;
  const normalized = posix.resolve(path).normalize('NFC');
  for (const g of globs) if (g.test(normalized)) return g.glob;
  return undefined;
}

/** The weekday and minutes since local midnight of `t` (ms) in the formatter's time zone. */
function localTime(fmt: Intl.DateTimeFormat, t: number): { day: (typeof WEEKDAYS)[number]; minutes: number } | undefined {
  const parts = fmt.formatToParts(new Date(t));
  const get = (type: string): string | undefined => parts.find((p) => p.type === type)?.value;
  const day = WEEKDAYS.find((d) => d === get('weekday')?.toLowerCase());
  const hour = Number(get('hour'));
  const minute = Number(get('minute'));
  if (day === undefined || !Number.isInteger(hour) || !Number.isInteger(minute)) return undefined;
  return { day, minutes: hour * 60 + minute };
}

function minutesOf(clock: string): number {
  return Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
}

/** Whether a local day and time fall within the rule's working hours; a shift past midnight belongs to the day it starts. */
export function withinHours(rule: Pick<OutsideHoursAnomaly, 'days' | 'from' | 'to'>, local: { day: (typeof WEEKDAYS)[number]; minutes: number }): boolean {
  const from = minutesOf(rule.from);
  const to = minutesOf(rule.to);
  const days: readonly string[] = rule.days;
  if (from < to) return days.includes(local.day) && local.minutes >= from && local.minutes < to;
  const yesterday = WEEKDAYS[(WEEKDAYS.indexOf(local.day) + 6) % 7]!;
  return (days.includes(local.day) && local.minutes >= from) || (days.includes(yesterday) && local.minutes < to);
}

/** A stable, non-secret name for an error: its `code` or `name`. */
function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(code)) return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name)) return name;
  }
  return 'UNKNOWN';
}
