/**
 * The tool door's stages for the sandbox's tools (`sandbox__run`,
 * `sandbox__run_code`), composed by `GatewaySession#callTool` like the others
 * (src/mcp/call-stages.ts):
 *
 *   … decide (the tool) → validateArguments → {@link decideCommands} (instead of the
 *   path guard: every command of the run, src/sandbox/policy.ts) → … → holdForApproval
 *   → checkAuditGate → releasePasted → {@link runSandboxTool} → screenToolResult → audit record
 *
 * A command that is denied refuses the call with the command's own rule; one
 * that needs approval holds the whole call (the approver sees the line). The
 * audit record gets `detail.sandbox`: each command's program, real path and
 * rule, then the run's exit, limit, times and workspace — never stdout.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Decision } from '../decision.ts';
import { refusalOf } from '../door/refusal.ts';
import type { DecidedCall, Refused, ReleasedCall } from '../mcp/call-stages.ts';
import { screenToolResult, toolError } from '../mcp/call-stages.ts';
import type { SanitizeOptions } from '../mcp/sanitize.ts';
import type { ResolvedSandboxLimits, SandboxLanguage } from './config.ts';
import type { RunSpec, RunVerdict } from './policy.ts';
import type { SandboxCall, SandboxOutcome } from './service.ts';
import { SANDBOX_UPSTREAM } from './tools.ts';

/** The part of the sandbox service the stages use. */
export interface SandboxCalls {
  decide(call: Pick<SandboxCall, 'agent' | 'session' | 'spec'>): Promise<RunVerdict>;
  run(call: SandboxCall): Promise<SandboxOutcome>;
}

/** What the sandbox stages need: the service (absent: fail closed), the result cap, the call's workspace key. */
export interface SandboxStageDeps {
  readonly service?: SandboxCalls | undefined;
  readonly output: SanitizeOptions;
  /** The MCP session id, else the conversation, else null. */
  readonly session: string | null;
}

function refuse(decision: Decision, text: string): Refused {
  return { refused: refusalOf(decision, 'tool'), text };
}

/** The run a call asks for, from its (schema-validated) arguments; undefined when they do not say one. */
export function runSpecOf(tool: string, args: Record<string, unknown>): RunSpec | undefined {
  if (tool === 'run') {
    if (typeof args.command === 'string' && args.argv === undefined) return { kind: 'shell', line: args.command };
    if (Array.isArray(args.argv) && args.command === undefined && args.argv.every((a) => typeof a === 'string')) return { kind: 'argv', argv: args.argv as string[] };
    return undefined;
  }
  if (tool === 'run_code' && typeof args.code === 'string' && (args.language === 'python' || args.language === 'node' || args.language === 'sh')) {
    return { kind: 'code', language: args.language as SandboxLanguage, code: args.code };
  }
  return undefined;
}

/** Whether a resolved call is one of the sandbox's tools. */
export function isSandboxCall(call: Pick<DecidedCall, 'entry' | 'upstream'>): boolean {
  return call.entry.upstream === SANDBOX_UPSTREAM && call.upstream === undefined;
}

/**
 * The command policy over the run (src/sandbox/policy.ts). A deny refuses the
 * call with the command's rule (the refusal names the program and its place in
 * the line); an approve holds it (the call's decision becomes approve, unless
 * the tool itself already needs approval).
 */
