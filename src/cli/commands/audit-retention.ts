/**
 * `bastion audit prune | export`: apply `audit.retention` now, and export the
 * audit chain as JSON Lines or OCSF. See docs/audit.md "Retention and pruning"
 * and "Export".
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { parseFlags } from '../args.ts';
import { isBastionError } from '../../errors.ts';
import { AuditLog } from '../../audit/log.ts';
import { pruneAudit, startAuditRetention, type PruneAuditResult } from '../../audit/prune.ts';
import { hasPruneAudit } from '../../audit/retention-store.ts';
import { readAuditRange, toOcsf } from '../../audit/export.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/store.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { openStoreFromFlags } from './audit.ts';

const PRUNE_USAGE = `Usage: bastion audit prune [--config FILE] [--dry-run] [--json]

Applies audit.retention now (bastion serve also does it at start and once a
day): deletes the oldest expired records, turns other expired records into
tombstones, and appends a signed audit.pruned record that vouches for both, so
'bastion audit verify' still passes. Refuses a chain that does not verify.
Nothing past the newest signed checkpoint is touched. See docs/audit.md.

Options:
  -c, --config FILE  the config (default: $BASTION_CONFIG, else ./bastion.yaml);
                     its audit.retention, store and vault key are used
      --dry-run      print what would be pruned; change nothing (no vault key needed)
      --json         print the result as JSON
  -h, --help         show this help

Exit status: 0 ok, 1 chain broken (nothing pruned), 2 usage error,
3 config error (audit.retention not set), 4 store error.
`;

const EXPORT_USAGE = `Usage: bastion audit export [--config FILE | --store PATH] [--format jsonl|ocsf]
                           [--from SEQ] [--to SEQ] [--since ISO] [--out FILE]

Writes audit records, oldest first, one JSON object per line.
  jsonl  each stored record as it is, chain fields (seq, prevHash, hash) included,
         tombstones too, so the export verifies offline
  ocsf   each record as an OCSF ${'1.3.0'} event (HTTP Activity 4002, Authentication 3002,
         API Activity 6003); tombstones are skipped

Options:
  -c, --config FILE  config file naming the store (default: $BASTION_CONFIG, else ./bastion.yaml)
      --store PATH|URL  the SQLite store file, or a postgres:// URL, instead of --config
      --format F     jsonl (default) or ocsf
      --from SEQ     first record (default: the first stored)
      --to SEQ       last record, inclusive (default: the newest when the export began)
      --since ISO    only records whose time is at or after this ISO 8601 instant
      --out FILE     write to FILE (created with mode 0600, replaced if it exists) instead of stdout
  -h, --help         show this help

Exit status: 0 ok, 2 usage error, 3 config error, 4 store error.
`;

function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

function counts(m: Readonly<Record<string, number | undefined>>): string {
  const parts = Object.entries(m).map(([k, v]) => `${k} ${v ?? 0}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function printPrune(r: PruneAuditResult, json: boolean | undefined, io: CliIO): void {
  if (json) {
    io.stdout(`${JSON.stringify(r)}\n`);
    return;
  }
  const verb = r.dryRun ? 'would' : '';
  if (!r.changed) {
    io.stdout(`nothing to prune (records ${r.firstSeq}-…, signed through ${r.coveredBy})\n`);
    return;
  }
  const del = r.through >= r.firstSeq ? `records ${r.firstSeq}-${r.through}` : 'no records';
  io.stdout(`${r.dryRun ? 'dry run: ' : ''}${verb ? 'would delete' : 'deleted'} ${del} (${counts(r.deleted)})\n`);
  io.stdout(`${verb ? 'would tombstone' : 'tombstoned'} ${counts(r.tombstoned)}; ${r.tombstones} tombstones in the store afterwards\n`);
  if (r.manifestSeq !== undefined) io.stdout(`audit.pruned record and signed checkpoint at seq ${r.manifestSeq}\n`);
}

/** `bastion audit prune [--config F] [--dry-run] [--json]` */
export const auditPrune: CliCommand = async (argv, io) => {
  const name = 'audit prune';
  const parsed = parseFlags(name, PRUNE_USAGE, argv, { config: { type: 'string', short: 'c' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsConfig['options'], io);
  if (typeof parsed === 'number') return parsed;
  const values = parsed.values;
  const dryRun = values['dry-run'] === true;
  let config;
  let keyProtector;
  try {
    const { resolveConfigPath } = await import('./config-check.ts');
    const { loadConfig } = await import('../../config/load.ts');
    ({ config } = await loadConfig(resolveConfigPath(values.config, io), { env: io.env, secrets: 'lenient' }));
    if (config.audit.retention === undefined) {
      io.stderr(`bastion ${name}: audit.retention is not set in the config: nothing is ever pruned\n`);
      return EXIT.CONFIG;
    }
    if (!dryRun) {
      const { loadVaultKey } = await import('../../vault/kek.ts');
      const { kekKeyProtector } = await import('../../vault/key-protector.ts');
      keyProtector = kekKeyProtector(await loadVaultKey(config, io.env));
    }
  } catch (err) {
    io.stderr(`bastion ${name}: ${isBastionError(err) ? err.message : describe(err)}\n`);
    return isBastionError(err) ? EXIT.CONFIG : EXIT.INTERNAL;
  }
  let store: Store;
  try {
    store = await openStore(config.store, { sqlite: { create: false } });
  } catch (err) {
    io.stderr(`bastion ${name}: ${describe(err)}\n`);
    return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.CONFIG;
  }
  let log: AuditLog | undefined;
  try {
    if (!hasPruneAudit(store)) {
      io.stderr(`bastion ${name}: this store cannot prune\n`);
      return EXIT.STORE;
    }
    let sign;
    if (keyProtector !== undefined) {
      log = await AuditLog.open(store, { checkpointEvery: config.audit.checkpointEvery, keyProtector });
      sign = await log.checkpointSigner();
    }
    const result = await pruneAudit(store, { policy: config.audit.retention, dryRun, checkpointEvery: config.audit.checkpointEvery, ...(sign ? { sign } : {}) });
    printPrune(result, values.json, io);
    return EXIT.OK;
  } catch (err) {
    if (isBastionError(err, 'ERR_AUDIT_CHAIN_BROKEN')) {
      if (values.json) io.stdout(`${JSON.stringify({ ok: false, code: err.code, ...err.detail, message: err.message })}\n`);
      io.stderr(`bastion ${name}: ${err.message}\n`);
      return EXIT.FAILED;
    }
    io.stderr(`bastion ${name}: ${describe(err)}\n`);
    return isBastionError(err, 'ERR_STORE') || isBastionError(err, 'ERR_AUDIT_CONFLICT') ? EXIT.STORE : EXIT.INTERNAL;
  } finally {
    await log?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
  }
};

/** A positive integer flag, or undefined when absent; a string is the error message. */
function seqFlag(value: string | undefined, flag: string): number | undefined | string {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value))) return `${flag} must be a positive integer`;
  return Number(value);
}

