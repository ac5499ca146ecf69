/**
 * Pinned tool definitions: protection against "rug pulls", an MCP server that
 * changes a tool's description or schema after it was trusted (a harmless tool
 * that later tells the model to read ~/.ssh and pass it along), or renames a
 * trusted tool. Each tool's definition — exposed name, title, description,
 * inputSchema, outputSchema, annotations — is hashed (SHA-256 over its RFC 8785
 * canonical JSON) and pinned per agent and exposed name the first time the
 * agent's catalogue lists it (config `pinning.mode: first-use`), or when an admin
 * approves it (`bastion tools approve`, and always in mode `manual`).
 *
 * A tool is withheld — not listed, and called it answers like an unknown tool —
 * when its definition differs from its pin (`tool.pin_changed`), when it is a
 * pinned tool of the agent under a new name (same definition apart from the name,
 * the old name gone: `tool.pin_renamed`), when it was never approved in mode
 * `manual` (`tool.pin_unapproved`), or when, before its first pinning, its
 * description or schema text was flagged by the injection detector or carried
 * hidden characters (`tool.pin_flagged`, config `pinning.scanDescriptions`).
 * Withheld definitions are written to the store (so `bastion tools diff` shows
 * them while the gateway runs) and each detection is audited once (method
 * `tools/pin`) and raised as an admin alert. A store failure withholds every tool
 * (fail closed).
 *
 * {@link judgeTools} is the pure core; {@link PinGate} adds the store port, the
 * audit record and the alert. docs/pinning.md is the operator's page.
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AdminAlert, AlertSeverity } from '../alerts/notifier.ts';
import { canonicalJson } from '../audit/canonical.ts';
import type { AuditEvent } from '../audit/types.ts';
import { allow, deny } from '../decision.ts';
import { detectPromptAttacks } from '../detect/prompt-attacks.ts';
import { sha256Hex } from '../util/crypto.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import type { Catalogue, Entry } from './catalogue.ts';
import type { PendingPinKind, PinStore, StoredPendingPin, StoredPin } from './pin-store.ts';

/** Detector rules that do not flag a tool description (it legitimately tells the model how to use the tool). */
const DESCRIPTION_EXEMPT: ReadonlySet<string> = new Set(['injection.response-directive']);

/** Config `pinning` (src/config/types.ts). */
export interface PinningConfig {
  readonly mode: 'first-use' | 'manual' | 'off';
  readonly scanDescriptions: boolean;
}

/** The fields of a tool definition that are pinned, as the agent sees them (name rewritten, hidden characters stripped from the description). */
export const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/** A tool's pinned fields, their canonical JSON and hashes. */
export interface PinCandidate {
  /** The exposed name. */
  readonly tool: string;
  readonly upstream: string;
  /** The pinned fields (absent ones left out). */
  readonly definition: Readonly<Record<string, unknown>>;
  /** Canonical JSON (RFC 8785) of `definition`; plain `JSON.stringify` for a definition that is not I-JSON (it is flagged). */
  readonly canonical: string;
  /** SHA-256 hex of `canonical`. */
  readonly hash: string;
  /** SHA-256 hex of the canonical JSON without `name`: the same for the same tool under another name. */
  readonly shape: string;
  /** Flags found by the description scan (`attack:<rule>`, `hidden:<kind>`, `not_json`), empty when clean or not scanned. */
  readonly flags: readonly string[];
}

/** What {@link judgeTools} decided for one tool. */
export type PinVerdict =
  | { readonly action: 'admit'; readonly candidate: PinCandidate }
  | { readonly action: 'pin'; readonly candidate: PinCandidate }
  | { readonly action: 'withhold'; readonly kind: PendingPinKind; readonly candidate: PinCandidate; readonly pinnedHash?: string; readonly renamedFrom?: string };

/** A detection or a first-use pinning, as {@link PinGate.admit} reports it. */
export type PinEvent =
  | { readonly kind: PendingPinKind; readonly tool: string; readonly upstream: string; readonly hash: string; readonly pinnedHash?: string; readonly renamedFrom?: string; readonly flags?: readonly string[] }
  | { readonly kind: 'pinned'; readonly tools: readonly { readonly tool: string; readonly hash: string }[] }
  | { readonly kind: 'unavailable'; readonly code: string };

