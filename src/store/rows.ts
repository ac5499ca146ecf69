/**
 * What the two SQL store adapters (./sqlite.ts, ./postgres.ts) share: the row
 * shapes of their common schema, the row → record mappers, the secret column
 * list, and the checks of the arguments they take.
 *
 * The row shapes are the same for both drivers because the schemas are
 * (./postgres-migrations.ts mirrors SQLite schema version 7 column by column):
 * - integers (epoch ms, seq, ids, versions, levels, counts) are JS numbers:
 *   `node:sqlite` returns INTEGER as a number (`readBigInts` is off), and the
 *   PostgreSQL pool parses BIGINT into a number, refusing one beyond 2^53
 *   (`parseInt8` in ./postgres.ts); INTEGER is a number in `pg` already;
 * - JSON (a secret's `hosts`) is stored as TEXT in both and parsed here;
 * - sealed values, PEM keys and digests are TEXT in both: no BLOB/BYTEA column
 *   (which would come back as `Uint8Array` from SQLite, `Buffer` from `pg`).
 * What differs stays in the adapters: SQL text and placeholders, audit rows and
 * checkpoints (SQLite aliases `key_id`), transactions and driver errors.
 */
import type { StoredPeer } from '../a2a/peer-store.ts';
import type { ApprovalRecord } from '../approvals/store.ts';
import type { StoredKey } from '../identity/key-store.ts';
import type { StoredPendingPin, StoredPin } from '../mcp/pin-store.ts';
import type { BanRecord } from '../model/ban-store.ts';
import type { StoredPendingAuthorization, UserTokenSetInfo } from '../oauth/store.ts';
import type { StoredPastedSecret } from '../vault/pasted-store.ts';
import type { StoredSecret, StoredSecretVersion } from '../vault/store.ts';

