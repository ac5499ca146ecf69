/**
 * The console's JSON endpoints under `/console/api/` (after sign-in, session
 * and CSRF checks in ./server.ts). Each handler returns an {@link ApiAnswer}:
 * the HTTP answer plus the decision and detail of the one audit record the
 * dispatcher writes. Handlers never put a secret value in an answer or a
 * record: secrets are shown by metadata only, and a value typed into the
 * console goes straight into the vault.
 */
import { allow, deny, type Decision } from '../decision.ts';
import { BastionError, isBastionError } from '../errors.ts';
import type { Gateway } from '../server/gateway.ts';
import { decideApprovalAsAdmin } from '../server/admin-api.ts';
import type { ApprovalRecord } from '../approvals/store.ts';
import { NO_FACTS, type PolicyFacts } from '../policy/engine.ts';
import type { AuditRecord } from '../audit/types.ts';
import { Secret } from '../util/secret.ts';
import { serializeSnapshot, takeSnapshot } from '../incidents/snapshot.ts';
import { ALERT_ACK_METHOD, isAlertRecord, parseAuditFilter, queryAudit } from './audit-query.ts';
import type { ChainStatus } from './chain-status.ts';

/** What a handler answers: status and JSON body, and the audit record's decision, outcome, target and detail. */
export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly decision: Decision;
  readonly outcome: 'ok' | 'denied' | 'error';
  readonly target?: string | null;
  readonly detail?: Record<string, unknown>;
  /** The record's method when it is not the route's (an acknowledgement is recorded as {@link ALERT_ACK_METHOD}). */
  readonly method?: string;
}

/** What a handler gets: the gateway, the signed-in admin, the query and the parsed JSON body (POST). */
export interface ApiRequest {
  readonly gateway: Gateway;
  /** The admin's name (`alice`; `admin` for an unnamed key). */
  readonly admin: string;
  readonly query: URLSearchParams;
  readonly body: Record<string, unknown>;
  /** Route parameters in order (`:id`, `:name`). */
  readonly params: readonly string[];
  readonly chain: ChainStatus;
  /** Tells the live event streams to refresh now (after a change). */
  readonly refresh: () => void;
}

const MAX_REASON = 500;
const STATUSES = new Set<ApprovalRecord['status']>(['pending', 'approved', 'denied', 'expired', 'used']);

const ok = (body: unknown, rule: string, reason = 'console.read', extra: Partial<ApiAnswer> = {}): ApiAnswer => ({ status: 200, body, decision: allow(reason, rule), outcome: 'ok', ...extra });
const bad = (message: string, extra: Partial<ApiAnswer> = {}): ApiAnswer => ({ status: 400, body: { error: message, code: 'ERR_CLI_USAGE' }, decision: deny('admin.bad_request', 'console'), outcome: 'denied', ...extra });
const notFound = (what: string, code: string, target: string | null = null): ApiAnswer => ({ status: 404, body: { error: `no such ${what} (${code})`, code }, decision: deny('console.not_found', 'console'), outcome: 'error', target });
const unavailable = (message: string): ApiAnswer => ({ status: 501, body: { error: message, code: 'ERR_CONSOLE_UNAVAILABLE' }, decision: deny('console.unavailable', 'console'), outcome: 'error' });

/** An optional string field of the body, at most `max` characters; undefined when absent, an error message when not a string. */
function stringField(body: Record<string, unknown>, key: string, max: number): string | undefined | { error: string } {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') return { error: `${key} must be a string` };
  if (v.length > max) return { error: `${key} must be at most ${max} characters` };
  return v;
}

function reasonOf(body: Record<string, unknown>): string | null | { error: string } {
  const r = stringField(body, 'reason', MAX_REASON);
  return r === undefined ? null : r;
}

// ------------------------------------------------------------------ approvals

