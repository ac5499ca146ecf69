/**
 * The sandbox runner: one command, executed directly (no shell of ours unless
 * a forwarder is needed) inside bubblewrap, as an unprivileged host user,
 * with every namespace new, a seccomp filter, a read-only system, a tmpfs
 * /tmp, the workspace as the only writable host path, and limits the kernel
 * enforces (cgroup memory/pids, rlimits) plus the ones Bastion enforces
 * (wall time, total CPU time, output bytes). See docs/sandbox.md.
 *
 * Process shape: Node → `prlimit` (rlimits) → exec `bwrap` (setuid-free, as
 * the sandbox uid) → pid 1 of the new PID namespace (bubblewrap's reaper) →
 * the command. Killing `bwrap` takes everything: `--die-with-parent` SIGKILLs
 * pid 1, and the kernel kills every process of a PID namespace whose pid 1
 * dies, so no process of a run outlives the call (double forks, `setsid`,
 * `nohup` included). The run's cgroup is emptied and removed as well.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { BastionError } from '../errors.ts';
import { randomId } from '../util/crypto.ts';
import { createRunCgroup, type CgroupLayout, type RunCgroup } from './cgroup.ts';
import { sandboxSeccompFilter } from './seccomp.ts';
import { stripSetidBits } from './workspace.ts';

export { createWorkspace, removeWorkspace, stripSetidBits } from './workspace.ts';
export { probeSandbox } from './probe.ts';

/** Per-run limits. Units in the names: ms, bytes, counts. */
export interface SandboxLimits {
  /** Wall-clock time from start to kill, ms (Bastion's timer). */
  wallMs: number;
  /** CPU time of the whole run, ms: cgroup accounting polled by Bastion, and RLIMIT_CPU (whole seconds, rounded up) per process. */
  cpuMs: number;
  /** Memory of the whole run (RSS, page cache, tmpfs), bytes: cgroup limit; without cgroups RLIMIT_DATA per process. */
  memoryBytes: number;
  /** Processes and threads at once: cgroup `pids.max`; without cgroups RLIMIT_NPROC. */
  processes: number;
  /** Open file descriptors per process: RLIMIT_NOFILE. */
  openFiles: number;
  /** stdout + stderr bytes kept; one more byte kills the run. */
  outputBytes: number;
  /** Largest file a process may write, bytes: RLIMIT_FSIZE (and the size of the /tmp tmpfs). */
  fileBytes: number;
}

/** Defaults: 30 s wall, 10 s CPU, 512 MiB, 64 processes, 256 files, 1 MiB output, 64 MiB files. */
export const DEFAULT_SANDBOX_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  wallMs: 30_000,
  cpuMs: 10_000,
  memoryBytes: 512 * 1024 * 1024,
  processes: 64,
  openFiles: 256,
  outputBytes: 1024 * 1024,
  fileBytes: 64 * 1024 * 1024,
});

/**
 * What {@link probeSandbox} found. `available` false: `reason` says why
 * (bubblewrap missing or too old, user namespaces disabled, socat or prlimit
 * missing, unsupported architecture, running as root without a sandbox
 * user). The fields after `forwarder` are the runner's prepared state.
 */
export interface SandboxProbe {
  readonly available: boolean;
  readonly reason?: string;
  /** Absolute path of bwrap. */
  readonly bwrap?: string;
  /** bubblewrap's version, e.g. `0.8.0`. */
  readonly version?: string;
  /** Which cgroup hierarchy enforces memory/pids per run; `none`: rlimits only. */
  readonly cgroup: 'v2' | 'v1' | 'none';
  /** The host uid/gid every sandboxed process runs as (never 0). */
  readonly user: { uid: number; gid: number };
  /** Absolute path of socat (the in-sandbox egress forwarder; under /usr, so visible inside). */
  readonly forwarder?: string;
  /** Absolute path of prlimit. */
  readonly prlimit?: string;
  /** Where run cgroups are made (absent with `cgroup: 'none'`). */
  readonly cgroups?: CgroupLayout;
  /** A host directory (0755, root-owned when Bastion is root) with the generated minimal passwd, group, hosts, nsswitch.conf. */
  readonly etcDir?: string;
  /** bwrap arguments for the read-only system: /usr and the merged-usr links (/bin /lib /lib64 /sbin), host /etc files programs need. */
  readonly systemArgs?: readonly string[];
}

