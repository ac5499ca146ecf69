/**
 * The SQLite implementation of {@link Store} (every store port), on `node:sqlite`.
 *
 * Durability: WAL with `synchronous=FULL`, so a committed audit append survives
 * power loss. Audit appends of a file store run on a worker thread with its own
 * connection (./sqlite-audit-worker.ts), so the commit's fsync does not stall the
 * event loop; callers still resolve only when their records are durable. The
 * store only stores audit rows: the audit module chains and signs them
 * (../audit/append.ts). Concurrency: audit rows are stored under `BEGIN IMMEDIATE`
 * only if they extend the tip read inside the transaction (else
 * `ERR_AUDIT_CONFLICT`, and the audit module chains again), so writers in several
 * processes serialize and cannot fork the chain; `busy_timeout` makes a second writer wait.
 * Approval transitions are single conditional `UPDATE`s, so exactly one caller
 * wins a race; a pending OAuth authorization is taken with one `DELETE … RETURNING`,
 * so a state is returned once. The schema version is kept in `PRAGMA user_version`.
 */
import { mkdirSync, openSync, closeSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
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
import { AuditWorker } from './sqlite-audit-client.ts';
import { appendAuditRowsTx, guard, openConnection, rollback } from './sqlite-audit.ts';
import { appendAuditEvents } from '../audit/append.ts';
import type { AuditTip } from '../audit/append.ts';
import type { AuditPruneRows } from '../audit/retention-store.ts';
import { pruneAuditRowsTx } from './sqlite-audit-prune.ts';
import { SECRET_COLUMNS, approvalFromRow, assertLimit, assertStrings, assertTime, banFromRow, keyFromRow, pastedFromRow, peerFromRow, pendingAuthorizationFromRow, pendingPinFromRow, pinFromRow, secretFromRow, secretVersionFromRow, tokenSetInfoFromRow } from './rows.ts';
import type { ApprovalRow, BanRow, KeyRow, OAuthPendingRow, PastedRow, PeerRow, PendingPinRow, PinRow, SecretRow, SecretVersionRow, TokenSetInfoRow } from './rows.ts';

/** The schema version this code writes and reads. */
const SCHEMA_VERSION = 8;

/** Migrations by target version; `MIGRATIONS[v - 1]` brings the schema from `v - 1` to `v`. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    json TEXT NOT NULL,
    hash TEXT NOT NULL
  ) STRICT;
  CREATE TABLE audit_checkpoints (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
  ) STRICT;
  CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);
  CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    alg TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    current INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1))
  ) STRICT;
  CREATE UNIQUE INDEX keys_current ON keys (purpose) WHERE current = 1;
  CREATE TABLE agent_keys (
    agent TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent, digest)
  ) STRICT;
  CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    args_digest TEXT NOT NULL,
    args_preview TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'used')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    reason TEXT
  ) STRICT;
  CREATE INDEX approvals_match ON approvals (agent, tool, args_digest, status);
  CREATE INDEX approvals_created ON approvals (created_at);
  `,
  // 2: the vault (issue 3). Values are stored only sealed (src/vault/envelope.ts).
  `
  CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hosts TEXT NOT NULL,
    header TEXT,
    format TEXT,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER
  ) STRICT;
  CREATE UNIQUE INDEX secrets_live_name ON secrets (name) WHERE revoked_at IS NULL;
  CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (secret_id, version)
  ) STRICT;
  CREATE TABLE vault_items (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE vault_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
  ) STRICT;
  INSERT INTO vault_generation (id, generation) VALUES (1, 0);
  `,
  `
  CREATE TABLE pasted_secrets (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    user TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    hosts TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    UNIQUE (agent, user, fingerprint)
  ) STRICT;
  CREATE TABLE bans (
    id INTEGER PRIMARY KEY,
    agent TEXT NOT NULL,
    user TEXT NOT NULL,
    at INTEGER NOT NULL,
    until INTEGER NOT NULL,
    level INTEGER NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    lifted_at INTEGER,
    lifted_by TEXT
  ) STRICT;
  CREATE INDEX bans_subject ON bans (agent, user, until);
  `,
  `
  CREATE TABLE a2a_peers (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    sender TEXT NOT NULL,
    jwks_url TEXT,
    public_jwks TEXT,
    inbound_token_digest TEXT NOT NULL UNIQUE,
    outbound_token_sealed TEXT,
    created_at INTEGER NOT NULL,
    CHECK ((jwks_url IS NULL) <> (public_jwks IS NULL))
  ) STRICT;
  `,
  // 5: approvals are bound to the end user too (issue 11, class 5). Earlier rows had no user: ''.
  `
  ALTER TABLE approvals ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
  DROP INDEX approvals_match;
  CREATE INDEX approvals_match ON approvals (agent, user_id, tool, args_digest, status);
  `,
  // 6: per-user OAuth (issue 12). Code verifiers and token sets are stored only sealed (src/oauth/store.ts).
  `
  CREATE TABLE oauth_pending (
    state TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    user TEXT NOT NULL,
    agent TEXT NOT NULL,
    sealed_code_verifier TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX oauth_pending_expires ON oauth_pending (expires_at);
  CREATE TABLE oauth_tokens (
    user TEXT NOT NULL,
    provider TEXT NOT NULL,
    sealed TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user, provider)
  ) STRICT;
  CREATE INDEX oauth_tokens_provider ON oauth_tokens (provider);
  `,
  // 7: pinned tool definitions (issue 13, rug pulls; src/mcp/pin-store.ts) and the definitions withheld since.
  `
  CREATE TABLE tool_pins (
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    hash TEXT NOT NULL,
    shape TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned_at INTEGER NOT NULL,
    pinned_by TEXT NOT NULL,
    PRIMARY KEY (agent, tool)
  ) STRICT;
  CREATE INDEX tool_pins_shape ON tool_pins (agent, shape);
  CREATE TABLE tool_pins_pending (
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('changed', 'renamed', 'unapproved', 'flagged')),
    hash TEXT NOT NULL,
    shape TEXT NOT NULL,
    definition TEXT NOT NULL,
    detail TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    PRIMARY KEY (agent, tool)
  ) STRICT;
  `,
  // 8: isolated agents and secrets marked for emergency rotation (issue 15, incidents; src/incidents/isolation-store.ts): at most one isolation in force per agent.
  `
  CREATE TABLE isolations (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    reason TEXT NOT NULL,
    isolated_by TEXT NOT NULL,
    at INTEGER NOT NULL,
    restored_at INTEGER,
    restored_by TEXT,
    restore_reason TEXT
  ) STRICT;
  CREATE UNIQUE INDEX isolations_current ON isolations (agent) WHERE restored_at IS NULL;
  CREATE INDEX isolations_agent ON isolations (agent, at);
  CREATE TABLE secret_rotation_marks (
    secret_name TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    reason TEXT NOT NULL,
    marked_by TEXT NOT NULL,
    marked_at INTEGER NOT NULL
  ) STRICT;
  `,
];

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Create the folder and database when missing (default true). When false, a missing file is `ERR_STORE`. */
  readonly create?: boolean;
  /** Append audit records on a worker thread (default true for a file; always false for `:memory:`). */
  readonly auditWorker?: boolean;
}

