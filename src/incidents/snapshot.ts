/**
 * The forensic bundle of one agent (`bastion incident snapshot`, `GET
 * /api/incidents/:agent/snapshot`): one JSON document holding what an
 * investigator needs, and nothing secret.
 *
 * Format `bastion.incident-snapshot/v1` (docs/incidents.md):
 * - `agent`, `createdAt` (ISO 8601), `createdBy`;
 * - `audit.records`: the agent's slice of the audit chain — every record whose
 *   principal is the agent, and the admin records about it (`detail.forAgent`,
 *   or an `incident.*` record targeting it) — each with `seq`, `prevHash`, `hash`;
 * - `audit.chain`: the proof: `head` (the last record's seq and hash),
 *   `checkpoint` (the latest signed checkpoint), `checkpointRecord` (the record
 *   it signs), `publicKeys` (keyId → SPKI PEM of the audit signing keys) and
 *   `verified` (the result of verifying the whole chain when the bundle was taken);
 *   {@link verifySnapshot} recomputes every record's hash and checks the checkpoint's signature;
 * - `config`: the agent's resolved config section; keys only as SHA-256 digests;
 * - `keys.storedDigests`: digests of keys generated for it;
 * - `pins`, `pendingPins`, `approvals`, `bans`, `isolations`;
 * - `secrets`: the names of the vault secrets it may use with their metadata
 *   (hosts, version, times; never a value), its OAuth providers and its pasted
 *   secrets' metadata; `rotationMarks`: those of them marked for emergency rotation;
 * - `sessions`: the session ids its audit records name.
 *
 * The file's SHA-256 is written beside it (`FILE.sha256`, `sha256sum` format).
 */
import type { AuditCheckpoint, AuditRecord } from '../audit/types.ts';
import { recordHash, verifyChain } from '../audit/chain.ts';
import { verifyAudit } from '../audit/log.ts';
import type { ResolvedAgent, ResolvedConfig } from '../config/types.ts';
import { BastionError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { keyIdOf, sha256Hex } from '../util/crypto.ts';
import { isolationRecord } from './isolation.ts';

/** The format tag of a bundle. */
export const SNAPSHOT_FORMAT = 'bastion.incident-snapshot/v1';

/** Records read per page of the audit log. */
const PAGE = 1000;

/** A forensic bundle (see the module doc for each field). */
export interface IncidentSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly agent: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly audit: {
    readonly records: readonly AuditRecord[];
    readonly chain: {
      readonly head: { readonly seq: number; readonly hash: string } | null;
      readonly checkpoint: AuditCheckpoint | null;
      readonly checkpointRecord: AuditRecord | null;
      readonly publicKeys: Readonly<Record<string, string>>;
      readonly verified: { readonly ok: boolean; readonly detail: unknown };
    };
  };
  readonly config: Readonly<Record<string, unknown>>;
  readonly keys: { readonly configuredDigests: readonly string[]; readonly storedDigests: readonly string[]; readonly unresolvedRefs: number };
  readonly pins: readonly unknown[];
  readonly pendingPins: readonly unknown[];
  readonly approvals: readonly unknown[];
  readonly bans: readonly unknown[];
  readonly isolations: readonly unknown[];
  readonly secrets: {
    readonly vault: readonly { readonly name: string; readonly live: boolean; readonly hosts?: readonly string[]; readonly version?: number; readonly createdAt?: number; readonly rotatedAt?: number | null; readonly lastUsedAt?: number | null }[];
    readonly oauthProviders: readonly string[];
    readonly pasted: readonly { readonly id: string; readonly user: string; readonly rule: string; readonly hosts: readonly string[]; readonly createdAt: number; readonly lastUsedAt: number | null }[];
  };
  readonly rotationMarks: readonly unknown[];
  readonly sessions: readonly string[];
}

/** The vault secrets `agent` may use, by name: its grants (`agents.X.secrets`), its model provider's key and its supervisor's. */
export function secretsOfAgent(agent: ResolvedAgent): string[] {
  const names = new Set(agent.secrets);
  if (agent.model?.secret !== undefined) names.add(agent.model.secret);
  if (agent.supervisor?.secret !== undefined) names.add(agent.supervisor.secret);
  return [...names].sort();
}

/** True when `r` belongs to `agent`'s slice: its own record, or an admin record about it. */
function inSlice(r: AuditRecord, agent: string): boolean {
  if (r.agent === agent) return true;
  const d = r.detail as { forAgent?: unknown } | undefined;
  if (d?.forAgent === agent) return true;
  return r.door === 'admin' && r.method.startsWith('incident.') && r.target === agent;
}