/** The approval with what the admin needs to decide: the redacted arguments with their provenance, and the policy that asks. */
export function describeApproval(gateway: Gateway, a: ApprovalRecord): Record<string, unknown> {
  let args: unknown = null;
  let provenance: unknown = null;
  let conversation: unknown = null;
  try {
    const parsed = JSON.parse(a.argsPreview) as unknown;
    // With provenance traced the preview is {arguments, provenance, conversation} (src/mcp/call-stages.ts approvalPreview).
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && 'arguments' in parsed && 'provenance' in parsed) {
      const p = parsed as { arguments: unknown; provenance: unknown; conversation?: unknown };
      args = p.arguments;
      provenance = p.provenance;
      conversation = p.conversation ?? null;
    } else args = parsed;
  } catch {
    // A preview cut at 4096 characters is no longer JSON: shown as text.
    args = a.argsPreview;
  }
  const upstream = a.tool.includes('__') ? a.tool.slice(0, a.tool.indexOf('__')) : '';
  let policy: unknown = null;
  try {
    // The policy re-read now on what the preview tells (arguments, their provenance, the conversation's taint,
    // the tool's configured labels). Hosts and addresses inside the values are not re-extracted, so a condition
    // on them may read differently; the held call's own record names the rule that held it (detail.heldBy).
    const facts = factsOfPreview(gateway, a, provenance, conversation);
    const x = gateway.deps.policy.explain({
      agent: a.agent,
      action: 'tools/call',
      resource: { kind: 'tool', id: a.tool, upstream },
      ...(args !== null && typeof args === 'object' && !Array.isArray(args) ? { args } : {}),
      ...(facts === undefined ? {} : { facts }),
    });
    policy = { effect: x.effect, reason: x.reason, rule: x.rule, policies: x.determining.map((p) => ({ id: p.id, text: p.text })), approximate: facts !== undefined };
  } catch {
    policy = null;
  }
  return { ...a, arguments: args, provenance, conversation, policy };
}

/** Policy facts rebuilt from an approval preview that carries provenance; undefined when it carries none. */
function factsOfPreview(gateway: Gateway, a: ApprovalRecord, provenance: unknown, conversation: unknown): PolicyFacts | undefined {
  if (provenance === null || typeof provenance !== 'object' || Array.isArray(provenance)) return undefined;
  const byArg: Record<string, string[]> = {};
  const from = new Set<string>();
  for (const [k, v] of Object.entries(provenance as Record<string, unknown>)) {
    if (!Array.isArray(v)) continue;
    byArg[k] = v.filter((o): o is string => typeof o === 'string');
    for (const o of byArg[k]) from.add(o);
  }
  const c = (conversation ?? {}) as { tainted?: unknown; flagged?: unknown; sources?: unknown };
  const label = gateway.deps.labels?.labelOf(a.agent, a.tool);
  return {
    ...NO_FACTS,
    conversation: {
      tainted: c.tainted === true,
      flagged: c.flagged === true,
      sources: Array.isArray(c.sources) ? c.sources.filter((x): x is string => typeof x === 'string') : [],
      flaggedBy: [],
    },
    ...(label === undefined ? {} : { tool: { source: label.source, effects: label.effects } }),
    argsFrom: [...from],
    provenance: byArg,
  };
}

export async function listApprovals(r: ApiRequest): Promise<ApiAnswer> {
  const s = r.query.get('status');
  if (s !== null && s !== '' && !STATUSES.has(s as ApprovalRecord['status'])) return bad('status must be one of pending, approved, denied, expired, used');
  const list = await r.gateway.deps.approvals.list({ ...(s === null || s === '' ? {} : { status: s as ApprovalRecord['status'] }), limit: 200 });
  return ok({ approvals: list.map((a) => describeApproval(r.gateway, a)) }, 'approvals');
}

export async function decideApproval(r: ApiRequest, verdict: 'approved' | 'denied'): Promise<ApiAnswer> {
  const id = r.params[0] ?? '';
  const reason = reasonOf(r.body);
  if (reason !== null && typeof reason === 'object') return bad(reason.error, { target: id });
  const o = await decideApprovalAsAdmin(r.gateway, id, verdict, `console:${r.admin}`, reason);
  if (o.status === 200) r.refresh();
  return { status: o.status, body: o.body, decision: o.decision, outcome: o.outcome === 'ok' ? 'ok' : 'error', target: id, detail: o.detail };
}

// ------------------------------------------------------------------ audit

