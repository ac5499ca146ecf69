/**
 * Shell-line parsing for the sandbox's `sandbox__run` tool (issue 16): a line an agent sends is
 * parsed into every simple command it would run, so policy can decide per command.
 *
 * Dialect: GNU Bash 5.x, because the sandbox runs the line as
 * `/bin/bash --noprofile --norc -c LINE` with a cleared environment. Parser: mvdan/sh (the parser
 * behind shfmt) in its `mvdan-sh` JavaScript build (mvdan/sh v3 compiled by GopherJS), language
 * variant `LangBash`; it is synchronous and returns the full syntax tree. Semantics of quoting, expansion, redirection and builtins
 * follow the Bash Reference Manual (sections 3.1.2 Quoting, 3.5 Shell Expansions, 3.6
 * Redirections, 4 Shell Builtin Commands).
 *
 * Rule: anything this module cannot represent with certainty is refused, never guessed. That
 * covers constructs that re-execute text (`eval`, `source`, `sh -c "$x"`), commands whose name is
 * only known at run time (`$cmd`, `$(echo ls)`), definitions that would make a later name mean
 * something else (functions, aliases, `enable`, `hash -p`), and assignments to variables that
 * steer command lookup or shell start-up ({@link PROTECTED_VARIABLES}).
 */
import { createRequire } from 'node:module';
import type sh from 'mvdan-sh';

/**
 * One word of a command after Bash's quote removal.
 * - `static`: the exact string the program receives (`'a b'`, `c\url` → `curl`, `"l"s` → `ls`).
 * - `dynamic`: the word depends on run-time state: parameter expansion (`$HOME`, `${x}`), command
 *   or process substitution, arithmetic expansion, `$'…'` and `$"…"` strings, brace expansion
 *   (`{a,b}`, `{1..3}`), tilde expansion (`~`, `x=~/a`), or pathname expansion (unquoted `*`, `?`,
 *   `[…]`, extended globs). `text` is the word's source text, `prefix` the literal part before
 *   the first dynamic part (after quote removal), `glob` whether pathname expansion may apply.
 */
export type ShellWord =
  | { readonly kind: 'static'; readonly value: string }
  | { readonly kind: 'dynamic'; readonly text: string; readonly prefix: string; readonly glob: boolean };

/**
 * A redirection of a command. `op` is Bash's operator (`>`, `>>`, `<`, `<>`, `>|`, `&>`, `&>>`,
 * `<&`, `>&`, `<<`, `<<-`, `<<<`); `fd` the explicit descriptor number (`2>`), else null.
 * `target` is the file the redirection opens, or null when it opens none: here-documents and
 * here-strings (their text is data, any substitution inside is listed as a command) and
 * descriptor duplication or closing (`2>&1`, `<&-`).
 */
export interface ShellRedirect {
  readonly op: string;
  readonly fd: number | null;
  readonly target: ShellWord | null;
}

/**
 * One simple command the line would run. `argv[0]` is always static (a line where it is not is
 * refused). `assignments` are prefix assignments (`FOO=1 cmd`) or those `env` adds. `within`
 * names where the command sits, outermost first: `pipeline`, `subshell`, `group`, `if`, `while`,
 * `until`, `for`, `select`, `case`, `background`, `substitution` (`$( )` and backticks),
 * `process-substitution`, `heredoc`, `time`, and the wrapper names of {@link SHELL_WRAPPERS}
 * (`env`, `xargs`, `find`, `sh -c`, ...).
 */
export interface ShellCommand {
  readonly argv: readonly ShellWord[];
  readonly assignments: readonly { readonly name: string; readonly value: ShellWord }[];
  readonly redirects: readonly ShellRedirect[];
  readonly within: readonly string[];
}

/**
 * The result of {@link parseShellLine}: every command, or a refusal. `ERR_SHELL_PARSE` is a
 * syntax error (with 1-based `line`/`column` from the parser); `ERR_SHELL_UNSUPPORTED` is a line
 * that parses but cannot be represented with certainty, or exceeds a limit; `reason` names the
 * construct and its position (`line:column`).
 */
export type ShellParse =
  | { readonly ok: true; readonly commands: readonly ShellCommand[] }
  | {
      readonly ok: false;
      readonly code: 'ERR_SHELL_PARSE' | 'ERR_SHELL_UNSUPPORTED';
      readonly reason: string;
      readonly line?: number;
      readonly column?: number;
    };

/** Limits of {@link parseShellLine}: line size in UTF-8 bytes, commands listed, nesting depth. */
export interface ShellParseOptions {
  readonly maxBytes?: number;
  readonly maxCommands?: number;
  readonly maxDepth?: number;
}

/** Defaults for {@link ShellParseOptions}. */
export const SHELL_PARSE_DEFAULTS = { maxBytes: 16_384, maxCommands: 256, maxDepth: 32 } as const;

/**
 * Variables a line may not assign (prefix assignment, `export`/`declare`/`typeset`/`local`/
 * `readonly`, `for NAME in`, `read`/`mapfile`/`readarray`/`printf -v`/`getopts` targets, `unset`,
 * `${NAME:=…}`, arithmetic): they change which program a name runs (`PATH`, `EXECIGNORE`), what
 * the dynamic loader injects (`LD_*`, matched by prefix), what a shell sources at start-up
 * (`BASH_ENV`, `ENV`), how words split or glob (`IFS`, `GLOBIGNORE`), or carry code (`PS4`,
 * `PROMPT_COMMAND`, `SHELLOPTS`, `BASHOPTS`). Bash Reference Manual, 5.2 Bash Variables.
 */
export const PROTECTED_VARIABLES: ReadonlySet<string> = new Set([
  'PATH',
  'BASH_ENV',
  'ENV',
  'IFS',
  'CDPATH',
  'GLOBIGNORE',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'PROMPT_COMMAND',
  'BASH_LOADABLES_PATH',
  'EXECIGNORE',
  'HOSTALIASES',
  'HISTFILE',
]);

/** Whether `name` is in {@link PROTECTED_VARIABLES} or starts with `LD_`. */
export function isProtectedVariable(name: string): boolean {
  return PROTECTED_VARIABLES.has(name) || name.startsWith('LD_');
}

/**
 * How a wrapper's own options are read. `flags` take no value; `withValue` take one (`-n 5`,
 * `-n5`, `--adjustment=5`); `positional` is how many operands precede the wrapped command
 * (`timeout DURATION`). `noCommand` says what a wrapper without a command does: `ok` (runs
 * nothing more), `refuse`, or an argv it runs by default (`xargs` runs `echo`). `stopWith` are
 * options that make it run no command at all (`command -v`). `xargsInput` appends a dynamic
 * argument (the input read at run time) to the wrapped command. Any other option is refused.
 */
export interface WrapperSpec {
  readonly flags: readonly string[];
  readonly withValue: readonly string[];
  readonly positional?: number;
  readonly noCommand: 'ok' | 'refuse' | readonly string[];
  readonly stopWith?: readonly string[];
  readonly xargsInput?: boolean;
}

/**
 * Commands that run another command taken from their arguments, matched on argv[0]'s basename
 * (`/usr/bin/env` is `env`). Both the wrapper and the wrapped command are listed; the wrapped one
 * has the wrapper's name in `within`. Options are those of GNU coreutils / findutils / util-linux
 * and Bash's builtins (`exec`, `command`, `builtin`); an option not listed is refused because the
 * position of the wrapped command would be a guess. `env NAME=V` assignments move to the wrapped
 * command (and are checked against {@link PROTECTED_VARIABLES}); `env -S`, which re-splits a
 * string, is refused. Not in the table because they need their own reading: `find … -exec CMD
 * … ;|+` (also `-execdir`, `-ok`, `-okdir`; `{}` becomes a dynamic word) and `sh|bash|dash -c
 * STRING` (STRING is parsed recursively when static and refused when dynamic; the shell without
 * `-c` and without a script operand reads commands from standard input and is refused).
 */
