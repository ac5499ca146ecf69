/**
 * The sandbox's command policy: what a `sandbox__run` or `sandbox__run_code`
 * call would run, asked of Cedar one command at a time (`sandbox/exec`), with
 * every path argument through the path guard.
 *
 * 1. The run becomes commands: an argv array is one command; a shell line is
 *    parsed by ./shell.ts (anything it cannot represent with certainty is
 *    refused: `sandbox.shell_parse`, `sandbox.shell_unsupported`); code is its
 *    language's program (`python3 -c CODE`, `node -e CODE`: the program is
 *    asked, the code is not a path) or, for `sh`, a shell line like any other
 *    (each of its commands asked; bash itself, like for every shell line, is not).
 * 2. Each command's `argv[0]` is resolved to the file it runs inside the
 *    sandbox (./programs.ts). Its words (every argument known before it runs),
 *    flags, path arguments, whether some argument is only known when it runs,
 *    and the constructs around it become `context.command`.
 * 3. Path arguments — every static argument after `argv[0]` (and the value of
 *    `--name=value`) but those holding a line break (program text), every static redirection target, and the literal folder
 *    before a glob or expansion — are checked as the sandbox sees them:
 *    relative ones resolve against the working folder, `/workspace` until a
 *    `cd` with a static folder changes it for the commands after it (in line
 *    order; after a `cd` to a folder known only when it runs, or `pushd`/`popd`,
 *    a relative path with `..` is refused as `path.relative`). This is
 *    linear: a `cd` inside a subshell counts for what follows it too; where
 *    that is wrong the path is still inside the sandbox, whose mount namespace
 *    holds nothing of the host's beyond the read-only system folders. Under `/workspace` the path
 *    guard (src/policy/paths.ts, `paths.deny` and symlinks resolved on the
 *    host) must allow the host path inside the session's workspace; `/tmp` (a
 *    private tmpfs) and the read-only system folders are allowed; anything else
 *    is `path.outside`. Code text is not a path.
 * 4. The answers combine: every command is asked; any deny refuses the whole
 *    call, named by the first `policy.forbid` if there is one, else the first
 *    deny (its rule and the command's index are recorded); else any approve
 *    holds the call; else it is allowed. A line with no command at all is refused.
 *
 * Pure apart from the file-system reads of the path guard and program lookup.
 */
import { posix } from 'node:path';
import { allow, deny, type Decision } from '../decision.ts';
import type { CommandContext, PolicyDecision, PolicyRequest } from '../policy/engine.ts';
import { LANGUAGE_PROGRAM, type SandboxLanguage } from './config.ts';
import { resolveProgram, SANDBOX_WORKSPACE } from './programs.ts';
import type { ShellCommand, ShellParse, ShellWord } from './shell.ts';

/** What a call asks to run. */
export type RunSpec =
  | { readonly kind: 'argv'; readonly argv: readonly string[] }
  | { readonly kind: 'shell'; readonly line: string }
  | { readonly kind: 'code'; readonly language: SandboxLanguage; readonly code: string };

/** One command as decided, for the audit record and `policy explain` (no argument values but paths). */
export interface CommandVerdict {
  readonly index: number;
  readonly name: string;
  /** The real path it runs inside the sandbox, `""` when none. */
  readonly path: string;
  readonly decision: PolicyDecision;
  /** The path argument that refused it, when one did. */
  readonly deniedPath?: string;
  readonly within: readonly string[];
  readonly dynamic: boolean;
}

/** The whole run's answer. `commands` is empty when the line did not parse. */
export interface RunVerdict {
  readonly decision: Decision;
  readonly commands: readonly CommandVerdict[];
  /** Index (in `commands`) of the command the refusal names, when a command was refused. */
  readonly refusedAt?: number;
  /** The parser's message (no values of the line beyond the construct it names) when it refused. */
  readonly parseError?: { readonly code: 'ERR_SHELL_PARSE' | 'ERR_SHELL_UNSUPPORTED'; readonly reason: string; readonly line?: number; readonly column?: number };
}

/** What {@link decideRun} needs. */
export interface RunPolicyDeps {
  readonly agent: string;
  readonly session: string;
  /** The policy engine's `authorize` (never throws by contract; a throw is a deny). */
  authorize(req: PolicyRequest): PolicyDecision;
  /** The shell parser (./shell.ts `parseShellLine`). */
  parse(line: string): ShellParse;
  /** The path guard's check of a host path (src/policy/paths.ts `PathGuard.check`). */
  checkHostPath(path: string): Promise<Decision>;
  /** The host folder bound at /workspace for this run. */
  readonly workspace: string;
}