export async function auditList(r: ApiRequest): Promise<ApiAnswer> {
  const filter = parseAuditFilter(r.query);
  if (typeof filter === 'string') return bad(filter);
  const limitRaw = r.query.get('limit');
  const beforeRaw = r.query.get('before');
  const limit = limitRaw === null || limitRaw === '' ? 50 : Number(limitRaw);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500) return bad('limit must be an integer 1-500');
  const before = beforeRaw === null || beforeRaw === '' ? undefined : Number(beforeRaw);
  if (before !== undefined && (!Number.isSafeInteger(before) || before < 1)) return bad('before must be a positive integer (a seq)');
  const page = await queryAudit(r.gateway.store, filter, { ...(before === undefined ? {} : { before }), limit, scanLimit: 20_000 });
  return ok(page, 'audit');
}

export async function auditRecord(r: ApiRequest): Promise<ApiAnswer> {
  const raw = r.params[0] ?? '';
  const seq = Number(raw);
  if (!/^\d{1,15}$/.test(raw) || !Number.isSafeInteger(seq) || seq < 1) return bad('seq must be a positive integer');
  const [rec] = await r.gateway.store.readAudit(seq, 1);
  if (rec === undefined || rec.seq !== seq) return notFound('record', 'ERR_CONSOLE_NOT_FOUND', raw);
  return ok(rec, 'audit', 'console.read', { target: raw });
}

export async function chainStatus(r: ApiRequest): Promise<ApiAnswer> {
  return ok(await r.chain.check(), 'audit.chain');
}

// ------------------------------------------------------------------ agents

/** The agent's configured permissions, without its keys. */
function agentSummary(gateway: Gateway, name: string): Record<string, unknown> | undefined {
  const a = gateway.config.agents.get(name);
  if (a === undefined) return undefined;
  return {
    name: a.name,
    tools: a.tools,
    deny: a.deny,
    approve: a.approve,
    resources: a.resources,
    prompts: a.prompts,
    skillsets: a.skillsets,
    secrets: a.secrets,
    oauth: a.oauth,
    labels: a.labels,
    guards: a.guards,
    limits: a.limits,
    network: a.network,
    scope: a.scope,
    isolateUsers: a.isolateUsers,
    model: a.model === undefined ? null : { provider: a.model.provider, baseUrl: a.model.baseUrl.href, secret: a.model.secret ?? null },
    keys: a.keys.length,
    isolated: isolationsOf(gateway)?.isIsolated(a.name) ?? null,
  };
}

export function listAgents(r: ApiRequest): Promise<ApiAnswer> {
  const agents = [...r.gateway.config.agents.keys()].sort().map((n) => agentSummary(r.gateway, n));
  return Promise.resolve(ok({ agents }, 'agents'));
}

/** Whether `tool` may be listed and called by `agent`, as the gateway's policy engine decides it (the code `policy explain` runs). */
function toolVerdict(gateway: Gateway, agent: string, tool: string): Record<string, unknown> {
  const upstream = tool.includes('__') ? tool.slice(0, tool.indexOf('__')) : '';
  const listed = gateway.deps.policy.explain({ agent, action: 'tools/call', resource: { kind: 'tool', id: tool, upstream }, listing: true });
  const called = gateway.deps.policy.explain({ agent, action: 'tools/call', resource: { kind: 'tool', id: tool, upstream } });
  return {
    tool,
    visible: listed.effect !== 'deny',
    call: { effect: called.effect, reason: called.reason, rule: called.rule, policies: called.determining.map((p) => p.id) },
  };
}

export async function agentDetail(r: ApiRequest): Promise<ApiAnswer> {
  const name = r.params[0] ?? '';
  const summary = agentSummary(r.gateway, name);
  if (summary === undefined) return notFound('agent', 'ERR_CONSOLE_NOT_FOUND', name);
  const a = r.gateway.config.agents.get(name)!;
  const pins = await r.gateway.store.listPins(name);
  // Tools known by name: those pinned for the agent (seen in its catalogue) and the literal names in its config.
  const names = new Set<string>(pins.map((p) => p.tool));
  for (const t of [...a.tools, ...a.approve, ...a.deny]) if (!/[*?[\]{}]/.test(t)) names.add(t);
  const tools = [...names].sort().map((t) => toolVerdict(r.gateway, name, t));
  const vault = r.gateway.vault;
  const known = vault === undefined ? [] : await vault.list();
  const secrets = a.secrets.map((s) => {
    const info = known.find((k) => k.name === s);
    return info === undefined ? { name: s, stored: false } : { name: s, stored: true, hosts: info.hosts, version: info.version, lastUsedAt: info.lastUsedAt };
  });
  return ok(
    { ...summary, tools: summary.tools, effective: tools, secretsInfo: secrets, pins: pins.map((p) => ({ tool: p.tool, hash: p.hash.slice(0, 12), pinnedAt: p.pinnedAt, pinnedBy: p.pinnedBy })) },
    'agents',
    'console.read',
    { target: name },
  );
}

