/**
 * What a serving instance does for its deployment when `redis` is configured:
 * opens the {@link RedisBus} (else a {@link LocalBus}), registers the `redis`
 * readiness check, watches the Redis connections (one admin alert and one audit
 * record per outage, one audit record at recovery: ioredis reconnects by itself,
 * no restart), and keeps this instance's heartbeat in the registry
 * (./registry.ts) for `bastion status`. docs/cluster.md is the operator's page.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { AdminAlert } from '../alerts/notifier.ts';
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { allow, deny } from '../decision.ts';
import type { Readiness } from '../observe/health.ts';
import { sha256Hex } from '../util/crypto.ts';
import { LocalBus, type ClusterBus } from './bus.ts';
import { RedisBus, type RedisBusHealth } from './redis-bus.ts';
import { InstanceHeartbeat, REGISTRY_DEFAULTS, type InstanceCheck, type InstanceInfo } from './registry.ts';

const VERSION = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * The bus `config` calls for: a {@link RedisBus} when `redis` is set (an
 * unreachable Redis does not fail this; see {@link RedisBus.open}), else a {@link LocalBus}.
 * @throws BastionError `ERR_CONFIG_INVALID` for a bad `redis.url` (not echoed).
 */
export async function openClusterBus(config: Pick<ResolvedConfig, 'redis'>, opts: { timeoutMs?: number } = {}): Promise<ClusterBus> {
  if (config.redis === undefined) return new LocalBus();
  return RedisBus.open({ url: config.redis.url.reveal(), keyPrefix: config.redis.keyPrefix, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
}

/** What {@link attachCluster} needs from the gateway (src/server/gateway.ts). */
export interface ClusterHost {
  readonly config: Pick<ResolvedConfig, 'file'>;
  readonly bus: ClusterBus;
  readonly readiness: Readiness;
  readonly auditStep: { batched(event: AuditEvent): void };
  /** The gateway's metrics: each outage and each failed publish is counted in `bastion_errors_total{component="redis"}`. */
  readonly observer?: { readonly metrics: { countError(component: 'redis', code: string): void } };
}

/** Options of {@link attachCluster}. */
export interface AttachClusterOptions {
  /** Admin alerts (src/alerts/notifier.ts): one `redis.unavailable` per outage. */
  readonly alerts?: { notify(alert: AdminAlert): void };
  /** The HTTP listener, `host:port`, for the registry. */
  readonly listen: string;
  /** Heartbeat period and entry TTL, in ms (tests shorten them). */
  readonly heartbeatMs?: number;
  readonly ttlMs?: number;
}

/** A running attachment; {@link close} before the gateway closes (the heartbeat entry is deleted over the bus's connection). */
export interface ClusterRuntime {
  /** True while Redis is considered down (between the alert and the recovery). Always false without Redis. */
  readonly outage: boolean;
  /** The heartbeat, when Redis is configured. */
  readonly heartbeat: InstanceHeartbeat | undefined;
  close(): Promise<void>;
}

/**
 * Attaches this instance to its deployment. With a {@link RedisBus}: registers
 * readiness check `redis` (ok only while both bus connections are up; detail the
 * error code, never the URL), raises alert `redis.unavailable` (critical) and
 * audits `redis.unavailable` (system door, reason `store.error`) once when Redis
 * goes away, audits `redis.recovered` when it is back, and starts the heartbeat.
 * With a {@link LocalBus}: nothing to do.
 */
export async function attachCluster(host: ClusterHost, opts: AttachClusterOptions): Promise<ClusterRuntime> {
  const bus = host.bus;
  if (!(bus instanceof RedisBus)) return { outage: false, heartbeat: undefined, close: () => Promise.resolve() };
  const unregister = host.readiness.register('redis', () => bus.health());
  let outage = false;
  let since = 0;
  const countError = (code: string): void => {
    try {
      host.observer?.metrics.countError('redis', code);
    } catch {
      // Counting must not stop the outage handling.
    }
  };
  const onHealth = (h: RedisBusHealth): void => {
    const time = new Date().toISOString();
    if (!h.ok && !outage) {
      outage = true;
      since = Date.now();
      const code = h.detail ?? 'ERR_STORE';
      countError(code);
      host.auditStep.batched({ time, door: 'system', agent: null, method: 'redis.unavailable', decision: deny('store.error', 'redis'), outcome: 'error', durationMs: 0, detail: { code, instance: bus.instanceId } });
      opts.alerts?.notify({
        kind: 'redis.unavailable',
        severity: 'critical',
        time,
        agent: null,
        user: null,
        summary: `Redis is unreachable (${code}): rate-limited model requests, replay checks and cross-instance wake-ups fail closed until it is back`,
        detail: { code, instance: bus.instanceId },
      });
    } else if (h.ok && outage) {
      outage = false;
      host.auditStep.batched({ time, door: 'system', agent: null, method: 'redis.recovered', decision: allow('redis.recovered', 'redis'), outcome: 'ok', durationMs: Date.now() - since, detail: { instance: bus.instanceId } });
    }
  };
  const offHealth = bus.onHealthChange(onHealth);
  const offErrors = bus.onCommandError(countError);
  onHealth(bus.health());

  let configDigest = '';
  try {
    configDigest = sha256Hex(await readFile(host.config.file));
  } catch {
    // A config given without a file (tests): no digest.
  }
  const started = new Date().toISOString();
  const describe = async (): Promise<InstanceInfo> => {
    const report = await host.readiness.report();
    const upstreams: Record<string, InstanceCheck> = {};
    for (const [name, check] of Object.entries(report.checks)) if (name.startsWith('upstream:')) upstreams[name.slice('upstream:'.length)] = check;
    return { id: bus.instanceId, pid: process.pid, host: hostname(), listen: opts.listen, started, version: VERSION, configDigest, ready: report.ready, upstreams, lastSeen: new Date().toISOString() };
  };
  const heartbeat = new InstanceHeartbeat(bus.commands, bus.keyPrefix, bus.instanceId, describe, {
    heartbeatMs: opts.heartbeatMs ?? REGISTRY_DEFAULTS.heartbeatMs,
    ttlMs: opts.ttlMs ?? REGISTRY_DEFAULTS.ttlMs,
  });
  let closed = false;
  return {
    get outage() {
      return outage;
    },
    heartbeat,
    async close() {
      if (closed) return;
      closed = true;
      offHealth();
      offErrors();
      unregister();
      await heartbeat.stop();
    },
  };
}