export const SHELL_WRAPPERS: Readonly<Record<string, WrapperSpec>> = {
  env: {
    flags: ['-i', '--ignore-environment', '-', '-v', '--debug'],
    withValue: ['-u', '--unset', '-C', '--chdir'],
    noCommand: 'ok',
  },
  exec: { flags: ['-c', '-l'], withValue: ['-a'], noCommand: 'ok' },
  command: { flags: ['-p'], withValue: [], noCommand: 'ok', stopWith: ['-v', '-V'] },
  builtin: { flags: [], withValue: [], noCommand: 'ok' },
  nice: { flags: [], withValue: ['-n', '--adjustment'], noCommand: 'ok' },
  nohup: { flags: [], withValue: [], noCommand: 'refuse' },
  timeout: {
    flags: ['--preserve-status', '--foreground', '-v', '--verbose', '-f'],
    withValue: ['-k', '--kill-after', '-s', '--signal'],
    positional: 1,
    noCommand: 'refuse',
  },
  time: {
    flags: ['-p', '--portability', '-a', '--append', '-v', '--verbose', '-q', '--quiet'],
    withValue: ['-f', '--format', '-o', '--output'],
    noCommand: 'ok',
  },
  stdbuf: { flags: [], withValue: ['-i', '--input', '-o', '--output', '-e', '--error'], noCommand: 'refuse' },
  setsid: { flags: ['-c', '--ctty', '-f', '--fork', '-w', '--wait'], withValue: [], noCommand: 'refuse' },
  xargs: {
    flags: ['-0', '--null', '-r', '--no-run-if-empty', '-t', '--verbose', '-p', '--interactive', '-x', '--exit', '-o', '--open-tty'],
    withValue: ['-a', '--arg-file', '-d', '--delimiter', '-E', '-n', '--max-args', '-L', '--max-lines', '-P', '--max-procs', '-s', '--max-chars', '-I', '--replace'],
    noCommand: ['echo'],
    xargsInput: true,
  },
};

/** Shells whose `-c STRING` is parsed recursively. */
const SHELLS = new Set(['sh', 'bash', 'dash']);
/** Single-letter options of those shells that take no value (Bash manual 4.3.1 `set`, 6.1). */
const SHELL_FLAGS = new Set(['e', 'u', 'x', 'v', 'f', 'h', 'l', 'n', 'B', 'C', 'E', 'H', 'P', 'T', 'a', 'b', 'm']);
const SHELL_LONG_FLAGS = new Set(['--norc', '--noprofile', '--posix', '--login', '--noediting', '--restricted']);

/** Builtins that re-execute text or redefine what a name runs: always refused. */
const REFUSED_BUILTINS: Readonly<Record<string, string>> = {
  eval: 'eval re-executes text',
  source: 'source runs a file as shell code',
  '.': '. runs a file as shell code',
  alias: 'alias redefines a command name',
  enable: 'enable loads or toggles builtins',
  fc: 'fc re-executes history',
  bind: 'bind -x runs shell code',
  complete: 'complete -C/-F runs shell code',
  compgen: 'compgen -C/-F runs shell code',
};

type Syntax = typeof sh.syntax;
let loaded: { syntax: Syntax; ops: Ops } | undefined;
/** One parser, reused (`Parse` resets it); replaced after any failure. */
let parser: sh.Parser | undefined;

interface Ops {
  readonly redir: ReadonlyMap<number, string>;
  readonly pipe: ReadonlySet<number>;
  readonly procIn: number;
  readonly paramAssign: ReadonlySet<number>;
  readonly paramTransform: number;
  readonly testArith: ReadonlySet<number>;
  readonly testVar: ReadonlySet<number>;
}

/**
 * Loads the parser (about 0.1-0.2 s, once per process); {@link parseShellLine} calls it on first
 * use, callers may call it at start-up to keep that cost off the first tool call. Operator codes
 * are read back from the parser itself rather than copied from its sources, so they cannot drift
 * from the installed version.
 */
export function loadShellParser(): void {
  if (loaded !== undefined) return;
  const require = createRequire(import.meta.url);
  const { syntax } = require('mvdan-sh') as typeof sh;
  const first = (src: string): sh.Stmt => {
    const stmt = syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(src, '').Stmts[0];
    if (stmt === undefined || stmt === null) throw new Error(`shell parser calibration failed on ${src}`);
    return stmt;
  };
  const redir = new Map<number, string>();
  for (const op of ['>', '>>', '<', '<>', '<&', '>&', '>|', '<<<', '&>', '&>>']) {
    const r = first(`x ${op} y`).Redirs[0];
    if (r) redir.set(r.Op, op);
  }
  for (const [op, src] of [['<<', 'x <<E\nE\n'], ['<<-', 'x <<-E\n\tE\n']] as const) {
    const r = first(src).Redirs[0];
    if (r) redir.set(r.Op, op);
  }
  const binOp = (src: string): number => (first(src).Cmd as sh.BinaryCmd).Op;
  const procIn = ((first('x <(y)').Cmd as sh.CallExpr).Args[1]?.Parts[0] as sh.ProcSubst).Op;
  const paramOp = (src: string): number =>
    (((first(src).Cmd as sh.CallExpr).Args[1]?.Parts[0] as sh.ParamExp).Exp as sh.Expansion).Op;
  if (redir.size !== 12) throw new Error('shell parser calibration failed on redirections');
  loaded = {
    syntax,
    ops: {
      redir,
      pipe: new Set([binOp('a | b'), binOp('a |& b')]),
      procIn,
      paramAssign: new Set([paramOp('x ${a=b}'), paramOp('x ${a:=b}')]),
      paramTransform: paramOp('x ${a@Q}'),
      testArith: new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge'].map((op) => ((first(`[[ a ${op} b ]]`).Cmd as sh.TestClause).X as sh.BinaryTest).Op)),
      testVar: new Set(['-v', '-R'].map((op) => ((first(`[[ ${op} a ]]`).Cmd as sh.TestClause).X as sh.UnaryTest).Op)),
    },
  };
}

class Refusal extends Error {
  readonly code: 'ERR_SHELL_UNSUPPORTED';
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(reason: string, pos?: sh.Pos) {
    const at = pos !== undefined && pos.IsValid() ? ` at ${pos.Line()}:${pos.Col()}` : '';
    super(`${reason}${at}`);
    this.code = 'ERR_SHELL_UNSUPPORTED';
    this.line = pos?.IsValid() === true ? pos.Line() : undefined;
    this.column = pos?.IsValid() === true ? pos.Col() : undefined;
  }
}

interface Walk {
  readonly syntax: Syntax;
  readonly ops: Ops;
  /** The text being parsed, as UTF-8: the parser's offsets count bytes. */
  readonly src: Buffer;
  readonly out: ShellCommand[];
  readonly maxCommands: number;
  readonly maxDepth: number;
}