export async function decideCommands<C extends DecidedCall>(call: C, deps: SandboxStageDeps): Promise<C | Refused> {
  const detail = call.record.detail;
  if (deps.service === undefined) return refuse({ effect: 'deny', reason: 'sandbox.unavailable', rule: 'sandbox' }, 'Bastion refused this call: the sandbox is unavailable');
  const spec = runSpecOf(call.entry.original, call.args);
  if (spec === undefined) return refuse({ effect: 'deny', reason: 'args.schema', rule: 'schema' }, 'Bastion refused this call: give either `command` or `argv`');
  const verdict = await deps.service.decide({ agent: call.agent, session: deps.session, spec });
  detail.sandbox = {
    via: spec.kind,
    commands: verdict.commands.map((c) => ({ name: c.name, path: c.path, effect: c.decision.effect, rule: c.decision.rule, ...(c.deniedPath !== undefined ? { path_denied: c.deniedPath } : {}), ...(c.dynamic ? { dynamic: true } : {}), ...(c.within.length > 0 ? { within: c.within } : {}) })),
    ...(verdict.parseError !== undefined ? { parse: verdict.parseError } : {}),
  };
  const d = verdict.decision;
  if (d.effect === 'deny') {
    const last = verdict.refusedAt !== undefined ? verdict.commands[verdict.refusedAt] : verdict.commands.at(-1);
    let text: string;
    if (verdict.parseError !== undefined) text = `Bastion refused this command line: ${verdict.parseError.reason}`;
    else if (last === undefined) text = 'Bastion refused this call: the sandbox may not run it';
    else if (last.deniedPath !== undefined) text = `Bastion refused this command line: ${last.name} may not touch ${last.deniedPath} (${d.reason})`;
    else text = `Bastion refused this command line: ${last.name === '' ? 'the command' : last.name}${verdict.commands.length > 1 ? ` (command ${last.index + 1})` : ''} is not allowed for this agent`;
    return refuse(d, text);
  }
  if (d.effect === 'approve' && call.decision.effect !== 'approve') {
    call.record.decision = d;
    return { ...call, decision: d };
  }
  return call;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Runs the call in the sandbox and renders the result: the exit, which limit
 * stopped it, stdout and stderr — then the usual screening (redaction, size
 * cap). A non-zero exit or a limit is a tool error (`isError`), with the code
 * `ERR_SANDBOX_LIMIT` when a limit stopped it.
 */
export async function runSandboxTool(call: ReleasedCall, deps: SandboxStageDeps): Promise<CallToolResult> {
  const record = call.record;
  const ref = call.ref;
  const spec = runSpecOf(call.entry.original, call.callArgs);
  if (deps.service === undefined || spec === undefined) {
    record.decision = { effect: 'deny', reason: 'sandbox.unavailable', rule: 'sandbox' };
    record.detail.code = 'ERR_SANDBOX_UNAVAILABLE';
    return toolError('ERR_SANDBOX_UNAVAILABLE', 'Bastion refused this call: the sandbox is unavailable', ref);
  }
  const args = call.callArgs;
  const out = await deps.service.run({
    agent: call.agent as SandboxCall['agent'],
    user: call.user,
    session: deps.session,
    spec,
    ...(typeof args.stdin === 'string' ? { stdin: args.stdin } : {}),
    ...(typeof args.timeoutMs === 'number' ? { timeoutMs: args.timeoutMs } : {}),
    signal: call.signal,
  });
  const detail = (record.detail.sandbox ??= {}) as Record<string, unknown>;
  if (out.kind === 'refused') {
    const r = refusalOf(out.decision, 'tool');
    record.decision = out.decision;
    record.detail.code = r.code;
    return toolError(r.code, out.text, ref);
  }
  if (out.kind === 'failed') {
    record.detail.code = out.code;
    record.outcome = 'error';
    return toolError(out.code, out.text, ref);
  }
  const r = out.result;
  Object.assign(detail, {
    exitCode: r.exitCode,
    signal: r.signal,
    limit: r.limit,
    truncated: r.truncated,
    wallMs: r.wallMs,
    cpuMs: r.cpuMs,
    peakMemoryBytes: r.peakMemoryBytes,
    stdoutBytes: r.stdout.length,
    stderrBytes: r.stderr.length,
    workspace: out.workspace.slice(out.workspace.lastIndexOf('/') + 1),
    network: out.network,
  });
  const head =
    r.limit !== null
      ? `stopped: the ${r.limit} limit was reached${limitText(r.limit, out.limits)}`
      : r.exitCode !== null
        ? `exit code ${r.exitCode}`
        : `killed by ${r.signal ?? 'a signal'}`;
  const text = `${head}\n--- stdout${r.truncated ? ' (cut at the output limit)' : ''} ---\n${utf8.decode(r.stdout)}\n--- stderr ---\n${utf8.decode(r.stderr)}`;
  const failed = r.limit !== null || r.exitCode !== 0;
  if (r.limit !== null) {
    record.detail.code = 'ERR_SANDBOX_LIMIT';
    if (r.limit === 'wall') record.outcome = 'timeout';
  }
  const result: CallToolResult = {
    content: [{ type: 'text', text }],
    ...(failed ? { isError: true } : {}),
    _meta: {
      'bastion/sandbox': { exitCode: r.exitCode, signal: r.signal, limit: r.limit, truncated: r.truncated, wallMs: r.wallMs },
      ...(r.limit !== null ? { 'bastion/error': { code: 'ERR_SANDBOX_LIMIT', ref } } : {}),
    },
  };
  return screenToolResult(call, result, deps.output);
}

function limitText(limit: string, limits: ResolvedSandboxLimits): string {
  const v = ({ wall: limits.wallMs, cpu: limits.cpuMs, memory: limits.memoryBytes, processes: limits.processes, output: limits.outputBytes, files: limits.fileBytes } as Record<string, number>)[limit];
  if (v === undefined) return '';
  return limit === 'wall' || limit === 'cpu' ? ` (${v} ms)` : limit === 'processes' ? ` (${v})` : ` (${v} bytes)`;
}
