/**
 * The PostgreSQL implementation of {@link Store} (every store port), on `pg`
 * (node-postgres), for several gateway instances sharing one database. The
 * semantics are those of the SQLite adapter (./sqlite.ts), port by port, checked
 * by the same contracts (test/store/contracts/).
 *
 * Connections: one bounded `pg.Pool` per store (default 10 connections), with a
 * connect timeout, a server-side `statement_timeout`, a client-side query
 * timeout and an idle timeout; hot queries are named prepared statements.
 * Every driver failure is `BastionError('ERR_STORE')` with the driver error as
 * `cause`; the connection URL (and its password) is never part of a message.
 * A pool `error` event (an idle connection dropped by the server) is reported to
 * `onPoolError` and never crashes the process; the pool replaces the connection.
 *
 * Durability: every connection runs with `synchronous_commit = on`, so a commit
 * (an audit append above all) has reached the server's WAL on disk when it resolves.
 *
 * Audit chain with several writers: sequence allocation under a lock
 * (`appendUnderLock`, used by ../audit/append.ts `appendChained`). One round
 * trip opens a transaction, takes `pg_advisory_xact_lock(LOCK_CLASS_AUDIT,
 * <schema key>)` and reads the tip; the audit module chains (and signs) the
 * batch onto that tip once; one statement inserts records and checkpoints
 * (`UNNEST`); `COMMIT` releases the lock. Appenders on every instance queue on
 * the lock (PostgreSQL grants it in arrival order), none ever chains a batch
 * twice, and the database holds one verifiable chain. The cost is the lock:
 * batches from all instances commit one at a time, so audit throughput is
 * bounded by (chain time + two round trips + commit) per batch; group commit
 * makes batches larger as load grows. `appendAuditRecords` (compare-and-append:
 * `ERR_AUDIT_CONFLICT` when the rows do not extend the tip) stays for the
 * store contract and for callers that chain themselves. docs/store.md.
 *
 * Other races: approval transitions are single conditional `UPDATE`s (one racer
 * wins); a claim skips rows another claimer holds (`FOR UPDATE SKIP LOCKED`); a
 * pending OAuth authorization is taken with one `DELETE … RETURNING`; the
 * read-then-write operations SQLite runs under `BEGIN IMMEDIATE` (keys, vault,
 * bans, OAuth pending, pin approval) run in a transaction holding
 * `pg_advisory_xact_lock(LOCK_CLASS_WRITE, <schema key>)`.
 * Schema: ./postgres-migrations.ts.
 */
import pg from 'pg';
import { BastionError } from '../errors.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from '../audit/types.ts';
import type { StoredPeer } from '../a2a/peer-store.ts';
import type { ApprovalRecord } from '../approvals/store.ts';
import type { StoredKey } from '../identity/key-store.ts';
import type { BanRecord } from '../model/ban-store.ts';
import type { StoredPastedSecret } from '../vault/pasted-store.ts';
import type { NewSecret, StoredSecret, StoredSecretVersion } from '../vault/store.ts';
import { assertMaxPending, type StoredPendingAuthorization, type UserTokenSetInfo } from '../oauth/store.ts';
import type { Store } from './store.ts';
import { PENDING_PIN_KINDS, type StoredPendingPin, type StoredPin } from '../mcp/pin-store.ts';
import { isolationFromRow, rotationMarkFromRow, type IsolationRow, type RotationMarkRow, type StoredIsolation, type StoredRotationMark } from '../incidents/isolation-store.ts';
import { appendAuditEvents, assertExtendsTip, type AuditTip, type ChainedRows } from '../audit/append.ts';
import { LOCK_CLASS_AUDIT, LOCK_CLASS_WRITE, migratePostgres, schemaLockKey } from './postgres-migrations.ts';
import type { AuditPruneRows } from '../audit/retention-store.ts';
import { pruneAuditPg } from './postgres-audit-prune.ts';
import { SECRET_COLUMNS, approvalFromRow, assertLimit, assertStrings, assertTime, banFromRow, keyFromRow, pastedFromRow, peerFromRow, pendingAuthorizationFromRow, pendingPinFromRow, pinFromRow, secretFromRow, secretVersionFromRow, tokenSetInfoFromRow } from './rows.ts';
import type { ApprovalRow, BanRow, KeyRow, OAuthPendingRow, PastedRow, PeerRow, PendingPinRow, PinRow, SecretRow, SecretVersionRow, TokenSetInfoRow } from './rows.ts';

/** Options of {@link openPostgresStore} (and of the nonce store's pool). */
export interface PostgresStoreOptions {
  /** Most connections the pool holds (default 10). */
  readonly poolMax?: number;
  /** How long opening a connection may take, in ms (default 5 000). */
  readonly connectTimeoutMs?: number;
  /** Server-side `statement_timeout`, in ms (default 15 000); the client gives up 1 000 ms later. */
  readonly statementTimeoutMs?: number;
  /** An idle connection is closed after this many ms (default 30 000). */
  readonly idleTimeoutMs?: number;
  /** Called with a pool `error` (an idle connection the server dropped); the default ignores it. */
  readonly onPoolError?: (err: Error) => void;
  /** `application_name` of the connections, as `pg_stat_activity` shows it (default `bastion`). */
  readonly applicationName?: string;
}

/** Defaults of {@link PostgresStoreOptions}. */
export const POSTGRES_DEFAULTS = { poolMax: 10, connectTimeoutMs: 5_000, statementTimeoutMs: 15_000, idleTimeoutMs: 30_000 } as const;

const INT8_OID = 20;

/** BIGINT columns (epoch ms, seq, ids, counts) as numbers; never beyond 2^53 here, and refused if they were. */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError('store: a BIGINT value is beyond 2^53');
  return n;
}

const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`openPostgresStore: ${name} must be a positive integer`);
  return v;
}

/**
 * Checks that `url` is a `postgres://` or `postgresql://` URL without echoing it.
 * @throws BastionError `ERR_STORE` (reason `bad_url`).
 */
export function assertPostgresUrl(url: string): void {
  let ok = false;
  if (typeof url === 'string' && URL.canParse(url)) {
    const protocol = new URL(url).protocol;
    ok = protocol === 'postgres:' || protocol === 'postgresql:';
  }
  if (!ok) throw new BastionError('ERR_STORE', 'store: open failed: the PostgreSQL store needs a postgres:// or postgresql:// URL', { detail: { reason: 'bad_url' } });
}

/**
 * A bounded pool on `url` with Bastion's settings (timeouts, BIGINT as number,
 * `synchronous_commit = on`, pool errors routed to `onPoolError`).
 * @throws BastionError `ERR_STORE` for a URL that is not postgres(ql)://; RangeError for bad options.
 */
