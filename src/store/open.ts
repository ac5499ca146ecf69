/**
 * Opens the store the config names (`store: {sqlite: PATH}` or
 * `store: {postgres: URL-or-reference}`), so callers never pick an adapter
 * themselves: the gateway and every CLI command go through {@link openStore}.
 */
import type { ResolvedStore } from '../config/types.ts';
import { BastionError } from '../errors.ts';
import { Secret } from '../util/secret.ts';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.ts';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite.ts';
import type { Store } from './store.ts';

/** Options of {@link openStore}, per adapter. */
export interface OpenStoreOptions {
  readonly sqlite?: SqliteStoreOptions;
  readonly postgres?: PostgresStoreOptions;
}

/**
 * Opens (creating or migrating as needed) the store at `location`.
 * @throws BastionError `ERR_STORE` when it cannot be opened (never with a
 *   PostgreSQL URL in the message); `ERR_CONFIG_SECRET_REF` when the PostgreSQL
 *   URL's reference did not resolve (a leniently loaded config).
 */
export async function openStore(location: ResolvedStore, opts: OpenStoreOptions = {}): Promise<Store> {
  switch (location.kind) {
    case 'sqlite':
      return openSqliteStore(location.path, opts.sqlite);
    case 'postgres': {
      if (location.url === undefined) {
        throw new BastionError('ERR_CONFIG_SECRET_REF', `store.postgres: ${location.ref} did not resolve; the store cannot be opened`, { detail: { ref: location.ref } });
      }
      return openPostgresStore(location.url.reveal(), opts.postgres);
    }
  }
}

/**
 * Parses a `--store` flag: `postgres://…` or `postgresql://…` (also written
 * `postgres:postgres://…`) is PostgreSQL; `sqlite:PATH` or any other value a
 * SQLite path (resolved against the working directory by the adapter).
 */
export function storeFromFlag(value: string): ResolvedStore {
  const v = value.startsWith('postgres:postgres') ? value.slice('postgres:'.length) : value;
  if (/^postgres(ql)?:\/\//.test(v)) return { kind: 'postgres', url: new Secret(v), ref: '--store' };
  return { kind: 'sqlite', path: v.startsWith('sqlite:') ? v.slice('sqlite:'.length) : v };
}

/** A short, password-free description of `location` for messages: the SQLite path, or `postgres` with host and database. */
export function describeStore(location: ResolvedStore): string {
  if (location.kind === 'sqlite') return location.path;
  const url = location.url?.reveal();
  if (url === undefined || !URL.canParse(url)) return 'postgres';
  const u = new URL(url);
  return `postgres ${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
}
