/**
 * `bastion audit verify | tail | key`: check the audit chain, read it, export
 * the checkpoint verification key.
 *
 * Every command takes the store from `--store PATH` (the SQLite file) or from the
 * config (`--config FILE`, default per `resolveConfigPath`).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ParseArgsConfig } from 'node:util';
import { parseFlags, type ParsedFlags } from '../args.ts';
import { isBastionError } from '../../errors.ts';
import { verifyAudit } from '../../audit/log.ts';
import type { AuditCheckpoint, AuditRecord } from '../../audit/types.ts';
import type { AuditStore } from '../../audit/store.ts';
import { readWitnessFile } from '../../audit/witness.ts';
import { DEFAULTS } from '../../defaults.ts';
import { describeStore, openStore, storeFromFlag } from '../../store/open.ts';
import type { ResolvedStore } from '../../config/types.ts';
import type { Store } from '../../store/store.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';

/** How often `audit tail -f` polls the store, in ms. */
const FOLLOW_POLL_MS = 500;
/** Records read per query by `tail -f`. */
const FOLLOW_PAGE = 1000;
/** Largest `-n` accepted by `audit tail`. */
const TAIL_MAX = 100_000;

const STORE_OPTIONS = {
  config: { type: 'string', short: 'c' },
  store: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const STORE_HELP = `  -c, --config FILE  config file naming the store (default: $BASTION_CONFIG, else ./bastion.yaml)
      --store PATH|URL  the SQLite store file, or a postgres:// URL, instead of --config
  -h, --help         show this help`;

const USAGE: Readonly<Record<string, string>> = {
  'audit verify': `Usage: bastion audit verify [--config FILE | --store PATH] [--public-key FILE]
                           [--witness FILE] [--checkpoint-every N] [--json]

Verifies the audit chain: every record's hash and link, every signed checkpoint,
and checkpoint density (no run of more than checkpointEvery records without a
checkpoint; no records without any). With --witness, also that the store still
holds every checkpoint the witness file recorded: a cut, emptied or re-chained
store fails. See docs/audit.md for what each mode detects.

Options:
${STORE_HELP}
      --public-key FILE  trust only these checkpoint keys (PEM, from 'bastion audit key'),
                         not the keys kept in the store
      --witness FILE     the witness file (audit.witness.file) to compare with the store
      --checkpoint-every N  the largest audit.checkpointEvery the store was written with
                         (default: from --config, else ${DEFAULTS.auditCheckpointEvery})
      --json             print the result as JSON on stdout

Exit status: 0 chain intact, 1 chain broken (or witness malformed), 2 usage error,
3 config error, 4 store error.
`,
  'audit tail': `Usage: bastion audit tail [--config FILE | --store PATH] [-n COUNT] [-f] [--json]

Prints the newest audit records, one line each:
time agent method target effect reason outcome duration.

Options:
${STORE_HELP}
  -n, --lines COUNT  how many records (default 20)
  -f, --follow       keep printing new records until interrupted
      --json         print records as JSON lines

Exit status: 0 ok, 2 usage error, 3 config error, 4 store error.
`,
  'audit key': `Usage: bastion audit key [--config FILE | --store PATH] [--json]

Prints the public keys that sign audit checkpoints (PEM), to keep outside the
store and pass to 'bastion audit verify --public-key'.

Options:
${STORE_HELP}
      --json         print the keys as JSON

Exit status: 0 ok, 2 usage error, 3 config error, 4 store error, 5 no key yet.
`,
};

/** Parses flags for `audit <name>`; a number is the exit code to return. */
function flags<O extends NonNullable<ParseArgsConfig['options']>>(name: string, argv: readonly string[], options: O, io: CliIO): ParsedFlags<O> | number {
  const r = parseFlags(name, USAGE[name] ?? '', argv, options, io);
  return typeof r === 'number' ? r : r.values;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Opens the store named by `--store` or by the config; on failure writes why and returns the exit code. */
export async function openStoreFromFlags(
  name: string,
  values: { config?: string | undefined; store?: string | undefined },
  io: CliIO,
  loaded?: (config: { readonly audit: { readonly checkpointEvery: number; readonly witness?: { readonly file?: string } } }) => void,
): Promise<Store | number> {
  if (values.config !== undefined && values.store !== undefined) {
    io.stderr(`bastion ${name}: --config and --store are exclusive\n`);
    return EXIT.USAGE;
  }
  let location: ResolvedStore;
  if (values.store !== undefined) {
    const flag = storeFromFlag(values.store);
    location = flag.kind === 'sqlite' ? { kind: 'sqlite', path: resolve(io.cwd, flag.path) } : flag;
  } else {
    try {
      // Loaded lazily: commands given --store work without the config loader.
      const { resolveConfigPath } = await import('./config-check.ts');
      const { loadConfig } = await import('../../config/load.ts');
      const file = resolveConfigPath(values.config, io);
      const { config } = await loadConfig(file, { env: io.env, secrets: 'lenient' });
      location = config.store;
      loaded?.(config);
    } catch (err) {
      if (isBastionError(err) && err.code.startsWith('ERR_CONFIG')) {
        io.stderr(`bastion ${name}: ${err.message}\n`);
        return EXIT.CONFIG;
      }
      io.stderr(`bastion ${name}: ${describe(err)}\n`);
      return EXIT.INTERNAL;
    }
  }
  try {
    return await openStore(location, { sqlite: { create: false } });
  } catch (err) {
    if (isBastionError(err, 'ERR_CONFIG_SECRET_REF')) {
      io.stderr(`bastion ${name}: ${err.message}\n`);
      return EXIT.CONFIG;
    }
    io.stderr(`bastion ${name}: ${describe(err)} (${describeStore(location)})\n`);
    return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.INTERNAL;
  }
}

/** Maps a failure while using an open store to an exit code. */
function storeFailure(name: string, err: unknown, io: CliIO): number {
  io.stderr(`bastion ${name}: ${describe(err)}\n`);
  return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.INTERNAL;
}

/** `bastion audit verify [--config F | --store P] [--public-key FILE] [--witness FILE] [--checkpoint-every N] [--json]` */
export const auditVerify: CliCommand = async (argv, io) => {
  const name = 'audit verify';
  const values = flags(
    name,
    argv,
    { ...STORE_OPTIONS, 'public-key': { type: 'string' }, witness: { type: 'string' }, 'checkpoint-every': { type: 'string' }, json: { type: 'boolean' } },
    io,
  );
  if (typeof values === 'number') return values;
  let publicKeyPem: string | undefined;
  if (values['public-key'] !== undefined) {
    try {
      publicKeyPem = await readFile(resolve(io.cwd, values['public-key']), 'utf8');
    } catch {
      io.stderr(`bastion ${name}: cannot read --public-key file ${values['public-key']}\n`);
      return EXIT.USAGE;
    }
  }
  let checkpointEvery: number | undefined;
  if (values['checkpoint-every'] !== undefined) {
    checkpointEvery = Number(values['checkpoint-every']);
    if (!/^[1-9]\d{0,6}$/.test(values['checkpoint-every']) || checkpointEvery > 1_000_000) {
      io.stderr(`bastion ${name}: --checkpoint-every must be an integer 1-1000000\n`);
      return EXIT.USAGE;
    }
  }
  let witness: AuditCheckpoint[] | undefined;
  if (values.witness !== undefined) {
    const file = resolve(io.cwd, values.witness);
    try {
      const read = await readWitnessFile(file);
      witness = read.checkpoints;
      if (read.tornTail) io.stderr(`note: the witness file ends in a partial line (a write cut short); it was skipped\n`);
    } catch (err) {
      if (isBastionError(err, 'ERR_AUDIT_WITNESS') && err.detail?.['reason'] === 'malformed') {
        if (values.json) io.stdout(`${JSON.stringify({ ok: false, code: err.code, reason: 'witness_malformed', line: err.detail['line'], message: err.message })}\n`);
        else io.stdout(`audit witness malformed at line ${String(err.detail['line'])}\n`);
        io.stderr(`${err.message}\n`);
        return EXIT.FAILED;
      }
      io.stderr(`bastion ${name}: cannot read --witness file ${values.witness}\n`);
      return EXIT.USAGE;
    }
  }
  let configuredWitness: string | undefined;
  const store = await openStoreFromFlags(name, values, io, (config) => {
    checkpointEvery ??= config.audit.checkpointEvery;
    configuredWitness = config.audit.witness?.file;
  });
  if (typeof store === 'number') return store;
  try {
    const result = await verifyAudit(store, {
      ...(publicKeyPem === undefined ? {} : { publicKeyPem }),
      ...(checkpointEvery === undefined ? {} : { checkpointEvery }),
      ...(witness === undefined ? {} : { witness }),
    });
    if (result.ok) {
      if (values.json) {
        io.stdout(
          `${JSON.stringify({ ok: true, records: result.count, checkpoints: result.checkpoints, lastSeq: result.lastSeq, ...(witness === undefined ? {} : { witnessed: witness.length }) })}\n`,
        );
      } else {
        const witnessed = witness === undefined ? '' : `, ${witness.length} witnessed checkpoints match`;
        io.stdout(`ok: ${result.count} records, ${result.checkpoints} checkpoints${witnessed}, chain intact\n`);
        if (witness === undefined && configuredWitness !== undefined) {
          io.stderr(`note: the config names a witness file; add --witness ${configuredWitness} to detect a cut or re-chained store\n`);
        }
      }
      return EXIT.OK;
    }
    if (values.json) {
      const { code, seq, reason, message } = result;
      io.stdout(`${JSON.stringify({ ok: false, code, seq, reason, message })}\n`);
    } else {
      io.stdout(`audit chain broken at record ${result.seq}: ${result.reason}\n`);
      io.stderr(`${result.message}\n`);
    }
    return EXIT.FAILED;
  } catch (err) {
    if (err instanceof TypeError) {
      io.stderr(`bastion ${name}: --public-key: ${err.message}\n`);
      return EXIT.USAGE;
    }
    return storeFailure(name, err, io);
  } finally {
    await store.close().catch(() => undefined);
  }
};

/** `bastion audit tail [--config F | --store P] [-n 20] [-f] [--json]` */
export const auditTail: CliCommand = async (argv, io) => {
  const name = 'audit tail';
  const values = flags(
    name,
    argv,
    { ...STORE_OPTIONS, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
    io,
  );
  if (typeof values === 'number') return values;
  const n = values.lines === undefined ? 20 : Number(values.lines);
  if (!/^\d+$/.test(values.lines ?? '20') || !Number.isSafeInteger(n) || n > TAIL_MAX) {
    io.stderr(`bastion ${name}: -n must be an integer 0-${TAIL_MAX}\n`);
    return EXIT.USAGE;
  }
  const store = await openStoreFromFlags(name, values, io);
  if (typeof store === 'number') return store;
  const emit = (r: AuditRecord): void => io.stdout(`${values.json ? JSON.stringify(r) : formatRecord(r)}\n`);
  try {
    const last = await store.lastAudit();
    let next = 1;
    if (last !== undefined) {
      const from = Math.max(1, last.seq - n + 1);
      if (n > 0) for (const r of await store.readAudit(from, n)) emit(r);
      next = last.seq + 1;
    }
    if (values.follow) {
      const stop = new AbortController();
      const onSigint = (): void => stop.abort();
      process.once('SIGINT', onSigint);
      try {
        await followAudit(store, next, emit, stop.signal);
      } finally {
        process.off('SIGINT', onSigint);
      }
    }
    return EXIT.OK;
  } catch (err) {
    return storeFailure(name, err, io);
  } finally {
    await store.close().catch(() => undefined);
  }
};

/**
 * Emits records from `fromSeq` on as they appear, polling every `intervalMs`,
 * until `signal` aborts. Store errors reject.
 */
export async function followAudit(
  store: Pick<AuditStore, 'readAudit'>,
  fromSeq: number,
  emit: (record: AuditRecord) => void,
  signal: AbortSignal,
  intervalMs = FOLLOW_POLL_MS,
): Promise<void> {
  let next = fromSeq;
  while (!signal.aborted) {
    const page = await store.readAudit(next, FOLLOW_PAGE);
    for (const r of page) {
      emit(r);
      next = Math.max(next, r.seq + 1);
    }
    if (page.length === FOLLOW_PAGE) continue;
    try {
      await sleep(intervalMs, undefined, { signal });
    } catch {
      return; // aborted
    }
  }
}

/** One line: `time agent method target effect reason outcome durationMs`. */
export function formatRecord(r: AuditRecord): string {
  return [
    r.time,
    r.agent,
    r.method,
    r.target,
    r.decision?.effect,
    r.decision?.reason,
    r.outcome,
    typeof r.durationMs === 'number' ? `${r.durationMs}ms` : undefined,
  ]
    .map(field)
    .join(' ');
}

/**
 * A field for a terminal line: `-` when empty; control, format and separator
 * characters escaped, so a tool name chosen by an agent cannot move the cursor,
 * reorder text (bidi) or fake a second line.
 */
function field(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  const text = typeof value === 'string' ? value : String(value);
  return text.replace(/[\u0000-\u0020\u007f-\u00a0\u00ad\u061c\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\ufeff]/gu, (c) =>
    c === ' ' ? '_' : `\\u{${c.codePointAt(0)!.toString(16)}}`,
  );
}

/** `bastion audit key [--config F | --store P] [--json]`: the checkpoint public keys, for `audit verify --public-key`. */
export const auditKey: CliCommand = async (argv, io) => {
  const name = 'audit key';
  const values = flags(name, argv, { ...STORE_OPTIONS, json: { type: 'boolean' } }, io);
  if (typeof values === 'number') return values;
  const store = await openStoreFromFlags(name, values, io);
  if (typeof store === 'number') return store;
  try {
    const keys = await store.listKeys('audit');
    const current = await store.getKey('audit');
    if (keys.length === 0) {
      io.stderr(`bastion ${name}: the store holds no audit key yet (it is created when the gateway first starts)\n`);
      return EXIT.NOT_FOUND;
    }
    if (values.json) {
      const out = keys.map((k) => ({
        keyId: k.id,
        alg: k.alg,
        current: k.id === current?.id,
        createdAt: new Date(k.createdAt).toISOString(),
        publicKeyPem: k.publicKeyPem,
      }));
      io.stdout(`${JSON.stringify({ keys: out })}\n`);
    } else {
      for (const k of keys) io.stdout(k.publicKeyPem.endsWith('\n') ? k.publicKeyPem : `${k.publicKeyPem}\n`);
    }
    return EXIT.OK;
  } catch (err) {
    return storeFailure(name, err, io);
  } finally {
    await store.close().catch(() => undefined);
  }
};
