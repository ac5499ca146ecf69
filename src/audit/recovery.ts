/**
 * What the audit log checks on start, before it signs anything: whether the
 * last run ended cleanly, which records no checkpoint covers yet (the unsigned
 * tail: a crash leaves up to `checkpointEvery - 1` of them), whether that tail
 * still chains onto the last checkpoint, and whether the witness (checkpoints
 * kept outside the store) agrees with the store. See docs/audit.md "Crash recovery".
 *
 * Clean or not is told by per-instance markers in the chain itself, so it works
 * for any store and any number of writers: every log opened with an `instance`
 * id appends `audit.open` when it opens ({@link openMarkerDetail}: instance id,
 * pid, host, process start time) and `audit.close` when it closes (unless its
 * owner recorded another close marker, {@link CLOSE_MARKERS}). An instance whose
 * newest marker is `audit.open` did not close, until an `audit.recovery` record
 * has reported it. With several instances on one store, that is also every
 * instance still running, so each open instance's liveness is decided
 * ({@link decideLiveness}): `live` (in the cluster registry, or its process
 * still runs on this host), `crashed` (its process is gone from this host, or
 * the registry answered without it long after it opened), or `unknown`
 * (another host and no registry). Only `crashed` instances make an unclean shutdown.
 *
 * The witness tells a cut or rewrite apart from a crash: the store commits each
 * checkpoint before the witness gets it, so a witness checkpoint past the
 * store's tip, or not matching its record, can only mean the store was cut or
 * rewritten; the log then refuses to start instead of signing over it.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { BastionError } from '../errors.ts';
import type { KeyStore } from '../identity/key-store.ts';
import { keyIdOf } from '../util/crypto.ts';
import { verifyChain } from './chain.ts';
import type { AuditStore } from './store.ts';
import type { AuditCheckpoint, AuditRecord } from './types.ts';

/** Method of the marker an instance appends when its audit log opens. */
export const AUDIT_OPEN = 'audit.open';
/** Method of the marker an instance appends when its audit log closes cleanly. */
export const AUDIT_CLOSE = 'audit.close';
/**
 * Methods of clean-close markers: `audit.close`, and `serve.stop` (with `detail.instance`), which
 * `bastion serve` records last; a log whose instance wrote one does not add `audit.close`.
 */
export const CLOSE_MARKERS: ReadonlySet<string> = new Set([AUDIT_CLOSE, 'serve.stop']);
/** Method of the record saying what was found after an unclean shutdown. */
export const AUDIT_RECOVERY = 'audit.recovery';

/** What an `audit.open` marker records about its writer (`detail`), so a later start can tell whether it still runs. */
export interface OpenMarkerDetail {
  readonly instance: string;
  /** The writer's process id. */
  readonly pid?: number;
  /** `os.hostname()` of the writer's machine. */
  readonly host?: string;
  /** When the writer's process started, ISO 8601 (tells a reused pid apart). */
  readonly started?: string;
}

/** The `audit.open` detail for `instance` in this process. */
export function openMarkerDetail(instance: string): OpenMarkerDetail {
  return { instance, pid: process.pid, host: hostname(), started: new Date(Math.round(performance.timeOrigin)).toISOString() };
}

/** Whether an instance that opened and did not close still runs. */
export type InstanceStatus = 'live' | 'crashed' | 'unknown';

/** One open instance's liveness and how it was told. */
export interface OpenInstance {
  readonly instance: string;
  readonly status: InstanceStatus;
  /**
   * `registry` (listed in the cluster registry), `process` (its pid runs on this
   * host), `no_process` (its pid does not), `pid_reused` (another process has
   * its pid), `registry_absent` (the registry answered without it, long after it
   * opened), `other_host` (another host and no registry answer), `no_detail`
   * (a marker without pid or host, from an older version).
   */
  readonly by: 'registry' | 'process' | 'no_process' | 'pid_reused' | 'registry_absent' | 'other_host' | 'no_detail';
  /** Seq of its `audit.open` marker. */
  readonly openSeq: number;
}

/**
 * How long after its `audit.open` an instance must be in the registry, in ms:
 * it registers once serving and beats every `heartbeatMs`, its entry lives
 * `ttlMs` (src/cluster/registry.ts); past this, absence means it is gone.
 */
export const REGISTRY_GRACE_MS = 60_000;
/** Largest difference, in ms, between a marker's process start time and the running process's for them to be one process. */
const START_TOLERANCE_MS = 10_000;