/**
 * Parses one Bash line into every simple command it would run, wherever it sits: lists (`;`,
 * `&&`, `||`, `&`), pipelines, subshells, `{ }` groups, `if`/`while`/`until`/`for`/`select`/`case`
 * bodies, command substitution (`$( )`, backticks), process substitution (`<( )`, `>( )`),
 * substitutions inside unquoted here-document bodies, parameter expansions, arithmetic, `[[ ]]`
 * and `(( ))` (which run no command themselves), and the commands run by the wrappers of
 * {@link SHELL_WRAPPERS}, by `find -exec` and by `sh|bash|dash -c STRING` (recursively).
 *
 * Refused with `ERR_SHELL_UNSUPPORTED`: a command name that is not static; `eval`, `source`, `.`,
 * `alias`, `enable`, `fc`, `bind`, `complete`, `compgen`, `hash -p`, `trap` with an action,
 * `mapfile -C`, `set -k`, `declare -n`, `declare -i`; function definitions and `coproc`;
 * assignments to {@link PROTECTED_VARIABLES} or to a name given dynamically; named descriptors
 * (`{fd}>x`); statements made only of redirections; redirections of compound commands; wrappers
 * whose options cannot be read with certainty; a dynamic `-c` string; and lines over the limits
 * in {@link SHELL_PARSE_DEFAULTS} (`maxBytes` UTF-8 bytes of the line, `maxCommands` commands
 * listed, `maxDepth` nesting levels).
 *
 * Also refused, because Bash evaluates text a second time there and a command hidden in a value
 * would run unlisted (checked against bash 5.2): variables in arithmetic (`$((x))`, `(( x ))`,
 * `let`, `for ((…))`, `[[ $x -eq 1 ]]`, array subscripts, `${s:off}`), since a value such as
 * `a[$(cmd)]` runs `cmd`; only numbers, `${#x}`, `$#`, `$?`, `$$` and `$!` are allowed there;
 * command substitution inside arithmetic (its output is evaluated); `${x@P}` (prompt expansion);
 * indirect expansion `${!x}`; `-v` tests and assignment targets with non-numeric subscripts.
 *
 * Syntax errors are `ERR_SHELL_PARSE` with the parser's line and column (columns count UTF-8
 * bytes). Never throws. Cost: about 0.1-0.2 ms for a typical line after {@link loadShellParser}.
 */
export function parseShellLine(line: string, options: ShellParseOptions = {}): ShellParse {
  const maxBytes = options.maxBytes ?? SHELL_PARSE_DEFAULTS.maxBytes;
  const maxCommands = options.maxCommands ?? SHELL_PARSE_DEFAULTS.maxCommands;
  const maxDepth = options.maxDepth ?? SHELL_PARSE_DEFAULTS.maxDepth;
  if (typeof line !== 'string') return unsupported('line is not a string');
  if (Buffer.byteLength(line, 'utf8') > maxBytes) return unsupported(`line longer than ${maxBytes} bytes`);
  if (line.includes('\0')) return unsupported('NUL byte in line');
  try {
    loadShellParser();
  } catch {
    return unsupported('shell parser unavailable');
  }
  const { syntax, ops } = loaded as { syntax: Syntax; ops: Ops };
  const walk: Walk = { syntax, ops, src: Buffer.from(line, 'utf8'), out: [], maxCommands, maxDepth };
  try {
    walkLine(walk, line, [], 0);
  } catch (error) {
    if (error instanceof Refusal) {
      return {
        ok: false,
        code: error.code,
        reason: error.message,
        ...(error.line === undefined ? {} : { line: error.line }),
        ...(error.column === undefined ? {} : { column: error.column }),
      };
    }
    if (error instanceof SyntaxRefusal) {
      return {
        ok: false,
        code: 'ERR_SHELL_PARSE',
        reason: `syntax error: ${error.message}`,
        ...(error.line === undefined ? {} : { line: error.line }),
        ...(error.column === undefined ? {} : { column: error.column }),
      };
    }
    if (error instanceof RangeError) return unsupported('line nested too deeply for the parser');
    return unsupported('parser failed on this line');
  }
  return { ok: true, commands: walk.out };
}

function unsupported(reason: string): ShellParse {
  return { ok: false, code: 'ERR_SHELL_UNSUPPORTED', reason };
}

class SyntaxRefusal extends Error {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, line: number | undefined, column: number | undefined) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

function walkLine(w: Walk, text: string, within: readonly string[], depth: number): void {
  let file: sh.File;
  try {
    parser ??= w.syntax.NewParser(w.syntax.Variant(w.syntax.LangBash));
    file = parser.Parse(text, '');
  } catch (error) {
    // After a failure the parser's state is not trusted: the next line gets a fresh one.
    parser = undefined;
    if (error instanceof RangeError) throw error;
    const e = error as { Error?: () => string; Pos?: sh.Pos };
    const message = typeof e.Error === 'function' ? e.Error() : 'syntax error';
    const pos = e.Pos;
    const valid = pos !== undefined && typeof pos.IsValid === 'function' && pos.IsValid();
    throw new SyntaxRefusal(message, valid ? pos.Line() : undefined, valid ? pos.Col() : undefined);
  }
  // A nested `sh -c` string has its own offsets, so the walk takes its text along.
  walkStmts({ ...w, src: Buffer.from(text, 'utf8') }, plainFile(file).Stmts, within, depth);
}

/**
 * A GopherJS type descriptor, as the `mvdan-sh` build attaches to every Go value: `kind`
 * (reflect.Kind numbering), `string` (`*syntax.CallExpr`), `elem`, `fields`, `nil`.
 */
interface GoType {
  readonly kind: number;
  readonly string: string;
  readonly elem?: GoType;
  readonly fields?: readonly { readonly prop: string; readonly name: string; readonly exported: boolean; readonly typ: GoType }[];
  readonly nil?: unknown;
}
interface GoValue {
  readonly constructor: GoType;
  readonly [field: string]: unknown;
}
const KIND = { bool: 1, maxNumber: 14, interface: 20, ptr: 22, slice: 23, string: 24, struct: 25 } as const;

/**
 * Converts the parser's tree into plain objects in one pass. The build's public objects convert
 * each Go value anew on every property read (tens of microseconds a read, growing with the
 * subtree), which made the walk the dominant cost; this reads the Go values underneath
 * (`__internal_object__`) once, guided by their own type descriptors, and yields the same shape:
 * arrays, UTF-8-decoded strings, `null` for nil, `$type`, and `Pos()`/`End()`. Comments and
 * position fields are skipped. When the internals are not there, the public objects are used.
 */
function plainFile(file: sh.File): sh.File {
  const raw = (file as unknown as { __internal_object__?: GoValue }).__internal_object__;
  if (raw === undefined || typeof raw.constructor.string !== 'string') return file;
  return plain(raw, raw.constructor) as sh.File;
}

function plain(x: unknown, typ: GoType): unknown {
  switch (typ.kind) {
    case KIND.ptr:
      if (x === typ.nil || x === null || x === undefined) return null;
      if (typ.elem?.kind !== KIND.struct) throw new Error(`unexpected pointer ${typ.string}`);
      return struct(x as GoValue, typ);
    case KIND.interface: {
      const c = (x as { constructor?: Partial<GoType> } | null | undefined)?.constructor;
      if (x === null || x === undefined || typeof c?.string !== 'string' || c.kind === undefined) return null;
      return plain(x, c as GoType);
    }
    case KIND.slice: {
      const s = x as { $array: unknown[]; $offset: number; $length: number };
      const out: unknown[] = [];
      for (let i = 0; i < s.$length; i++) out.push(plain(s.$array[s.$offset + i], typ.elem as GoType));
      return out;
    }
    case KIND.string:
      // GopherJS keeps Go strings as one UTF-16 unit per byte.
      return /^[\x00-\x7f]*$/.test(x as string) ? x : Buffer.from(x as string, 'latin1').toString('utf8');
    default:
      if (typ.kind >= KIND.bool && typ.kind <= KIND.maxNumber) return x;
      throw new Error(`unexpected Go kind ${typ.kind} (${typ.string})`);
  }
}

