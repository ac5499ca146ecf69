/**
 * Opens the anomaly engine of a gateway from its config: the rules of
 * `config.anomalies`, and its own fail-fast Redis client when `redis` is set
 * (docs/anomalies.md "Several instances").
 */
import type { AuditRecord } from '../audit/types.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { failFastRedis } from '../util/redis.ts';
import { AnomalyEngine, type AnomalyEngineOptions } from './engine.ts';

/** Bound on one Redis command of the engine, in ms: a slow Redis makes the engine count locally, never stall. */
export const ANOMALY_REDIS_TIMEOUT_MS = 1_000;

/** An engine and what closes it (and its Redis client). */
export interface OpenedAnomalyEngine {
  readonly engine: AnomalyEngine;
  /** Subscribes the engine to a log's committed records; returns the unsubscribe function. */
  attach(log: { subscribe(fn: (record: AuditRecord) => void): () => void }): () => void;
  /** Waits for queued records, then closes the Redis client. Never rejects. */
  close(): Promise<void>;
}

/**
 * Builds the engine for `config` (no rules enabled: an engine that does nothing).
 * With `config.redis`, connects a client of its own in the background: an
 * unreachable Redis does not fail the start (the engine counts locally and
 * alerts `anomaly.redis_unavailable` once).
 */
export function openAnomalyEngine(config: Pick<ResolvedConfig, 'anomalies' | 'redis'>, deps: Omit<AnomalyEngineOptions, 'rules' | 'redis'>): OpenedAnomalyEngine {
  const client = config.redis !== undefined ? failFastRedis(config.redis.url.reveal(), ANOMALY_REDIS_TIMEOUT_MS) : undefined;
  if (client !== undefined) void client.connect().catch(() => undefined);
  const engine = new AnomalyEngine({
    ...deps,
    rules: config.anomalies,
    ...(client !== undefined && config.redis !== undefined ? { redis: { client, keyPrefix: config.redis.keyPrefix } } : {}),
  });
  return {
    engine,
    attach: (log) => engine.attach(log),
    async close() {
      await engine.close();
      client?.disconnect(false);
    },
  };
}