/** What {@link PinGate.admit} returns: the catalogue without the withheld tools, which those are, and what was new. */
export interface Admission {
  readonly catalogue: Catalogue;
  /** Exposed names withheld, with why. */
  readonly withheld: readonly { readonly tool: string; readonly reason: `tool.pin_${PendingPinKind | 'unavailable'}` }[];
  /** New detections (audited and alerted once) and first-use pins. */
  readonly events: readonly PinEvent[];
}

/** Strings of at most this many characters are scanned; longer text is scanned in its first part only (the detector is linear, this bounds the work per tool). */
const MAX_SCAN_CHARS = 64 * 1024;
/** Depth to which schemas are walked for `description`/`title` text. */
const MAX_SCAN_DEPTH = 32;

/** The pinned fields of a tool, absent ones left out. */
export function pinnedDefinition(item: Tool): Record<string, unknown> {
  const src = item as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of PINNED_FIELDS) if (src[f] !== undefined) out[f] = src[f];
  return out;
}

/** The text a description scan reads: title, description, annotations.title, and every `description`/`title` string inside the input and output schemas. */
export function definitionTexts(definition: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const k of ['title', 'description'] as const) if (typeof definition[k] === 'string') out.push(definition[k]);
  const ann = definition.annotations;
  if (ann !== null && typeof ann === 'object' && typeof (ann as { title?: unknown }).title === 'string') out.push((ann as { title: string }).title);
  const walk = (v: unknown, depth: number): void => {
    if (depth > MAX_SCAN_DEPTH || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'description' || k === 'title') && typeof x === 'string') out.push(x);
      else walk(x, depth + 1);
    }
  };
  walk(definition.inputSchema, 0);
  walk(definition.outputSchema, 0);
  return out;
}

/**
 * Scans a definition's text with the injection detector (context `tool_output`:
 * a description is text a tool server wrote for the model) and takes the
 * catalogue's hidden-character kinds. Returns sorted, distinct flags. A detector
 * failure is a flag (`scan_error`): fail closed.
 */
export function scanDefinition(definition: Readonly<Record<string, unknown>>, hidden: readonly string[]): string[] {
  const flags = new Set<string>(hidden.map((k) => `hidden:${k}`));
  for (const text of definitionTexts(definition)) {
    try {
      for (const f of detectPromptAttacks(text.length > MAX_SCAN_CHARS ? text.slice(0, MAX_SCAN_CHARS) : text, { context: 'tool_output' })) {
        // A description is addressed to the model by nature ("returns the answer", "use this to…"): the
        // rule for answers dictated to the model is not a sign of hidden instructions there.
        if (!DESCRIPTION_EXEMPT.has(f.rule)) flags.add(`attack:${f.rule}`);
      }
    } catch {
      flags.add('scan_error');
    }
  }
  return [...flags].sort();
}

/**
 * The candidate pin of a catalogue entry: its definition, canonical JSON and
 * hashes, and (when `scan`) the description scan's flags. A definition that is
 * not I-JSON (a lone surrogate) is hashed over its `JSON.stringify` form and
 * flagged `not_json`.
 */
export function pinCandidate(entry: Entry<Tool>, scan: boolean): PinCandidate {
  const definition = pinnedDefinition(entry.item);
  const { name: _name, ...nameless } = definition;
  let canonical: string;
  let shapeJson: string;
  const flags: string[] = [];
  try {
    canonical = canonicalJson(definition);
    shapeJson = canonicalJson(nameless);
  } catch {
    canonical = JSON.stringify(definition);
    shapeJson = JSON.stringify(nameless);
    flags.push('not_json');
  }
  if (scan) flags.push(...scanDefinition(definition, entry.hidden));
  return { tool: entry.exposed, upstream: entry.upstream, definition, canonical, hash: sha256Hex(canonical), shape: sha256Hex(shapeJson), flags: [...new Set(flags)].sort() };
}

/**
 * The pure core: what happens to each tool of the catalogue, given the agent's
 * pins. In order: the pinned definition → admit; a pin with another hash →
 * withhold `changed`; no pin, but a pin of the agent with the same definition
 * apart from the name whose tool is not in the catalogue → withhold `renamed`;
 * mode `manual` → withhold `unapproved`; flagged by the scan → withhold
 * `flagged`; else (first use) → pin. Candidates are judged in the given order.
 */
