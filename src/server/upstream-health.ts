/**
 * Upstreams at serve start: each configured upstream that can start outside a
 * session ({@link probeable}) is started once, in parallel, each bounded by its
 * `connectTimeoutMs`, without holding up serving. A failure is a stderr line with
 * the OS error (`upstream files: spawn npx-missing ENOENT`), a readiness check
 * `upstream:NAME` that fails with the error code as detail, and a `system` audit
 * record `upstream.start`; a failed upstream is tried again every `retryMs` and
 * the check flips back once it starts. After a config reload, {@link sync}
 * follows the new set of upstreams.
 */
import type { ResolvedConfig, ResolvedUpstream } from '../config/types.ts';
import { probeable, probeUpstream, type UpstreamProbe } from '../mcp/upstream.ts';
import type { Gateway } from './gateway.ts';

/** How often a failed upstream is started again (ms). */
export const UPSTREAM_RETRY_MS = 30_000;

/** Options of {@link UpstreamHealth}. */
export interface UpstreamHealthOptions {
  /** One line per failure and recovery (stderr). */
  readonly log: (line: string) => void;
  /** Interval of retries of failed upstreams (ms); default {@link UPSTREAM_RETRY_MS}. */
  readonly retryMs?: number;
  /** The probe (tests inject one); default {@link probeUpstream}. */
  readonly probe?: (config: ResolvedUpstream) => Promise<UpstreamProbe>;
}

interface Tracked {
  readonly config: ResolvedUpstream;
  /** Undefined until the first probe answers. */
  result: UpstreamProbe | undefined;
  timer: NodeJS.Timeout | undefined;
  unregister: () => void;
}

/** The start-up state of the gateway's upstreams, on its readiness registry. */
export class UpstreamHealth {
  readonly #gateway: Gateway;
  readonly #opts: UpstreamHealthOptions;
  readonly #tracked = new Map<string, Tracked>();
  #closed = false;

  constructor(gateway: Gateway, opts: UpstreamHealthOptions) {
    this.#gateway = gateway;
    this.#opts = opts;
  }

  /**
   * Starts tracking every probeable upstream of `config` (one not tracked yet, or
   * whose config changed) and stops tracking those no longer configured. Resolves
   * when each new upstream's first probe answered (each is bounded by its
   * `connectTimeoutMs`); serve does not wait for it. Never rejects.
   */
  async sync(config: ResolvedConfig): Promise<void> {
    if (this.#closed) return;
    for (const [name, t] of this.#tracked) {
      const now = config.upstreams.get(name);
      if (now === undefined || !probeable(now) || !sameUpstream(now, t.config)) this.#drop(name);
    }
    const fresh = [...config.upstreams.values()].filter((u) => probeable(u) && !this.#tracked.has(u.name));
    await Promise.all(
      fresh.map((u) => {
        const t: Tracked = { config: u, result: undefined, timer: undefined, unregister: () => undefined };
        this.#tracked.set(u.name, t);
        return this.#probe(t);
      }),
    );
  }

  /** The last answer for `name`, or undefined (not tracked or not answered yet). */
  state(name: string): UpstreamProbe | undefined {
    return this.#tracked.get(name)?.result;
  }

  /** Stops retries and removes the readiness checks. */
  close(): void {
    this.#closed = true;
    for (const name of [...this.#tracked.keys()]) this.#drop(name);
  }

  #drop(name: string): void {
    const t = this.#tracked.get(name);
    if (t === undefined) return;
    if (t.timer !== undefined) clearTimeout(t.timer);
    t.unregister();
    this.#tracked.delete(name);
  }

  async #probe(t: Tracked): Promise<void> {
    const { name } = t.config;
    const started = performance.now();
    const result = await (this.#opts.probe ?? probeUpstream)(t.config).catch((): UpstreamProbe => ({ ok: false, code: 'ERR_UPSTREAM_UNAVAILABLE', message: `upstream ${name}: probe failed` }));
    if (this.#closed || this.#tracked.get(name) !== t) return;
    const before = t.result;
    t.result = result;
    if (before === undefined) {
      const check = (): { ok: boolean; detail?: string } => {
        const r = t.result;
        return r === undefined || r.ok ? { ok: true } : { ok: false, detail: r.os?.code ?? r.code };
      };
      t.unregister = this.#gateway.readiness.register(`upstream:${name}`, check);
    }
    const changed = before === undefined ? !result.ok : before.ok !== result.ok;
    if (changed) {
      this.#opts.log(result.ok ? `bastion: upstream ${name}: started\n` : `bastion: upstream ${name}: ${result.message} (${result.code}); its tools are unavailable until it starts\n`);
      await this.#gateway
        .record({
          time: new Date().toISOString(),
          door: 'system',
          agent: null,
          method: 'upstream.start',
          target: name,
          decision: result.ok ? { effect: 'allow', reason: 'system', rule: `upstreams.${name}` } : { effect: 'deny', reason: 'upstream.unreachable', rule: `upstreams.${name}` },
          outcome: result.ok ? 'ok' : 'error',
          durationMs: Math.round(performance.now() - started),
          detail: result.ok ? { recovered: true } : { code: result.code, ...(result.os !== undefined ? { os: result.os.code, message: result.os.message } : {}) },
        })
        .catch(() => undefined);
    }
    if (!result.ok && !this.#closed) {
      t.timer = setTimeout(() => void this.#probe(t), this.#opts.retryMs ?? UPSTREAM_RETRY_MS);
      t.timer.unref();
    }
  }
}

/** Same command, arguments, URL and bounds: no need to start it again after a reload. */
function sameUpstream(a: ResolvedUpstream, b: ResolvedUpstream): boolean {
  return a.kind === b.kind && a.command === b.command && a.args.join('\u0000') === b.args.join('\u0000') && a.cwd === b.cwd && a.url?.href === b.url?.href && a.connectTimeoutMs === b.connectTimeoutMs;
}
