/**
 * `bastion tools list | diff | approve`: pinned tool definitions (docs/pinning.md)
 * from the command line. Works on the store directly, like `approvals`: the
 * running gateway writes every definition it withholds there, and sees an
 * approval on the agent's next request. Definitions are untrusted text from tool
 * servers: printed as JSON with control and format characters escaped, so they
 * cannot drive the terminal. Every approval is appended to the audit chain on
 * the admin door.
 */
import { userInfo } from 'node:os';
import { allow } from '../../decision.ts';
import { isBastionError } from '../../errors.ts';
import type { StoredPendingPin, StoredPin } from '../../mcp/pin-store.ts';
import { diffDefinitions, pendingDetail, publishPinChange, type DefinitionChange } from '../../mcp/pins.ts';
import { openClusterBus } from '../../cluster/cluster.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import type { Store } from '../../store/store.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { openConfiguredStore } from './config-store.ts';

const HELP = `Usage:
  bastion tools list --agent A [--json] [--config FILE]
  bastion tools diff --agent A [--tool NAME] [--json] [--config FILE]
  bastion tools approve --agent A --tool NAME --hash SHA256 [--json] [--config FILE]
  bastion tools approve --agent A --all [--json] [--config FILE]

Pinned tool definitions (config pinning; docs/pinning.md).
list     the agent's tools: pinned, or withheld (changed, renamed, unapproved,
         flagged), hash prefix, when pinned.
diff     each withheld definition against the pinned one, field by field, with
         its full hash.
approve  pins the withheld definition whose hash --hash names (as diff shows it);
         refused when the definition changed again since. --all approves every
         withheld definition of the agent as it is now, and prints each.
Exit codes: 0 ok, 1 the definition changed since (nothing pinned), 2 usage,
3 config, 4 store, 5 no such agent or nothing withheld for the tool.`;

const HASH = /^[0-9a-f]{64}$/;

/** Escapes what could drive a terminal (C0/C1 controls, format and bidi characters, line separators) in text from a tool server. */
function printable(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}

/** A JSON value on one line, safe for the terminal. */
function show(value: unknown): string {
  return printable(JSON.stringify(value) ?? 'undefined');
}

function parseDefinition(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}

interface ToolRow {
  readonly tool: string;
  readonly state: 'pinned' | StoredPendingPin['kind'];
  readonly hash: string | null;
  readonly pinnedAt: number | null;
  readonly pinnedBy: string | null;
  readonly pendingHash?: string;
  readonly detectedAt?: number;
}

function rows(pins: readonly StoredPin[], pending: readonly StoredPendingPin[]): ToolRow[] {
  const byTool = new Map<string, ToolRow>();
  for (const p of pins) byTool.set(p.tool, { tool: p.tool, state: 'pinned', hash: p.hash, pinnedAt: p.pinnedAt, pinnedBy: p.pinnedBy });
  for (const w of pending) {
    const pin = byTool.get(w.tool);
    byTool.set(w.tool, { tool: w.tool, state: w.kind, hash: pin?.hash ?? null, pinnedAt: pin?.pinnedAt ?? null, pinnedBy: pin?.pinnedBy ?? null, pendingHash: w.hash, detectedAt: w.detectedAt });
  }
  return [...byTool.values()].sort((a, b) => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0));
}

/** One withheld definition with what it is compared against. */
interface PendingView {
  readonly tool: string;
  readonly kind: StoredPendingPin['kind'];
  readonly hash: string;
  readonly detectedAt: number;
  readonly upstream?: string;
  readonly pinnedHash?: string;
  readonly renamedFrom?: string;
  readonly flags?: string[];
  readonly old: unknown;
  readonly new: unknown;
  readonly changes: DefinitionChange[];
}

function view(p: StoredPendingPin, pins: ReadonlyMap<string, StoredPin>): PendingView {
  const d = pendingDetail(p);
  // A changed tool is compared with its own pin, a renamed one with the pin of its old name, others with nothing.
  const base = p.kind === 'renamed' && d.renamedFrom !== undefined ? pins.get(d.renamedFrom) : pins.get(p.tool);
  const old = base === undefined ? undefined : parseDefinition(base.definition);
  const current = parseDefinition(p.definition);
  return {
    tool: p.tool,
    kind: p.kind,
    hash: p.hash,
    detectedAt: p.detectedAt,
    ...(d.upstream !== undefined ? { upstream: d.upstream } : {}),
    ...(base !== undefined ? { pinnedHash: base.hash } : {}),
    ...(d.renamedFrom !== undefined ? { renamedFrom: d.renamedFrom } : {}),
    ...(d.flags !== undefined ? { flags: d.flags } : {}),
    old: old ?? null,
    new: current,
    changes: diffDefinitions(old, current),
  };
}