export function createPostgresPool(url: string, opts: PostgresStoreOptions = {}): pg.Pool {
  assertPostgresUrl(url);
  const statementTimeoutMs = positiveInt('statementTimeoutMs', opts.statementTimeoutMs, POSTGRES_DEFAULTS.statementTimeoutMs);
  // synchronous_commit as a startup option, appended to any the URL gives (a URL's options replace the config's).
  const withOptions = new URL(url);
  withOptions.searchParams.set('options', [withOptions.searchParams.get('options'), '-c synchronous_commit=on'].filter((o) => o).join(' '));
  const pool = new pg.Pool({
    connectionString: withOptions.toString(),
    max: positiveInt('poolMax', opts.poolMax, POSTGRES_DEFAULTS.poolMax),
    connectionTimeoutMillis: positiveInt('connectTimeoutMs', opts.connectTimeoutMs, POSTGRES_DEFAULTS.connectTimeoutMs),
    idleTimeoutMillis: positiveInt('idleTimeoutMs', opts.idleTimeoutMs, POSTGRES_DEFAULTS.idleTimeoutMs),
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 1_000,
    idle_in_transaction_session_timeout: statementTimeoutMs * 2,
    application_name: opts.applicationName ?? 'bastion',
    keepAlive: true,
    types: TYPES,
  });
  const onPoolError = opts.onPoolError;
  pool.on('error', (err) => onPoolError?.(err));
  return pool;
}

/** A driver failure as `ERR_STORE` (SQLSTATE in `detail.sqlstate`); a BastionError passes through. */
export function wrapDriverError(operation: string, err: unknown): BastionError {
  if (err instanceof BastionError) return err;
  const sqlstate = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  return new BastionError('ERR_STORE', `store: ${operation} failed`, { cause: err, ...(sqlstate === undefined ? {} : { detail: { sqlstate } }) });
}

