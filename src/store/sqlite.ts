/**
 * The SQLite implementation of {@link Store}, on `node:sqlite`.
 *
 * Durability: WAL with `synchronous=FULL`, so a committed audit append survives
 * power loss. Audit appends of a file store run on a worker thread with its own
 * connection (./sqlite-audit-worker.ts), so the commit's fsync does not stall the
 * event loop; callers still resolve only when their records are durable. Concurrency: audit appends run under `BEGIN IMMEDIATE` (the write
 * lock is taken before the chain tip is read), so writers in several processes
 * serialize and cannot fork the chain; `busy_timeout` makes a second writer wait.
 * Approval transitions are single conditional `UPDATE`s, so exactly one caller
 * wins a race. The schema version is kept in `PRAGMA user_version`.
 */
import { mkdirSync, openSync, closeSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { BastionError } from '../errors.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from '../audit/types.ts';
import type { ApprovalRecord, Store, StoredKey } from './store.ts';
import { AuditWorker } from './sqlite-audit-client.ts';
import { appendAuditTx, guard, openConnection, rollback } from './sqlite-audit.ts';

/** The schema version this code writes and reads. */
const SCHEMA_VERSION = 1;

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

interface ApprovalRow {
  id: string;
  agent: string;
  tool: string;
  args_digest: string;
  args_preview: string;
  status: ApprovalRecord['status'];
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  reason: string | null;
}

interface KeyRow {
  id: string;
  purpose: StoredKey['purpose'];
  alg: StoredKey['alg'];
  public_pem: string;
  private_pem: string;
  created_at: number;
}

function toApproval(row: ApprovalRow): ApprovalRecord {
  return {
    id: row.id,
    agent: row.agent,
    tool: row.tool,
    argsDigest: row.args_digest,
    argsPreview: row.args_preview,
    status: row.status,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    decidedAt: row.decided_at,
    decidedBy: row.decided_by,
    reason: row.reason,
  };
}

function toKey(row: KeyRow): StoredKey {
  return {
    id: row.id,
    purpose: row.purpose,
    alg: row.alg,
    publicKeyPem: row.public_pem,
    privateKeyPem: row.private_pem,
    createdAt: row.created_at,
  };
}

function parseRecord(json: string): AuditRecord {
  return JSON.parse(json) as AuditRecord;
}

function assertLimit(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer`);
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
      auditTip: 'SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1',
      auditInsert: 'INSERT INTO audit (seq, json, hash) VALUES (?, ?, ?)',
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
      approvalInsert: `INSERT INTO approvals (id, agent, tool, args_digest, args_preview, status, created_at, expires_at, decided_at, decided_by, reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      approvalGet: 'SELECT * FROM approvals WHERE id = ?',
      approvalList: 'SELECT * FROM approvals ORDER BY created_at DESC, id DESC LIMIT ?',
      approvalListStatus: 'SELECT * FROM approvals WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT ?',
      approvalFindPending: `SELECT * FROM approvals WHERE agent = ? AND tool = ? AND args_digest = ? AND status = 'pending' AND expires_at > ?
        ORDER BY created_at, id LIMIT 1`,
      approvalDecide: `UPDATE approvals SET status = :status, decided_at = :at, decided_by = :by, reason = :reason,
          expires_at = CASE WHEN :status = 'approved' THEN :claimUntil ELSE expires_at END
        WHERE id = :id AND status = 'pending' AND expires_at > :at`,
      approvalConsume: `UPDATE approvals SET status = 'used' WHERE id = ? AND status = 'approved' AND expires_at > ?`,
      // One statement: the sub-select and the update run under one write lock, so two claimers cannot both win a row.
      approvalClaim: `UPDATE approvals SET status = 'used'
        WHERE id = (SELECT id FROM approvals WHERE agent = ? AND tool = ? AND args_digest = ? AND status = 'approved' AND expires_at > ?
                    ORDER BY created_at, id LIMIT 1)
          AND status = 'approved'
        RETURNING *`,
      approvalExpire: `UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'`,
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

  async appendAudit(events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    if (!Array.isArray(events)) throw new TypeError('appendAudit: events must be an array');
    if (events.length === 0) return [];
    if (this.#closed) throw new BastionError('ERR_STORE', 'store: closed');
    if (this.#auditWorker) return this.#auditWorker.append(events);
    return appendAuditTx(this.#db, events);
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
    return row === undefined ? undefined : toKey(row);
  }

  async listKeys(purpose: StoredKey['purpose']): Promise<StoredKey[]> {
    const rows = guard('listKeys', () => this.#s('keyList').all(purpose)) as unknown as KeyRow[];
    return rows.map(toKey);
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
      a.id, a.agent, a.tool, a.argsDigest, a.argsPreview, a.status, a.createdAt, a.expiresAt, a.decidedAt, a.decidedBy, a.reason,
    ];
    guard('createApproval', () => this.#s('approvalInsert').run(...values));
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = guard('getApproval', () => this.#s('approvalGet').get(id)) as ApprovalRow | undefined;
    return row === undefined ? undefined : toApproval(row);
  }

  async listApprovals(filter: { status?: ApprovalRecord['status']; limit?: number } = {}): Promise<ApprovalRecord[]> {
    if (filter.limit !== undefined) assertLimit('listApprovals: limit', filter.limit);
    const limit = filter.limit ?? -1; // SQLite: a negative LIMIT means no limit.
    const rows = guard('listApprovals', () =>
      filter.status === undefined ? this.#s('approvalList').all(limit) : this.#s('approvalListStatus').all(filter.status, limit),
    ) as unknown as ApprovalRow[];
    return rows.map(toApproval);
  }

  async findPendingApproval(agent: string, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined> {
    const row = guard('findPendingApproval', () => this.#s('approvalFindPending').get(agent, tool, argsDigest, now)) as ApprovalRow | undefined;
    return row === undefined ? undefined : toApproval(row);
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

  async claimApproval(agent: string, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined> {
    const row = guard('claimApproval', () => this.#s('approvalClaim').get(agent, tool, argsDigest, now)) as ApprovalRow | undefined;
    return row === undefined ? undefined : toApproval(row);
  }

  async expireApproval(id: string, now: number): Promise<boolean> {
    const result = guard('expireApproval', () => this.#s('approvalExpire').run(now, id));
    return Number(result.changes) === 1;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#auditWorker?.close();
    guard('close', () => this.#db.close());
  }
}