/** The agent's config section as JSON, keys replaced by their digests (a `Secret` prints `[redacted]` anyway). */
function configSection(agent: ResolvedAgent): Record<string, unknown> {
  const { keys: _keys, unresolvedKeyRefs: _refs, ...rest } = agent;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

/**
 * Takes the bundle of `agent` from `store` and `config`.
 * @throws BastionError `ERR_AGENT_UNKNOWN` (not in the config), `ERR_STORE`.
 */
export async function takeSnapshot(store: Store, config: ResolvedConfig, agentName: string, by: string, now: number = Date.now()): Promise<IncidentSnapshot> {
  const agent = config.agents.get(agentName);
  if (agent === undefined) throw new BastionError('ERR_AGENT_UNKNOWN', `no agent ${JSON.stringify(agentName).slice(0, 80)}`, { detail: { agent: agentName.slice(0, 64) } });
  const head = await store.lastAudit();
  const records: AuditRecord[] = [];
  const sessions = new Set<string>();
  if (head !== undefined) {
    for (let from = 1; from <= head.seq; ) {
      const page = await store.readAudit(from, PAGE);
      if (page.length === 0) break;
      for (const r of page) {
        if (r.seq > head.seq) break;
        if (!inSlice(r, agentName)) continue;
        records.push(r);
        if (typeof r.session === 'string' && r.agent === agentName) sessions.add(r.session);
      }
      from = (page[page.length - 1] as AuditRecord).seq + 1;
    }
  }
  const checkpoints = await store.listCheckpoints();
  const checkpoint = checkpoints.filter((c) => head === undefined || c.seq <= head.seq).at(-1) ?? null;
  const checkpointRecord = checkpoint === null ? null : ((await store.readAudit(checkpoint.seq, 1))[0] ?? null);
  const publicKeys: Record<string, string> = {};
  for (const k of await store.listKeys('audit')) {
    try {
      publicKeys[keyIdOf(k.publicKeyPem)] = k.publicKeyPem;
    } catch {
      // An unparseable key verifies nothing.
    }
  }
  let verified: IncidentSnapshot['audit']['chain']['verified'];
  try {
    const v = await verifyAudit(store, { checkpointEvery: config.audit.checkpointEvery });
    verified = { ok: v.ok, detail: v };
  } catch (err) {
    verified = { ok: false, detail: { error: err instanceof BastionError ? err.code : 'ERR_INTERNAL' } };
  }

  const vault: IncidentSnapshot['secrets']['vault'][number][] = [];
  for (const name of secretsOfAgent(agent)) {
    const s = await store.getSecretByName(name);
    vault.push(s === undefined ? { name, live: false } : { name, live: s.revokedAt === null, hosts: s.hosts, version: s.version, createdAt: s.createdAt, rotatedAt: s.rotatedAt, lastUsedAt: s.lastUsedAt });
  }
  const pasted = (await store.listPastedSecrets())
    .filter((p) => p.agent === agentName)
    .map((p) => ({ id: p.id, user: p.user, rule: p.rule, hosts: p.hosts, createdAt: p.createdAt, lastUsedAt: p.lastUsedAt }));
  const names = new Set(vault.map((v) => v.name));
  return {
    format: SNAPSHOT_FORMAT,
    agent: agentName,
    createdAt: new Date(now).toISOString(),
    createdBy: by,
    audit: {
      records,
      chain: { head: head === undefined ? null : { seq: head.seq, hash: head.hash }, checkpoint, checkpointRecord, publicKeys, verified },
    },
    config: configSection(agent),
    keys: { configuredDigests: agent.keys.map((k) => sha256Hex(k.reveal())), storedDigests: await store.agentKeyDigests(agentName), unresolvedRefs: agent.unresolvedKeyRefs.length },
    pins: await store.listPins(agentName),
    pendingPins: await store.listPendingPins(agentName),
    approvals: (await store.listApprovals({ limit: 100_000 })).filter((a) => a.agent === agentName),
    bans: (await store.listBans({ limit: 100_000 })).filter((b) => b.agent === agentName),
    isolations: (await store.listIsolations({ agent: agentName, limit: 100_000 })).map(isolationRecord),
    secrets: { vault, oauthProviders: [...agent.oauth], pasted },
    rotationMarks: (await store.listRotationMarks()).filter((m) => names.has(m.secret)),
    sessions: [...sessions].sort(),
  };
}

/** The bundle as the bytes written to its file (pretty JSON, one trailing newline), and their SHA-256 hex. */
export function serializeSnapshot(s: IncidentSnapshot): { readonly text: string; readonly sha256: string } {
  const text = `${JSON.stringify(s, null, 2)}\n`;
  return { text, sha256: sha256Hex(text) };
}

/**
 * Checks a bundle's proof offline: every record's hash recomputes from its
 * content (RFC 8785 canonical JSON, as `bastion audit verify` does), and the
 * checkpoint is validly signed by one of `publicKeys` (or those in the bundle)
 * over the record it names. Returns the first fault, or `{ok: true}`.
 */
export async function verifySnapshot(s: IncidentSnapshot, publicKeys?: ReadonlyMap<string, string>): Promise<{ ok: true } | { ok: false; reason: string; seq?: number }> {
  for (const r of s.audit.records) {
    let h: string;
    try {
      h = recordHash(r);
    } catch {
      return { ok: false, reason: 'record_unreadable', seq: r.seq };
    }
    if (h !== r.hash) return { ok: false, reason: 'hash_mismatch', seq: r.seq };
  }
  const { checkpoint, checkpointRecord } = s.audit.chain;
  if (checkpoint === null || checkpointRecord === null) return s.audit.records.length === 0 ? { ok: true } : { ok: false, reason: 'no_checkpoint' };
  const keys = publicKeys ?? new Map(Object.entries(s.audit.chain.publicKeys));
  const v = await verifyChain([checkpointRecord], [checkpoint], keys, { after: { seq: checkpointRecord.seq - 1, hash: checkpointRecord.prevHash } });
  return v.ok ? { ok: true } : { ok: false, reason: v.reason, seq: v.seq };
}