/** A row of `approvals`. `user_id` is `''` for an approval bound to no end user (rows before SQLite schema 5). */
export interface ApprovalRow {
  id: string;
  agent: string;
  user_id: string;
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

/** An approval row as a record; `user_id` `''` becomes `user: null`. */
export function approvalFromRow(row: ApprovalRow): ApprovalRecord {
  return {
    id: row.id,
    agent: row.agent,
    user: row.user_id === '' ? null : row.user_id,
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

/** A row of `pasted_secrets`; `hosts` is a JSON array of host patterns, `sealed` the sealed value (text). */
export interface PastedRow {
  id: string;
  token: string;
  agent: string;
  user: string;
  fingerprint: string;
  rule: string;
  hosts: string;
  sealed: string;
  created_at: number;
  last_used_at: number | null;
}

/**
 * A pasted-secret row as a record.
 * @throws SyntaxError when `hosts` is not JSON (a corrupted row).
 */
export function pastedFromRow(r: PastedRow): StoredPastedSecret {
  return {
    id: r.id,
    token: r.token,
    agent: r.agent,
    user: r.user,
    fingerprint: r.fingerprint,
    rule: r.rule,
    hosts: JSON.parse(r.hosts) as string[],
    sealed: r.sealed,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

/** A row of `bans`; times in epoch ms. */
export interface BanRow {
  id: number;
  agent: string;
  user: string;
  at: number;
  until: number;
  level: number;
  rule: string;
  reason: string;
  lifted_at: number | null;
  lifted_by: string | null;
}

/** A ban row as a record. */
export function banFromRow(r: BanRow): BanRecord {
  return {
    id: r.id,
    agent: r.agent,
    user: r.user,
    at: r.at,
    until: r.until,
    level: r.level,
    rule: r.rule,
    reason: r.reason,
    liftedAt: r.lifted_at,
    liftedBy: r.lifted_by,
  };
}

/** A row of `a2a_peers`; exactly one of `jwks_url` and `public_jwks` (JSON text, not parsed here) is set. */
export interface PeerRow {
  name: string;
  url: string;
  sender: string;
  jwks_url: string | null;
  public_jwks: string | null;
  inbound_token_digest: string;
  outbound_token_sealed: string | null;
  created_at: number;
}

/** A peer row as a record. */
export function peerFromRow(r: PeerRow): StoredPeer {
  return {
    name: r.name,
    url: r.url,
    sender: r.sender,
    jwksUrl: r.jwks_url,
    publicJwks: r.public_jwks,
    inboundTokenDigest: r.inbound_token_digest,
    outboundTokenSealed: r.outbound_token_sealed,
    createdAt: r.created_at,
  };
}

/** A row of `keys` (its `current` flag is not part of the record). */
export interface KeyRow {
  id: string;
  purpose: StoredKey['purpose'];
  alg: StoredKey['alg'];
  public_pem: string;
  private_pem: string;
  created_at: number;
}

/** A key row as a record. */
export function keyFromRow(row: KeyRow): StoredKey {
  return {
    id: row.id,
    purpose: row.purpose,
    alg: row.alg,
    publicKeyPem: row.public_pem,
    privateKeyPem: row.private_pem,
    createdAt: row.created_at,
  };
}

/**
 * A secret with its newest version, as {@link SECRET_COLUMNS} selects it;
 * `hosts` is a JSON array of host patterns.
 */
export interface SecretRow {
  id: string;
  name: string;
  hosts: string;
  header: string | null;
  format: string | null;
  version: number;
  created_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/**
 * Columns of a secret with its newest version (a {@link SecretRow}), from
 * `secrets s`; the same SQL in both dialects.
 */
export const SECRET_COLUMNS = `s.id, s.name, s.hosts, s.header, s.format, s.created_at, s.rotated_at, s.revoked_at, s.last_used_at,
  (SELECT MAX(v.version) FROM secret_versions v WHERE v.secret_id = s.id) AS version`;

/**
 * A secret row as a record.
 * @throws SyntaxError when `hosts` is not JSON (a corrupted row).
 */
export function secretFromRow(row: SecretRow): StoredSecret {
  return {
    id: row.id,
    name: row.name,
    hosts: JSON.parse(row.hosts) as string[],
    header: row.header,
    format: row.format,
    version: row.version,
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

/** A row of `secret_versions`; `sealed` is the sealed value (text), `expires_at` null while it does not expire. */
export interface SecretVersionRow {
  secret_id: string;
  version: number;
  sealed: string;
  created_at: number;
  expires_at: number | null;
}

/** A secret-version row as a record. */
export function secretVersionFromRow(row: SecretVersionRow): StoredSecretVersion {
  return { secretId: row.secret_id, version: row.version, sealed: row.sealed, createdAt: row.created_at, expiresAt: row.expires_at };
}

/** A row of `oauth_pending`; the code verifier is stored only sealed. */
export interface OAuthPendingRow {
  state: string;
  provider: string;
  user: string;
  agent: string;
  sealed_code_verifier: string;
  created_at: number;
  expires_at: number;
}

/** A pending-authorization row as a record. */
export function pendingAuthorizationFromRow(r: OAuthPendingRow): StoredPendingAuthorization {
  return {
    state: r.state,
    provider: r.provider,
    user: r.user,
    agent: r.agent,
    sealedCodeVerifier: r.sealed_code_verifier,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

/** The columns of `oauth_tokens` that list a token set (never its sealed value). */
export interface TokenSetInfoRow {
  user: string;
  provider: string;
  updated_at: number;
}

/** A token-set listing row as a record. */
export function tokenSetInfoFromRow(r: TokenSetInfoRow): UserTokenSetInfo {
  return { user: r.user, provider: r.provider, updatedAt: r.updated_at };
}

/** A row of `tool_pins`; `definition` is the pinned definition's JSON text, not parsed here. */
export interface PinRow {
  agent: string;
  tool: string;
  hash: string;
  shape: string;
  definition: string;
  pinned_at: number;
  pinned_by: string;
}

/** A pin row as a record. */
export function pinFromRow(r: PinRow): StoredPin {
  return { agent: r.agent, tool: r.tool, hash: r.hash, shape: r.shape, definition: r.definition, pinnedAt: r.pinned_at, pinnedBy: r.pinned_by };
}

/** A row of `tool_pins_pending` (a withheld definition). */
export interface PendingPinRow {
  agent: string;
  tool: string;
  kind: StoredPendingPin['kind'];
  hash: string;
  shape: string;
  definition: string;
  detail: string;
  detected_at: number;
}

/** A pending-pin row as a record. */
export function pendingPinFromRow(r: PendingPinRow): StoredPendingPin {
  return { agent: r.agent, tool: r.tool, kind: r.kind, hash: r.hash, shape: r.shape, definition: r.definition, detail: r.detail, detectedAt: r.detected_at };
}

/**
 * Checks an epoch-ms argument.
 * @throws RangeError `<name> must be an integer (epoch ms)` unless `n` is a safe integer.
 */
export function assertTime(name: string, n: number): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be an integer (epoch ms)`);
}

/**
 * Checks a row-count limit.
 * @throws RangeError `<name> must be a non-negative integer`.
 */
export function assertLimit(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer`);
}

/**
 * Checks that every value of `values` (keyed by argument name) is a string.
 * @throws TypeError `<operation>: <name> must be a string`.
 */
export function assertStrings(operation: string, values: Readonly<Record<string, unknown>>): void {
  for (const [name, v] of Object.entries(values)) if (typeof v !== 'string') throw new TypeError(`${operation}: ${name} must be a string`);
}
