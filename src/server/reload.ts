/**
 * Reloading the config of a running `bastion serve` (SIGHUP, `bastion reload`,
 * or a new generation announced by another instance on the cluster bus).
 *
 * A reload is atomic: the file is loaded as strictly as at start
 * (src/config/load.ts, secrets strict), fields that only a restart can change
 * are refused by name, then the gateway compiles the whole new generation
 * (policy, path guard, labels, guard, abilities, keys: {@link Gateway.prepare}),
 * and only then swaps it in ({@link Gateway.commit}). Any error keeps the
 * running generation; every attempt ends in one `system` audit record
 * `config.reload`. Sessions in flight keep the deps they started with, so they
 * finish on their config; new sessions and every later request use the new one.
 *
 * Cluster: after a successful local reload, `{generation, digest}` is published
 * on the bus channel `config`; an instance that receives a digest different from
 * its own reloads from its own file. A reload caused by the bus publishes
 * nothing, so instances whose files differ never ping-pong.
 */
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { loadConfig, type LoadOptions } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { BastionError, isBastionError, type BastionErrorCode } from '../errors.ts';
import { sha256Hex } from '../util/crypto.ts';
import type { Gateway, GeneratedKey } from './gateway.ts';

/** What started a reload. */
export type ReloadOrigin = 'signal' | 'command' | 'cluster';

/** The outcome of one reload. `digest` is the SHA-256 (hex) of the file's bytes, when it could be read. */
export type ReloadResult =
  | { readonly ok: true; readonly generation: number; readonly digest: string; readonly generated: readonly GeneratedKey[] }
  | { readonly ok: false; readonly generation: number; readonly code: BastionErrorCode; readonly reason: 'config.invalid' | 'config.restart_required'; readonly message: string; readonly digest?: string };

/**
 * Config fields that cannot change without a restart: what they configure is
 * opened once at start (the store, listeners, Redis, the vault key, the audit
 * chain and its witness, the approval queue, identity keys, the A2A door, OAuth,
 * alert delivery, the egress proxy's server, the model door's rate limiter, the
 * provenance tracker, pinning). Each is named in the refusal.
 */
export const RESTART_FIELDS: readonly string[] = [
  'store',
  'server.listen',
  'server.egress',
  'server',
  'redis',
  'vault',
  'audit',
  'approvals',
  'identity',
  'a2a',
  'oauth',
  'alerts',
  'egress',
  'modelDoor.rateLimits',
  'provenance',
  'pinning',
  'anomalies',
];

/** JSON with object keys sorted, so key order in the file does not count as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * The restart-only fields (of {@link RESTART_FIELDS}) whose value differs between
 * the running config and `next`, in that order; empty when a reload may proceed.
 * Listen addresses compare as resolved (after `--listen` and its variables). Pure.
 */
export function restartOnlyChanges(running: ResolvedConfig, next: ResolvedConfig): string[] {
  const a = running.raw as unknown as Record<string, unknown>;
  const b = next.raw as unknown as Record<string, unknown>;
  const out: string[] = [];
  const differ = (x: unknown, y: unknown): boolean => canonical(x) !== canonical(y);
  if (running.storePath !== next.storePath || differ(a.store, b.store)) out.push('store');
  const { host: h1, port: p1, egress: e1, ...s1 } = running.server;
  const { host: h2, port: p2, egress: e2, ...s2 } = next.server;
  const listenChanged = h1 !== h2 || p1 !== p2;
  if (listenChanged) out.push('server.listen');
  if (differ(e1, e2)) out.push('server.egress');
  // Allowed hosts and origins default from the listen address: with it changed, only an explicit difference counts.
  const strip = (x: typeof s1): unknown => (listenChanged ? { ...x, allowedHosts: undefined, allowedOrigins: undefined } : x);
  if (differ(strip(s1), strip(s2)) || (listenChanged && differ(running.raw.server, { ...next.raw.server, listen: running.raw.server.listen }))) out.push('server');
  if (differ(a.redis, b.redis)) out.push('redis');
  if (differ(running.vault, next.vault)) out.push('vault');
  for (const f of ['audit', 'approvals', 'identity', 'a2a', 'oauth', 'alerts', 'egress'] as const) if (differ(a[f], b[f])) out.push(f);
  if (differ(running.raw.modelDoor.rateLimits, next.raw.modelDoor.rateLimits)) out.push('modelDoor.rateLimits');
  if (differ(a.provenance, b.provenance)) out.push('provenance');
  if (differ(a.pinning, b.pinning)) out.push('pinning');
  if (differ(a.anomalies, b.anomalies)) out.push('anomalies');
  return out;
}

