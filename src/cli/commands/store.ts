/**
 * `bastion store migrate --from sqlite:PATH --to postgres:URL`: copies a SQLite
 * store into an empty PostgreSQL database (../../store/migrate.ts), so a
 * deployment can move to several instances without losing its audit chain,
 * vault, keys or approvals. The URL may be given as `env:NAME` so the password
 * stays out of the process list and shell history.
 */
import { resolve } from 'node:path';
import { isBastionError } from '../../errors.ts';
import { copySqliteToPostgres } from '../../store/migrate.ts';
import { openPostgresStore } from '../../store/postgres.ts';
import { openSqliteStore } from '../../store/sqlite.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';

const HELP = `Usage: bastion store migrate --from sqlite:PATH --to postgres:URL

Copies every table of the SQLite store at PATH (audit chain with its seq, hashes
and checkpoints as stored, keys, vault, approvals, bans, peers, OAuth, pins,
nonces) into the PostgreSQL database at URL, in one transaction. The target
must be empty (its tables are created if missing); stop the gateway first.
Afterwards, point store.postgres at the database and run 'bastion audit verify'.

Options:
      --from sqlite:PATH   the SQLite store file (relative to the working directory)
      --to postgres:URL    postgres:postgres://user@host:5432/db, a postgres:// URL,
                           or env:NAME naming an environment variable holding the URL
                           (keeps a password out of the process list)
  -h, --help               show this help

Exit codes: 0 copied, 1 the target is not empty (nothing copied), 2 usage,
4 a store could not be opened or written (nothing copied).`;

/** `bastion store migrate`. */
export const storeMigrate: CliCommand = async (argv, io) => {
  const parsed = parseFlags('store migrate', HELP, argv, { from: { type: 'string' }, to: { type: 'string' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { from, to } = parsed.values;
  if (from === undefined || to === undefined) {
    io.stderr(`bastion store migrate: --from and --to are required\nRun 'bastion store migrate --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const path = resolve(io.cwd, from.startsWith('sqlite:') ? from.slice('sqlite:'.length) : from);
  let url: string | undefined;
  if (to.startsWith('env:')) {
    url = io.env[to.slice('env:'.length)];
    if (url === undefined) {
      io.stderr(`bastion store migrate: ${to} is not set\n`);
      return EXIT.USAGE;
    }
  } else {
    url = to.startsWith('postgres:postgres') ? to.slice('postgres:'.length) : to;
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    io.stderr('bastion store migrate: --to must be postgres:URL, a postgres:// or postgresql:// URL, or env:NAME holding one\n');
    return EXIT.USAGE;
  }
  let report;
  try {
    report = await copySqliteToPostgres(path, url);
  } catch (err) {
    const reason = isBastionError(err) ? err.detail?.['reason'] : undefined;
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    io.stderr(`bastion store migrate: ${err instanceof Error ? err.message : 'failed'}${cause}\n`);
    if (reason === 'target_not_empty') return EXIT.FAILED;
    return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.INTERNAL;
  }
  for (const { table, rows } of report) io.stdout(`${table}: ${rows} rows\n`);
  // The copied chain ends where the source's does.
  try {
    const source = await openSqliteStore(path, { create: false, auditWorker: false });
    const target = await openPostgresStore(url, { poolMax: 1 });
    const [a, b] = [await source.lastAudit(), await target.lastAudit()];
    await source.close();
    await target.close();
    if (a?.hash !== b?.hash) {
      io.stderr('bastion store migrate: the copied audit chain does not end where the source does\n');
      return EXIT.FAILED;
    }
    io.stdout(`audit chain: ${b?.seq ?? 0} records, tip ${b?.hash ?? 'none'} (as in the source)\nNext: set store.postgres in the config and run 'bastion audit verify'.\n`);
  } catch (err) {
    io.stderr(`bastion store migrate: copied, but the check could not read a store: ${err instanceof Error ? err.message : 'failed'}\n`);
    return EXIT.STORE;
  }
  return EXIT.OK;
};