export function judgeTools(candidates: readonly PinCandidate[], pins: ReadonlyMap<string, StoredPin>, mode: 'first-use' | 'manual'): PinVerdict[] {
  const listed = new Set(candidates.map((c) => c.tool));
  const byShape = new Map<string, StoredPin>();
  for (const p of [...pins.values()].sort((a, b) => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0))) {
    if (!listed.has(p.tool) && !byShape.has(p.shape)) byShape.set(p.shape, p);
  }
  return candidates.map((c): PinVerdict => {
    const pin = pins.get(c.tool);
    if (pin !== undefined) return pin.hash === c.hash ? { action: 'admit', candidate: c } : { action: 'withhold', kind: 'changed', candidate: c, pinnedHash: pin.hash };
    const renamed = byShape.get(c.shape);
    if (renamed !== undefined) return { action: 'withhold', kind: 'renamed', candidate: c, pinnedHash: renamed.hash, renamedFrom: renamed.tool };
    if (mode === 'manual') return { action: 'withhold', kind: 'unapproved', candidate: c };
    if (c.flags.length > 0) return { action: 'withhold', kind: 'flagged', candidate: c };
    return { action: 'pin', candidate: c };
  });
}

/** Who an admission is for: the audit record's principal and session. */
export interface AdmissionContext {
  readonly agent: string;
  readonly user: string | null;
  readonly session: string | null;
}

/** What a {@link PinGate} needs. */
export interface PinGateOptions {
  readonly store: PinStore;
  readonly config: PinningConfig;
  /** Appends an audit record (durable when it resolves). A failure is not retried: the tool stays withheld. */
  readonly audit: (event: AuditEvent) => Promise<unknown>;
  /** Admin alerts (src/alerts/notifier.ts); without one, detections are only audited. */
  readonly alerts?: { notify(alert: AdminAlert): void } | undefined;
  /** Clock, epoch ms (tests). */
  readonly now?: () => number;
  /**
   * The cluster bus (src/cluster/bus.ts): a message on `pins` (`{agent, tool}`,
   * published by whoever approved a definition: `bastion tools approve`) tells
   * {@link PinGate.onChange} listeners (the agent's sessions, which drop their
   * cached catalogue and tell the client its tool list changed).
   */
  readonly bus?: ClusterBus | undefined;
}

/**
 * Tells every instance on `bus` that the pins of `agent` changed (channel `pins`,
 * message `{agent, tools}`). Call it after the store changed.
 * @throws BastionError `ERR_STORE` when the bus is unreachable (the store change stands; sessions see it on their next catalogue build).
 */
export async function publishPinChange(bus: ClusterBus, agent: string, tools: readonly string[]): Promise<void> {
  await bus.publish('pins', { agent, tools: tools.slice(0, MAX_PINNED_IN_RECORD) });
}

const SEVERITY: Readonly<Record<PendingPinKind, AlertSeverity>> = { changed: 'critical', renamed: 'critical', flagged: 'warning', unapproved: 'info' };

const SUMMARY: Readonly<Record<PendingPinKind, string>> = {
  changed: 'changed its definition since it was pinned',
  renamed: 'is a pinned tool under a new name',
  unapproved: 'is not approved (pinning mode manual)',
  flagged: 'has a description flagged before first pinning',
};

/** Most first-use pins named in one `tools/pin` record. */
const MAX_PINNED_IN_RECORD = 200;

/**
 * The gate the tool door's catalogue passes through (src/mcp/session.ts
 * `#getCatalogue`), one per gateway: judges each tool against the agent's pins
 * in the store, pins first uses, records withheld definitions, and audits and
 * alerts each new detection once (the store says whether a withheld definition
 * is new, so many sessions of one agent report it once).
 */
export class PinGate {
  readonly #o: PinGateOptions;
  readonly #now: () => number;
  /** Agents whose store failure was reported and has not recovered since (one record per outage, not per request). */
  readonly #failing = new Set<string>();
  readonly #changes = new Set<(agent: string) => void>();

  constructor(options: PinGateOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    options.bus?.subscribe('pins', (message) => {
      const agent = message.agent;
      if (typeof agent !== 'string' || agent.length === 0 || agent.length > 256) return;
      for (const listener of this.#changes) {
        try {
          listener(agent);
        } catch {
          // One session's failure does not stop the others hearing of the change.
        }
      }
    });
  }

  /**
   * Calls `listener` with the agent's name whenever a `pins` message says its
   * pins changed (on any instance); returns the function that removes it.
   */
  onChange(listener: (agent: string) => void): () => void {
    this.#changes.add(listener);
    return () => void this.#changes.delete(listener);
  }