/** SHA-256 (hex) of the file's bytes. @throws the read error (`ENOENT`, …). */
export async function configDigest(file: string): Promise<string> {
  return sha256Hex(await readFile(file));
}

/** Options of {@link ConfigReloader}. */
export interface ConfigReloaderOptions {
  readonly gateway: Gateway;
  /** The config file serve started from (reloads read it again). */
  readonly file: string;
  /** The environment references resolve against (serve's). */
  readonly env: LoadOptions['env'];
  /** Serve's listen overrides (`--listen`, `BASTION_LISTEN`, …), applied again so they are not seen as a change. */
  readonly listen?: LoadOptions['listen'];
  /** One line for operators (stderr): failures, with the error code and message. */
  readonly log: (line: string) => void;
  /** One line on success (stdout). */
  readonly info?: (line: string) => void;
  /** Keys generated for agents the new config added with no keys listed: shown once. */
  readonly onGenerated?: (keys: readonly GeneratedKey[]) => void;
  /** Called after each committed generation (upstream readiness checks follow the new upstreams). */
  readonly onCommitted?: (config: ResolvedConfig) => void;
}

/**
 * Reloads serve's config on request. Reloads never overlap: one that arrives
 * while another runs is queued (several coalesce into one, which reads the file
 * as it is then).
 */
export class ConfigReloader {
  readonly #opts: ConfigReloaderOptions;
  #digest: string;
  #running: Promise<ReloadResult> | undefined;
  #queued: Promise<ReloadResult> | undefined;
  #off: (() => void) | undefined;

  private constructor(opts: ConfigReloaderOptions, digest: string) {
    this.#opts = opts;
    this.#digest = digest;
  }