/** One command to run. */
export interface SandboxRun {
  /** Executed directly (no shell) inside; absolute or resolved on the sandbox PATH. Non-empty, no NUL. */
  argv: readonly string[];
  /** Host directory bound read-write at /workspace (the only writable host bind; cwd /workspace). Absent: cwd /tmp. Must be a real directory (not a symlink), owned by the sandbox user. */
  workspace?: string;
  /** Added to the minimal environment (PATH, HOME, LANG, TMPDIR); names `[A-Za-z_][A-Za-z0-9_]*`. The proxy and CA variables below cannot be overridden. */
  env?: Readonly<Record<string, string>>;
  /** Bytes on the command's stdin (absent: /dev/null). */
  stdin?: string | Buffer;
  /** Overrides of {@link DEFAULT_SANDBOX_LIMITS}; positive integers. */
  limits?: Partial<SandboxLimits>;
  /**
   * Host Unix socket of Bastion's egress proxy, bound at
   * /run/bastion/egress.sock and exposed on 127.0.0.1:3128 by socat inside the
   * network namespace (listening before the command starts);
   * HTTP_PROXY/HTTPS_PROXY/http_proxy/https_proxy/ALL_PROXY point at it and
   * NO_PROXY is empty. The sandbox user must be allowed to connect to it.
   */
  egressSocket?: string;
  /** PEM file bound read-only at /etc/bastion/ca.pem; SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, NODE_EXTRA_CA_CERTS, GIT_SSL_CAINFO, PIP_CERT point at it. */
  caFile?: string;
  /** Aborting kills the run; the result then has `aborted: true`. */
  signal?: AbortSignal;
}

/** How a run ended. */
export interface SandboxResult {
  /** bwrap's exit status: the command's, or 128+N when it died of signal N (then `signal` names N). null when Bastion killed the run. */
  exitCode: number | null;
  /** The signal that ended the command (`SIGKILL` when Bastion killed the run; inferred from 128+N otherwise, so a command that itself exits 137 reads as SIGKILL). */
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  /** Output was cut at `outputBytes` (then `limit` is `output`). */
  truncated: boolean;
  /** The limit that ended the run (or, for `processes`, refused at least one fork), or null. `files`: RLIMIT_FSIZE (SIGXFSZ). */
  limit: 'wall' | 'cpu' | 'memory' | 'processes' | 'output' | 'files' | null;
  /** The run was stopped through `signal`. */
  aborted: boolean;
  /** Start to exit, ms. */
  wallMs: number;
  /** CPU time of the whole run from cgroup accounting, ms; null without it. */
  cpuMs: number | null;
  /** Peak memory of the run from the cgroup, bytes; null without it. */
  peakMemoryBytes: number | null;
}

/** Paths inside the sandbox. */
const INSIDE = { workspace: '/workspace', socket: '/run/bastion/egress.sock', ca: '/etc/bastion/ca.pem', proxyPort: 3128 } as const;
const BASE_PATH = '/usr/local/bin:/usr/bin:/bin';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'] as const;
const CA_VARS = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'GIT_SSL_CAINFO', 'PIP_CERT'] as const;
/** Exit status of the forwarder wrapper when socat did not come up. */
const FORWARDER_FAILED = 125;

/**
 * The forwarder wrapper: socat listens on 127.0.0.1:3128 and relays each
 * connection to the bound socket; the wrapper then polls /proc/net/tcp with
 * shell builtins only until the listener (0100007F:0C38, state 0A LISTEN) is
 * there, and execs the command, so the command never races the listener.
 */
const FORWARDER_SCRIPT = [
  `"$0" TCP-LISTEN:${INSIDE.proxyPort},bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:${INSIDE.socket} </dev/null >/dev/null 2>&1 &`,
  'f=$!',
  'while :; do',
  '  while read -r _ l _ s _; do [ "$l$s" = 0100007F:0C380A ] && exec "$@"; done </proc/net/tcp',
  `  kill -0 "$f" 2>/dev/null || { echo "bastion: egress forwarder did not start" >&2; exit ${FORWARDER_FAILED}; }`,
  'done',
].join('\n');

function signalName(n: number): string | null {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === n) return name;
  return null;
}

function checkLimits(limits: SandboxLimits): void {
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`runSandboxed: limits.${k} must be a positive integer`);
  }
}

/**
 * The descriptors of this process a child would inherit besides stdio: those
 * without O_CLOEXEC (proc(5) fdinfo `flags`, octal). Node opens its own with
 * O_CLOEXEC, so these came from Bastion's parent (a supervisor's pipe, a
 * socket); libuv passes them to every child unless something is put on top.
 */
