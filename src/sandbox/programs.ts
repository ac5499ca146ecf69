/**
 * Which file a command's `argv[0]` runs inside the sandbox, the way a shell's
 * PATH lookup finds it (POSIX.1-2017 XCU §2.9.1.1 "Command Search and
 * Execution"): a name with a `/` is that path (relative to the working
 * folder, `/workspace`); any other name is searched in {@link SANDBOX_PATH},
 * the only PATH a run gets. The system folders are bound read-only from the
 * host at the same places, so the host's files answer for them; the final
 * path is the real one (symlinks resolved: `python3` → `/usr/bin/python3.11`),
 * and short forms (`allow: [python3]`) compile to every candidate and its real
 * path, so the two agree.
 *
 * A program in the workspace is never a system program: `./git` resolves to
 * `/workspace/git`, which no `allow: [git]` permits.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { posix } from 'node:path';

/** The PATH of every run, in search order. */
export const SANDBOX_PATH: readonly string[] = Object.freeze(['/usr/local/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin']);

/**
 * Bash's builtins (bash 5.2 manual, §4 "Shell Builtin Commands"): in a shell
 * line they run inside the shell whatever PATH holds, so they resolve to
 * `builtin:<name>`, not to a file. In an argv (no shell) they are files like
 * any other name.
 */
export const BASH_BUILTINS: ReadonlySet<string> = new Set([
  '.', ':', '[', 'alias', 'bg', 'bind', 'break', 'builtin', 'caller', 'cd', 'command', 'compgen', 'complete', 'compopt', 'continue', 'declare', 'dirs', 'disown',
  'echo', 'enable', 'eval', 'exec', 'exit', 'export', 'false', 'fc', 'fg', 'getopts', 'hash', 'help', 'history', 'jobs', 'kill', 'let', 'local', 'logout', 'mapfile',
  'popd', 'printf', 'pushd', 'pwd', 'read', 'readarray', 'readonly', 'return', 'set', 'shift', 'shopt', 'source', 'suspend', 'test', 'times', 'trap', 'true', 'type',
  'typeset', 'ulimit', 'umask', 'unalias', 'unset', 'wait',
]);

/**
 * Builtins every agent's shell lines may use without a short form (a `deny` form still
 * forbids them): they change only the shell's own state. The ones that run text as
 * commands or change how names resolve (`eval`, `source`, `alias`, `enable`, `hash -p`,
 * `trap` with an action, assignments to PATH and the like) are refused by the parser
 * (./shell.ts) before policy is asked; `exec`, `command` and `builtin` are unwrapped there.
 */
export const SAFE_BUILTINS: readonly string[] = Object.freeze([':', '[', 'break', 'cd', 'continue', 'declare', 'echo', 'exit', 'export', 'false', 'getopts', 'local', 'printf', 'pwd', 'read', 'return', 'set', 'shift', 'test', 'true', 'unset', 'wait']);

/** The working folder of a run inside the sandbox (the session's workspace). */
export const SANDBOX_WORKSPACE = '/workspace';

function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The real path of the file `name` runs inside the sandbox, or `""` when none
 * is found. `workspace`: the host folder bound at `/workspace` (paths under it
 * are looked up there and answered as `/workspace/...`, never as host paths).
 * `shell`: the command is in a shell line, where a builtin (`cd`, `echo`) is `builtin:<name>`.
 */
export function resolveProgram(name: string, workspace?: string, shell = false): string {
  if (name === '' || name.includes('\0')) return '';
  if (shell && BASH_BUILTINS.has(name)) return `builtin:${name}`;
  if (name.includes('/')) {
    const inside = posix.resolve(SANDBOX_WORKSPACE, name);
    if (inside === SANDBOX_WORKSPACE || inside.startsWith(`${SANDBOX_WORKSPACE}/`)) {
      // A workspace program: named by its place inside, whatever the host folder is.
      if (workspace === undefined) return inside;
      const host = workspace + inside.slice(SANDBOX_WORKSPACE.length);
      const r = real(host);
      return r === workspace || r.startsWith(`${workspace}/`) ? SANDBOX_WORKSPACE + r.slice(workspace.length) : r;
    }
    if (inside === '/tmp' || inside.startsWith('/tmp/')) return inside;
    return executable(inside) ? real(inside) : '';
  }
  for (const dir of SANDBOX_PATH) {
    const candidate = `${dir}/${name}`;
    if (executable(candidate)) return real(candidate);
  }
  return '';
}

/**
 * Every path a short form's program may resolve to: `/abs/path` and its real
 * path (`bin/tool`: `/workspace/bin/tool`), or for a bare name each {@link SANDBOX_PATH} entry joined with it and,
 * where it exists, its real path, and `builtin:<name>` for a bash builtin. Sorted, without duplicates.
 */
export function programCandidates(program: string): string[] {
  const out = new Set<string>();
  const add = (p: string): void => {
    out.add(p);
    out.add(real(p));
  };
  // With a `/`: that file (relative ones are in the workspace, where no real path is looked up).
  if (program.includes('/')) add(posix.resolve(SANDBOX_WORKSPACE, program));
  else {
    for (const dir of SANDBOX_PATH) add(`${dir}/${program}`);
    if (BASH_BUILTINS.has(program)) out.add(`builtin:${program}`);
  }
  return [...out].sort();
}