/** `bastion audit export [--config F | --store P] [--format jsonl|ocsf] [--from SEQ] [--to SEQ] [--since ISO] [--out FILE]` */
export const auditExport: CliCommand = async (argv, io) => {
  const name = 'audit export';
  const parsed = parseFlags(
    name,
    EXPORT_USAGE,
    argv,
    {
      config: { type: 'string', short: 'c' },
      store: { type: 'string' },
      format: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      since: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    } as const satisfies ParseArgsConfig['options'],
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const values = parsed.values;
  const format = values.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'ocsf') {
    io.stderr(`bastion ${name}: --format must be jsonl or ocsf\n`);
    return EXIT.USAGE;
  }
  const from = seqFlag(values.from, '--from');
  const to = seqFlag(values.to, '--to');
  for (const v of [from, to]) {
    if (typeof v === 'string') {
      io.stderr(`bastion ${name}: ${v}\n`);
      return EXIT.USAGE;
    }
  }
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    // ISO 8601 date or date-time; Date.parse alone would take other forms too.
    sinceMs = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(values.since) ? Date.parse(values.since) : Number.NaN;
    if (!Number.isFinite(sinceMs)) {
      io.stderr(`bastion ${name}: --since must be an ISO 8601 date or date-time (2026-01-31 or 2026-01-31T12:00:00Z)\n`);
      return EXIT.USAGE;
    }
  }
  const store = await openStoreFromFlags(name, values, io);
  if (typeof store === 'number') return store;
  let out: WriteStream | undefined;
  try {
    if (values.out !== undefined) {
      out = createWriteStream(resolve(io.cwd, values.out), { flags: 'w', mode: 0o600 });
      await once(out, 'open');
    }
    const write = async (line: string): Promise<void> => {
      if (out === undefined) io.stdout(line);
      else if (!out.write(line)) await once(out, 'drain');
    };
    let n = 0;
    const range = { ...(typeof from === 'number' ? { from } : {}), ...(typeof to === 'number' ? { to } : {}), ...(sinceMs !== undefined ? { sinceMs } : {}) };
    for await (const row of readAuditRange(store, range)) {
      if (format === 'jsonl') {
        await write(`${JSON.stringify(row)}\n`);
        n++;
      } else {
        const event = toOcsf(row);
        if (event === undefined) continue;
        await write(`${JSON.stringify(event)}\n`);
        n++;
      }
    }
    if (out !== undefined) {
      const done = out;
      await new Promise<void>((res, rej) => done.end((err?: Error | null) => (err ? rej(err) : res())));
      io.stderr(`exported ${n} records to ${values.out}\n`);
    }
    return EXIT.OK;
  } catch (err) {
    out?.destroy();
    if (isBastionError(err, 'ERR_STORE')) {
      io.stderr(`bastion ${name}: ${describe(err)}\n`);
      return EXIT.STORE;
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (values.out !== undefined && typeof code === 'string') {
      io.stderr(`bastion ${name}: cannot write --out file ${values.out} (${code})\n`);
      return EXIT.USAGE;
    }
    io.stderr(`bastion ${name}: ${describe(err)}\n`);
    return EXIT.INTERNAL;
  } finally {
    await store.close().catch(() => undefined);
  }
};