  /** False in mode `off`: the catalogue passes unchanged. */
  get active(): boolean {
    return this.#o.config.mode !== 'off';
  }

  /**
   * The catalogue as the agent may see it: tools withheld by their pins removed,
   * first uses pinned, detections recorded, audited and alerted. `exempt` names
   * the tools Bastion itself defines (abilities, the OAuth connect tool): they
   * are not pinned. Never rejects: a store failure withholds every other tool
   * (reason `tool.pin_unavailable`, audited once until the store recovers).
   */
  async admit(catalogue: Catalogue, who: AdmissionContext, exempt: (entry: Entry<Tool>) => boolean = () => false): Promise<Admission> {
    const mode = this.#o.config.mode;
    if (mode === 'off') return { catalogue, withheld: [], events: [] };
    const entries = [...catalogue.tools.values()].filter((e) => !exempt(e));
    if (entries.length === 0) return { catalogue, withheld: [], events: [] };
    const events: PinEvent[] = [];
    const withheld: { tool: string; reason: Admission['withheld'][number]['reason'] }[] = [];
    try {
      const candidates = entries.map((e) => pinCandidate(e, this.#o.config.scanDescriptions));
      const [pinList, pendingList] = await Promise.all([this.#o.store.listPins(who.agent), this.#o.store.listPendingPins(who.agent)]);
      const pins = new Map(pinList.map((p) => [p.tool, p]));
      const pending = new Map(pendingList.map((p) => [p.tool, p]));
      const pinned: { tool: string; hash: string }[] = [];
      for (let v of judgeTools(candidates, pins, mode)) {
        const c = v.candidate;
        if (v.action === 'pin') {
          const now = this.#now();
          const stored = await this.#o.store.pinIfAbsent({ agent: who.agent, tool: c.tool, hash: c.hash, shape: c.shape, definition: c.canonical, pinnedAt: now, pinnedBy: 'first-use' });
          if (stored.hash === c.hash) {
            if (stored.pinnedAt === now && stored.pinnedBy === 'first-use') pinned.push({ tool: c.tool, hash: c.hash });
            v = { action: 'admit', candidate: c };
          } else v = { action: 'withhold', kind: 'changed', candidate: c, pinnedHash: stored.hash };
        }
        if (v.action === 'admit') {
          // The upstream went back to the pinned definition (or a flagged one was replaced by a clean one): nothing is pending any more.
          if (pending.has(c.tool)) await this.#o.store.removePendingPin(who.agent, c.tool);
          continue;
        }
        withheld.push({ tool: c.tool, reason: `tool.pin_${v.kind}` });
        const detail = {
          upstream: c.upstream,
          ...(v.pinnedHash !== undefined ? { pinnedHash: v.pinnedHash } : {}),
          ...(v.renamedFrom !== undefined ? { renamedFrom: v.renamedFrom } : {}),
          ...(c.flags.length > 0 ? { flags: c.flags } : {}),
        };
        const fresh = await this.#o.store.putPendingPin({
          agent: who.agent,
          tool: c.tool,
          kind: v.kind,
          hash: c.hash,
          shape: c.shape,
          definition: c.canonical,
          detail: JSON.stringify(detail),
          detectedAt: this.#now(),
        });
        if (fresh) events.push({ kind: v.kind, tool: c.tool, hash: c.hash, ...detail });
      }
      if (pinned.length > 0) events.push({ kind: 'pinned', tools: pinned });
      this.#failing.delete(who.agent);
    } catch (err) {
      // Fail closed: nothing this admission could not check is listed.
      const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'ERR_STORE';
      const tools = new Map(catalogue.tools);
      for (const e of entries) tools.delete(e.exposed);
      const out: Admission = { catalogue: { ...catalogue, tools }, withheld: entries.map((e) => ({ tool: e.exposed, reason: 'tool.pin_unavailable' })), events: [] };
      if (this.#failing.has(who.agent)) return out;
      this.#failing.add(who.agent);
      const event: PinEvent = { kind: 'unavailable', code };
      await this.#report([event], who);
      return { ...out, events: [event] };
    }
    await this.#report(events, who);
    if (withheld.length === 0) return { catalogue, withheld, events };
    const tools = new Map(catalogue.tools);
    for (const w of withheld) tools.delete(w.tool);
    return { catalogue: { ...catalogue, tools }, withheld, events };
  }

  /** One audit record per event (a detection, the first-use pins of one admission, a store failure) and an alert per detection. */
  async #report(events: readonly PinEvent[], who: AdmissionContext): Promise<void> {
    for (const ev of events) {
      const time = new Date(this.#now()).toISOString();
      const base = { time, door: 'tool' as const, agent: who.agent, ...(who.user !== null ? { user: who.user } : {}), session: who.session, method: 'tools/pin', durationMs: 0 };
      let record: AuditEvent;
      let alert: AdminAlert | undefined;
      if (ev.kind === 'pinned') {
        const shown = ev.tools.slice(0, MAX_PINNED_IN_RECORD);
        record = { ...base, target: null, decision: allow('tool.pinned', 'pinning.first-use'), outcome: 'ok', detail: { pinned: shown, ...(ev.tools.length > shown.length ? { more: ev.tools.length - shown.length } : {}) } };
      } else if (ev.kind === 'unavailable') {
        record = { ...base, target: null, decision: deny('tool.pin_unavailable', 'pinning'), outcome: 'error', detail: { code: ev.code } };
        alert = { kind: 'tool.pin_unavailable', severity: 'critical', time, agent: who.agent, user: who.user, summary: `the pin store failed: every tool of agent ${who.agent} is withheld`, detail: { code: ev.code } };
      } else {
        const { kind, tool, ...facts } = ev;
        const reason = `tool.pin_${kind}`;
        record = { ...base, target: tool, decision: deny(reason, `pinning.${this.#o.config.mode}`), outcome: 'denied', detail: { code: 'ERR_POLICY_DENIED', ...facts } };
        alert = {
          kind: reason,
          severity: SEVERITY[kind],
          time,
          agent: who.agent,
          user: who.user,
          summary: `tool ${tool} of agent ${who.agent} ${SUMMARY[kind]}; withheld until approved (bastion tools diff --agent ${who.agent} --tool ${tool})`,
          detail: { tool, ...facts },
        };
      }
      // The tool stays withheld whether or not the record lands; an audit failure is reported by the audit step itself.
      await this.#o.audit(record).catch(() => undefined);
      if (alert !== undefined) this.#o.alerts?.notify(alert);
    }
  }
}

/** One difference between two definitions, at a JSON Pointer (RFC 6901). */
export interface DefinitionChange {
  readonly path: string;
  readonly op: 'added' | 'removed' | 'changed';
  readonly old?: unknown;
  readonly new?: unknown;
}

/** The leaves of a JSON value by JSON Pointer; an empty object or array is a leaf. */
function leaves(value: unknown, path = '', out = new Map<string, unknown>(), depth = 0): Map<string, unknown> {
  if (depth < 64 && value !== null && typeof value === 'object' && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) leaves(v, `${path}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`, out, depth + 1);
  } else out.set(path, value);
  return out;
}

/**
 * Field-by-field differences between a pinned and a current definition (JSON
 * values; `old` undefined: everything is added), by JSON Pointer in the order of
 * the current definition, then what was removed. Pure.
 */
export function diffDefinitions(old: unknown, current: unknown): DefinitionChange[] {
  const a = old === undefined ? new Map<string, unknown>() : leaves(old);
  const b = leaves(current);
  const out: DefinitionChange[] = [];
  for (const [path, v] of b) {
    if (!a.has(path)) out.push({ path, op: 'added', new: v });
    else if (canonicalOrString(a.get(path)) !== canonicalOrString(v)) out.push({ path, op: 'changed', old: a.get(path), new: v });
  }
  for (const [path, v] of a) if (!b.has(path)) out.push({ path, op: 'removed', old: v });
  return out;
}

function canonicalOrString(v: unknown): string {
  try {
    return canonicalJson(v);
  } catch {
    return JSON.stringify(v) ?? 'undefined';
  }
}

/** The store's record of a withheld definition, parsed; `detail` is `{}` when unreadable. */
export function pendingDetail(p: StoredPendingPin): { upstream?: string; pinnedHash?: string; renamedFrom?: string; flags?: string[] } {
  try {
    const d = JSON.parse(p.detail) as unknown;
    return d !== null && typeof d === 'object' && !Array.isArray(d) ? (d as ReturnType<typeof pendingDetail>) : {};
  } catch {
    return {};
  }
}
