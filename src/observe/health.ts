/**
 * Readiness: what `/readyz` reports. Each dependency a request may need (the
 * store, Redis, every upstream) registers a named check; `/readyz` answers 200
 * only when every check is `ok`, else 503 with the failing checks and their
 * non-secret detail (an OS error code such as `ENOENT`, never a URL with a
 * password). `/healthz` is liveness only: the process answers.
 *
 * Checks are cheap reads of state the component keeps current (a flag set by
 * its own error and recovery handlers) or a bounded probe (`timeoutMs`); a
 * check that throws or outlives its bound counts as not ready (fail closed).
 */

/** One check's answer. */
export interface CheckResult {
  readonly ok: boolean;
  /** Short, non-secret, for operators: `ECONNREFUSED`, `spawn npx ENOENT`, `3 upstreams down`. */
  readonly detail?: string;
}

/** A readiness check: sync state or a bounded probe. */
export type ReadinessCheck = () => CheckResult | Promise<CheckResult>;

/** The report `/readyz` serializes. */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/** Default bound of one probe (ms). */
export const READINESS_TIMEOUT_MS = 1_000;

/** The registry of readiness checks of one gateway process. */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>();
  readonly #timeoutMs: number;

  /** @param timeoutMs bound of each check (ms). */
  constructor(timeoutMs = READINESS_TIMEOUT_MS) {
    this.#timeoutMs = timeoutMs;
  }

  /** Registers (or replaces) the check named `name` (`store`, `redis`, `upstream:github`). Returns a function that removes it. */
  register(name: string, check: ReadinessCheck): () => void {
    this.#checks.set(name, check);
    return () => {
      if (this.#checks.get(name) === check) this.#checks.delete(name);
    };
  }

  /** Runs every check concurrently, each bounded by the timeout; never throws. */
  async report(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      [...this.#checks].map(async ([name, check]): Promise<[string, CheckResult]> => [name, await this.#run(check)]),
    );
    const checks = Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { ready: entries.every(([, r]) => r.ok), checks };
  }

  async #run(check: ReadinessCheck): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<CheckResult>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, detail: 'timeout' }), this.#timeoutMs);
        timer.unref();
      });
      const result = await Promise.race([Promise.resolve().then(check), timeout]);
      return result.detail === undefined ? { ok: result.ok === true } : { ok: result.ok === true, detail: String(result.detail).slice(0, 200) };
    } catch (err) {
      return { ok: false, detail: err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' ? (err as NodeJS.ErrnoException).code! : 'error' };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

/** What a check's detail may show outside the process: a short code (`ECONNREFUSED`, `timeout`, `3 upstreams down`). */
const PUBLIC_DETAIL = /^[A-Za-z0-9_.:\- ]{1,64}$/;

/**
 * The report as `/readyz` answers it (no key is needed there): each detail kept
 * only when it is a short code, else replaced by `error`, so a check that
 * reports a message with a URL or a path does not leak it.
 */
export function publicReport(report: ReadinessReport): ReadinessReport {
  const checks: Record<string, CheckResult> = {};
  for (const [name, r] of Object.entries(report.checks)) {
    checks[name] = r.detail === undefined ? { ok: r.ok } : { ok: r.ok, detail: PUBLIC_DETAIL.test(r.detail) ? r.detail : 'error' };
  }
  return { ready: report.ready, checks };
}