/**
 * Opens (creating when missing: folder mode 0700, file mode 0600) the SQLite
 * store at `path`, applying schema migrations. `:memory:` gives a private
 * in-memory store. Throws `BastionError('ERR_STORE')`.
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  if (typeof path !== 'string' || path === '') throw new TypeError('openSqliteStore: path must be a non-empty string');
  const memory = path === ':memory:';
  const file = memory ? path : resolve(path);
  if (!memory) {
    if (!existsSync(file)) {
      if (options.create === false) {
        throw new BastionError('ERR_STORE', 'store: open failed', { detail: { reason: 'not_found', path: file } });
      }
      guard('open', () => {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        // Create the file ourselves so it is owner-only; SQLite gives -wal/-shm the same mode.
        closeSync(openSync(file, 'a', 0o600));
      });
    }
  }
  const db = openConnection(file);
  try {
    migrate(db);
    // A file store appends audit records on a worker thread (fsync off the event loop);
    // an in-memory database cannot be shared with a worker, so it appends in-thread.
    return new SqliteStore(db, memory || options.auditWorker === false ? undefined : new AuditWorker(file));
  } catch (err) {
    try {
      db.close();
    } catch {
      // Already failing; the first error is the one to report.
    }
    throw err;
  }
}

function migrate(db: DatabaseSync): void {
  guard('migrate', () => {
    const version = userVersion(db);
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new BastionError('ERR_STORE', 'store: migrate failed', {
        detail: { reason: 'schema_newer', version, supported: SCHEMA_VERSION },
      });
    }
    // IMMEDIATE: two processes opening a fresh file must not both create tables.
    db.exec('BEGIN IMMEDIATE');
    try {
      const current = userVersion(db);
      for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec('COMMIT');
    } catch (err) {
      rollback(db);
      throw err;
    }
  });
}

function userVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined;
  return row?.user_version ?? 0;
}

function parseRecord(json: string): AuditRecord {
  return JSON.parse(json) as AuditRecord;
}

class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #stmt: Readonly<Record<string, StatementSync>>;
  readonly #auditWorker: AuditWorker | undefined;
  #closed = false;

  constructor(db: DatabaseSync, auditWorker: AuditWorker | undefined) {
    this.#db = db;
    this.#auditWorker = auditWorker;
    const sql: Record<string, string> = {
      begin: 'BEGIN IMMEDIATE',
      commit: 'COMMIT',
      auditRead: 'SELECT json FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?',
      auditLast: 'SELECT json FROM audit ORDER BY seq DESC LIMIT 1',
      cpInsert: 'INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)',
      cpList: 'SELECT seq, hash, time, key_id AS keyId, signature FROM audit_checkpoints ORDER BY seq, id',
      keyCurrent: 'SELECT * FROM keys WHERE purpose = ? AND current = 1',
      keyList: 'SELECT * FROM keys WHERE purpose = ? ORDER BY created_at, id',
      keyRetire: 'UPDATE keys SET current = 0 WHERE purpose = ? AND current = 1',
      keyPut: `INSERT INTO keys (id, purpose, alg, public_pem, private_pem, created_at, current) VALUES (?, ?, ?, ?, ?, ?, 1)
        ON CONFLICT (id) DO UPDATE SET purpose = excluded.purpose, alg = excluded.alg, public_pem = excluded.public_pem,
          private_pem = excluded.private_pem, created_at = excluded.created_at, current = 1`,
      agentKeys: 'SELECT digest FROM agent_keys WHERE agent = ? ORDER BY created_at, digest',
      agentKeyAdd: 'INSERT INTO agent_keys (agent, digest, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      approvalInsert: `INSERT INTO approvals (id, agent, user_id, tool, args_digest, args_preview, status, created_at, expires_at, decided_at, decided_by, reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      approvalGet: 'SELECT * FROM approvals WHERE id = ?',
      approvalList: 'SELECT * FROM approvals ORDER BY created_at DESC, id DESC LIMIT ?',
      approvalListStatus: 'SELECT * FROM approvals WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT ?',
      approvalFindPending: `SELECT * FROM approvals WHERE agent = ? AND user_id = ? AND tool = ? AND args_digest = ? AND status = 'pending' AND expires_at > ?
        ORDER BY created_at, id LIMIT 1`,
      approvalDecide: `UPDATE approvals SET status = :status, decided_at = :at, decided_by = :by, reason = :reason,
          expires_at = CASE WHEN :status = 'approved' THEN :claimUntil ELSE expires_at END
        WHERE id = :id AND status = 'pending' AND expires_at > :at`,
      approvalConsume: `UPDATE approvals SET status = 'used' WHERE id = ? AND status = 'approved' AND expires_at > ?`,
      // One statement: the sub-select and the update run under one write lock, so two claimers cannot both win a row.
      approvalClaim: `UPDATE approvals SET status = 'used'
        WHERE id = (SELECT id FROM approvals WHERE agent = ? AND user_id = ? AND tool = ? AND args_digest = ? AND status = 'approved' AND expires_at > ?
                    ORDER BY created_at, id LIMIT 1)
          AND status = 'approved'
        RETURNING *`,
      approvalExpire: `UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'`,
      vaultGeneration: 'SELECT generation FROM vault_generation WHERE id = 1',
      vaultBump: 'UPDATE vault_generation SET generation = generation + 1 WHERE id = 1',
      secretLiveByName: `SELECT ${SECRET_COLUMNS} FROM secrets s WHERE s.name = ? AND s.revoked_at IS NULL`,
      secretLiveById: `SELECT ${SECRET_COLUMNS} FROM secrets s WHERE s.id = ? AND s.revoked_at IS NULL`,
      secretList: `SELECT ${SECRET_COLUMNS} FROM secrets s WHERE s.revoked_at IS NULL ORDER BY s.name`,
      secretInsert: `INSERT INTO secrets (id, name, hosts, header, format, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
      secretVersionInsert: `INSERT INTO secret_versions (secret_id, version, sealed, created_at, expires_at) VALUES (?, ?, ?, ?, NULL)`,
      // Expire versions below :below at :at, keeping an earlier expiry.
      secretVersionsExpire: `UPDATE secret_versions SET expires_at = :at
        WHERE secret_id = :id AND version < :below AND (expires_at IS NULL OR expires_at > :at)`,
      secretRotated: 'UPDATE secrets SET rotated_at = ? WHERE id = ?',
      secretRevoke: 'UPDATE secrets SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
      secretVersionsValid: `SELECT v.secret_id, v.version, v.sealed, v.created_at, v.expires_at
        FROM secret_versions v JOIN secrets s ON s.id = v.secret_id
        WHERE s.revoked_at IS NULL AND (v.expires_at IS NULL OR v.expires_at > ?)
        ORDER BY v.secret_id, v.version`,
      secretTouch: 'UPDATE secrets SET last_used_at = :at WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :at)',
      vaultItemGet: 'SELECT value FROM vault_items WHERE name = ?',
      vaultItemInsert: 'INSERT INTO vault_items (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
      pastedInsert: `INSERT INTO pasted_secrets (id, token, agent, user, fingerprint, rule, hosts, sealed, created_at, last_used_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (agent, user, fingerprint) DO NOTHING`,
      pastedByFingerprint: 'SELECT * FROM pasted_secrets WHERE agent = ? AND user = ? AND fingerprint = ?',
      pastedByToken: 'SELECT * FROM pasted_secrets WHERE token = ?',
      pastedList: `SELECT * FROM pasted_secrets WHERE (:agent IS NULL OR agent = :agent) AND (:user IS NULL OR user = :user)
        ORDER BY created_at DESC, id LIMIT :limit`,
      pastedHosts: 'UPDATE pasted_secrets SET hosts = ? WHERE id = ?',
      pastedTouch: 'UPDATE pasted_secrets SET last_used_at = :at WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :at)',
      banCount: 'SELECT COUNT(*) AS n FROM bans WHERE agent = ? AND user = ? AND at > ? AND lifted_at IS NULL',
      banInsert: 'INSERT INTO bans (agent, user, at, until, level, rule, reason) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *',
      banActive: 'SELECT * FROM bans WHERE agent = ? AND user = ? AND until > ? AND lifted_at IS NULL ORDER BY until DESC LIMIT 1',
      banList: `SELECT * FROM bans WHERE (:user IS NULL OR user = :user) AND (:active IS NULL OR (until > :active AND lifted_at IS NULL))
        ORDER BY at DESC, id DESC LIMIT :limit`,
      banLift: `UPDATE bans SET lifted_at = :at, lifted_by = :by
        WHERE user = :user AND (:agent IS NULL OR agent = :agent) AND lifted_at IS NULL AND until > :at`,
      peerInsert: `INSERT INTO a2a_peers (name, url, sender, jwks_url, public_jwks, inbound_token_digest, outbound_token_sealed, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      peerGet: 'SELECT * FROM a2a_peers WHERE name = ?',
      peerByDigest: 'SELECT * FROM a2a_peers WHERE inbound_token_digest = ?',
      peerList: 'SELECT * FROM a2a_peers ORDER BY name',
      peerSetOutbound: 'UPDATE a2a_peers SET outbound_token_sealed = ? WHERE name = ?',
      peerRemove: 'DELETE FROM a2a_peers WHERE name = ?',
      oauthPendingPrune: 'DELETE FROM oauth_pending WHERE expires_at <= ?',
      oauthPendingCount: 'SELECT COUNT(*) AS n FROM oauth_pending',
      oauthPendingInsert: `INSERT INTO oauth_pending (state, provider, user, agent, sealed_code_verifier, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (state) DO NOTHING`,
      // One statement: of concurrent takers, on any connection, exactly one gets the row.
      oauthPendingTake: 'DELETE FROM oauth_pending WHERE state = ? RETURNING *',
      oauthTokenGet: 'SELECT sealed FROM oauth_tokens WHERE user = ? AND provider = ?',
      oauthTokenPut: `INSERT INTO oauth_tokens (user, provider, sealed, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (user, provider) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
      oauthTokenDelete: 'DELETE FROM oauth_tokens WHERE user = ? AND provider = ?',
      oauthTokenList: `SELECT user, provider, updated_at FROM oauth_tokens
        WHERE (:user IS NULL OR user = :user) AND (:provider IS NULL OR provider = :provider)
        ORDER BY user, provider LIMIT :limit`,
      pinList: 'SELECT * FROM tool_pins WHERE agent = ? ORDER BY tool',
      pinGet: 'SELECT * FROM tool_pins WHERE agent = ? AND tool = ?',
      pinInsert: `INSERT INTO tool_pins (agent, tool, hash, shape, definition, pinned_at, pinned_by) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (agent, tool) DO NOTHING`,
      pinPut: `INSERT INTO tool_pins (agent, tool, hash, shape, definition, pinned_at, pinned_by) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (agent, tool) DO UPDATE SET hash = excluded.hash, shape = excluded.shape, definition = excluded.definition,
          pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by`,
      pinPendingList: 'SELECT * FROM tool_pins_pending WHERE agent = ? ORDER BY tool',
      pinPendingGet: 'SELECT * FROM tool_pins_pending WHERE agent = ? AND tool = ?',
      // One statement: a definition already withheld for the same reason is not a new detection (changes = 0).
      pinPendingPut: `INSERT INTO tool_pins_pending (agent, tool, kind, hash, shape, definition, detail, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (agent, tool) DO UPDATE SET kind = excluded.kind, hash = excluded.hash, shape = excluded.shape, definition = excluded.definition,
          detail = excluded.detail, detected_at = excluded.detected_at
        WHERE tool_pins_pending.hash <> excluded.hash OR tool_pins_pending.kind <> excluded.kind`,
      pinPendingRemove: 'DELETE FROM tool_pins_pending WHERE agent = ? AND tool = ?',
      isolationInsert: `INSERT INTO isolations (id, agent, reason, isolated_by, at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (agent) WHERE restored_at IS NULL DO NOTHING`,
      isolationCurrent: 'SELECT * FROM isolations WHERE agent = ? AND restored_at IS NULL',
      isolationRestore: `UPDATE isolations SET restored_at = ?, restored_by = ?, restore_reason = ? WHERE agent = ? AND restored_at IS NULL RETURNING *`,
      isolationList: `SELECT * FROM isolations WHERE (:agent IS NULL OR agent = :agent) AND (:current = 0 OR restored_at IS NULL)
        ORDER BY at DESC, id DESC LIMIT :limit`,
      rotationMark: `INSERT INTO secret_rotation_marks (secret_name, agent, reason, marked_by, marked_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (secret_name) DO UPDATE SET agent = excluded.agent, reason = excluded.reason, marked_by = excluded.marked_by, marked_at = excluded.marked_at`,
      rotationMarkList: 'SELECT * FROM secret_rotation_marks ORDER BY secret_name',
      // Only superseded versions still in their grace (expires_at set and later than :at) end now; the current version (NULL) stays.
      secretGraceEnd: 'UPDATE secret_versions SET expires_at = ? WHERE secret_id = ? AND expires_at IS NOT NULL AND expires_at > ?',
    };
    const stmt: Record<string, StatementSync> = {};
    guard('prepare', () => {
      for (const [name, text] of Object.entries(sql)) stmt[name] = db.prepare(text);
    });
    this.#stmt = stmt;
  }

  #s(name: string): StatementSync {
    if (this.#closed) throw new BastionError('ERR_STORE', 'store: closed');
    return this.#stmt[name]!;
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction; driver failures become ERR_STORE, other errors (TypeError on bad input) pass through. */
  #transaction<T>(operation: string, fn: () => T): T {
    guard(operation, () => this.#s('begin').run());
    try {
      const result = fn();
      guard(operation, () => this.#s('commit').run());
      return result;
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
  }

  /** Chains through the audit module (../audit/append.ts); this adapter only stores the rows. */
  async appendAudit(events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    return appendAuditEvents(this, events);
  }

  /** Audit retention (../audit/retention-store.ts): one `BEGIN IMMEDIATE` transaction, ./sqlite-audit-prune.ts. */
  async pruneAudit(rows: (tip: AuditTip | undefined) => AuditPruneRows): Promise<AuditPruneRows> {
    return pruneAuditRowsTx(this.#db, rows);
  }

  async appendAuditRecords(records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    if (!Array.isArray(records) || !Array.isArray(checkpoints)) throw new TypeError('appendAuditRecords: records and checkpoints must be arrays');
    if (records.length === 0 && checkpoints.length === 0) return;
    if (this.#closed) throw new BastionError('ERR_STORE', 'store: closed');
    if (this.#auditWorker) return this.#auditWorker.append(records, checkpoints);
    appendAuditRowsTx(this.#db, records, checkpoints);
  }

  async readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    if (!Number.isSafeInteger(fromSeq)) throw new RangeError('readAudit: fromSeq must be an integer');
    assertLimit('readAudit: limit', limit);
    const rows = guard('readAudit', () => this.#s('auditRead').all(fromSeq, limit)) as { json: string }[];
    return guard('readAudit', () => rows.map((r) => parseRecord(r.json)));
  }

  async lastAudit(): Promise<AuditRecord | undefined> {
    const row = guard('lastAudit', () => this.#s('auditLast').get()) as { json: string } | undefined;
    return row === undefined ? undefined : guard('lastAudit', () => parseRecord(row.json));
  }

  async appendCheckpoint(cp: AuditCheckpoint): Promise<void> {
    guard('appendCheckpoint', () => this.#s('cpInsert').run(cp.seq, cp.hash, cp.time, cp.keyId, cp.signature));
  }

  async listCheckpoints(): Promise<AuditCheckpoint[]> {
    const rows = guard('listCheckpoints', () => this.#s('cpList').all()) as unknown as AuditCheckpoint[];
    return rows.map((r) => ({ seq: r.seq, hash: r.hash, time: r.time, keyId: r.keyId, signature: r.signature }));
  }

  async getKey(purpose: StoredKey['purpose']): Promise<StoredKey | undefined> {
    const row = guard('getKey', () => this.#s('keyCurrent').get(purpose)) as KeyRow | undefined;
    return row === undefined ? undefined : keyFromRow(row);
  }

  async listKeys(purpose: StoredKey['purpose']): Promise<StoredKey[]> {
    const rows = guard('listKeys', () => this.#s('keyList').all(purpose)) as unknown as KeyRow[];
    return rows.map(keyFromRow);
  }

  async putKey(key: StoredKey): Promise<void> {
    this.#transaction('putKey', () => {
      guard('putKey', () => {
        this.#s('keyRetire').run(key.purpose);
        this.#s('keyPut').run(key.id, key.purpose, key.alg, key.publicKeyPem, key.privateKeyPem, key.createdAt);
      });
    });
  }

  async agentKeyDigests(agent: string): Promise<string[]> {
    const rows = guard('agentKeyDigests', () => this.#s('agentKeys').all(agent)) as { digest: string }[];
    return rows.map((r) => r.digest);
  }

  async addAgentKeyDigest(agent: string, digest: string, createdAt: number): Promise<void> {
    guard('addAgentKeyDigest', () => this.#s('agentKeyAdd').run(agent, digest, createdAt));
  }

  async createApproval(a: ApprovalRecord): Promise<void> {
    const values: SQLInputValue[] = [
      a.id, a.agent, a.user ?? '', a.tool, a.argsDigest, a.argsPreview, a.status, a.createdAt, a.expiresAt, a.decidedAt, a.decidedBy, a.reason,
    ];
    guard('createApproval', () => this.#s('approvalInsert').run(...values));
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = guard('getApproval', () => this.#s('approvalGet').get(id)) as ApprovalRow | undefined;
    return row === undefined ? undefined : approvalFromRow(row);
  }

  async listApprovals(filter: { status?: ApprovalRecord['status']; limit?: number } = {}): Promise<ApprovalRecord[]> {
    if (filter.limit !== undefined) assertLimit('listApprovals: limit', filter.limit);
    const limit = filter.limit ?? -1; // SQLite: a negative LIMIT means no limit.
    const rows = guard('listApprovals', () =>
      filter.status === undefined ? this.#s('approvalList').all(limit) : this.#s('approvalListStatus').all(filter.status, limit),
    ) as unknown as ApprovalRow[];
    return rows.map(approvalFromRow);
  }

  async findPendingApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined> {
    const row = guard('findPendingApproval', () => this.#s('approvalFindPending').get(agent, user ?? '', tool, argsDigest, now)) as ApprovalRow | undefined;
    return row === undefined ? undefined : approvalFromRow(row);
  }

  async decideApproval(
    id: string,
    d: { status: 'approved' | 'denied'; by: string; reason: string | null; at: number; claimUntil: number },
  ): Promise<boolean> {
    if (d.status !== 'approved' && d.status !== 'denied') throw new TypeError('decideApproval: status must be approved or denied');
    const result = guard('decideApproval', () =>
      this.#s('approvalDecide').run({ id, status: d.status, at: d.at, by: d.by, reason: d.reason, claimUntil: d.claimUntil }),
    );
    return Number(result.changes) === 1;
  }

  async consumeApproval(id: string, now: number): Promise<boolean> {
    const result = guard('consumeApproval', () => this.#s('approvalConsume').run(id, now));
    return Number(result.changes) === 1;
  }

  async claimApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined> {
    const row = guard('claimApproval', () => this.#s('approvalClaim').get(agent, user ?? '', tool, argsDigest, now)) as ApprovalRow | undefined;
    return row === undefined ? undefined : approvalFromRow(row);
  }

  async expireApproval(id: string, now: number): Promise<boolean> {
    const result = guard('expireApproval', () => this.#s('approvalExpire').run(now, id));
    return Number(result.changes) === 1;
  }

  async vaultGeneration(): Promise<number> {
    const row = guard('vaultGeneration', () => this.#s('vaultGeneration').get()) as { generation: number } | undefined;
    if (row === undefined) throw new BastionError('ERR_STORE', 'store: vaultGeneration failed', { detail: { reason: 'missing_row' } });
    return row.generation;
  }

  async createSecret(secret: NewSecret): Promise<void> {
    if (typeof secret.name !== 'string' || typeof secret.id !== 'string') throw new TypeError('createSecret: id and name must be strings');
    assertTime('createSecret: createdAt', secret.createdAt);
    const hosts = JSON.stringify([...secret.hosts]);
    this.#transaction('createSecret', () => {
      // Checked under the write lock; the partial unique index is the backstop.
      if (guard('createSecret', () => this.#s('secretLiveByName').get(secret.name)) !== undefined) {
        throw new BastionError('ERR_VAULT_SECRET_EXISTS', `vault: a secret named ${secret.name} exists`, { detail: { name: secret.name } });
      }
      guard('createSecret', () => {
        this.#s('secretInsert').run(secret.id, secret.name, hosts, secret.header, secret.format, secret.createdAt);
        this.#s('secretVersionInsert').run(secret.id, 1, secret.sealed, secret.createdAt);
        this.#s('vaultBump').run();
      });
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
    return this.#transaction('rotateSecret', () =>
      guard('rotateSecret', () => {
        const row = this.#s('secretLiveById').get(secretId) as SecretRow | undefined;
        if (row === undefined || row.version + 1 !== version.version) return false;
        this.#s('secretVersionInsert').run(secretId, version.version, version.sealed, version.createdAt);
        this.#s('secretVersionsExpire').run({ id: secretId, below: version.version, at: graceUntil });
        this.#s('secretRotated').run(version.createdAt, secretId);
        this.#s('vaultBump').run();
        return true;
      }),
    );
  }

  async revokeSecret(secretId: string, at: number): Promise<boolean> {
    assertTime('revokeSecret: at', at);
    return this.#transaction('revokeSecret', () =>
      guard('revokeSecret', () => {
        if (Number(this.#s('secretRevoke').run(at, secretId).changes) !== 1) return false;
        this.#s('secretVersionsExpire').run({ id: secretId, below: Number.MAX_SAFE_INTEGER, at });
        this.#s('vaultBump').run();
        return true;
      }),
    );
  }

  async getSecretByName(name: string): Promise<StoredSecret | undefined> {
    const row = guard('getSecretByName', () => this.#s('secretLiveByName').get(name)) as SecretRow | undefined;
    return row === undefined ? undefined : guard('getSecretByName', () => secretFromRow(row));
  }

  async listSecrets(): Promise<StoredSecret[]> {
    const rows = guard('listSecrets', () => this.#s('secretList').all()) as unknown as SecretRow[];
    return guard('listSecrets', () => rows.map(secretFromRow));
  }

  async listValidSecretVersions(now: number): Promise<StoredSecretVersion[]> {
    assertTime('listValidSecretVersions: now', now);
    const rows = guard('listValidSecretVersions', () => this.#s('secretVersionsValid').all(now)) as unknown as SecretVersionRow[];
    return rows.map(secretVersionFromRow);
  }

  async touchSecret(secretId: string, at: number): Promise<void> {
    assertTime('touchSecret: at', at);
    guard('touchSecret', () => this.#s('secretTouch').run({ id: secretId, at }));
  }

  async getVaultItem(name: string): Promise<string | undefined> {
    const row = guard('getVaultItem', () => this.#s('vaultItemGet').get(name)) as { value: string } | undefined;
    return row?.value;
  }

  async putVaultItemIfAbsent(name: string, value: string): Promise<string> {
    if (typeof name !== 'string' || typeof value !== 'string') throw new TypeError('putVaultItemIfAbsent: name and value must be strings');
    // Items are never changed once stored, so insert-or-ignore then read back needs no transaction.
    guard('putVaultItemIfAbsent', () => this.#s('vaultItemInsert').run(name, value));
    const stored = await this.getVaultItem(name);
    if (stored === undefined) throw new BastionError('ERR_STORE', 'store: putVaultItemIfAbsent failed', { detail: { reason: 'vanished', name } });
    return stored;
  }

  async putPastedSecret(secret: StoredPastedSecret): Promise<StoredPastedSecret> {
    assertTime('putPastedSecret: createdAt', secret.createdAt);
    guard('putPastedSecret', () =>
      this.#s('pastedInsert').run(secret.id, secret.token, secret.agent, secret.user, secret.fingerprint, secret.rule, JSON.stringify([...secret.hosts]), secret.sealed, secret.createdAt),
    );
    const row = guard('putPastedSecret', () => this.#s('pastedByFingerprint').get(secret.agent, secret.user, secret.fingerprint)) as PastedRow | undefined;
    if (row === undefined) throw new BastionError('ERR_STORE', 'store: putPastedSecret failed', { detail: { reason: 'vanished' } });
    return pastedFromRow(row);
  }

  async getPastedSecretByToken(token: string): Promise<StoredPastedSecret | undefined> {
    const row = guard('getPastedSecretByToken', () => this.#s('pastedByToken').get(token)) as PastedRow | undefined;
    return row === undefined ? undefined : pastedFromRow(row);
  }

  async listPastedSecrets(filter: { agent?: string; user?: string; limit?: number } = {}): Promise<StoredPastedSecret[]> {
    const rows = guard('listPastedSecrets', () =>
      this.#s('pastedList').all({ agent: filter.agent ?? null, user: filter.user ?? null, limit: filter.limit ?? 1000 }),
    ) as unknown as PastedRow[];
    return rows.map(pastedFromRow);
  }

  async touchPastedSecret(id: string, at: number): Promise<void> {
    assertTime('touchPastedSecret: at', at);
    guard('touchPastedSecret', () => this.#s('pastedTouch').run({ id, at }));
  }

  async setPastedSecretHosts(id: string, hosts: readonly string[]): Promise<boolean> {
    const r = guard('setPastedSecretHosts', () => this.#s('pastedHosts').run(JSON.stringify([...hosts]), id));
    return Number(r.changes) > 0;
  }

  async addBan(offence: { agent: string; user: string; at: number; rule: string; reason: string }, durationsMs: readonly number[], forgetAfterMs: number): Promise<BanRecord> {
    assertTime('addBan: at', offence.at);
    if (durationsMs.length === 0) throw new RangeError('addBan: durationsMs must not be empty');
    return this.#transaction('addBan', () =>
      guard('addBan', () => {
        const prior = (this.#s('banCount').get(offence.agent, offence.user, offence.at - forgetAfterMs) as { n: number }).n;
        const level = prior + 1;
        const duration = durationsMs[Math.min(level, durationsMs.length) - 1] as number;
        const row = this.#s('banInsert').get(offence.agent, offence.user, offence.at, offence.at + duration, level, offence.rule, offence.reason) as unknown as BanRow;
        return banFromRow(row);
      }),
    );
  }

  async activeBan(agent: string, user: string, now: number): Promise<BanRecord | undefined> {
    const row = guard('activeBan', () => this.#s('banActive').get(agent, user, now)) as BanRow | undefined;
    return row === undefined ? undefined : banFromRow(row);
  }

  async listBans(filter: { activeAt?: number; user?: string; limit?: number } = {}): Promise<BanRecord[]> {
    const rows = guard('listBans', () =>
      this.#s('banList').all({ user: filter.user ?? null, active: filter.activeAt ?? null, limit: filter.limit ?? 1000 }),
    ) as unknown as BanRow[];
    return rows.map(banFromRow);
  }

  async liftBans(user: string, opts: { agent?: string; at: number; by: string }): Promise<number> {
    assertTime('liftBans: at', opts.at);
    const r = guard('liftBans', () => this.#s('banLift').run({ user, agent: opts.agent ?? null, at: opts.at, by: opts.by }));
    return Number(r.changes);
  }

  async addPeer(peer: StoredPeer): Promise<boolean> {
    if (typeof peer.name !== 'string' || typeof peer.inboundTokenDigest !== 'string') throw new TypeError('addPeer: name and inboundTokenDigest must be strings');
    if ((peer.jwksUrl === null) === (peer.publicJwks === null)) throw new TypeError('addPeer: exactly one of jwksUrl and publicJwks must be set');
    assertTime('addPeer: createdAt', peer.createdAt);
    const r = guard('addPeer', () =>
      this.#s('peerInsert').run(peer.name, peer.url, peer.sender, peer.jwksUrl, peer.publicJwks, peer.inboundTokenDigest, peer.outboundTokenSealed, peer.createdAt),
    );
    return Number(r.changes) === 1;
  }

  async getPeer(name: string): Promise<StoredPeer | undefined> {
    const row = guard('getPeer', () => this.#s('peerGet').get(name)) as PeerRow | undefined;
    return row === undefined ? undefined : peerFromRow(row);
  }

  async getPeerByInboundDigest(digest: string): Promise<StoredPeer | undefined> {
    const row = guard('getPeerByInboundDigest', () => this.#s('peerByDigest').get(digest)) as PeerRow | undefined;
    return row === undefined ? undefined : peerFromRow(row);
  }

  async listPeers(): Promise<StoredPeer[]> {
    const rows = guard('listPeers', () => this.#s('peerList').all()) as unknown as PeerRow[];
    return rows.map(peerFromRow);
  }

  async setPeerOutboundToken(name: string, sealed: string): Promise<boolean> {
    if (typeof sealed !== 'string') throw new TypeError('setPeerOutboundToken: sealed must be a string');
    const r = guard('setPeerOutboundToken', () => this.#s('peerSetOutbound').run(sealed, name));
    return Number(r.changes) === 1;
  }

  async removePeer(name: string): Promise<boolean> {
    const r = guard('removePeer', () => this.#s('peerRemove').run(name));
    return Number(r.changes) === 1;
  }

  async putPendingAuthorization(p: StoredPendingAuthorization, limits: { readonly maxPending: number; readonly now: number }): Promise<boolean> {
    assertStrings('putPendingAuthorization', { state: p.state, provider: p.provider, user: p.user, agent: p.agent, sealedCodeVerifier: p.sealedCodeVerifier });
    assertTime('putPendingAuthorization: createdAt', p.createdAt);
    assertTime('putPendingAuthorization: expiresAt', p.expiresAt);
    assertTime('putPendingAuthorization: now', limits.now);
    assertMaxPending('putPendingAuthorization: maxPending', limits.maxPending);
    // Prune, count and insert under one write lock, so racing puts cannot overshoot the limit.
    return this.#transaction('putPendingAuthorization', () =>
      guard('putPendingAuthorization', () => {
        this.#s('oauthPendingPrune').run(limits.now);
        const held = (this.#s('oauthPendingCount').get() as { n: number }).n;
        if (held >= limits.maxPending) return false;
        const r = this.#s('oauthPendingInsert').run(p.state, p.provider, p.user, p.agent, p.sealedCodeVerifier, p.createdAt, p.expiresAt);
        return Number(r.changes) === 1;
      }),
    );
  }

  async takePendingAuthorization(state: string): Promise<StoredPendingAuthorization | undefined> {
    assertStrings('takePendingAuthorization', { state });
    const row = guard('takePendingAuthorization', () => this.#s('oauthPendingTake').get(state)) as OAuthPendingRow | undefined;
    return row === undefined ? undefined : pendingAuthorizationFromRow(row);
  }

  async getUserTokenSet(user: string, provider: string): Promise<string | undefined> {
    assertStrings('getUserTokenSet', { user, provider });
    const row = guard('getUserTokenSet', () => this.#s('oauthTokenGet').get(user, provider)) as { sealed: string } | undefined;
    return row?.sealed;
  }

  async putUserTokenSet(user: string, provider: string, sealed: string, now: number): Promise<void> {
    assertStrings('putUserTokenSet', { user, provider, sealed });
    assertTime('putUserTokenSet: now', now);
    guard('putUserTokenSet', () => this.#s('oauthTokenPut').run(user, provider, sealed, now));
  }

  async deleteUserTokenSet(user: string, provider: string): Promise<boolean> {
    assertStrings('deleteUserTokenSet', { user, provider });
    const r = guard('deleteUserTokenSet', () => this.#s('oauthTokenDelete').run(user, provider));
    return Number(r.changes) === 1;
  }

  async listUserTokenSets(filter: { readonly user?: string; readonly provider?: string; readonly limit?: number } = {}): Promise<UserTokenSetInfo[]> {
    if (filter.limit !== undefined) assertLimit('listUserTokenSets: limit', filter.limit);
    const rows = guard('listUserTokenSets', () =>
      this.#s('oauthTokenList').all({ user: filter.user ?? null, provider: filter.provider ?? null, limit: filter.limit ?? 1000 }),
    ) as unknown as TokenSetInfoRow[];
    return rows.map(tokenSetInfoFromRow);
  }

  async listPins(agent: string): Promise<StoredPin[]> {
    assertStrings('listPins', { agent });
    const rows = guard('listPins', () => this.#s('pinList').all(agent)) as unknown as PinRow[];
    return rows.map(pinFromRow);
  }

  async pinIfAbsent(pin: StoredPin): Promise<StoredPin> {
    assertStrings('pinIfAbsent', { agent: pin.agent, tool: pin.tool, hash: pin.hash, shape: pin.shape, definition: pin.definition, pinnedBy: pin.pinnedBy });
    assertTime('pinIfAbsent: pinnedAt', pin.pinnedAt);
    // Insert-or-keep, then read back: no transaction needed (a pin is only ever replaced by an approval).
    const row = guard('pinIfAbsent', () => {
      this.#s('pinInsert').run(pin.agent, pin.tool, pin.hash, pin.shape, pin.definition, pin.pinnedAt, pin.pinnedBy);
      return this.#s('pinGet').get(pin.agent, pin.tool);
    }) as PinRow | undefined;
    if (row === undefined) throw new BastionError('ERR_STORE', 'store: pinIfAbsent failed', { detail: { reason: 'vanished' } });
    return pinFromRow(row);
  }

  async listPendingPins(agent: string): Promise<StoredPendingPin[]> {
    assertStrings('listPendingPins', { agent });
    const rows = guard('listPendingPins', () => this.#s('pinPendingList').all(agent)) as unknown as PendingPinRow[];
    return rows.map(pendingPinFromRow);
  }

  async putPendingPin(p: StoredPendingPin): Promise<boolean> {
    assertStrings('putPendingPin', { agent: p.agent, tool: p.tool, hash: p.hash, shape: p.shape, definition: p.definition, detail: p.detail });
    if (!PENDING_PIN_KINDS.includes(p.kind)) throw new TypeError('putPendingPin: kind must be one of changed, renamed, unapproved, flagged');
    assertTime('putPendingPin: detectedAt', p.detectedAt);
    const r = guard('putPendingPin', () => this.#s('pinPendingPut').run(p.agent, p.tool, p.kind, p.hash, p.shape, p.definition, p.detail, p.detectedAt));
    return Number(r.changes) === 1;
  }

  async removePendingPin(agent: string, tool: string): Promise<boolean> {
    assertStrings('removePendingPin', { agent, tool });
    const r = guard('removePendingPin', () => this.#s('pinPendingRemove').run(agent, tool));
    return Number(r.changes) === 1;
  }

  async approvePendingPin(agent: string, tool: string, hash: string, at: number, by: string): Promise<StoredPin | undefined> {
    assertStrings('approvePendingPin', { agent, tool, hash, by });
    assertTime('approvePendingPin: at', at);
    // Read, compare, pin and forget under one write lock: a definition withheld again meanwhile is never pinned.
    return this.#transaction('approvePendingPin', () =>
      guard('approvePendingPin', () => {
        const row = this.#s('pinPendingGet').get(agent, tool) as PendingPinRow | undefined;
        if (row === undefined || row.hash !== hash) return undefined;
        this.#s('pinPut').run(agent, tool, row.hash, row.shape, row.definition, at, by);
        this.#s('pinPendingRemove').run(agent, tool);
        return { agent, tool, hash: row.hash, shape: row.shape, definition: row.definition, pinnedAt: at, pinnedBy: by };
      }),
    );
  }

  async isolateAgent(rec: { id: string; agent: string; reason: string; by: string; at: number }): Promise<{ readonly record: StoredIsolation; readonly created: boolean }> {
    assertStrings('isolateAgent', { id: rec.id, agent: rec.agent, reason: rec.reason, by: rec.by });
    assertTime('isolateAgent: at', rec.at);
    // Insert-or-keep, then read back: the partial unique index lets exactly one isolation be in force.
    return this.#transaction('isolateAgent', () =>
      guard('isolateAgent', () => {
        const created = Number(this.#s('isolationInsert').run(rec.id, rec.agent, rec.reason, rec.by, rec.at).changes) === 1;
        const row = this.#s('isolationCurrent').get(rec.agent) as IsolationRow | undefined;
        if (row === undefined) throw new BastionError('ERR_STORE', 'store: isolateAgent failed', { detail: { reason: 'vanished' } });
        return { record: isolationFromRow(row), created };
      }),
    );
  }

  async restoreAgent(agent: string, opts: { at: number; by: string; reason: string }): Promise<StoredIsolation | undefined> {
    assertStrings('restoreAgent', { agent, by: opts.by, reason: opts.reason });
    assertTime('restoreAgent: at', opts.at);
    const row = guard('restoreAgent', () => this.#s('isolationRestore').get(opts.at, opts.by, opts.reason, agent)) as IsolationRow | undefined;
    return row === undefined ? undefined : isolationFromRow(row);
  }

  async listIsolations(filter: { agent?: string; current?: boolean; limit?: number } = {}): Promise<StoredIsolation[]> {
    const limit = filter.limit ?? 1000;
    assertLimit('listIsolations: limit', limit);
    const rows = guard('listIsolations', () =>
      this.#s('isolationList').all({ agent: filter.agent ?? null, current: filter.current === true ? 1 : 0, limit }),
    ) as unknown as IsolationRow[];
    return rows.map(isolationFromRow);
  }

  async markSecretForRotation(mark: StoredRotationMark): Promise<void> {
    assertStrings('markSecretForRotation', { secret: mark.secret, agent: mark.agent, reason: mark.reason, by: mark.by });
    assertTime('markSecretForRotation: at', mark.at);
    guard('markSecretForRotation', () => this.#s('rotationMark').run(mark.secret, mark.agent, mark.reason, mark.by, mark.at));
  }

  async listRotationMarks(): Promise<StoredRotationMark[]> {
    const rows = guard('listRotationMarks', () => this.#s('rotationMarkList').all()) as unknown as RotationMarkRow[];
    return rows.map(rotationMarkFromRow);
  }

  async endSecretGrace(secretId: string, at: number): Promise<number> {
    assertStrings('endSecretGrace', { secretId });
    assertTime('endSecretGrace: at', at);
    // The vault generation moves with the versions, so every instance's vault cache re-reads them.
    return this.#transaction('endSecretGrace', () =>
      guard('endSecretGrace', () => {
        const n = Number(this.#s('secretGraceEnd').run(at, secretId, at).changes);
        if (n > 0) this.#s('vaultBump').run();
        return n;
      }),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#auditWorker?.close();
    guard('close', () => this.#db.close());
  }
}