/**
 * Opens the PostgreSQL store at `url` (the connection string; its
 * `options=-c search_path=…` picks the schema), applying migrations
 * (./postgres-migrations.ts) in one transaction under an advisory lock.
 * @throws BastionError `ERR_STORE`: a bad URL (`bad_url`), an unreachable server,
 *   failed authentication, a schema newer than this code (`schema_newer`), no
 *   schema on the search path (`no_schema`); never with the URL in the message.
 */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<Store> {
  const pool = createPostgresPool(url, opts);
  try {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw wrapDriverError('open', err);
    }
    let schema: string | null | undefined;
    try {
      schema = (await client.query<{ s: string | null }>('SELECT current_schema() AS s')).rows[0]?.s;
      if (schema == null) throw new BastionError('ERR_STORE', 'store: open failed: no schema of the search path exists', { detail: { reason: 'no_schema' } });
      await migratePostgres(client, schema, Date.now());
      client.release();
    } catch (err) {
      client.release(true);
      throw wrapDriverError('migrate', err);
    }
    return new PostgresStore(pool, schemaLockKey(schema));
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

function parseRecord(operation: string, json: string): AuditRecord {
  try {
    return JSON.parse(json) as AuditRecord;
  } catch (err) {
    throw new BastionError('ERR_STORE', `store: ${operation} failed`, { cause: err, detail: { reason: 'bad_row' } });
  }
}

/**
 * Every statement, by name (prepared as `bastion_<name>` on each connection).
 * Text is ordered with `COLLATE "C"` (byte order), as SQLite orders it.
 */
const SQL = {
  auditRead: 'SELECT json FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2',
  auditLast: 'SELECT json FROM audit ORDER BY seq DESC LIMIT 1',
  auditInsert: 'INSERT INTO audit (seq, json, hash) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])',
  // Records and checkpoints in one round trip (a data-modifying WITH runs exactly once, referenced or not).
  auditInsertWithCps:
    'WITH r AS (INSERT INTO audit (seq, json, hash) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])) ' +
    'INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) SELECT * FROM UNNEST($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])',
  cpInsertMany: 'INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])',
  cpInsert: 'INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)',
  cpList: 'SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq, id',
  keyCurrent: 'SELECT * FROM keys WHERE purpose = $1 AND current = 1',
  keyList: 'SELECT * FROM keys WHERE purpose = $1 ORDER BY created_at, id COLLATE "C"',
  keyRetire: 'UPDATE keys SET current = 0 WHERE purpose = $1 AND current = 1',
  keyPut: `INSERT INTO keys (id, purpose, alg, public_pem, private_pem, created_at, current) VALUES ($1, $2, $3, $4, $5, $6, 1)
    ON CONFLICT (id) DO UPDATE SET purpose = excluded.purpose, alg = excluded.alg, public_pem = excluded.public_pem,
      private_pem = excluded.private_pem, created_at = excluded.created_at, current = 1`,
  agentKeys: 'SELECT digest FROM agent_keys WHERE agent = $1 ORDER BY created_at, digest COLLATE "C"',
  agentKeyAdd: 'INSERT INTO agent_keys (agent, digest, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
  approvalInsert: `INSERT INTO approvals (id, agent, user_id, tool, args_digest, args_preview, status, created_at, expires_at, decided_at, decided_by, reason)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
  approvalGet: 'SELECT * FROM approvals WHERE id = $1',
  approvalList: 'SELECT * FROM approvals ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $1',
  approvalListStatus: 'SELECT * FROM approvals WHERE status = $1 ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $2',
  approvalFindPending: `SELECT * FROM approvals WHERE agent = $1 AND user_id = $2 AND tool = $3 AND args_digest = $4 AND status = 'pending' AND expires_at > $5
    ORDER BY created_at, id COLLATE "C" LIMIT 1`,
  approvalDecide: `UPDATE approvals SET status = $2::text, decided_at = $3::bigint, decided_by = $4, reason = $5,
      expires_at = CASE WHEN $2::text = 'approved' THEN $6::bigint ELSE expires_at END
    WHERE id = $1 AND status = 'pending' AND expires_at > $3::bigint`,
  approvalConsume: `UPDATE approvals SET status = 'used' WHERE id = $1 AND status = 'approved' AND expires_at > $2`,
  // One statement; a row another claimer holds is skipped, so two claimers never both win one approval.
  approvalClaim: `UPDATE approvals SET status = 'used'
    WHERE id = (SELECT id FROM approvals WHERE agent = $1 AND user_id = $2 AND tool = $3 AND args_digest = $4 AND status = 'approved' AND expires_at > $5
                ORDER BY created_at, id COLLATE "C" LIMIT 1 FOR UPDATE SKIP LOCKED)
      AND status = 'approved'
    RETURNING *`,
  approvalExpire: `UPDATE approvals SET status = 'expired', decided_at = $1 WHERE id = $2 AND status = 'pending'`,
  vaultGeneration: 'SELECT generation FROM vault_generation WHERE id = 1',
  vaultBump: 'UPDATE vault_generation SET generation = generation + 1 WHERE id = 1',
  secretLiveByName: `SELECT ${SECRET_COLUMNS} FROM secrets s WHERE s.name = $1 AND s.revoked_at IS NULL`,
  secretLiveById: `SELECT ${SECRET_COLUMNS} FROM secrets s WHERE s.id = $1 AND s.revoked_at IS NULL`,
  secretList: `SELECT ${SECRET_COLUMNS} FROM secrets s WHERE s.revoked_at IS NULL ORDER BY s.name COLLATE "C"`,
  secretInsert: 'INSERT INTO secrets (id, name, hosts, header, format, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
  secretVersionInsert: 'INSERT INTO secret_versions (secret_id, version, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, NULL)',
  // Expire versions below $2 at $3, keeping an earlier expiry.
  secretVersionsExpire: `UPDATE secret_versions SET expires_at = $3::bigint
    WHERE secret_id = $1 AND version < $2::bigint AND (expires_at IS NULL OR expires_at > $3::bigint)`,
  secretRotated: 'UPDATE secrets SET rotated_at = $1 WHERE id = $2',
  secretRevoke: 'UPDATE secrets SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
  secretVersionsValid: `SELECT v.secret_id, v.version, v.sealed, v.created_at, v.expires_at
    FROM secret_versions v JOIN secrets s ON s.id = v.secret_id
    WHERE s.revoked_at IS NULL AND (v.expires_at IS NULL OR v.expires_at > $1)
    ORDER BY v.secret_id COLLATE "C", v.version`,
  secretTouch: 'UPDATE secrets SET last_used_at = $2::bigint WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::bigint)',
  vaultItemGet: 'SELECT value FROM vault_items WHERE name = $1',
  vaultItemInsert: 'INSERT INTO vault_items (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
  pastedInsert: `INSERT INTO pasted_secrets (id, token, agent, "user", fingerprint, rule, hosts, sealed, created_at, last_used_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL) ON CONFLICT (agent, "user", fingerprint) DO NOTHING`,
  pastedByFingerprint: 'SELECT * FROM pasted_secrets WHERE agent = $1 AND "user" = $2 AND fingerprint = $3',
  pastedByToken: 'SELECT * FROM pasted_secrets WHERE token = $1',
  pastedList: `SELECT * FROM pasted_secrets WHERE ($1::text IS NULL OR agent = $1::text) AND ($2::text IS NULL OR "user" = $2::text)
    ORDER BY created_at DESC, id COLLATE "C" LIMIT $3`,
  pastedHosts: 'UPDATE pasted_secrets SET hosts = $1 WHERE id = $2',
  pastedTouch: 'UPDATE pasted_secrets SET last_used_at = $2::bigint WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::bigint)',
  banCount: 'SELECT COUNT(*) AS n FROM bans WHERE agent = $1 AND "user" = $2 AND at > $3 AND lifted_at IS NULL',
  banInsert: 'INSERT INTO bans (agent, "user", at, until, level, rule, reason) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *',
  banActive: 'SELECT * FROM bans WHERE agent = $1 AND "user" = $2 AND until > $3 AND lifted_at IS NULL ORDER BY until DESC LIMIT 1',
  banList: `SELECT * FROM bans WHERE ($1::text IS NULL OR "user" = $1::text) AND ($2::bigint IS NULL OR (until > $2::bigint AND lifted_at IS NULL))
    ORDER BY at DESC, id DESC LIMIT $3`,
  banLift: `UPDATE bans SET lifted_at = $3::bigint, lifted_by = $4
    WHERE "user" = $1 AND ($2::text IS NULL OR agent = $2::text) AND lifted_at IS NULL AND until > $3::bigint`,
  peerInsert: `INSERT INTO a2a_peers (name, url, sender, jwks_url, public_jwks, inbound_token_digest, outbound_token_sealed, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
  peerGet: 'SELECT * FROM a2a_peers WHERE name = $1',
  peerByDigest: 'SELECT * FROM a2a_peers WHERE inbound_token_digest = $1',
  peerList: 'SELECT * FROM a2a_peers ORDER BY name COLLATE "C"',
  peerSetOutbound: 'UPDATE a2a_peers SET outbound_token_sealed = $1 WHERE name = $2',
  peerRemove: 'DELETE FROM a2a_peers WHERE name = $1',
  oauthPendingPrune: 'DELETE FROM oauth_pending WHERE expires_at <= $1',
  oauthPendingCount: 'SELECT COUNT(*) AS n FROM oauth_pending',
  oauthPendingInsert: `INSERT INTO oauth_pending (state, provider, "user", agent, sealed_code_verifier, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (state) DO NOTHING`,
  // One statement: of concurrent takers, on any connection or instance, exactly one gets the row.
  oauthPendingTake: 'DELETE FROM oauth_pending WHERE state = $1 RETURNING *',
  oauthTokenGet: 'SELECT sealed FROM oauth_tokens WHERE "user" = $1 AND provider = $2',
  oauthTokenPut: `INSERT INTO oauth_tokens ("user", provider, sealed, updated_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT ("user", provider) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
  oauthTokenDelete: 'DELETE FROM oauth_tokens WHERE "user" = $1 AND provider = $2',
  oauthTokenList: `SELECT "user", provider, updated_at FROM oauth_tokens
    WHERE ($1::text IS NULL OR "user" = $1::text) AND ($2::text IS NULL OR provider = $2::text)
    ORDER BY "user" COLLATE "C", provider COLLATE "C" LIMIT $3`,
  pinList: 'SELECT * FROM tool_pins WHERE agent = $1 ORDER BY tool COLLATE "C"',
  pinGet: 'SELECT * FROM tool_pins WHERE agent = $1 AND tool = $2',
  pinInsert: `INSERT INTO tool_pins (agent, tool, hash, shape, definition, pinned_at, pinned_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (agent, tool) DO NOTHING`,
  pinPut: `INSERT INTO tool_pins (agent, tool, hash, shape, definition, pinned_at, pinned_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (agent, tool) DO UPDATE SET hash = excluded.hash, shape = excluded.shape, definition = excluded.definition,
      pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by`,
  pinPendingList: 'SELECT * FROM tool_pins_pending WHERE agent = $1 ORDER BY tool COLLATE "C"',
  pinPendingGet: 'SELECT * FROM tool_pins_pending WHERE agent = $1 AND tool = $2',
  // One statement: a definition already withheld for the same reason is not a new detection (no row changed).
  pinPendingPut: `INSERT INTO tool_pins_pending (agent, tool, kind, hash, shape, definition, detail, detected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (agent, tool) DO UPDATE SET kind = excluded.kind, hash = excluded.hash, shape = excluded.shape, definition = excluded.definition,
      detail = excluded.detail, detected_at = excluded.detected_at
    WHERE tool_pins_pending.hash <> excluded.hash OR tool_pins_pending.kind <> excluded.kind`,
  pinPendingRemove: 'DELETE FROM tool_pins_pending WHERE agent = $1 AND tool = $2',
  isolationInsert: `INSERT INTO isolations (id, agent, reason, isolated_by, at) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (agent) WHERE restored_at IS NULL DO NOTHING`,
  isolationCurrent: 'SELECT * FROM isolations WHERE agent = $1 AND restored_at IS NULL',
  isolationRestore: 'UPDATE isolations SET restored_at = $1, restored_by = $2, restore_reason = $3 WHERE agent = $4 AND restored_at IS NULL RETURNING *',
  isolationList: `SELECT * FROM isolations WHERE ($1::text IS NULL OR agent = $1::text) AND (NOT $2::boolean OR restored_at IS NULL)
    ORDER BY at DESC, id DESC LIMIT $3`,
  rotationMark: `INSERT INTO secret_rotation_marks (secret_name, agent, reason, marked_by, marked_at) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (secret_name) DO UPDATE SET agent = excluded.agent, reason = excluded.reason, marked_by = excluded.marked_by, marked_at = excluded.marked_at`,
  rotationMarkList: 'SELECT * FROM secret_rotation_marks ORDER BY secret_name',
  secretGraceEnd: 'UPDATE secret_versions SET expires_at = $1 WHERE secret_id = $2 AND expires_at IS NOT NULL AND expires_at > $1',
} as const;

type StatementName = keyof typeof SQL;
type Values = readonly unknown[];

/** Runs named statements on one connection (a transaction's) or on the pool. */
type Runner = <R extends pg.QueryResultRow>(name: StatementName, values: Values) => Promise<pg.QueryResult<R>>;

function query(name: StatementName, values: Values): pg.QueryConfig {
  return { name: `bastion_${name}`, text: SQL[name], values: values as unknown[] };
}

const ignoreError = (): void => undefined;

function checkpointColumns(checkpoints: readonly AuditCheckpoint[]): unknown[] {
  return [checkpoints.map((c) => c.seq), checkpoints.map((c) => c.hash), checkpoints.map((c) => c.time), checkpoints.map((c) => c.keyId), checkpoints.map((c) => c.signature)];
}

function closedError(): BastionError {
  return new BastionError('ERR_STORE', 'store: closed');
}

class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #lockKey: number;
  #closed = false;
  #ended: Promise<void> | undefined;
  /** The tail of this store's `appendAudit` calls. */
  #appends: Promise<unknown> = Promise.resolve();
  /** The tail of this store's audit appends: one at a time per store, so a process holds at most one connection waiting on the audit lock. */
  #auditTurn: Promise<unknown> = Promise.resolve();

  constructor(pool: pg.Pool, lockKey: number) {
    this.#pool = pool;
    this.#lockKey = lockKey;
  }

  /** One statement on a pooled connection; driver failures become ERR_STORE. */
  async #q<R extends pg.QueryResultRow>(operation: string, name: StatementName, values: Values = []): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw closedError();
    try {
      return await this.#pool.query<R>(query(name, values));
    } catch (err) {
      throw wrapDriverError(operation, err);
    }
  }

  /**
   * Runs `fn` in a transaction on one connection, first taking the advisory
   * lock of `lockClass` (this schema's key) when given. Driver failures become
   * ERR_STORE; other errors (TypeError on bad input, a BastionError) pass through.
   */
  async #tx<T>(operation: string, lockClass: number | undefined, fn: (run: Runner) => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw wrapDriverError(operation, err);
    }
    // A connection lost between two statements emits 'error' on the client: never an uncaught exception.
    const onError = (): void => undefined;
    client.on('error', onError);
    let broken = false;
    try {
      const begin = lockClass === undefined ? 'BEGIN' : `BEGIN; SELECT pg_advisory_xact_lock(${lockClass}, ${this.#lockKey})`;
      try {
        await client.query(begin);
      } catch (err) {
        throw wrapDriverError(operation, err);
      }
      const run: Runner = async (name, values) => {
        try {
          return await client.query(query(name, values));
        } catch (err) {
          throw wrapDriverError(operation, err);
        }
      };
      try {
        const result = await fn(run);
        try {
          await client.query('COMMIT');
        } catch (err) {
          throw wrapDriverError(operation, err);
        }
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw err;
      }
    } catch (err) {
      broken = broken || (err instanceof BastionError && err.code === 'ERR_STORE');
      throw err;
    } finally {
      client.off('error', onError);
      // A connection whose transaction failed in the driver is discarded rather than reused.
      client.release(broken);
    }
  }

  /**
   * Chains through the audit module (../audit/append.ts); this adapter only
   * stores the rows. Calls on one store run one after the other: concurrent
   * callers in one process would only make each other chain again (conflicts
   * are for other instances); the audit log batches its own appends anyway.
   */
  async appendAudit(events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    const run = this.#appends.then(() => appendAuditEvents(this, events));
    this.#appends = run.catch(() => undefined);
    return run;
  }

  async appendAuditRecords(records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    if (!Array.isArray(records) || !Array.isArray(checkpoints)) throw new TypeError('appendAuditRecords: records and checkpoints must be arrays');
    if (records.length === 0 && checkpoints.length === 0) return;
    if (this.#closed) throw closedError();
    if (records.length === 0) {
      // Checkpoints alone extend nothing (as in SQLite): no tip to check, no lock.
      await this.#tx('appendAudit', undefined, async (run) => void (await run('cpInsertMany', checkpointColumns(checkpoints))));
      return;
    }
    // Compare-and-append: the rows are stored only if they extend the tip read under the lock.
    await this.#auditLocked(async (tip) => {
      assertExtendsTip(tip, records);
      return { records: [...records], checkpoints };
    });
  }

  /**
   * Sequence allocation under the audit lock (see the module comment and
   * `AuditAppendPort.appendUnderLock`): `chain` is called once with the tip read
   * under the lock, and what it returns is stored in the same transaction.
   * @throws what `chain` throws (rolled back); TypeError when its records do not
   *   extend the tip; BastionError `ERR_STORE` on a driver failure.
   */
  async appendUnderLock(chain: (tip: AuditTip | undefined) => Promise<ChainedRows>): Promise<ChainedRows> {
    if (this.#closed) throw closedError();
    return this.#auditLocked(async (tip) => {
      const rows = await chain(tip);
      try {
        assertExtendsTip(tip, rows.records);
      } catch (err) {
        // Under the lock the tip cannot move: records that do not extend it were chained onto another tip.
        throw err instanceof TypeError ? err : new TypeError('appendUnderLock: the chained records do not extend the tip they were given', { cause: err });
      }
      return rows;
    });
  }

  /**
   * One audit transaction: `BEGIN`, the audit lock and the tip in one round
   * trip; `rows(tip)`; records and checkpoints in one statement; `COMMIT`.
   * Appends of this store run one after the other ({@link PostgresStore.#auditTurn}).
   */
  #auditLocked(rows: (tip: AuditTip | undefined) => Promise<ChainedRows>): Promise<ChainedRows> {
    const run = this.#auditTurn.then(() => this.#auditTx(rows));
    this.#auditTurn = run.catch(() => undefined);
    return run;
  }

  async #auditTx(rows: (tip: AuditTip | undefined) => Promise<ChainedRows>): Promise<ChainedRows> {
    if (this.#closed) throw closedError();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw wrapDriverError('appendAudit', err);
    }
    // A connection lost between two statements emits 'error' on the client: never an uncaught exception.
    client.on('error', ignoreError);
    /** Errors of the caller's `rows` pass through as they are; the driver's become ERR_STORE. */
    let fromRows = false;
    try {
      // Simple-query protocol, three statements, one round trip: the lock is held from here to COMMIT.
      const results = (await client.query(
        `BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS_AUDIT}, ${this.#lockKey}); SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`,
      )) as unknown as pg.QueryResult<{ seq: number; hash: string }>[];
      const row = results[2]?.rows[0];
      fromRows = true;
      const out = await rows(row === undefined ? undefined : { seq: row.seq, hash: row.hash });
      fromRows = false;
      const { records, checkpoints } = out;
      // Stored as plain JSON text: verification recomputes the canonical form from the parsed record.
      const recordColumns = [records.map((r) => r.seq), records.map((r) => JSON.stringify(r)), records.map((r) => r.hash)];
      await client.query(checkpoints.length === 0 ? query('auditInsert', recordColumns) : query('auditInsertWithCps', [...recordColumns, ...checkpointColumns(checkpoints)]));
      await client.query('COMMIT');
      client.off('error', ignoreError);
      client.release();
      return out;
    } catch (err) {
      // A connection whose transaction cannot be rolled back is discarded rather than reused.
      const broken = await client.query('ROLLBACK').then(
        () => false,
        () => true,
      );
      client.off('error', ignoreError);
      client.release(broken);
      throw fromRows ? err : wrapDriverError('appendAudit', err);
    }
  }

  async readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    if (!Number.isSafeInteger(fromSeq)) throw new RangeError('readAudit: fromSeq must be an integer');
    assertLimit('readAudit: limit', limit);
    const r = await this.#q<{ json: string }>('readAudit', 'auditRead', [fromSeq, limit]);
    return r.rows.map((row) => parseRecord('readAudit', row.json));
  }

  async lastAudit(): Promise<AuditRecord | undefined> {
    const row = (await this.#q<{ json: string }>('lastAudit', 'auditLast')).rows[0];
    return row === undefined ? undefined : parseRecord('lastAudit', row.json);
  }

  async appendCheckpoint(cp: AuditCheckpoint): Promise<void> {
    await this.#q('appendCheckpoint', 'cpInsert', [cp.seq, cp.hash, cp.time, cp.keyId, cp.signature]);
  }

  /** Audit retention (../audit/retention-store.ts): one transaction under the audit lock, in turn with this store's appends (./postgres-audit-prune.ts). */
  async pruneAudit(rows: (tip: AuditTip | undefined) => AuditPruneRows): Promise<AuditPruneRows> {
    if (this.#closed) throw closedError();
    const run = this.#auditTurn.then(async () => {
      let client: pg.PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (err) {
        throw wrapDriverError('pruneAudit', err);
      }
      client.on('error', ignoreError);
      try {
        const out = await pruneAuditPg(client, LOCK_CLASS_AUDIT, this.#lockKey, rows);
        client.off('error', ignoreError);
        client.release();
        return out;
      } catch (err) {
        client.off('error', ignoreError);
        client.release(true);
        throw err instanceof BastionError || err instanceof TypeError ? err : wrapDriverError('pruneAudit', err);
      }
    });
    this.#auditTurn = run.catch(() => undefined);
    return run;
  }

  async listCheckpoints(): Promise<AuditCheckpoint[]> {
    const r = await this.#q<{ seq: number; hash: string; time: string; key_id: string; signature: string }>('listCheckpoints', 'cpList');
    return r.rows.map((c) => ({ seq: c.seq, hash: c.hash, time: c.time, keyId: c.key_id, signature: c.signature }));
  }

  async getKey(purpose: StoredKey['purpose']): Promise<StoredKey | undefined> {
    const row = (await this.#q<KeyRow>('getKey', 'keyCurrent', [purpose])).rows[0];
    return row === undefined ? undefined : keyFromRow(row);
  }

  async listKeys(purpose: StoredKey['purpose']): Promise<StoredKey[]> {
    return (await this.#q<KeyRow>('listKeys', 'keyList', [purpose])).rows.map(keyFromRow);
  }

  async putKey(key: StoredKey): Promise<void> {
    await this.#tx('putKey', LOCK_CLASS_WRITE, async (run) => {
      await run('keyRetire', [key.purpose]);
      await run('keyPut', [key.id, key.purpose, key.alg, key.publicKeyPem, key.privateKeyPem, key.createdAt]);
    });
  }

  async agentKeyDigests(agent: string): Promise<string[]> {
    return (await this.#q<{ digest: string }>('agentKeyDigests', 'agentKeys', [agent])).rows.map((r) => r.digest);
  }

  async addAgentKeyDigest(agent: string, digest: string, createdAt: number): Promise<void> {
    await this.#q('addAgentKeyDigest', 'agentKeyAdd', [agent, digest, createdAt]);
  }

  async createApproval(a: ApprovalRecord): Promise<void> {
    await this.#q('createApproval', 'approvalInsert', [
      a.id, a.agent, a.user ?? '', a.tool, a.argsDigest, a.argsPreview, a.status, a.createdAt, a.expiresAt, a.decidedAt, a.decidedBy, a.reason,
    ]);
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = (await this.#q<ApprovalRow>('getApproval', 'approvalGet', [id])).rows[0];
    return row === undefined ? undefined : approvalFromRow(row);
  }

  async listApprovals(filter: { status?: ApprovalRecord['status']; limit?: number } = {}): Promise<ApprovalRecord[]> {
    if (filter.limit !== undefined) assertLimit('listApprovals: limit', filter.limit);
    const limit = filter.limit ?? null; // LIMIT NULL: no limit.
    const r =
      filter.status === undefined
        ? await this.#q<ApprovalRow>('listApprovals', 'approvalList', [limit])
        : await this.#q<ApprovalRow>('listApprovals', 'approvalListStatus', [filter.status, limit]);
    return r.rows.map(approvalFromRow);
  }

  async findPendingApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined> {
    const row = (await this.#q<ApprovalRow>('findPendingApproval', 'approvalFindPending', [agent, user ?? '', tool, argsDigest, now])).rows[0];
    return row === undefined ? undefined : approvalFromRow(row);
  }

  async decideApproval(
    id: string,
    d: { status: 'approved' | 'denied'; by: string; reason: string | null; at: number; claimUntil: number },
  ): Promise<boolean> {
    if (d.status !== 'approved' && d.status !== 'denied') throw new TypeError('decideApproval: status must be approved or denied');
    const r = await this.#q('decideApproval', 'approvalDecide', [id, d.status, d.at, d.by, d.reason, d.claimUntil]);
    return r.rowCount === 1;
  }

  async consumeApproval(id: string, now: number): Promise<boolean> {
    return (await this.#q('consumeApproval', 'approvalConsume', [id, now])).rowCount === 1;
  }

  async claimApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined> {
    const row = (await this.#q<ApprovalRow>('claimApproval', 'approvalClaim', [agent, user ?? '', tool, argsDigest, now])).rows[0];
    return row === undefined ? undefined : approvalFromRow(row);
  }

  async expireApproval(id: string, now: number): Promise<boolean> {
    return (await this.#q('expireApproval', 'approvalExpire', [now, id])).rowCount === 1;
  }

  async vaultGeneration(): Promise<number> {
    const row = (await this.#q<{ generation: number }>('vaultGeneration', 'vaultGeneration')).rows[0];
    if (row === undefined) throw new BastionError('ERR_STORE', 'store: vaultGeneration failed', { detail: { reason: 'missing_row' } });
    return row.generation;
  }

  async createSecret(secret: NewSecret): Promise<void> {
    if (typeof secret.name !== 'string' || typeof secret.id !== 'string') throw new TypeError('createSecret: id and name must be strings');
    assertTime('createSecret: createdAt', secret.createdAt);
    const hosts = JSON.stringify([...secret.hosts]);
    await this.#tx('createSecret', LOCK_CLASS_WRITE, async (run) => {
      // Checked under the lock; the partial unique index is the backstop.
      if ((await run('secretLiveByName', [secret.name])).rows.length > 0) {
        throw new BastionError('ERR_VAULT_SECRET_EXISTS', `vault: a secret named ${secret.name} exists`, { detail: { name: secret.name } });
      }
      await run('secretInsert', [secret.id, secret.name, hosts, secret.header, secret.format, secret.createdAt]);
      await run('secretVersionInsert', [secret.id, 1, secret.sealed, secret.createdAt]);
      await run('vaultBump', []);
    });
  }

  async rotateSecret(
    secretId: string,
    version: { readonly version: number; readonly sealed: string; readonly createdAt: number },
    graceUntil: number,
  ): Promise<boolean> {
    assertTime('rotateSecret: createdAt', version.createdAt);
    assertTime('rotateSecret: graceUntil', graceUntil);
    if (!Number.isSafeInteger(version.version) || version.version < 2) throw new RangeError('rotateSecret: version must be an integer from 2');
    return this.#tx('rotateSecret', LOCK_CLASS_WRITE, async (run) => {
      const row = (await run<SecretRow>('secretLiveById', [secretId])).rows[0];
      if (row === undefined || row.version + 1 !== version.version) return false;
      await run('secretVersionInsert', [secretId, version.version, version.sealed, version.createdAt]);
      await run('secretVersionsExpire', [secretId, version.version, graceUntil]);
      await run('secretRotated', [version.createdAt, secretId]);
      await run('vaultBump', []);
      return true;
    });
  }

  async revokeSecret(secretId: string, at: number): Promise<boolean> {
    assertTime('revokeSecret: at', at);
    return this.#tx('revokeSecret', LOCK_CLASS_WRITE, async (run) => {
      if ((await run('secretRevoke', [at, secretId])).rowCount !== 1) return false;
      await run('secretVersionsExpire', [secretId, Number.MAX_SAFE_INTEGER, at]);
      await run('vaultBump', []);
      return true;
    });
  }

  async getSecretByName(name: string): Promise<StoredSecret | undefined> {
    const row = (await this.#q<SecretRow>('getSecretByName', 'secretLiveByName', [name])).rows[0];
    return row === undefined ? undefined : secretFromRow(row);
  }

  async listSecrets(): Promise<StoredSecret[]> {
    return (await this.#q<SecretRow>('listSecrets', 'secretList')).rows.map(secretFromRow);
  }

  async listValidSecretVersions(now: number): Promise<StoredSecretVersion[]> {
    assertTime('listValidSecretVersions: now', now);
    return (await this.#q<SecretVersionRow>('listValidSecretVersions', 'secretVersionsValid', [now])).rows.map(secretVersionFromRow);
  }

  async touchSecret(secretId: string, at: number): Promise<void> {
    assertTime('touchSecret: at', at);
    await this.#q('touchSecret', 'secretTouch', [secretId, at]);
  }

  async getVaultItem(name: string): Promise<string | undefined> {
    return (await this.#q<{ value: string }>('getVaultItem', 'vaultItemGet', [name])).rows[0]?.value;
  }

  async putVaultItemIfAbsent(name: string, value: string): Promise<string> {
    if (typeof name !== 'string' || typeof value !== 'string') throw new TypeError('putVaultItemIfAbsent: name and value must be strings');
    // Items are never changed once stored, so insert-or-ignore then read back needs no transaction.
    await this.#q('putVaultItemIfAbsent', 'vaultItemInsert', [name, value]);
    const stored = await this.getVaultItem(name);
    if (stored === undefined) throw new BastionError('ERR_STORE', 'store: putVaultItemIfAbsent failed', { detail: { reason: 'vanished', name } });
    return stored;
  }

  async putPastedSecret(secret: StoredPastedSecret): Promise<StoredPastedSecret> {
    assertTime('putPastedSecret: createdAt', secret.createdAt);
    await this.#q('putPastedSecret', 'pastedInsert', [
      secret.id, secret.token, secret.agent, secret.user, secret.fingerprint, secret.rule, JSON.stringify([...secret.hosts]), secret.sealed, secret.createdAt,
    ]);
    const row = (await this.#q<PastedRow>('putPastedSecret', 'pastedByFingerprint', [secret.agent, secret.user, secret.fingerprint])).rows[0];
    if (row === undefined) throw new BastionError('ERR_STORE', 'store: putPastedSecret failed', { detail: { reason: 'vanished' } });
    return pastedFromRow(row);
  }

  async getPastedSecretByToken(token: string): Promise<StoredPastedSecret | undefined> {
    const row = (await this.#q<PastedRow>('getPastedSecretByToken', 'pastedByToken', [token])).rows[0];
    return row === undefined ? undefined : pastedFromRow(row);
  }

  async listPastedSecrets(filter: { agent?: string; user?: string; limit?: number } = {}): Promise<StoredPastedSecret[]> {
    const r = await this.#q<PastedRow>('listPastedSecrets', 'pastedList', [filter.agent ?? null, filter.user ?? null, filter.limit ?? 1000]);
    return r.rows.map(pastedFromRow);
  }

  async touchPastedSecret(id: string, at: number): Promise<void> {
    assertTime('touchPastedSecret: at', at);
    await this.#q('touchPastedSecret', 'pastedTouch', [id, at]);
  }

  async setPastedSecretHosts(id: string, hosts: readonly string[]): Promise<boolean> {
    return ((await this.#q('setPastedSecretHosts', 'pastedHosts', [JSON.stringify([...hosts]), id])).rowCount ?? 0) > 0;
  }

  async addBan(offence: { agent: string; user: string; at: number; rule: string; reason: string }, durationsMs: readonly number[], forgetAfterMs: number): Promise<BanRecord> {
    assertTime('addBan: at', offence.at);
    if (durationsMs.length === 0) throw new RangeError('addBan: durationsMs must not be empty');
    return this.#tx('addBan', LOCK_CLASS_WRITE, async (run) => {
      const prior = (await run<{ n: number }>('banCount', [offence.agent, offence.user, offence.at - forgetAfterMs])).rows[0]?.n ?? 0;
      const level = prior + 1;
      const duration = durationsMs[Math.min(level, durationsMs.length) - 1] as number;
      const row = (await run<BanRow>('banInsert', [offence.agent, offence.user, offence.at, offence.at + duration, level, offence.rule, offence.reason])).rows[0];
      if (row === undefined) throw new BastionError('ERR_STORE', 'store: addBan failed', { detail: { reason: 'vanished' } });
      return banFromRow(row);
    });
  }

  async activeBan(agent: string, user: string, now: number): Promise<BanRecord | undefined> {
    const row = (await this.#q<BanRow>('activeBan', 'banActive', [agent, user, now])).rows[0];
    return row === undefined ? undefined : banFromRow(row);
  }

  async listBans(filter: { activeAt?: number; user?: string; limit?: number } = {}): Promise<BanRecord[]> {
    const r = await this.#q<BanRow>('listBans', 'banList', [filter.user ?? null, filter.activeAt ?? null, filter.limit ?? 1000]);
    return r.rows.map(banFromRow);
  }

  async liftBans(user: string, opts: { agent?: string; at: number; by: string }): Promise<number> {
    assertTime('liftBans: at', opts.at);
    return (await this.#q('liftBans', 'banLift', [user, opts.agent ?? null, opts.at, opts.by])).rowCount ?? 0;
  }

  async addPeer(peer: StoredPeer): Promise<boolean> {
    if (typeof peer.name !== 'string' || typeof peer.inboundTokenDigest !== 'string') throw new TypeError('addPeer: name and inboundTokenDigest must be strings');
    if ((peer.jwksUrl === null) === (peer.publicJwks === null)) throw new TypeError('addPeer: exactly one of jwksUrl and publicJwks must be set');
    assertTime('addPeer: createdAt', peer.createdAt);
    const r = await this.#q('addPeer', 'peerInsert', [peer.name, peer.url, peer.sender, peer.jwksUrl, peer.publicJwks, peer.inboundTokenDigest, peer.outboundTokenSealed, peer.createdAt]);
    return r.rowCount === 1;
  }

  async getPeer(name: string): Promise<StoredPeer | undefined> {
    const row = (await this.#q<PeerRow>('getPeer', 'peerGet', [name])).rows[0];
    return row === undefined ? undefined : peerFromRow(row);
  }

  async getPeerByInboundDigest(digest: string): Promise<StoredPeer | undefined> {
    const row = (await this.#q<PeerRow>('getPeerByInboundDigest', 'peerByDigest', [digest])).rows[0];
    return row === undefined ? undefined : peerFromRow(row);
  }

  async listPeers(): Promise<StoredPeer[]> {
    return (await this.#q<PeerRow>('listPeers', 'peerList')).rows.map(peerFromRow);
  }

  async setPeerOutboundToken(name: string, sealed: string): Promise<boolean> {
    if (typeof sealed !== 'string') throw new TypeError('setPeerOutboundToken: sealed must be a string');
    return (await this.#q('setPeerOutboundToken', 'peerSetOutbound', [sealed, name])).rowCount === 1;
  }

  async removePeer(name: string): Promise<boolean> {
    return (await this.#q('removePeer', 'peerRemove', [name])).rowCount === 1;
  }

  async putPendingAuthorization(p: StoredPendingAuthorization, limits: { readonly maxPending: number; readonly now: number }): Promise<boolean> {
    assertStrings('putPendingAuthorization', { state: p.state, provider: p.provider, user: p.user, agent: p.agent, sealedCodeVerifier: p.sealedCodeVerifier });
    assertTime('putPendingAuthorization: createdAt', p.createdAt);
    assertTime('putPendingAuthorization: expiresAt', p.expiresAt);
    assertTime('putPendingAuthorization: now', limits.now);
    assertMaxPending('putPendingAuthorization: maxPending', limits.maxPending);
    // Prune, count and insert under one lock, so racing puts (on any instance) cannot overshoot the limit.
    return this.#tx('putPendingAuthorization', LOCK_CLASS_WRITE, async (run) => {
      await run('oauthPendingPrune', [limits.now]);
      const held = (await run<{ n: number }>('oauthPendingCount', [])).rows[0]?.n ?? 0;
      if (held >= limits.maxPending) return false;
      const r = await run('oauthPendingInsert', [p.state, p.provider, p.user, p.agent, p.sealedCodeVerifier, p.createdAt, p.expiresAt]);
      return r.rowCount === 1;
    });
  }

  async takePendingAuthorization(state: string): Promise<StoredPendingAuthorization | undefined> {
    assertStrings('takePendingAuthorization', { state });
    const row = (await this.#q<OAuthPendingRow>('takePendingAuthorization', 'oauthPendingTake', [state])).rows[0];
    return row === undefined ? undefined : pendingAuthorizationFromRow(row);
  }

  async getUserTokenSet(user: string, provider: string): Promise<string | undefined> {
    assertStrings('getUserTokenSet', { user, provider });
    return (await this.#q<{ sealed: string }>('getUserTokenSet', 'oauthTokenGet', [user, provider])).rows[0]?.sealed;
  }

  async putUserTokenSet(user: string, provider: string, sealed: string, now: number): Promise<void> {
    assertStrings('putUserTokenSet', { user, provider, sealed });
    assertTime('putUserTokenSet: now', now);
    await this.#q('putUserTokenSet', 'oauthTokenPut', [user, provider, sealed, now]);
  }

  async deleteUserTokenSet(user: string, provider: string): Promise<boolean> {
    assertStrings('deleteUserTokenSet', { user, provider });
    return (await this.#q('deleteUserTokenSet', 'oauthTokenDelete', [user, provider])).rowCount === 1;
  }

  async listUserTokenSets(filter: { readonly user?: string; readonly provider?: string; readonly limit?: number } = {}): Promise<UserTokenSetInfo[]> {
    if (filter.limit !== undefined) assertLimit('listUserTokenSets: limit', filter.limit);
    const r = await this.#q<TokenSetInfoRow>('listUserTokenSets', 'oauthTokenList', [
      filter.user ?? null, filter.provider ?? null, filter.limit ?? 1000,
    ]);
    return r.rows.map(tokenSetInfoFromRow);
  }

  async listPins(agent: string): Promise<StoredPin[]> {
    assertStrings('listPins', { agent });
    return (await this.#q<PinRow>('listPins', 'pinList', [agent])).rows.map(pinFromRow);
  }

  async pinIfAbsent(pin: StoredPin): Promise<StoredPin> {
    assertStrings('pinIfAbsent', { agent: pin.agent, tool: pin.tool, hash: pin.hash, shape: pin.shape, definition: pin.definition, pinnedBy: pin.pinnedBy });
    assertTime('pinIfAbsent: pinnedAt', pin.pinnedAt);
    // Insert-or-keep, then read back: no transaction needed (a pin is only ever replaced by an approval).
    await this.#q('pinIfAbsent', 'pinInsert', [pin.agent, pin.tool, pin.hash, pin.shape, pin.definition, pin.pinnedAt, pin.pinnedBy]);
    const row = (await this.#q<PinRow>('pinIfAbsent', 'pinGet', [pin.agent, pin.tool])).rows[0];
    if (row === undefined) throw new BastionError('ERR_STORE', 'store: pinIfAbsent failed', { detail: { reason: 'vanished' } });
    return pinFromRow(row);
  }

  async listPendingPins(agent: string): Promise<StoredPendingPin[]> {
    assertStrings('listPendingPins', { agent });
    return (await this.#q<PendingPinRow>('listPendingPins', 'pinPendingList', [agent])).rows.map(pendingPinFromRow);
  }

  async putPendingPin(p: StoredPendingPin): Promise<boolean> {
    assertStrings('putPendingPin', { agent: p.agent, tool: p.tool, hash: p.hash, shape: p.shape, definition: p.definition, detail: p.detail });
    if (!PENDING_PIN_KINDS.includes(p.kind)) throw new TypeError('putPendingPin: kind must be one of changed, renamed, unapproved, flagged');
    assertTime('putPendingPin: detectedAt', p.detectedAt);
    const r = await this.#q('putPendingPin', 'pinPendingPut', [p.agent, p.tool, p.kind, p.hash, p.shape, p.definition, p.detail, p.detectedAt]);
    return r.rowCount === 1;
  }

  async removePendingPin(agent: string, tool: string): Promise<boolean> {
    assertStrings('removePendingPin', { agent, tool });
    return (await this.#q('removePendingPin', 'pinPendingRemove', [agent, tool])).rowCount === 1;
  }

  async approvePendingPin(agent: string, tool: string, hash: string, at: number, by: string): Promise<StoredPin | undefined> {
    assertStrings('approvePendingPin', { agent, tool, hash, by });
    assertTime('approvePendingPin: at', at);
    // Read, compare, pin and forget under one lock: a definition withheld again meanwhile is never pinned.
    return this.#tx('approvePendingPin', LOCK_CLASS_WRITE, async (run) => {
      const row = (await run<PendingPinRow>('pinPendingGet', [agent, tool])).rows[0];
      if (row === undefined || row.hash !== hash) return undefined;
      await run('pinPut', [agent, tool, row.hash, row.shape, row.definition, at, by]);
      await run('pinPendingRemove', [agent, tool]);
      return { agent, tool, hash: row.hash, shape: row.shape, definition: row.definition, pinnedAt: at, pinnedBy: by };
    });
  }

  async isolateAgent(rec: { id: string; agent: string; reason: string; by: string; at: number }): Promise<{ readonly record: StoredIsolation; readonly created: boolean }> {
    assertStrings('isolateAgent', { id: rec.id, agent: rec.agent, reason: rec.reason, by: rec.by });
    assertTime('isolateAgent: at', rec.at);
    // Insert-or-keep and read back under one lock: the partial unique index lets exactly one isolation be in force.
    return this.#tx('isolateAgent', LOCK_CLASS_WRITE, async (run) => {
      const created = (await run('isolationInsert', [rec.id, rec.agent, rec.reason, rec.by, rec.at])).rowCount === 1;
      const row = (await run<IsolationRow>('isolationCurrent', [rec.agent])).rows[0];
      if (row === undefined) throw new BastionError('ERR_STORE', 'store: isolateAgent failed', { detail: { reason: 'vanished' } });
      return { record: isolationFromRow(row), created };
    });
  }

  async restoreAgent(agent: string, opts: { at: number; by: string; reason: string }): Promise<StoredIsolation | undefined> {
    assertStrings('restoreAgent', { agent, by: opts.by, reason: opts.reason });
    assertTime('restoreAgent: at', opts.at);
    const row = (await this.#q<IsolationRow>('restoreAgent', 'isolationRestore', [opts.at, opts.by, opts.reason, agent])).rows[0];
    return row === undefined ? undefined : isolationFromRow(row);
  }

  async listIsolations(filter: { agent?: string; current?: boolean; limit?: number } = {}): Promise<StoredIsolation[]> {
    const limit = filter.limit ?? 1000;
    assertLimit('listIsolations: limit', limit);
    return (await this.#q<IsolationRow>('listIsolations', 'isolationList', [filter.agent ?? null, filter.current === true, limit])).rows.map(isolationFromRow);
  }

  async markSecretForRotation(mark: StoredRotationMark): Promise<void> {
    assertStrings('markSecretForRotation', { secret: mark.secret, agent: mark.agent, reason: mark.reason, by: mark.by });
    assertTime('markSecretForRotation: at', mark.at);
    await this.#q('markSecretForRotation', 'rotationMark', [mark.secret, mark.agent, mark.reason, mark.by, mark.at]);
  }

  async listRotationMarks(): Promise<StoredRotationMark[]> {
    return (await this.#q<RotationMarkRow>('listRotationMarks', 'rotationMarkList')).rows.map(rotationMarkFromRow);
  }

  async endSecretGrace(secretId: string, at: number): Promise<number> {
    assertStrings('endSecretGrace', { secretId });
    assertTime('endSecretGrace: at', at);
    // The vault generation moves with the versions, so every instance's vault cache re-reads them.
    return this.#tx('endSecretGrace', LOCK_CLASS_WRITE, async (run) => {
      const n = (await run('secretGraceEnd', [at, secretId])).rowCount ?? 0;
      if (n > 0) await run('vaultBump', []);
      return n;
    });
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      // Appends in flight finish (or fail) first; a pool ended under them would strand their callers.
      this.#ended = this.#auditTurn.then(() => this.#pool.end().catch(() => undefined));
    }
    await this.#ended;
  }
}