export function explainCall(r: ApiRequest): Promise<ApiAnswer> {
  const name = r.params[0] ?? '';
  if (!r.gateway.config.agents.has(name)) return Promise.resolve(notFound('agent', 'ERR_CONSOLE_NOT_FOUND', name));
  const tool = r.query.get('tool') ?? '';
  if (!/^[A-Za-z0-9_.\-/]{1,256}$/.test(tool)) return Promise.resolve(bad('tool must be an exposed tool name (letters, digits, _ . - /)', { target: name }));
  let args: unknown;
  const rawArgs = r.query.get('args');
  if (rawArgs !== null && rawArgs !== '') {
    if (rawArgs.length > 16 * 1024) return Promise.resolve(bad('args must be at most 16 KiB', { target: name }));
    try {
      args = JSON.parse(rawArgs);
    } catch {
      return Promise.resolve(bad('args is not valid JSON', { target: name }));
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return Promise.resolve(bad('args must be a JSON object', { target: name }));
  }
  const upstream = tool.includes('__') ? tool.slice(0, tool.indexOf('__')) : '';
  const x = r.gateway.deps.policy.explain({ agent: name, action: 'tools/call', resource: { kind: 'tool', id: tool, upstream }, ...(args === undefined ? {} : { args }) });
  return Promise.resolve(
    ok({ effect: x.effect, reason: x.reason, rule: x.rule, policies: x.determining.map((p) => ({ id: p.id, text: p.text })), errors: x.errors }, 'agents', 'console.read', { target: name }),
  );
}

// ------------------------------------------------------------------ secrets

export async function listSecrets(r: ApiRequest): Promise<ApiAnswer> {
  const vault = r.gateway.vault;
  const configured = [...r.gateway.config.secrets.values()].map((m) => ({ name: m.name, hosts: m.hosts ?? null, description: m.description ?? null }));
  const users = (name: string): string[] => [...r.gateway.config.agents.values()].filter((a) => a.secrets.includes(name)).map((a) => a.name);
  if (vault === undefined) return ok({ vault: false, secrets: [], configured }, 'vault');
  const list = await vault.list();
  return ok(
    {
      vault: true,
      secrets: list.map((s) => ({ name: s.name, hosts: s.hosts, header: s.header ?? null, version: s.version, createdAt: s.createdAt, rotatedAt: s.rotatedAt, lastUsedAt: s.lastUsedAt, agents: users(s.name) })),
      configured,
    },
    'vault',
  );
}

/** A vault error as an answer: the vault's own message names the field, never the value. */
function vaultError(err: unknown, target: string): ApiAnswer {
  if (isBastionError(err, 'ERR_VAULT_SECRET_EXISTS')) return { status: 409, body: { error: 'a live secret has this name (ERR_VAULT_SECRET_EXISTS)', code: 'ERR_VAULT_SECRET_EXISTS' }, decision: deny('admin.bad_request', 'vault'), outcome: 'error', target };
  if (isBastionError(err, 'ERR_VAULT_SECRET_UNKNOWN')) return notFound('secret', 'ERR_VAULT_SECRET_UNKNOWN', target);
  if (err instanceof TypeError || err instanceof RangeError) return bad(err.message, { target });
  throw err;
}

export async function addSecret(r: ApiRequest): Promise<ApiAnswer> {
  const vault = r.gateway.vault;
  if (vault === undefined) return unavailable('the vault is not open on this gateway');
  const name = stringField(r.body, 'name', 64);
  const value = r.body.value;
  const header = stringField(r.body, 'header', 256);
  const format = stringField(r.body, 'format', 256);
  const hosts = r.body.hosts;
  if (typeof name !== 'string') return bad('name is required: a string of at most 64 characters');
  if (typeof value !== 'string' || value.length === 0) return bad('value is required: a non-empty string', { target: name });
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > 64 || !hosts.every((h) => typeof h === 'string' && h.length > 0 && h.length <= 253)) {
    return bad('hosts must be a list of 1-64 host patterns', { target: name });
  }
  if (typeof header === 'object' || typeof format === 'object') return bad('header and format must be strings', { target: name });
  try {
    const info = await vault.add(name, new Secret(value), { hosts: hosts as string[], header, format });
    return ok({ name: info.name, hosts: info.hosts, version: info.version }, 'vault', 'vault.secret_added', { target: name, detail: { version: info.version } });
  } catch (err) {
    return vaultError(err, name);
  }
}