function renderDiff(agent: string, v: PendingView): string {
  const lines = [`${printable(v.tool)}  ${v.kind}${v.renamedFrom !== undefined ? ` (was ${printable(v.renamedFrom)})` : ''}  detected ${new Date(v.detectedAt).toISOString()}`];
  lines.push(`  pinned:  ${v.pinnedHash ?? '(none)'}`);
  lines.push(`  current: ${v.hash}`);
  if (v.flags !== undefined && v.flags.length > 0) lines.push(`  flags:   ${v.flags.map(printable).join(', ')}`);
  for (const c of v.changes) {
    if (c.op === 'added') lines.push(`  + ${printable(c.path)} = ${show(c.new)}`);
    else if (c.op === 'removed') lines.push(`  - ${printable(c.path)} = ${show(c.old)}`);
    else lines.push(`  ~ ${printable(c.path)}`, `      - ${show(c.old)}`, `      + ${show(c.new)}`);
  }
  if (v.changes.length === 0) lines.push('  (no field differs: the same definition under another name)');
  lines.push(`  approve: bastion tools approve --agent ${agent} --tool ${printable(v.tool)} --hash ${v.hash}`);
  return `${lines.join('\n')}\n`;
}

function operator(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

async function approveOne(store: Store, agent: string, w: StoredPendingPin, by: string): Promise<StoredPin | undefined> {
  const started = performance.now();
  const pin = await store.approvePendingPin(agent, w.tool, w.hash, Date.now(), by);
  if (pin === undefined) return undefined;
  await store.appendAudit([
    {
      time: new Date().toISOString(),
      door: 'admin',
      agent: 'admin',
      method: 'tools.approve',
      target: w.tool,
      decision: allow('tool.pin_approved', 'cli'),
      outcome: 'ok',
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      detail: { forAgent: agent, hash: w.hash, was: w.kind, by },
    },
  ]);
  return pin;
}

/**
 * With `redis` configured, tells the running instances that `agent`'s pins
 * changed (cluster bus, channel `pins`): its sessions drop their cached
 * catalogue and tell their clients the tool list changed. A failure is only
 * reported: the pin is stored, and every instance reads it on its next catalogue build.
 */
async function notifyInstances(config: ResolvedConfig, agent: string, tools: readonly string[], io: CliIO): Promise<void> {
  if (config.redis === undefined || tools.length === 0) return;
  const bus = await openClusterBus(config).catch(() => undefined);
  try {
    if (bus === undefined) throw new Error('bus');
    await publishPinChange(bus, agent, tools);
  } catch {
    io.stderr('bastion tools approve: warning: the running instances could not be told (Redis unreachable, ERR_STORE); they use the new pin from their next tool listing\n');
  } finally {
    await bus?.close();
  }
}

function fail(io: CliIO, verb: string, err: unknown): number {
  io.stderr(`bastion tools ${verb}: ${isBastionError(err) ? err.message : 'store error'}\n`);
  return EXIT.STORE;
}

export const tools: CliCommand = async (argv, io) => {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    io.stderr(`${HELP}\n`);
    return EXIT.USAGE;
  }
  const parsed = parseFlags(
    `tools ${verb}`,
    HELP,
    verb === '--help' || verb === '-h' ? ['--help'] : rest,
    { config: { type: 'string', short: 'c' }, agent: { type: 'string' }, tool: { type: 'string' }, hash: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } },
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (verb !== 'list' && verb !== 'diff' && verb !== 'approve') {
    io.stderr(`bastion tools: unknown subcommand "${verb}"\n${HELP}\n`);
    return EXIT.USAGE;
  }
  const agent = values.agent;
  if (agent === undefined || agent === '') {
    io.stderr(`bastion tools ${verb}: --agent is required\n`);
    return EXIT.USAGE;
  }
  if (verb === 'list' && (values.tool !== undefined || values.hash !== undefined || values.all === true)) {
    io.stderr('bastion tools list: takes only --agent, --json and --config\n');
    return EXIT.USAGE;
  }
  if (verb === 'diff' && (values.hash !== undefined || values.all === true)) {
    io.stderr('bastion tools diff: takes only --agent, --tool, --json and --config\n');
    return EXIT.USAGE;
  }
  if (verb === 'approve') {
    if (values.all === true ? values.tool !== undefined || values.hash !== undefined : values.tool === undefined || values.hash === undefined) {
      io.stderr('bastion tools approve: give --tool NAME --hash SHA256 (as `bastion tools diff` shows it), or --all\n');
      return EXIT.USAGE;
    }
    if (values.hash !== undefined && !HASH.test(values.hash)) {
      io.stderr('bastion tools approve: --hash must be the full SHA-256 (64 lowercase hex digits) that `bastion tools diff` shows\n');
      return EXIT.USAGE;
    }
  }
  const opened = await openConfiguredStore(`tools ${verb}`, values.config, io);
  if (typeof opened === 'number') return opened;
  const { store, config } = opened;
  try {
    if (!config.agents.has(agent)) {
      io.stderr(`bastion tools ${verb}: no agent "${printable(agent)}" in the config\n`);
      return EXIT.NOT_FOUND;
    }
    let pins: StoredPin[];
    let pending: StoredPendingPin[];
    try {
      [pins, pending] = await Promise.all([store.listPins(agent), store.listPendingPins(agent)]);
    } catch (err) {
      return fail(io, verb, err);
    }
    if (verb === 'list') {
      const list = rows(pins, pending);
      if (values.json) io.stdout(`${JSON.stringify({ agent, mode: config.pinning.mode, tools: list })}\n`);
      else if (list.length === 0) io.stdout(`no pinned tools for ${agent} (pinning mode ${config.pinning.mode})\n`);
      else {
        for (const r of list) {
          const hash = r.pendingHash !== undefined ? `${r.hash?.slice(0, 12) ?? '-'.repeat(12)} → ${r.pendingHash.slice(0, 12)}` : (r.hash?.slice(0, 12) ?? '');
          io.stdout(`${printable(r.tool)}  ${r.state.padEnd(10)}  ${hash}  ${r.pinnedAt === null ? 'not pinned' : `pinned ${new Date(r.pinnedAt).toISOString()} by ${printable(r.pinnedBy ?? '')}`}\n`);
        }
      }
      return EXIT.OK;
    }
    const pinMap = new Map(pins.map((p) => [p.tool, p]));
    if (verb === 'diff') {
      const chosen = values.tool === undefined ? pending : pending.filter((p) => p.tool === values.tool);
      if (values.tool !== undefined && chosen.length === 0) {
        io.stderr(`bastion tools diff: nothing is withheld for tool "${printable(values.tool)}" of ${agent}\n`);
        return EXIT.NOT_FOUND;
      }
      const views = chosen.map((p) => view(p, pinMap));
      if (values.json) io.stdout(`${JSON.stringify({ agent, pending: views })}\n`);
      else if (views.length === 0) io.stdout(`nothing withheld for ${agent}\n`);
      else io.stdout(views.map((v) => renderDiff(agent, v)).join('\n'));
      return EXIT.OK;
    }
    // approve
    const by = operator();
    if (values.all === true) {
      const done: { tool: string; hash: string; was: string }[] = [];
      const changed: string[] = [];
      for (const w of pending) {
        let pin: StoredPin | undefined;
        try {
          pin = await approveOne(store, agent, w, by);
        } catch (err) {
          return fail(io, verb, err);
        }
        if (pin === undefined) changed.push(w.tool);
        else done.push({ tool: w.tool, hash: w.hash, was: w.kind });
      }
      await notifyInstances(config, agent, done.map((d) => d.tool), io);
      if (values.json) io.stdout(`${JSON.stringify({ agent, pinned: done, changedSince: changed })}\n`);
      else {
        if (done.length === 0 && changed.length === 0) io.stdout(`nothing withheld for ${agent}\n`);
        for (const d of done) io.stdout(`pinned ${printable(d.tool)} ${d.hash} (was ${d.was})\n`);
      }
      for (const t of changed) io.stderr(`bastion tools approve: ${printable(t)} changed again while approving; not pinned (run diff again)\n`);
      return changed.length > 0 ? EXIT.FAILED : EXIT.OK;
    }
    const tool = values.tool as string;
    const hash = values.hash as string;
    const w = pending.find((p) => p.tool === tool);
    if (w === undefined) {
      if (pinMap.get(tool)?.hash === hash) {
        io.stderr(`bastion tools approve: ${printable(tool)} is already pinned at ${hash}\n`);
        return EXIT.OK;
      }
      io.stderr(`bastion tools approve: nothing is withheld for tool "${printable(tool)}" of ${agent}\n`);
      return EXIT.NOT_FOUND;
    }
    const refuse = (): number => {
      io.stderr(`bastion tools approve: the definition of ${printable(tool)} is not the one with hash ${hash.slice(0, 12)}… any more (it changed since); nothing was pinned. Run 'bastion tools diff --agent ${agent} --tool ${printable(tool)}' again.\n`);
      return EXIT.FAILED;
    };
    if (w.hash !== hash) return refuse();
    let pin: StoredPin | undefined;
    try {
      pin = await approveOne(store, agent, w, by);
    } catch (err) {
      return fail(io, verb, err);
    }
    if (pin === undefined) return refuse();
    await notifyInstances(config, agent, [tool], io);
    if (values.json) io.stdout(`${JSON.stringify({ agent, pinned: [{ tool, hash, was: w.kind }], changedSince: [] })}\n`);
    else io.stdout(`pinned ${printable(tool)} ${hash} (was ${w.kind})\n`);
    return EXIT.OK;
  } finally {
    await store.close();
  }
};