function struct(x: GoValue, ptr: GoType): Record<string, unknown> {
  const out: Record<string, unknown> = { $type: ptr.string };
  for (const f of ptr.elem?.fields ?? []) {
    if (!f.exported || f.typ.string === 'syntax.Pos' || f.typ.string.includes('Comment')) continue;
    out[f.name] = plain(x[f.prop], f.typ);
  }
  const methods = x as unknown as { Pos?: () => sh.Pos; End?: () => sh.Pos };
  if (typeof methods.Pos === 'function') out.Pos = () => (methods.Pos as () => sh.Pos).call(x);
  if (typeof methods.End === 'function') out.End = () => (methods.End as () => sh.Pos).call(x);
  Object.defineProperty(out, '$raw', { value: x, enumerable: false });
  return out;
}

function enter(w: Walk, depth: number, node: sh.Node): number {
  if (depth + 1 > w.maxDepth) throw new Refusal(`nesting deeper than ${w.maxDepth}`, node.Pos());
  return depth + 1;
}

function walkStmts(w: Walk, stmts: readonly (sh.Stmt | null)[], within: readonly string[], depth: number): void {
  for (const stmt of stmts) if (stmt) walkStmt(w, stmt, within, depth);
}

function walkStmt(w: Walk, stmt: sh.Stmt, within: readonly string[], depth: number): void {
  if (stmt.Coprocess) throw new Refusal('coproc', stmt.Pos());
  const here = stmt.Background ? [...within, 'background'] : within;
  const redirects = stmt.Redirs.filter((r): r is sh.Redirect => r !== null).map((r) => redirect(w, r, here, depth));
  const cmd = stmt.Cmd as sh.Node | null;
  if (cmd === null) throw new Refusal('redirection without a command', stmt.Pos());
  const type = typeOf(w, cmd);
  const d = type === 'CallExpr' ? depth : enter(w, depth, cmd);
  switch (type) {
    case 'CallExpr':
      callExpr(w, cmd as sh.CallExpr, redirects, here, depth);
      return;
    case 'BinaryCmd': {
      const b = cmd as sh.BinaryCmd;
      // `a | b | c` nests as `(a | b) | c`: one pipeline, labelled once.
      const inner = w.ops.pipe.has(b.Op) && here[here.length - 1] !== 'pipeline' ? [...here, 'pipeline'] : here;
      if (redirects.length > 0) throw new Refusal('redirection of a list', stmt.Pos());
      if (b.X) walkStmt(w, b.X, inner, d);
      if (b.Y) walkStmt(w, b.Y, inner, d);
      return;
    }
    case 'Subshell':
    case 'Block':
      noCompoundRedirects(redirects, stmt);
      walkStmts(w, (cmd as sh.Subshell).Stmts, [...here, type === 'Subshell' ? 'subshell' : 'group'], d);
      return;
    case 'IfClause': {
      noCompoundRedirects(redirects, stmt);
      for (let c: sh.IfClause | null = cmd as sh.IfClause; c; c = c.Else) {
        walkStmts(w, c.Cond, [...here, 'if'], d);
        walkStmts(w, c.Then, [...here, 'if'], d);
      }
      return;
    }
    case 'WhileClause': {
      noCompoundRedirects(redirects, stmt);
      const c = cmd as sh.WhileClause;
      const label = c.Until ? 'until' : 'while';
      walkStmts(w, c.Cond, [...here, label], d);
      walkStmts(w, c.Do, [...here, label], d);
      return;
    }
    case 'ForClause': {
      noCompoundRedirects(redirects, stmt);
      const c = cmd as sh.ForClause;
      const label = c.Select ? 'select' : 'for';
      const loopType = typeOf(w, c.Loop);
      if (loopType === 'WordIter') {
        const it = c.Loop as sh.WordIter;
        checkName(it.Name?.Value ?? '', `${label} loop variable`, it.Pos());
        for (const item of it.Items) if (item) scanWord(w, item, [...here, label], d);
      } else if (loopType === 'CStyleLoop') {
        const loop = c.Loop as sh.CStyleLoop;
        arithm(w, loop.Init, [...here, label], d);
        arithm(w, loop.Cond, [...here, label], d);
        arithm(w, loop.Post, [...here, label], d);
      } else {
        throw new Refusal(`unsupported loop ${loopType}`, c.Pos());
      }
      walkStmts(w, c.Do, [...here, label], d);
      return;
    }
    case 'CaseClause': {
      noCompoundRedirects(redirects, stmt);
      const c = cmd as sh.CaseClause;
      if (c.Word) scanWord(w, c.Word, [...here, 'case'], d);
      for (const item of c.Items) {
        if (!item) continue;
        for (const p of item.Patterns) if (p) scanWord(w, p, [...here, 'case'], d);
        walkStmts(w, item.Stmts, [...here, 'case'], d);
      }
      return;
    }
    case 'TestClause':
      noCompoundRedirects(redirects, stmt);
      scanNode(w, (cmd as sh.TestClause).X, [...here, 'test'], d);
      return;
    case 'ArithmCmd':
      noCompoundRedirects(redirects, stmt);
      arithm(w, (cmd as sh.ArithmCmd).X, [...here, 'arithmetic'], d);
      return;
    case 'LetClause':
      noCompoundRedirects(redirects, stmt);
      for (const x of (cmd as sh.LetClause).Exprs) arithm(w, x, [...here, 'arithmetic'], d);
      return;
    case 'DeclClause':
      declClause(w, cmd as sh.DeclClause, redirects, here, d);
      return;
    case 'TimeClause': {
      const t = cmd as sh.TimeClause;
      const argv: ShellWord[] = [staticWord('time')];
      if (t.PosixFormat) argv.push(staticWord('-p'));
      push(w, { argv, assignments: [], redirects, within: here }, cmd);
      if (t.Stmt) walkStmt(w, t.Stmt, [...here, 'time'], d);
      return;
    }
    case 'FuncDecl':
      throw new Refusal('function definition', cmd.Pos());
    case 'CoprocClause':
      throw new Refusal('coproc', cmd.Pos());
    default:
      throw new Refusal(`unsupported construct ${type}`, cmd.Pos());
  }
}

function noCompoundRedirects(redirects: readonly ShellRedirect[], stmt: sh.Stmt): void {
  // A redirection on a compound command applies to every command inside; refusing it keeps each
  // listed command's `redirects` complete.
  if (redirects.length > 0) throw new Refusal('redirection of a compound command', stmt.Pos());
}

function push(w: Walk, command: ShellCommand, node: sh.Node): void {
  if (w.out.length >= w.maxCommands) throw new Refusal(`more than ${w.maxCommands} commands`, node.Pos());
  w.out.push(command);
}

function checkName(name: string, what: string, pos: sh.Pos): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Refusal(`${what} with a dynamic or invalid name`, pos);
  if (isProtectedVariable(name)) throw new Refusal(`${what} assigns protected variable ${name}`, pos);
}