export async function rotateSecret(r: ApiRequest): Promise<ApiAnswer> {
  const vault = r.gateway.vault;
  if (vault === undefined) return unavailable('the vault is not open on this gateway');
  const name = r.params[0] ?? '';
  const value = r.body.value;
  if (typeof value !== 'string' || value.length === 0) return bad('value is required: a non-empty string', { target: name });
  try {
    const info = await vault.rotate(name, new Secret(value));
    return ok({ name: info.name, version: info.version, rotatedAt: info.rotatedAt }, 'vault', 'vault.secret_rotated', { target: name, detail: { version: info.version } });
  } catch (err) {
    return vaultError(err, name);
  }
}

export async function revokeSecret(r: ApiRequest): Promise<ApiAnswer> {
  const vault = r.gateway.vault;
  if (vault === undefined) return unavailable('the vault is not open on this gateway');
  const name = r.params[0] ?? '';
  try {
    await vault.revoke(name);
    return ok({ name, revoked: true }, 'vault', 'vault.secret_revoked', { target: name });
  } catch (err) {
    return vaultError(err, name);
  }
}

// ------------------------------------------------------------------ bans

export async function listBans(r: ApiRequest): Promise<ApiAnswer> {
  const all = r.query.get('all') === '1';
  const bans = await r.gateway.store.listBans({ ...(all ? {} : { activeAt: Date.now() }), limit: 500 });
  return ok({ bans }, 'bans');
}

export async function liftBan(r: ApiRequest): Promise<ApiAnswer> {
  const user = stringField(r.body, 'user', 256);
  const agent = stringField(r.body, 'agent', 256);
  if (typeof user !== 'string' || user === '') return bad('user is required');
  if (typeof agent === 'object') return bad(agent.error, { target: user });
  const lifted = await r.gateway.store.liftBans(user, { ...(agent === undefined ? {} : { agent }), at: Date.now(), by: `console:${r.admin}` });
  return ok({ user, lifted }, 'bans', 'ban.lifted', { target: user, detail: { lifted, ...(agent === undefined ? {} : { banAgent: agent }) } });
}

// ------------------------------------------------------------------ alerts

/** Alerts (audit records, see {@link isAlertRecord}) among the newest records, with whether each was acknowledged. */
export async function listAlerts(r: ApiRequest): Promise<ApiAnswer> {
  const store = r.gateway.store;
  const tip = (await store.lastAudit())?.seq ?? 0;
  const scan = 20_000;
  const alerts: AuditRecord[] = [];
  const acked = new Map<number, { by: string | null; at: string }>();
  for (let upTo = tip; upTo >= 1 && tip - upTo < scan; ) {
    const n = Math.min(1000, upTo);
    const page = await store.readAudit(upTo - n + 1, n);
    for (const rec of page) {
      if (rec.method === ALERT_ACK_METHOD && rec.decision?.effect === 'allow' && typeof rec.detail?.seq === 'number') acked.set(rec.detail.seq, { by: rec.agent, at: rec.time });
      else if (isAlertRecord(rec)) alerts.push(rec);
    }
    upTo -= n;
  }
  alerts.sort((a, b) => b.seq - a.seq);
  return ok({ alerts: alerts.slice(0, 500).map((a) => ({ ...a, acknowledged: acked.get(a.seq) ?? null })), scannedFrom: Math.max(1, tip - scan + 1) }, 'alerts');
}