function inheritableFds(): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd < 3) continue;
    try {
      const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m !== null && (parseInt(m[1] as string, 8) & 0o2000000) === 0) out.push(fd);
    } catch {
      // Closed meanwhile (it was the directory listing's own fd).
    }
  }
  return out;
}

/** Opens `path` as an O_PATH fd without following a final symlink, checking its type. */
function openPath(path: string, kind: 'dir' | 'socket' | 'file', what: string): number {
  let fd: number;
  try {
    // O_PATH (0o10000000 on Linux): a handle for bwrap's --bind-fd, no read access needed.
    fd = openSync(path, 0o10000000 | fsConstants.O_NOFOLLOW | (kind === 'dir' ? fsConstants.O_DIRECTORY : 0));
  } catch (err) {
    throw new BastionError('ERR_SANDBOX_START', `sandbox ${what} cannot be opened`, { cause: err });
  }
  const st = fstatSync(fd);
  const ok = kind === 'dir' ? st.isDirectory() : kind === 'socket' ? st.isSocket() : st.isFile();
  if (!ok) {
    closeSync(fd);
    throw new BastionError('ERR_SANDBOX_START', `sandbox ${what} is not a ${kind === 'dir' ? 'directory' : kind}`);
  }
  return fd;
}

/**
 * Runs `run.argv` in a new sandbox and resolves when every process of it is
 * gone. A limit ending the run is a result (`limit`), not an error.
 *
 * @throws BastionError `ERR_SANDBOX_UNAVAILABLE` when `probe.available` is false.
 * @throws BastionError `ERR_SANDBOX_START` when bwrap or prlimit cannot start, the workspace, socket or CA file cannot be opened, or the run's cgroup cannot be made or joined (fail closed: nothing runs unlimited).
 * @throws RangeError for an empty argv, a NUL byte, a bad env name or a non-positive limit.
 */