function redirect(w: Walk, r: sh.Redirect, within: readonly string[], depth: number): ShellRedirect {
  const op = w.ops.redir.get(r.Op);
  if (op === undefined) throw new Refusal('unknown redirection operator', r.Pos());
  let fd: number | null = null;
  if (r.N) {
    if (!/^\d{1,4}$/.test(r.N.Value)) throw new Refusal('named file descriptor redirection', r.Pos());
    fd = Number(r.N.Value);
  }
  if (op === '<<' || op === '<<-') {
    if (r.Hdoc) scanWord(w, r.Hdoc, [...within, 'heredoc'], depth);
    return { op, fd, target: null };
  }
  if (!r.Word) throw new Refusal('redirection without a word', r.Pos());
  const target = word(w, r.Word, within, depth);
  if (op === '<<<') return { op, fd, target: null };
  if ((op === '>&' || op === '<&') && target.kind === 'static' && /^(\d+-?|-)$/.test(target.value)) {
    return { op, fd, target: null };
  }
  return { op, fd, target };
}

function declClause(
  w: Walk,
  c: sh.DeclClause,
  redirects: readonly ShellRedirect[],
  within: readonly string[],
  depth: number,
): void {
  const variant = c.Variant?.Value ?? 'declare';
  const argv: ShellWord[] = [staticWord(variant)];
  const assignments: { name: string; value: ShellWord }[] = [];
  for (const a of c.Args) {
    if (!a) continue;
    if (a.Naked && !a.Name) {
      const v = a.Value ? word(w, a.Value, within, depth) : staticWord('');
      if (v.kind !== 'static') throw new Refusal(`${variant} with a dynamic argument`, a.Pos());
      if (/^[-+]/.test(v.value)) {
        declOption(variant, v.value, a.Pos());
      } else {
        checkName(v.value, variant, a.Pos());
      }
      argv.push(v);
      continue;
    }
    const name = a.Name?.Value ?? '';
    checkName(name, variant, a.Pos());
    if (a.Index) arithm(w, a.Index, within, depth);
    const value = assignValue(w, a, within, depth);
    argv.push(a.Naked ? staticWord(name) : value);
    if (!a.Naked) assignments.push({ name, value });
  }
  push(w, { argv, assignments, redirects, within }, c);
}

function assignValue(w: Walk, a: sh.Assign, within: readonly string[], depth: number): ShellWord {
  if (a.Array) {
    for (const e of a.Array.Elems) {
      if (!e) continue;
      if (e.Index) arithm(w, e.Index, within, depth);
      if (e.Value) scanWord(w, e.Value, within, depth);
    }
    return { kind: 'dynamic', text: sourceText(w, a.Array), prefix: '', glob: false };
  }
  if (!a.Value) return staticWord('');
  return word(w, a.Value, within, depth, true);
}

function callExpr(
  w: Walk,
  c: sh.CallExpr,
  redirects: readonly ShellRedirect[],
  within: readonly string[],
  depth: number,
): void {
  const assignments: { name: string; value: ShellWord }[] = [];
  for (const a of c.Assigns) {
    if (!a) continue;
    const name = a.Name?.Value ?? '';
    checkName(name, 'assignment', a.Pos());
    if (a.Index) arithm(w, a.Index, within, depth);
    assignments.push({ name, value: assignValue(w, a, within, depth) });
  }
  const argv = c.Args.filter((x): x is sh.Word => x !== null).map((x) => word(w, x, within, depth));
  if (argv.length === 0) {
    // `FOO=bar` alone sets a shell variable and runs nothing; its substitutions were listed above.
    if (redirects.length > 0) throw new Refusal('redirection without a command', c.Pos());
    return;
  }
  command(w, { argv, assignments, redirects, within }, c, depth);
}

/** Checks one simple command, lists it, and unwraps what it runs. */
function command(w: Walk, cmd: ShellCommand, node: sh.Node, depth: number): void {
  const first = cmd.argv[0];
  if (first === undefined) return;
  if (first.kind !== 'static') throw new Refusal(`command name is dynamic (${first.text})`, node.Pos());
  const name = first.value;
  const base = name.includes('/') ? name.slice(name.lastIndexOf('/') + 1) : name;
  if (name === '') throw new Refusal('empty command name', node.Pos());
  const refused = REFUSED_BUILTINS[name];
  if (refused !== undefined) throw new Refusal(refused, node.Pos());
  builtinChecks(name, cmd.argv, node);
  push(w, cmd, node);
  const spec = SHELL_WRAPPERS[base];
  if (spec !== undefined && (base === name || !['exec', 'command', 'builtin'].includes(base))) {
    unwrap(w, base, spec, cmd, node, depth);
  } else if (base === 'find') {
    unwrapFind(w, cmd, node, depth);
  } else if (SHELLS.has(base)) {
    unwrapShell(w, base, cmd, node, depth);
  }
}

/**
 * `-n` makes a name reference (assignments through it reach any variable); `-i` evaluates every
 * later assignment as arithmetic (see `arithmetic on variable`).
 */
function declOption(what: string, option: string, pos: sh.Pos): void {
  if (/^[-+][A-Za-z]*n/.test(option)) throw new Refusal(`${what} -n (name reference)`, pos);
  if (/^[-+][A-Za-z]*i/.test(option)) throw new Refusal(`${what} -i (integer attribute)`, pos);
}

/** A variable an argument assigns: a valid, unprotected name, with at most a numeric subscript. */
function checkTarget(arg: string, what: string, pos: sh.Pos): void {
  const eq = arg.indexOf('=');
  const lhs = eq < 0 ? arg : arg.slice(0, eq);
  const bracket = lhs.indexOf('[');
  if (bracket >= 0 && !/^\[\d+\]\+?$/.test(lhs.slice(bracket))) {
    throw new Refusal(`${what} with a subscript that is evaluated as arithmetic`, pos);
  }
  checkName(variableOf(arg), what, pos);
}

/** The variable an argument names: `X` of `X`, `X=1`, `X+=1`, `X[2]=1`. */
function variableOf(arg: string): string {
  const eq = arg.indexOf('=');
  let name = eq < 0 ? arg : arg.slice(0, eq);
  if (name.endsWith('+')) name = name.slice(0, -1);
  const bracket = name.indexOf('[');
  return bracket < 0 ? name : name.slice(0, bracket);
}

function staticValues(argv: readonly ShellWord[], what: string, node: sh.Node): string[] {
  return argv.map((a) => {
    if (a.kind !== 'static') throw new Refusal(`${what} with a dynamic argument`, node.Pos());
    return a.value;
  });
}