/** Folders of the sandbox that are the host's, read-only: path arguments under them are allowed. */
export const READ_ONLY_SYSTEM: readonly string[] = Object.freeze(['/usr', '/bin', '/lib', '/lib64', '/lib32', '/libx32', '/sbin', '/etc/ssl', '/etc/ca-certificates', '/etc/alternatives']);
/** Devices a command may name (redirections to /dev/null and the like). */
export const DEVICES: readonly string[] = Object.freeze(['/dev/null', '/dev/zero', '/dev/random', '/dev/urandom', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/tty']);

const under = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);

/** The literal folder a dynamic word is certain to be under (`/etc/*.conf` → `/etc`), or undefined when it has none. */
function literalFolder(w: ShellWord & { kind: 'dynamic' }): string | undefined {
  const slash = w.prefix.lastIndexOf('/');
  if (slash < 0) return undefined;
  return slash === 0 ? '/' : w.prefix.slice(0, slash);
}

/**
 * Decides where a path, as the sandbox sees it, may be named: allowed under
 * /tmp, the read-only system folders and the listed devices, the path guard
 * under /workspace, `path.outside` elsewhere. Relative paths resolve against
 * `cwd` (null: not known before the run; then one with `..` is `path.relative`). Never throws.
 */
export async function checkSandboxPath(value: string, deps: Pick<RunPolicyDeps, 'checkHostPath' | 'workspace'>, cwd: string | null = SANDBOX_WORKSPACE): Promise<Decision> {
  if (value === '' || value.includes('\0') || !value.isWellFormed()) return deny('path.invalid', 'sandbox.paths');
  if (value.startsWith('~')) return deny('path.tilde', 'sandbox.paths');
  if (cwd === null && !value.startsWith('/') && value.split('/').includes('..')) return deny('path.relative', 'sandbox.paths');
  const inside = posix.resolve(cwd ?? SANDBOX_WORKSPACE, value);
  if (under(inside, SANDBOX_WORKSPACE)) {
    try {
      return await deps.checkHostPath(deps.workspace + inside.slice(SANDBOX_WORKSPACE.length));
    } catch {
      return deny('path.unresolvable', 'sandbox.paths');
    }
  }
  if (under(inside, '/tmp')) return allow('path.allowed', 'sandbox.tmp');
  if (DEVICES.includes(inside) || under(inside, '/dev/fd')) return allow('path.allowed', 'sandbox.devices');
  if (READ_ONLY_SYSTEM.some((d) => under(inside, d))) return allow('path.allowed', 'sandbox.system');
  return deny('path.outside', 'sandbox.paths');
}

/** Line terminators (ECMA-262 §12.3): a word holding one is program text (`python3 -c '…'`), not a path. */
const LINE_BREAK = /[\n\r\u2028\u2029]/;

/**
 * The strings of a static word a path check covers: the word, and the value of `--name=value`;
 * none for a word holding a line break (code or a message: no tool names files across lines, and
 * inside the sandbox such a name could only reach what the mount namespace holds).
 */
function pathCandidates(value: string): string[] {
  if (LINE_BREAK.test(value)) return [];
  const eq = value.indexOf('=');
  if (value.startsWith('-')) return eq > 0 ? [value.slice(eq + 1)].filter((v) => v !== '') : [];
  return [value];
}

interface Prepared {
  readonly name: string;
  readonly context: CommandContext;
  /** Path candidates (static) and literal folders (dynamic), as the sandbox sees them. */
  readonly paths: readonly string[];
}

function prepare(cmd: ShellCommand, via: CommandContext['via'], line: string, language: string, codeArg: number): Prepared {
  const [first, ...rest] = cmd.argv;
  const name = first !== undefined && first.kind === 'static' ? first.value : '';
  const words: string[] = [];
  const flags: string[] = [];
  const paths: string[] = [];
  let dynamic = false;
  rest.forEach((w, i) => {
    if (w.kind === 'static') {
      words.push(w.value);
      if (w.value.startsWith('-')) flags.push(w.value);
      if (i + 1 !== codeArg) paths.push(...pathCandidates(w.value));
    } else {
      dynamic = true;
      const folder = literalFolder(w);
      if (folder !== undefined) paths.push(folder);
    }
  });
  for (const r of cmd.redirects) {
    if (r.target === null) continue;
    if (r.target.kind === 'static') paths.push(r.target.value);
    else {
      dynamic = true;
      const folder = literalFolder(r.target);
      if (folder !== undefined) paths.push(folder);
    }
  }
  if (cmd.assignments.some((a) => a.value.kind === 'dynamic')) dynamic = true;
  return { name, paths, context: { name, via, line, words, flags, paths: paths.map((p) => posix.resolve(SANDBOX_WORKSPACE, p)), dynamic, within: [...cmd.within], language } };
}

function staticCommand(argv: readonly string[]): ShellCommand {
  return { argv: argv.map((value) => ({ kind: 'static', value })), assignments: [], redirects: [], within: [] };
}

/**
 * Decides a run (see the module docs). Never throws: a failure of the parser,
 * the policy or the path guard is a deny.
 */
export async function decideRun(spec: RunSpec, deps: RunPolicyDeps): Promise<RunVerdict> {
  let commands: readonly ShellCommand[];
  let via: CommandContext['via'];
  let line: string;
  let language = '';
  let codeArg = -1;
  if (spec.kind === 'argv') {
    if (spec.argv.length === 0 || spec.argv[0] === '') return { decision: deny('sandbox.shell_unsupported', 'sandbox.run'), commands: [] };
    commands = [staticCommand(spec.argv)];
    via = 'argv';
    line = spec.argv.join(' ');
  } else if (spec.kind === 'code' && spec.language !== 'sh') {
    const program = LANGUAGE_PROGRAM[spec.language];
    commands = [staticCommand([program, spec.language === 'python' ? '-c' : '-e', spec.code])];
    via = 'code';
    line = program;
    language = spec.language;
    codeArg = 2;
  } else {
    line = spec.kind === 'shell' ? spec.line : spec.code;
    via = spec.kind === 'shell' ? 'shell' : 'code';
    if (spec.kind === 'code') language = 'sh';
    let parsed: ShellParse;
    try {
      parsed = deps.parse(line);
    } catch {
      return { decision: deny('sandbox.shell_parse', 'sandbox.shell'), commands: [], parseError: { code: 'ERR_SHELL_PARSE', reason: 'the shell parser failed' } };
    }
    if (!parsed.ok) {
      const { code, reason } = parsed;
      return {
        decision: deny(code === 'ERR_SHELL_PARSE' ? 'sandbox.shell_parse' : 'sandbox.shell_unsupported', 'sandbox.shell'),
        commands: [],
        parseError: { code, reason, ...(parsed.line !== undefined ? { line: parsed.line } : {}), ...(parsed.column !== undefined ? { column: parsed.column } : {}) },
      };
    }
    commands = parsed.commands;
    if (commands.length === 0) return { decision: deny('sandbox.shell_unsupported', 'sandbox.shell'), commands: [], parseError: { code: 'ERR_SHELL_UNSUPPORTED', reason: 'the line runs no command' } };
  }
  const verdicts: CommandVerdict[] = [];
  let held: Decision | undefined;
  // The working folder, followed through static `cd`s in line order (null: known only at run time).
  let cwd: string | null = SANDBOX_WORKSPACE;
  for (const [index, cmd] of commands.entries()) {
    const p = prepare(cmd, via, line, language, index === 0 ? codeArg : -1);
    const path = resolveProgram(p.name, deps.workspace, via === 'shell' || language === 'sh');
    let decision: PolicyDecision;
    try {
      decision = deps.authorize({ agent: deps.agent, action: 'sandbox/exec', resource: { kind: 'command', id: path, upstream: '' }, session: deps.session, command: p.context });
    } catch {
      decision = { ...deny('policy.error', 'cedar'), policies: [] };
    }
    const base = { index, name: p.name, path, within: p.context.within, dynamic: p.context.dynamic };
    if (decision.effect === 'deny') {
      verdicts.push({ ...base, decision });
      continue;
    }
    let pathDenied = false;
    for (const candidate of p.paths) {
      const d = await checkSandboxPath(candidate, deps, cwd);
      if (d.effect !== 'allow') {
        verdicts.push({ ...base, decision: { ...d, policies: [] }, deniedPath: posix.resolve(cwd ?? SANDBOX_WORKSPACE, candidate) });
        pathDenied = true;
        break;
      }
    }
    if (pathDenied) continue;
    if (path === 'builtin:cd' || path === 'builtin:pushd' || path === 'builtin:popd') {
      const args = cmd.argv.slice(1).filter((w) => !(w.kind === 'static' && (w.value === '--' || w.value === '-L' || w.value === '-P')));
      const target = args[0];
      if (path !== 'builtin:cd' || args.length > 1 || (target !== undefined && (target.kind !== 'static' || target.value === '-'))) cwd = null;
      else if (target === undefined) cwd = SANDBOX_WORKSPACE;
      else if (target.value.startsWith('/')) cwd = posix.resolve(target.value);
      else if (cwd !== null) cwd = posix.resolve(cwd, target.value);
    }
    verdicts.push({ ...base, decision });
    if (decision.effect === 'approve' && held === undefined) held = { effect: 'approve', reason: decision.reason, rule: decision.rule };
  }
  // Every command is asked, so the refusal names the most telling one: a forbid over a missing permit.
  const denied = verdicts.filter((v) => v.decision.effect === 'deny');
  const refusal = denied.find((v) => v.decision.reason === 'policy.forbid') ?? denied[0];
  if (refusal !== undefined) {
    const { effect, reason, rule } = refusal.decision;
    return { decision: { effect, reason, rule }, commands: verdicts, refusedAt: refusal.index };
  }
  const first = verdicts[0]?.decision;
  return { decision: held ?? allow('policy.permit', first?.rule ?? 'sandbox'), commands: verdicts };
}