export async function runSandboxed(run: SandboxRun, probe: SandboxProbe): Promise<SandboxResult> {
  if (!probe.available || probe.bwrap === undefined || probe.prlimit === undefined || probe.systemArgs === undefined || probe.etcDir === undefined) {
    throw new BastionError('ERR_SANDBOX_UNAVAILABLE', `sandbox unavailable: ${probe.reason ?? 'not probed'}`);
  }
  if (run.argv.length === 0 || run.argv.some((a) => typeof a !== 'string' || a.includes('\0')) || run.argv[0] === '') {
    throw new RangeError('runSandboxed: argv must be non-empty strings without NUL');
  }
  const limits: SandboxLimits = { ...DEFAULT_SANDBOX_LIMITS, ...run.limits };
  checkLimits(limits);
  const home = run.workspace !== undefined ? INSIDE.workspace : '/tmp';
  const env: Record<string, string> = { PATH: BASE_PATH, HOME: home, LANG: 'C.UTF-8', TMPDIR: '/tmp' };
  for (const [k, v] of Object.entries(run.env ?? {})) {
    if (!ENV_NAME.test(k) || typeof v !== 'string' || v.includes('\0')) throw new RangeError(`runSandboxed: env ${ENV_NAME.test(k) ? k : '(name)'} is invalid`);
    env[k] = v;
  }
  if (run.egressSocket !== undefined) {
    const url = `http://127.0.0.1:${INSIDE.proxyPort}`;
    for (const k of PROXY_VARS) env[k] = k.toLowerCase() === 'no_proxy' ? '' : url;
  } else {
    for (const k of PROXY_VARS) delete env[k];
  }
  if (run.caFile !== undefined) for (const k of CA_VARS) env[k] = INSIDE.ca;

  const fds: number[] = [];
  let cg: RunCgroup | undefined;
  try {
    // fd layout in the child: 3 --args, 4 --info-fd, 5 unused, 6 --seccomp, 7.. binds.
    const stdio: (number | 'pipe' | 'ignore')[] = [run.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore', 'pipe'];
    const args: string[] = ['--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--hostname', 'sandbox'];
    args.push('--clearenv');
    for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
    args.push(...probe.systemArgs);
    for (const f of ['passwd', 'group', 'hosts', 'nsswitch.conf']) args.push('--ro-bind', `${probe.etcDir}/${f}`, `/etc/${f}`);
    args.push('--proc', '/proc', '--dev', '/dev', '--size', String(limits.fileBytes), '--perms', '1777', '--tmpfs', '/tmp');
    const bindFd = (fd: number, dest: string, ro: boolean): void => {
      fds.push(fd);
      stdio.push(fd);
      args.push(ro ? '--ro-bind-fd' : '--bind-fd', String(stdio.length - 1), dest);
    };
    if (run.workspace !== undefined) {
      const fd = openPath(run.workspace, 'dir', 'workspace');
      const st = fstatSync(fd);
      if (st.uid !== probe.user.uid) {
        fds.push(fd);
        throw new BastionError('ERR_SANDBOX_START', 'sandbox workspace is not owned by the sandbox user');
      }
      bindFd(fd, INSIDE.workspace, false);
    }
    if (run.egressSocket !== undefined) bindFd(openPath(run.egressSocket, 'socket', 'egress socket'), INSIDE.socket, true);
    if (run.caFile !== undefined) bindFd(openPath(run.caFile, 'file', 'CA file'), INSIDE.ca, true);
    // Last: the root tmpfs (and /etc made in it) read-only; /tmp and /workspace are their own mounts and stay writable.
    args.push('--remount-ro', '/', '--chdir', home, '--info-fd', '4', '--seccomp', '6');
    if (probe.cgroups !== undefined) {
      cg = await createRunCgroup(probe.cgroups, `bastion-run-${randomId()}`, limits).catch((err: unknown) => {
        throw new BastionError('ERR_SANDBOX_START', 'sandbox cgroup could not be made', { cause: err });
      });
    }
    // Every inherited descriptor gets /dev/null put on top in the child, so none reaches the sandbox.
    const leaked = inheritableFds().filter((fd) => fd >= stdio.length || stdio[fd] === 'ignore');
    if (leaked.length > 0) {
      const devNull = openSync('/dev/null', 'r');
      fds.push(devNull);
      for (const fd of leaked) {
        while (stdio.length <= fd) stdio.push('ignore');
        stdio[fd] = devNull;
      }
    }
    const command = run.egressSocket !== undefined ? ['/bin/sh', '-c', FORWARDER_SCRIPT, probe.forwarder as string, ...run.argv] : [...run.argv];

    const cpuSeconds = Math.ceil(limits.cpuMs / 1000);
    const rlimits = [`--cpu=${cpuSeconds}:${cpuSeconds + 1}`, `--nofile=${limits.openFiles}`, `--fsize=${limits.fileBytes}`, '--core=0'];
    // Without cgroups: RLIMIT_DATA (not RLIMIT_AS, which V8's address-space reservations exceed: `node -e 0` dies under RLIMIT_AS=512 MiB) and RLIMIT_NPROC.
    if (cg === undefined) rlimits.push(`--data=${limits.memoryBytes}`, `--nproc=${limits.processes}`);
    const argv = [...rlimits, '--', probe.bwrap, '--args', '3', '--', ...command];
    const root = process.getuid?.() === 0;
    return await execute(run, probe, limits, stdio, args, argv, root, cg);
  } finally {
    for (const fd of fds) closeSync(fd);
    if (cg !== undefined) {
      await cg.killAll();
      await cg.remove();
    }
  }
}

async function execute(
  run: SandboxRun,
  probe: SandboxProbe,
  limits: SandboxLimits,
  stdio: (number | 'pipe' | 'ignore')[],
  args: string[],
  argv: string[],
  root: boolean,
  cg: RunCgroup | undefined,
): Promise<SandboxResult> {
  const started = performance.now();
  const child = spawn(probe.prlimit as string, argv, {
    stdio,
    env: {},
    // libuv drops supplementary groups, then setgid, setuid: the uid change clears every capability.
    ...(root ? { uid: probe.user.uid, gid: probe.user.gid } : {}),
    windowsHide: true,
  });
  const pipe = (i: number): NodeJS.WritableStream & NodeJS.ReadableStream => child.stdio[i] as unknown as NodeJS.WritableStream & NodeJS.ReadableStream;
  for (const i of [3, 6]) pipe(i).on('error', () => undefined);
  let joinFailure: BastionError | undefined;
  if (cg !== undefined && child.pid !== undefined) {
    // bwrap reads its options (--args) before it clones anything, and they are not written yet:
    // moving it now puts every process of the run in the cgroup from birth, with no window.
    try {
      cg.attach(child.pid);
    } catch (e) {
      joinFailure = new BastionError('ERR_SANDBOX_START', 'sandbox could not join its cgroup', { cause: e });
    }
  }
  if (joinFailure === undefined) pipe(3).end(`${args.join('\0')}\0`);
  pipe(6).end(sandboxSeccompFilter());
  if (run.stdin !== undefined) {
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(run.stdin);
  }

  let limit: SandboxResult['limit'] = null;
  let killed = false;
  let aborted = false;
  let truncated = false;
  let started2 = false;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let total = 0;
  const kill = (): void => {
    killed = true;
    try {
      child.kill('SIGKILL');
    } catch {
      // Already exited.
    }
    void cg?.killAll();
  };
  const collect = (into: Buffer[]) => (chunk: Buffer) => {
    if (truncated) return;
    const room = limits.outputBytes - total;
    if (chunk.length > room) {
      if (room > 0) into.push(chunk.subarray(0, room));
      total = limits.outputBytes;
      truncated = true;
      limit ??= 'output';
      kill();
      return;
    }
    into.push(chunk);
    total += chunk.length;
  };
  child.stdout?.on('data', collect(out));
  child.stderr?.on('data', collect(err));

  let info = '';
  const startFailure = new Promise<Error>((resolve) => {
    child.once('error', (e) => resolve(new BastionError('ERR_SANDBOX_START', 'sandbox could not start', { cause: e })));
    if (joinFailure !== undefined) resolve(joinFailure);
    pipe(4).on('data', (d: Buffer) => {
      if (started2) return;
      info += d.toString('utf8');
      if (/"child-pid"\s*:\s*\d+/.test(info)) started2 = true;
    });
    pipe(4).on('error', () => undefined);
  });

  const wall = setTimeout(() => {
    limit ??= 'wall';
    kill();
  }, limits.wallMs);
  let cpuTimer: NodeJS.Timeout | undefined;
  if (cg !== undefined) {
    // Total CPU of the tree (RLIMIT_CPU is per process and in whole seconds).
    const every = Math.max(20, Math.min(100, Math.floor(limits.cpuMs / 4)));
    cpuTimer = setInterval(() => {
      void cg.cpuMs().then((ms) => {
        if (ms !== null && ms > limits.cpuMs && !killed) {
          limit ??= 'cpu';
          kill();
        }
      });
    }, every);
  }
  const onAbort = (): void => {
    aborted = true;
    kill();
  };
  if (run.signal?.aborted === true) onAbort();
  else run.signal?.addEventListener('abort', onAbort, { once: true });

  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const first = await Promise.race([closed.then(() => null), startFailure]);
  if (first !== null) {
    kill();
    await closed;
    cleanupTimers();
    throw first;
  }
  const { code, signal } = await closed;
  cleanupTimers();
  const wallMs = performance.now() - started;
  // Killed (abort, a limit) before bwrap reported its child: a result, not a start failure.
  if (!started2 && !killed) {
    throw new BastionError('ERR_SANDBOX_START', 'sandbox could not start', { detail: { exitCode: code, stderr: Buffer.concat(err).toString('utf8').slice(0, 512) } });
  }

  function cleanupTimers(): void {
    clearTimeout(wall);
    if (cpuTimer !== undefined) clearInterval(cpuTimer);
    run.signal?.removeEventListener('abort', onAbort);
  }

  const stats = cg !== undefined ? await cg.stats() : null;
  let exitCode = code;
  let sig: string | null = signal;
  if (killed) {
    exitCode = null;
    sig = 'SIGKILL';
  } else if (code !== null && code > 128 && code < 128 + 65) {
    sig = signalName(code - 128);
  }
  if (stats !== null) {
    if (stats.oomKills > 0) limit = limit === 'output' ? limit : 'memory';
    // A refused fork constrained the run even when the command then exited 0 (a fork bomb's first shell returns at once).
    else if (stats.pidsLimitHits > 0 && limit !== 'output') limit = 'processes';
    else if (limit === null && stats.cpuMs !== null && stats.cpuMs > limits.cpuMs && sig !== null) limit = 'cpu';
  }
  if (limit === null && sig === 'SIGXCPU') limit = 'cpu';
  if (limit === null && sig === 'SIGXFSZ') limit = 'files';
  if (limit === null && sig === 'SIGKILL' && stats !== null && stats.memoryLimitHits > 0) limit = 'memory';
  if (run.workspace !== undefined) await stripSetidBits(run.workspace);
  return {
    exitCode,
    signal: sig,
    stdout: Buffer.concat(out),
    stderr: Buffer.concat(err),
    truncated,
    limit: aborted && limit === null ? null : limit,
    aborted,
    wallMs,
    cpuMs: stats?.cpuMs ?? null,
    peakMemoryBytes: stats?.peakMemoryBytes ?? null,
  };
}