function builtinChecks(name: string, argv: readonly ShellWord[], node: sh.Node): void {
  const pos = node.Pos();
  switch (name) {
    case 'hash': {
      if (argv.some((a) => a.kind !== 'static' || /^-[A-Za-z]*p/.test(a.value))) throw new Refusal('hash -p', pos);
      return;
    }
    case 'trap': {
      const args = staticValues(argv.slice(1), 'trap', node);
      if (args.length === 0 || args[0] === '-l' || args[0] === '-p') return;
      const rest = args[0] === '--' ? args.slice(1) : args;
      if (rest.length === 0 || rest[0] === '' || rest[0] === '-') return;
      throw new Refusal('trap with an action', pos);
    }
    case 'set': {
      const args = staticValues(argv.slice(1), 'set', node);
      for (let i = 0; i < args.length; i++) {
        const a = args[i] ?? '';
        if (a === '--' || a === '-') break;
        if (/^[-+][A-Za-z]*k/.test(a)) throw new Refusal('set -k', pos);
        if ((a === '-o' || a === '+o') && args[i + 1] === 'keyword') throw new Refusal('set -o keyword', pos);
      }
      return;
    }
    case 'unset': {
      for (const a of staticValues(argv.slice(1), 'unset', node)) {
        if (!a.startsWith('-')) checkTarget(a, 'unset', pos);
      }
      return;
    }
    case 'read':
    case 'mapfile':
    case 'readarray':
    case 'getopts': {
      const args = staticValues(argv.slice(1), name, node);
      if (name !== 'read' && name !== 'getopts' && args.some((a) => /^-[A-Za-z]*C/.test(a))) {
        throw new Refusal(`${name} -C (callback)`, pos);
      }
      for (const a of args) {
        if (isProtectedVariable(a)) throw new Refusal(`${name} assigns protected variable ${a}`, pos);
        if (a.includes('[')) checkTarget(a, name, pos);
      }
      return;
    }
    case 'test':
    case '[': {
      // `test -v 'a[$(cmd)]'` evaluates the subscript.
      for (let i = 1; i < argv.length; i++) {
        const a = argv[i];
        if (a?.kind === 'static' && (a.value === '-v' || a.value === '-R')) {
          const next = argv[i + 1];
          if (next?.kind !== 'static' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(next.value)) throw new Refusal(`${name} -v on a subscript or dynamic name`, pos);
        }
      }
      return;
    }
    case 'printf': {
      for (let i = 1; i < argv.length; i++) {
        const a = argv[i];
        if (a === undefined) break;
        if (a.kind !== 'static') throw new Refusal('printf with a dynamic option or format', pos);
        if (a.value === '--' || !a.value.startsWith('-')) break;
        if (a.value === '-v' || a.value.startsWith('-v')) {
          const target = a.value === '-v' ? argv[i + 1] : staticWord(a.value.slice(2));
          if (target?.kind !== 'static') throw new Refusal('printf -v with a dynamic name', pos);
          checkTarget(target.value, 'printf -v', pos);
          if (a.value === '-v') i++;
        }
      }
      return;
    }
    case 'export':
    case 'declare':
    case 'typeset':
    case 'local':
    case 'readonly': {
      // Reached when the parser saw a plain call (`command export X=1`, `builtin declare ...`).
      for (const a of staticValues(argv.slice(1), name, node)) {
        if (/^[-+]/.test(a)) {
          declOption(name, a, pos);
          continue;
        }
        checkTarget(a, name, pos);
      }
      return;
    }
    case 'let': {
      for (const a of staticValues(argv.slice(1), 'let', node)) {
        for (const n of a.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []) {
          if (isProtectedVariable(n)) throw new Refusal(`let names protected variable ${n}`, pos);
        }
      }
      return;
    }
    default:
      return;
  }
}

const DYNAMIC_INPUT: ShellWord = { kind: 'dynamic', text: '{xargs input}', prefix: '', glob: false };

function unwrap(w: Walk, base: string, spec: WrapperSpec, cmd: ShellCommand, node: sh.Node, depth: number): void {
  const pos = node.Pos();
  const argv = cmd.argv;
  const assignments: { name: string; value: ShellWord }[] = [];
  let replace: string | undefined;
  let i = 1;
  const valued = (opt: string): string | undefined => {
    // `-n 5`, `-n5`, `--adjustment=5`, `--adjustment 5`; returns the option name when it takes a value.
    for (const v of spec.withValue) {
      if (opt === v) return v;
      if (v.startsWith('--') ? opt.startsWith(`${v}=`) : !opt.startsWith('--') && opt.startsWith(v)) return v;
    }
    return undefined;
  };
  for (; i < argv.length; i++) {
    const a = argv[i] as ShellWord;
    if (a.kind !== 'static') {
      // May expand to an option, or to several words or none: the command's position is unknown.
      if (a.prefix === '' || a.prefix.startsWith('-')) throw new Refusal(`${base} with a dynamic option`, pos);
      break;
    }
    const v = a.value;
    if (v === '--') {
      i++;
      break;
    }
    if (!v.startsWith('-') || (v === '-' && base !== 'env')) break;
    if (spec.stopWith?.some((s) => v === s || (v.startsWith('-') && !v.startsWith('--') && v.slice(1).includes(s.slice(1))))) {
      return;
    }
    if (spec.flags.includes(v)) continue;
    if (base === 'nice' && /^-\d+$/.test(v)) continue;
    const opt = valued(v);
    if (opt === undefined) throw new Refusal(`${base} option ${v} not understood`, pos);
    const attached = v !== opt;
    let given: string;
    if (attached) {
      given = opt.startsWith('--') ? v.slice(opt.length + 1) : v.slice(opt.length);
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new Refusal(`${base} option ${v} without a value`, pos);
      if (next.kind !== 'static') throw new Refusal(`${base} option ${v} with a dynamic value`, pos);
      given = next.value;
      i++;
    }
    if (base === 'env' && (opt === '-u' || opt === '--unset')) checkName(given, 'env -u', pos);
    if (base === 'xargs' && (opt === '-I' || opt === '--replace')) {
      if (given === '') throw new Refusal('xargs -I with an empty replacement', pos);
      replace = given;
    }
  }
  if (base === 'env') {
    for (; i < argv.length; i++) {
      const a = argv[i] as ShellWord;
      const text = a.kind === 'static' ? a.value : a.prefix;
      const m = /^([^=]*)=/.exec(text);
      if (m === null) break;
      checkName(m[1] ?? '', 'env assignment', pos);
      // An unquoted expansion could split into more words and move the command's position.
      if (a.kind !== 'static') throw new Refusal('env assignment with a dynamic value', pos);
      const value = a.kind === 'static' ? staticWord(a.value.slice(text.indexOf('=') + 1)) : a;
      assignments.push({ name: m[1] ?? '', value });
    }
  }
  const positional = spec.positional ?? 0;
  if (argv.length - i < positional) throw new Refusal(`${base} without its operands`, pos);
  for (let k = i; k < i + positional; k++) {
    if (argv[k]?.kind !== 'static') throw new Refusal(`${base} with a dynamic operand`, pos);
  }
  i += positional;
  let wrapped: ShellWord[] = argv.slice(i);
  if (wrapped.length === 0) {
    if (spec.noCommand === 'ok') return;
    if (spec.noCommand === 'refuse') throw new Refusal(`${base} without a command`, pos);
    wrapped = spec.noCommand.map(staticWord);
  }
  if (replace !== undefined) {
    const r = replace;
    wrapped = wrapped.map((a) =>
      a.kind === 'static' && a.value.includes(r)
        ? { kind: 'dynamic', text: a.value, prefix: a.value.slice(0, a.value.indexOf(r)), glob: false }
        : a,
    );
  } else if (spec.xargsInput === true) {
    wrapped.push(DYNAMIC_INPUT);
  }
  command(w, { argv: wrapped, assignments, redirects: [], within: [...cmd.within, base] }, node, enter(w, depth, node));
}