  /**
   * A reloader for the gateway serve opened from `opts.file`, subscribed to the
   * bus channel `config`. `digest` is that of the file as loaded at start.
   */
  static create(opts: ConfigReloaderOptions, digest: string): ConfigReloader {
    const r = new ConfigReloader(opts, digest);
    const bus = opts.gateway.bus;
    r.#off = bus.subscribe('config', (message, from) => {
      if (from === bus.instanceId) return;
      const d = message.digest;
      if (typeof d === 'string' && d !== r.#digest) void r.reload('cluster');
    });
    return r;
  }

  /** SHA-256 (hex) of the file the running generation was loaded from. */
  get digest(): string {
    return this.#digest;
  }

  /** Reloads (or queues a reload behind the one running). Never rejects. */
  reload(origin: ReloadOrigin): Promise<ReloadResult> {
    if (this.#running === undefined) return this.#start(origin);
    this.#queued ??= this.#running.then(() => {
      this.#queued = undefined;
      return this.#start(origin);
    });
    return this.#queued;
  }

  /** Stops listening to the bus. */
  close(): void {
    this.#off?.();
    this.#off = undefined;
  }

  #start(origin: ReloadOrigin): Promise<ReloadResult> {
    const p = this.#reload(origin).finally(() => {
      if (this.#running === p) this.#running = undefined;
    });
    this.#running = p;
    return p;
  }

  async #reload(origin: ReloadOrigin): Promise<ReloadResult> {
    const { gateway, file } = this.#opts;
    const started = performance.now();
    let digest: string | undefined;
    let result: ReloadResult;
    try {
      digest = await configDigest(file).catch((err: unknown) => {
        throw new BastionError('ERR_CONFIG_NOT_FOUND', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      });
      const { config } = await loadConfig(file, { env: this.#opts.env, secrets: 'strict', ...(this.#opts.listen !== undefined ? { listen: this.#opts.listen } : {}) });
      const fields = restartOnlyChanges(gateway.config, config);
      if (fields.length > 0) {
        result = { ok: false, generation: gateway.generation, code: 'ERR_CONFIG_INVALID', reason: 'config.restart_required', message: fields.map((f) => `${f}: changing it needs a restart`).join('; '), digest };
      } else {
        const next = await gateway.prepare(config);
        gateway.commit(next);
        this.#digest = digest;
        result = { ok: true, generation: gateway.generation, digest, generated: next.generated };
      }
    } catch (err) {
      const code: BastionErrorCode = isBastionError(err) ? err.code : 'ERR_INTERNAL';
      result = { ok: false, generation: gateway.generation, code, reason: 'config.invalid', message: isBastionError(err) ? err.message : 'internal error', ...(digest !== undefined ? { digest } : {}) };
    }
    const durationMs = Math.round(performance.now() - started);
    if (result.ok) {
      this.#opts.info?.(`bastion: config reloaded from ${file}: generation ${result.generation} (sha256 ${result.digest.slice(0, 12)})\n`);
      if (result.generated.length > 0) this.#opts.onGenerated?.(result.generated);
      try {
        this.#opts.onCommitted?.(gateway.config);
      } catch {
        // Readiness bookkeeping must not undo a committed reload.
      }
    } else {
      this.#opts.log(`bastion: config reload failed (${result.code}): ${result.message}; keeping generation ${result.generation}\n`);
    }
    await gateway
      .record({
        time: new Date().toISOString(),
        door: 'system',
        agent: null,
        method: 'config.reload',
        target: file,
        decision: result.ok ? { effect: 'allow', reason: 'system', rule: 'config' } : { effect: 'deny', reason: result.reason, rule: 'config' },
        outcome: result.ok ? 'ok' : 'error',
        durationMs,
        detail: result.ok
          ? { origin, generation: result.generation, digest: result.digest }
          : { origin, generation: result.generation, code: result.code, message: result.message.slice(0, 1000), ...(result.digest !== undefined ? { digest: result.digest } : {}) },
      })
      .catch((err: unknown) => this.#opts.log(`bastion: audit write failed for config.reload (${isBastionError(err) ? err.code : 'error'})\n`));
    if (result.ok && origin !== 'cluster') {
      await gateway.bus.publish('config', { generation: result.generation, digest: result.digest }).catch((err: unknown) => {
        this.#opts.log(`bastion: could not announce config generation ${result.generation} to other instances (${isBastionError(err) ? err.code : 'error'})\n`);
      });
    }
    return result;
  }
}

/**
 * Where `bastion serve` writes its process id, for `bastion reload`: beside the
 * config file, `<config folder>/.bastion/<config file name>.pid` (the folder the
 * SQLite store uses by default; with PostgreSQL there is no store file, and the
 * config is what both commands name). Written at start, removed at a clean stop.
 */
export function pidFilePath(configFile: string): string {
  return join(dirname(configFile), '.bastion', `${basename(configFile)}.pid`);
}

/** Writes `pid` to the pid file of `configFile` (mode 0600, folder created). @throws the file system's error. */
export async function writePidFile(configFile: string, pid: number): Promise<string> {
  const path = pidFilePath(configFile);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${pid}\n`, { mode: 0o600 });
  return path;
}

/** Removes the pid file of `configFile` if it still holds `pid` (another serve may have taken it over). Never throws. */
export async function removePidFile(configFile: string, pid: number): Promise<void> {
  const path = pidFilePath(configFile);
  try {
    if ((await readFile(path, 'utf8')).trim() === String(pid)) await unlink(path);
  } catch {
    // Already gone, or unreadable: nothing to clean.
  }
}