export async function ackAlert(r: ApiRequest): Promise<ApiAnswer> {
  const raw = r.params[0] ?? '';
  const seq = Number(raw);
  if (!/^\d{1,15}$/.test(raw) || seq < 1) return bad('seq must be a positive integer');
  const [rec] = await r.gateway.store.readAudit(seq, 1);
  if (rec === undefined || rec.seq !== seq || !isAlertRecord(rec)) return notFound('alert', 'ERR_CONSOLE_NOT_FOUND', raw);
  const note = stringField(r.body, 'note', MAX_REASON);
  if (typeof note === 'object') return bad(note.error, { target: raw });
  // The acknowledgement is this request's own audit record (method console.alert.ack, detail.seq): shared by every instance.
  return ok({ seq, acknowledged: true }, 'alerts', 'alert.acknowledged', { target: raw, method: ALERT_ACK_METHOD, detail: { seq, ...(note === undefined ? {} : { note }) } });
}

// ------------------------------------------------------------------ incidents

/** The isolation service another module provides (src/incidents/isolation.ts), as the console calls it. */
export interface IsolationsPort {
  isIsolated(agent: string): boolean;
  isolate(agent: string, reason: string, by: string): Promise<unknown>;
  restore(agent: string, reason: string, by: string): Promise<unknown>;
  list(): Promise<unknown> | unknown;
}

/** The gateway's isolation service, when this build has one (looked up at run time). */
export function isolationsOf(gateway: Gateway): IsolationsPort | undefined {
  const i = (gateway as unknown as { isolations?: unknown }).isolations;
  if (i === null || typeof i !== 'object') return undefined;
  const p = i as Partial<IsolationsPort>;
  return typeof p.isIsolated === 'function' && typeof p.isolate === 'function' && typeof p.restore === 'function' && typeof p.list === 'function' ? (i as IsolationsPort) : undefined;
}

const NO_ISOLATION = 'incident response (agent isolation) is not available in this build';

export async function listIncidents(r: ApiRequest): Promise<ApiAnswer> {
  const iso = isolationsOf(r.gateway);
  if (iso === undefined) return unavailable(NO_ISOLATION);
  return ok({ isolations: await iso.list() }, 'incidents');
}

export async function incidentAction(r: ApiRequest, action: 'isolate' | 'restore' | 'snapshot'): Promise<ApiAnswer> {
  const agent = r.params[0] ?? '';
  const iso = isolationsOf(r.gateway);
  if (iso === undefined) return { ...unavailable(NO_ISOLATION), target: agent };
  if (!r.gateway.config.agents.has(agent)) return notFound('agent', 'ERR_CONSOLE_NOT_FOUND', agent);
  const reason = reasonOf(r.body);
  if (reason !== null && typeof reason === 'object') return bad(reason.error, { target: agent });
  if (action !== 'snapshot' && (reason === null || reason.trim() === '')) return bad('reason is required', { target: agent });
  const by = `console:${r.admin}`;
  try {
    if (action === 'snapshot') {
      // The forensic bundle `bastion incident snapshot` writes (src/incidents/snapshot.ts), with its digest.
      const snap = serializeSnapshot(await takeSnapshot(r.gateway.store, r.gateway.config, agent, by));
      return ok({ agent, action, sha256: snap.sha256, bytes: Buffer.byteLength(snap.text), snapshot: JSON.parse(snap.text) as unknown }, 'incidents', 'incident.snapshot', { target: agent, detail: { sha256: snap.sha256 } });
    }
    const result = action === 'isolate' ? await iso.isolate(agent, reason as string, by) : await iso.restore(agent, reason as string, by);
    r.refresh();
    return ok({ agent, action, result: result ?? null }, 'incidents', `incident.${action}`, { target: agent, detail: reason === null ? {} : { why: reason } });
  } catch (err) {
    if (err instanceof BastionError) {
      return { status: err.code === 'ERR_STORE' ? 503 : 409, body: { error: `${action} failed (${err.code})`, code: err.code }, decision: deny(err.code === 'ERR_STORE' ? 'store.error' : 'admin.bad_request', 'incidents'), outcome: 'error', target: agent };
    }
    throw err;
  }
}