function unwrapFind(w: Walk, cmd: ShellCommand, node: sh.Node, depth: number): void {
  const argv = cmd.argv;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as ShellWord;
    if (a.kind !== 'static') {
      if (/^-(exec|execdir|ok|okdir)/.test(a.prefix) || a.prefix === '') {
        // A dynamic word in find's expression could itself be `-exec`.
        throw new Refusal('find with a dynamic expression word', node.Pos());
      }
      continue;
    }
    if (!['-exec', '-execdir', '-ok', '-okdir'].includes(a.value)) continue;
    const action = a.value;
    const wrapped: ShellWord[] = [];
    let end = -1;
    for (let j = i + 1; j < argv.length; j++) {
      const b = argv[j] as ShellWord;
      if (b.kind === 'static' && (b.value === ';' || (b.value === '+' && isBraces(argv[j - 1])))) {
        end = j;
        break;
      }
      wrapped.push(
        b.kind === 'static' && b.value.includes('{}')
          ? { kind: 'dynamic', text: b.value, prefix: b.value.slice(0, b.value.indexOf('{}')), glob: false }
          : b,
      );
    }
    if (end < 0) throw new Refusal(`find ${action} without ; or +`, node.Pos());
    if (wrapped.length === 0) throw new Refusal(`find ${action} without a command`, node.Pos());
    command(w, { argv: wrapped, assignments: [], redirects: [], within: [...cmd.within, 'find'] }, node, enter(w, depth, node));
    i = end;
  }
}

function isBraces(word: ShellWord | undefined): boolean {
  return word?.kind === 'static' && word.value === '{}';
}

function unwrapShell(w: Walk, base: string, cmd: ShellCommand, node: sh.Node, depth: number): void {
  const pos = node.Pos();
  const argv = cmd.argv;
  let withC = false;
  let i = 1;
  for (; i < argv.length; i++) {
    const a = argv[i] as ShellWord;
    if (a.kind !== 'static') {
      if (withC) throw new Refusal(`${base} -c with a dynamic command string`, pos);
      if (a.prefix === '' || a.prefix.startsWith('-') || a.prefix.startsWith('+')) {
        throw new Refusal(`${base} with a dynamic option`, pos);
      }
      break;
    }
    const v = a.value;
    if (v === '--' || v === '-') {
      i++;
      break;
    }
    if (SHELL_LONG_FLAGS.has(v)) continue;
    if (v === '-o' || v === '+o' || v === '-O' || v === '+O') {
      i++;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(v)) {
      for (const ch of v.slice(1)) {
        if (ch === 'c') withC = true;
        else if (!SHELL_FLAGS.has(ch)) throw new Refusal(`${base} option -${ch} not understood`, pos);
      }
      continue;
    }
    if (v.startsWith('-')) throw new Refusal(`${base} option ${v} not understood`, pos);
    break;
  }
  if (!withC) {
    // `bash FILE` runs a script file the policy sees as a path; without one it reads standard input.
    if (i >= argv.length) throw new Refusal(`${base} reading commands from standard input`, pos);
    return;
  }
  const script = argv[i];
  if (script === undefined) throw new Refusal(`${base} -c without a command string`, pos);
  if (script.kind !== 'static') throw new Refusal(`${base} -c with a dynamic command string`, pos);
  const d = enter(w, depth, node);
  try {
    walkLine(w, script.value, [...cmd.within, 'sh -c'], d);
  } catch (error) {
    if (error instanceof SyntaxRefusal) throw new Refusal(`${base} -c string does not parse: ${error.message}`, pos);
    throw error;
  }
}

function staticWord(value: string): ShellWord {
  return { kind: 'static', value };
}

function sourceText(w: Walk, node: sh.Node): string {
  return w.src.toString('utf8', node.Pos().Offset(), node.End().Offset());
}

/**
 * The node's type name (`CallExpr`, `Word`, ...). The build marks every node with `$type`
 * (`mvdan.cc/sh/v3/syntax.*CallExpr`); reading it is far cheaper than `syntax.NodeType`, which
 * is the fallback.
 */
function typeOf(w: Walk, node: sh.Node): string {
  const t = (node as { $type?: unknown }).$type;
  if (typeof t === 'string') return t.slice(t.lastIndexOf('.') + 1).replace(/^\*/, '');
  return w.syntax.NodeType(node);
}

/**
 * Refuses `<(` or `>(` in the literal text of a parameter expansion's word (`${x:-<(cmd)}`,
 * `${x/a/>(cmd)}`): mvdan/sh reads it as text there, but bash 5.2 performs the process
 * substitution and runs `cmd` (checked: `bash -c 'echo ${x:-<(touch f)}'` creates f), so the
 * command would run unlisted. Quoted or not, the word is refused rather than guessed.
 */