/**
 * `bastion serve`'s retention: with `audit.retention` set, prunes at start and
 * once a day in the background (src/audit/prune.ts). A prune appends its own
 * `audit.pruned` record; the gateway's audit log then checkpoints the tip so the
 * witness covers it. A failed prune is a stderr line and a system record
 * (`audit.prune_failed`), retried the next day. Returns the task to close on
 * shutdown, or undefined without retention.
 */
export function startServeRetention(
  gateway: {
    readonly store: Store;
    readonly audit: AuditLog;
    readonly auditStep: { batched(event: import('../../audit/types.ts').AuditEvent): void };
  },
  audit: { readonly checkpointEvery: number; readonly retention?: import('../../audit/retention.ts').RetentionPolicy },
  log: (line: string) => void,
  everyMs?: number,
): import('../../audit/prune.ts').AuditRetentionTask | undefined {
  const policy = audit.retention;
  if (policy === undefined) return undefined;
  return startAuditRetention(
    async () => {
      const result = await pruneAudit(gateway.store, { policy, sign: await gateway.audit.checkpointSigner(), checkpointEvery: audit.checkpointEvery });
      if (result.changed) await gateway.audit.checkpoint();
      return result;
    },
    (outcome) => {
      if (outcome.ok) {
        const r = outcome.result;
        if (r.changed) log(`bastion: audit retention: pruned through seq ${r.through}, ${r.tombstones} tombstones; audit.pruned at seq ${r.manifestSeq ?? '-'}\n`);
        return;
      }
      const err = outcome.error;
      const code = isBastionError(err) ? err.code : 'ERR_INTERNAL';
      log(`bastion: audit retention failed (${code}): ${describe(err)}; retried tomorrow\n`);
      gateway.auditStep.batched({
        time: new Date().toISOString(),
        door: 'system',
        agent: null,
        method: 'audit.prune_failed',
        decision: { effect: 'allow', reason: 'system', rule: 'audit.retention' },
        outcome: 'error',
        durationMs: 0,
        detail: { code, ...(isBastionError(err) && err.detail ? { ...err.detail } : {}) },
      });
    },
    everyMs,
  );
}