/** What {@link decideLiveness} may consult; each part is optional (tests inject them). */
export interface LivenessSources {
  /** Ids of the instances in the cluster registry (Redis heartbeats); undefined: no registry or it did not answer. */
  readonly registered?: ReadonlySet<string> | undefined;
  /** This host's name (default `os.hostname()`). */
  readonly host?: string;
  /** Whether a process with `pid` runs on this host, and when it started (ms since the epoch; undefined when unknown). */
  readonly processInfo?: (pid: number) => { readonly alive: boolean; readonly startedMs?: number | undefined };
  /** Now, in ms since the epoch. */
  readonly nowMs?: number;
}

/** Boot time in ms since the epoch (Linux `/proc/stat` btime), or undefined. */
function bootTimeMs(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'));
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` runs on this host (`process.kill(pid, 0)`: no signal is sent;
 * EPERM means it runs under another user) and, on Linux, when it started
 * (`/proc/<pid>/stat` field 22, in clock ticks after boot; 100 ticks a second,
 * the Linux USER_HZ). Elsewhere the start time is unknown and the pid is trusted.
 */
export function localProcessInfo(pid: number): { alive: boolean; startedMs?: number | undefined } {
  if (!Number.isSafeInteger(pid) || pid <= 0) return { alive: false };
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return { alive: false };
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const boot = bootTimeMs();
    return { alive: true, startedMs: boot === undefined || !Number.isFinite(ticks) ? undefined : boot + ticks * 10 };
  } catch {
    return { alive: true };
  }
}

/**
 * The liveness of an instance whose newest marker is `audit.open` (`detail`,
 * written at `openedMs`): listed in the registry: live; on this host: its pid
 * decides (gone: crashed; running with another start time: pid reused, crashed);
 * the registry answered without it {@link REGISTRY_GRACE_MS} after it opened:
 * crashed; otherwise unknown. Never throws.
 */
export function decideLiveness(detail: Partial<OpenMarkerDetail>, openedMs: number, sources: LivenessSources = {}): Pick<OpenInstance, 'status' | 'by'> {
  const instance = detail.instance;
  if (sources.registered !== undefined && typeof instance === 'string' && sources.registered.has(instance)) return { status: 'live', by: 'registry' };
  const pid = detail.pid;
  if (typeof pid === 'number' && typeof detail.host === 'string' && detail.host === (sources.host ?? hostname())) {
    const info = (sources.processInfo ?? localProcessInfo)(pid);
    if (!info.alive) return { status: 'crashed', by: 'no_process' };
    const started = typeof detail.started === 'string' ? Date.parse(detail.started) : NaN;
    if (info.startedMs !== undefined && Number.isFinite(started) && Math.abs(info.startedMs - started) > START_TOLERANCE_MS) return { status: 'crashed', by: 'pid_reused' };
    return { status: 'live', by: 'process' };
  }
  if (sources.registered !== undefined && Number.isFinite(openedMs) && (sources.nowMs ?? Date.now()) - openedMs > REGISTRY_GRACE_MS) return { status: 'crashed', by: 'registry_absent' };
  return { status: 'unknown', by: typeof pid === 'number' && typeof detail.host === 'string' ? 'other_host' : 'no_detail' };
}

/** Most records read back from the tip looking for markers (besides the unsigned tail, which is always read). */
export const MARKER_SCAN_RECORDS = 10_000;
const PAGE = 500;

/** What {@link inspectAuditTail} found. Goes into the `audit.recovery` record's detail as is. */
export interface TailFinding {
  /** An instance crashed (its `audit.open` has no later close and it no longer runs), or (no marker found) records are unsigned. */
  readonly uncleanShutdown: boolean;
  /** Instances whose newest marker (within the records read) is `audit.open`: running, crashed, or unknown (see `instances`). */
  readonly openInstances: readonly string[];
  /** The open instances that crashed: what an `audit.recovery` record reports (and accounts for). */
  readonly crashedInstances: readonly string[];
  /** Each open instance's liveness ({@link decideLiveness}). */
  readonly instances: readonly OpenInstance[];
  /** The store's newest record when inspected (0: empty). */
  readonly tipSeq: number;
  /** The highest checkpointed seq in the store (0: none). */
  readonly lastCheckpointSeq: number;
  /** Records no checkpoint covered: `fromSeq..toSeq` (absent when `count` is 0). Their chain was verified from the last checkpoint. */
  readonly unsigned: { readonly count: number; readonly fromSeq?: number; readonly toSeq?: number };
  /**
   * The witness compared with the store: `none` (no witness), `unverifiable`
   * (a webhook cannot be read back), `consistent` (it holds the store's last
   * checkpoint), `behind` (it lacks some of the store's checkpoints: a crash
   * between the two writes; they are resent). A cut or rewrite is never a value: it throws.
   */
  readonly witness: 'none' | 'unverifiable' | 'consistent' | 'behind';
  /** The newest seq the witness holds (when it can tell). */
  readonly witnessLastSeq?: number;
}

/** Options of {@link inspectAuditTail}. */
export interface InspectOptions {
  /** The witness's newest checkpoints (`AuditWitness.recent`); `null`: a witness that cannot be read back; undefined: none. */
  readonly witness?: readonly AuditCheckpoint[] | null;
  /** Look for markers before the unsigned tail too (up to {@link MARKER_SCAN_RECORDS} records); default true. A log without an instance id skips it. */
  readonly markers?: boolean;
  /**
   * Ids of the instances in the cluster registry (src/cluster/registry.ts
   * `listInstances`); asked once, and only when an instance is open. A failure
   * counts as no registry (liveness falls back to pids on this host).
   */
  readonly liveInstances?: () => Promise<ReadonlySet<string>>;
  /** Overrides of what {@link decideLiveness} consults (tests). */
  readonly liveness?: Omit<LivenessSources, 'registered'>;
}

/**
 * Inspects the store's tail as described in the module comment. Reads the
 * unsigned tail and up to {@link MARKER_SCAN_RECORDS} records before the tip.
 * Signs and writes nothing.
 * @throws BastionError `ERR_AUDIT_CHAIN_BROKEN` (detail `{reason, seq}`, reasons
 *   of `verifyChain`) when the tail does not chain onto the last checkpoint, a
 *   checkpoint lies past the tip, or the witness shows the store was cut or
 *   rewritten; `ERR_STORE` when the store cannot be read.
 */
export async function inspectAuditTail(store: AuditStore & Pick<KeyStore, 'listKeys'>, opts: InspectOptions = {}): Promise<TailFinding> {
  const tip = await store.lastAudit();
  const tipSeq = tip?.seq ?? 0;
  const checkpoints = await store.listCheckpoints();
  const keys = new Map<string, string>();
  for (const key of await store.listKeys('audit')) {
    try {
      keys.set(keyIdOf(key.publicKeyPem), key.publicKeyPem);
    } catch {
      // An unparseable key verifies nothing; a checkpoint naming it fails as key_unknown.
    }
  }
  const lastCheckpointSeq = checkpoints.reduce((max, cp) => Math.max(max, cp.seq), 0);
  // Verification starts at the last checkpointed record (its hash must match the signed one),
  // trusting its prevHash, which its hash, and so the signature, covers.
  const startSeq = Math.max(1, Math.min(lastCheckpointSeq, tipSeq));
  const startRecord = tipSeq === 0 ? undefined : (await store.readAudit(startSeq, 1))[0];
  const after = startRecord === undefined || startSeq === 1 ? undefined : { seq: startSeq - 1, hash: startRecord.prevHash };

  const witness = opts.witness;
  const markers = new Map<string, { method: string; seq: number; time: string; detail: Partial<OpenMarkerDetail> }>();
  let markerSeen = false;
  const scanFrom = opts.markers === false ? startSeq : Math.max(1, Math.min(startSeq, tipSeq - MARKER_SCAN_RECORDS + 1));
  async function* records(): AsyncGenerator<AuditRecord> {
    for (let from = scanFrom; ; ) {
      const page = await store.readAudit(from, PAGE);
      for (const r of page) {
        noteMarker(r);
        if (r.seq >= startSeq) yield r;
      }
      const last = page.at(-1)?.seq;
      if (page.length < PAGE || typeof last !== 'number' || !Number.isSafeInteger(last) || last < from) return;
      from = last + 1;
    }
  }
  function noteMarker(r: AuditRecord): void {
    if (r.door !== 'system') return;
    if (r.method === AUDIT_RECOVERY) {
      // Instances a recovery record already reported are accounted for (until they open again). Records
      // before liveness was decided have no `crashedInstances` and reported every open instance.
      const reported = r.detail?.['crashedInstances'] ?? r.detail?.['openInstances'];
      if (Array.isArray(reported)) {
        for (const i of reported) {
          const m = typeof i === 'string' ? markers.get(i) : undefined;
          if (m?.method === AUDIT_OPEN) markers.set(i as string, { ...m, method: AUDIT_RECOVERY });
        }
      }
      return;
    }
    if (r.method !== AUDIT_OPEN && !CLOSE_MARKERS.has(r.method)) return;
    const instance = r.detail?.['instance'];
    if (typeof instance !== 'string') return;
    markerSeen = true;
    // Ascending order: the newest marker of each instance wins.
    markers.set(instance, { method: r.method === AUDIT_OPEN ? AUDIT_OPEN : AUDIT_CLOSE, seq: r.seq, time: r.time, detail: r.detail ?? {} });
  }

  const result = await verifyChain(records(), checkpoints, keys, {
    ...(after !== undefined ? { after } : {}),
    ...(witness ? { witness } : {}),
  });
  if (!result.ok) {
    throw new BastionError(
      'ERR_AUDIT_CHAIN_BROKEN',
      `audit: refusing to start: ${result.message}; the store was cut or rewritten while Bastion was down, and nothing was signed over it. ` +
        'Run `bastion audit verify --witness FILE` to see the damage, then restore the store from a backup (or move it aside to start a new chain)',
      { detail: { reason: result.reason, seq: result.seq } },
    );
  }
  // Witness checkpoints before the window: each must still match its record (the store rewritten before its last checkpoint).
  // Pruned by retention (docs/audit.md "Retention and pruning"): below the first stored record nothing is left
  // to compare (`audit verify` checks the prune manifest accounts for it), and a tombstone keeps its record's hash.
  let firstStored: number | undefined;
  for (const cp of witness ?? []) {
    if (cp.seq >= startSeq) continue;
    firstStored ??= (await store.readAudit(1, 1))[0]?.seq ?? 0;
    if (cp.seq < firstStored) continue;
    const [record] = await store.readAudit(cp.seq, 1);
    const check = await verifyChain(record === undefined ? [] : [record], [], keys, { after: { seq: cp.seq - 1, hash: record?.prevHash ?? '' }, witness: [cp], acceptTombstones: true });
    if (!check.ok) {
      throw new BastionError(
        'ERR_AUDIT_CHAIN_BROKEN',
        `audit: refusing to start: ${check.message}; nothing was signed. Run \`bastion audit verify --witness FILE\` to see the damage, then restore the store from a backup`,
        { detail: { reason: check.reason, seq: check.seq } },
      );
    }
  }

  const lastSeq = result.lastSeq;
  const count = Math.max(0, lastSeq - lastCheckpointSeq);
  const open = [...markers].filter(([, m]) => m.method === AUDIT_OPEN);
  let registered: ReadonlySet<string> | undefined;
  if (open.length > 0 && opts.liveInstances !== undefined) {
    try {
      registered = await opts.liveInstances();
    } catch {
      // No registry answer: liveness falls back to pids on this host, else unknown.
    }
  }
  const instances: OpenInstance[] = open.map(([instance, m]) => ({
    instance,
    ...decideLiveness({ ...m.detail, instance }, Date.parse(m.time), { ...opts.liveness, registered }),
    openSeq: m.seq,
  }));
  const openInstances = instances.map((i) => i.instance);
  const crashedInstances = instances.filter((i) => i.status === 'crashed').map((i) => i.instance);
  const witnessLastSeq = witness && witness.length > 0 ? witness[witness.length - 1]!.seq : witness ? 0 : undefined;
  return {
    // The tail after the last checkpoint is normal while other instances write: only a crash makes it unclean.
    uncleanShutdown: crashedInstances.length > 0 || (!markerSeen && count > 0),
    openInstances,
    crashedInstances,
    instances,
    tipSeq: lastSeq,
    lastCheckpointSeq,
    unsigned: count > 0 ? { count, fromSeq: lastCheckpointSeq + 1, toSeq: lastSeq } : { count: 0 },
    witness: witness === undefined ? 'none' : witness === null ? 'unverifiable' : (witnessLastSeq ?? 0) >= lastCheckpointSeq ? 'consistent' : 'behind',
    ...(witnessLastSeq !== undefined ? { witnessLastSeq } : {}),
  };
}