function refuseHiddenProcSubst(w: Walk, node: sh.Node | null | undefined): void {
  if (node === null || node === undefined) return;
  const t = typeOf(w, node);
  if (t === 'Lit' && /[<>]\(/.test((node as sh.Lit).Value)) throw new Refusal('process substitution inside a parameter expansion', node.Pos());
  if (t === 'Word') for (const part of (node as sh.Word).Parts) refuseHiddenProcSubst(w, part);
  if (t === 'DblQuoted') for (const part of (node as sh.DblQuoted).Parts) refuseHiddenProcSubst(w, part);
}

/**
 * Lists the commands inside an expression node (word parts, parameter expansions, arithmetic and
 * `[[ ]]` expressions). In arithmetic (`arith`), a name of a protected variable is refused since
 * arithmetic can assign. Each property is read once: every read converts a Go value to a new
 * JavaScript object. An unknown node type is refused.
 */
function scanNode(w: Walk, node: sh.Node | null | undefined, within: readonly string[], depth: number, arith = false): void {
  if (node === null || node === undefined) return;
  const t = typeOf(w, node);
  switch (t) {
    case 'Word':
      for (const part of (node as sh.Word).Parts) scanNode(w, part, within, depth, arith);
      return;
    case 'Lit':
      // Bash evaluates a variable's value in arithmetic as an expression, and a subscript in that
      // value is expanded again: `x='a[$(cmd)]'; echo $((x))` runs cmd. Only numbers are certain
      // (`0x1F`, `2#101` start with a digit).
      if (arith) {
        const v = (node as sh.Lit).Value;
        if (!/^[0-9]/.test(v) && /[A-Za-z_]/.test(v)) throw new Refusal(`arithmetic on variable ${v.slice(0, 32)}`, node.Pos());
      }
      return;
    case 'SglQuoted':
    case 'ExtGlob':
      return;
    case 'DblQuoted':
      for (const part of (node as sh.DblQuoted).Parts) scanNode(w, part, within, depth, arith);
      return;
    case 'BraceExp':
      for (const e of (node as sh.BraceExp).Elems) scanNode(w, e, within, depth, arith);
      return;
    case 'CmdSubst':
      // Its output would be evaluated as an expression, expanding subscripts in it again.
      if (arith) throw new Refusal('command substitution inside arithmetic', node.Pos());
      walkStmts(w, (node as sh.CmdSubst).Stmts, [...within, 'substitution'], enter(w, depth, node));
      return;
    case 'ProcSubst':
      if (arith) throw new Refusal('process substitution inside arithmetic', node.Pos());
      walkStmts(w, (node as sh.ProcSubst).Stmts, [...within, 'process-substitution'], enter(w, depth, node));
      return;
    case 'ParamExp': {
      const p = node as sh.ParamExp;
      const name = p.Param?.Value ?? '';
      // In arithmetic only values known to be numbers: lengths and `$#`, `$?`, `$$`, `$!`.
      if (arith && !p.Length && !['#', '?', '$', '!'].includes(name)) {
        throw new Refusal(`arithmetic on variable ${name}`, node.Pos());
      }
      const index = p.Index;
      const allElements = index !== null && index !== undefined && typeOf(w, index) === 'Word' && ['@', '*'].includes(litOf(w, index as sh.Word) ?? '');
      if (p.Excl && !p.Names && !allElements) throw new Refusal('indirect parameter expansion', node.Pos());
      const exp = p.Exp;
      if (exp && exp.Op === w.ops.paramTransform) {
        // `${x@P}` expands the value as a prompt string, running substitutions in it.
        const op = exp.Word ? litOf(w, exp.Word) : undefined;
        if (op === undefined || !/^[QEAKaUuLk]$/.test(op)) throw new Refusal(`parameter transformation @${op ?? '?'}`, node.Pos());
      }
      if (exp && w.ops.paramAssign.has(exp.Op)) {
        if (p.Excl) throw new Refusal('parameter assignment through an indirect name', node.Pos());
        checkName(name, 'parameter assignment', node.Pos());
      }
      const d = enter(w, depth, node);
      if (!allElements) scanNode(w, index, within, d, true);
      const slice = p.Slice;
      if (slice) {
        scanNode(w, slice.Offset, within, d, true);
        scanNode(w, slice.Length, within, d, true);
      }
      const repl = p.Repl;
      if (repl) {
        refuseHiddenProcSubst(w, repl.Orig);
        refuseHiddenProcSubst(w, repl.With);
        scanNode(w, repl.Orig, within, d);
        scanNode(w, repl.With, within, d);
      }
      if (exp) {
        refuseHiddenProcSubst(w, exp.Word);
        scanNode(w, exp.Word, within, d);
      }
      return;
    }
    case 'ArithmExp':
      scanNode(w, (node as sh.ArithmExp).X, within, enter(w, depth, node), true);
      return;
    case 'BinaryArithm':
    case 'BinaryTest': {
      const b = node as sh.BinaryArithm;
      const d = enter(w, depth, node);
      // `[[ a -eq b ]]` evaluates both sides as arithmetic.
      const a = arith || (t === 'BinaryTest' && w.ops.testArith.has(b.Op));
      scanNode(w, b.X, within, d, a);
      scanNode(w, b.Y, within, d, a);
      return;
    }
    case 'UnaryTest': {
      const u = node as sh.UnaryTest;
      if (w.ops.testVar.has(u.Op)) {
        // `[[ -v 'a[$(cmd)]' ]]` evaluates the subscript.
        const operand = typeOf(w, u.X) === 'Word' ? litOf(w, u.X as sh.Word) : undefined;
        if (operand === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(operand)) throw new Refusal('[[ -v ]] on a subscript or dynamic name', node.Pos());
      }
      scanNode(w, u.X, within, enter(w, depth, node), arith);
      return;
    }
    case 'UnaryArithm':
    case 'ParenArithm':
    case 'ParenTest':
      scanNode(w, (node as sh.UnaryArithm).X, within, enter(w, depth, node), arith);
      return;
    default:
      throw new Refusal(`unsupported construct ${t}`, node.Pos());
  }
}

/** The word's text when it is one unquoted literal, else undefined. */
function litOf(w: Walk, x: sh.Word): string | undefined {
  const parts = x.Parts;
  const only = parts[0];
  return parts.length === 1 && only !== undefined && typeOf(w, only) === 'Lit' ? (only as sh.Lit).Value : undefined;
}

function scanWord(w: Walk, x: sh.Word, within: readonly string[], depth: number): void {
  scanNode(w, x, within, depth);
}

/** Arithmetic: substitutions are listed; naming a protected variable is refused (it may assign). */
function arithm(w: Walk, node: sh.Node | null, within: readonly string[], depth: number): void {
  scanNode(w, node, within, depth, true);
}

/**
 * Quote removal per Bash manual 3.5.9, deciding static or dynamic. Substitutions inside the word
 * are listed as commands first.
 */
function word(w: Walk, x: sh.Word, within: readonly string[], depth: number, assignment = false): ShellWord {
  let parts = x.Parts;
  let types = parts.map((p) => typeOf(w, p));
  for (const part of parts) scanNode(w, part, within, depth);
  let text: string | undefined;
  if (parts.some((p, k) => types[k] === 'Lit' && (p as sh.Lit).Value.includes('{'))) {
    // Read before splitting: the split word's first part reports a shifted position.
    text = sourceText(w, x);
    // Brace expansion (manual 3.5.1) is left to the parser's own splitter rather than re-implemented.
    const raw = (x as unknown as { $raw?: GoValue }).$raw;
    // The splitter takes the Go word (the build unwraps `__internal_object__`) and edits it in place.
    const split = w.syntax.SplitBraces(raw === undefined ? x : ({ __internal_object__: raw } as unknown as sh.Word));
    const splitRaw = (split as unknown as { __internal_object__?: GoValue }).__internal_object__;
    parts = raw === undefined || splitRaw === undefined ? split.Parts : (plain(splitRaw, splitRaw.constructor) as sh.Word).Parts;
    types = parts.map((p) => typeOf(w, p));
  }
  let value = '';
  let dynamic = false;
  let glob = false;
  // Bash expands `~` after `=` and `:` also in arguments that look like assignments (`x=~/y`).
  const first = parts[0];
  const assignmentLike =
    assignment || (types[0] === 'Lit' && first !== undefined && /^[A-Za-z_][A-Za-z0-9_]*\+?=/.test((first as sh.Lit).Value));
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k] as sh.Node;
    const t = types[k];
    if (t === 'Lit') {
      const r = unquotedLit((part as sh.Lit).Value, k === 0, assignmentLike);
      value += r.value;
      if (r.dynamic) {
        dynamic = true;
        glob ||= r.glob;
        break;
      }
    } else if (t === 'SglQuoted' && !(part as sh.SglQuoted).Dollar) {
      value += (part as sh.SglQuoted).Value;
    } else if (t === 'DblQuoted' && !(part as sh.DblQuoted).Dollar) {
      let stop = false;
      for (const p of (part as sh.DblQuoted).Parts) {
        if (typeOf(w, p) !== 'Lit') {
          stop = true;
          break;
        }
        value += (p as sh.Lit).Value.replace(/\\([$`"\\\n])/g, (_m, c: string) => (c === '\n' ? '' : c));
      }
      if (stop) {
        dynamic = true;
        break;
      }
    } else {
      dynamic = true;
      glob ||= t === 'ExtGlob';
      break;
    }
  }
  if (!dynamic) return { kind: 'static', value };
  // Glob characters after the first dynamic part still expand.
  glob ||= parts.some((p, k) => types[k] === 'Lit' && unquotedLit((p as sh.Lit).Value, false, false).glob);
  // Source text read only when needed: each position read costs a conversion.
  return { kind: 'dynamic', text: text ?? sourceText(w, x), prefix: value, glob };
}

/**
 * Removes backslash escapes from an unquoted literal and reports what would expand: `*`, `?` or a
 * `[` with a later `]` (pathname expansion), `~` at the start of a word or after `=`/`:` in an
 * assignment (tilde expansion). Brace expansion was split out by the parser beforehand.
 */
function unquotedLit(raw: string, wordStart: boolean, assignment: boolean): { value: string; dynamic: boolean; glob: boolean } {
  let value = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\') {
      const next = raw[i + 1];
      if (next === undefined) break;
      if (next !== '\n') value += next;
      i++;
      continue;
    }
    if (c === '*' || c === '?' || (c === '[' && raw.indexOf(']', i + 1) > i)) return { value, dynamic: true, glob: true };
    if (c === '~' && ((i === 0 && wordStart) || (assignment && (raw[i - 1] === '=' || raw[i - 1] === ':')))) {
      return { value, dynamic: true, glob: false };
    }
    value += c;
  }
  return { value, dynamic: false, glob: false };
}
