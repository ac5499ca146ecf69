/**
 * Finds out whether the sandbox can run on this host, and prepares what every
 * run reuses: bubblewrap's path and version, socat and prlimit, the sandbox
 * user, the cgroup layout, the generated /etc files and the read-only system
 * binds. The probe ends by really running `/bin/true` in a sandbox with every
 * option a run uses, so `available: true` means a run works, not that files
 * exist.
 */
import { execFile } from 'node:child_process';
import { constants, existsSync, lstatSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { access, chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { randomId } from '../util/crypto.ts';
import { detectCgroups, type CgroupLayout } from './cgroup.ts';
import { runSandboxed, type SandboxProbe } from './runner.ts';
import { seccompSupported } from './seccomp.ts';

const run = promisify(execFile);

/** The oldest bubblewrap with `--disable-userns`. */
const MIN_BWRAP: readonly [number, number, number] = [0, 8, 0];

/** Host /etc entries bound read-only when present: TLS roots, the alternatives links /usr/bin points into, the loader cache, the time zone. */
const HOST_ETC = ['/etc/ssl', '/etc/ca-certificates', '/etc/pki', '/etc/alternatives', '/etc/ld.so.cache', '/etc/localtime'] as const;

async function findProgram(name: string, preferred: readonly string[]): Promise<string | undefined> {
  const dirs = [...preferred, ...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/'))];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      await access(p, constants.X_OK);
      return realpathSync(p);
    } catch {
      // Try the next directory.
    }
  }
  return undefined;
}

async function resolveUser(name: string): Promise<{ uid: number; gid: number } | string> {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(name);
  if (numeric !== null) {
    const uid = Number(numeric[1]);
    return { uid, gid: numeric[2] !== undefined ? Number(numeric[2]) : uid };
  }
  if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/i.test(name)) return `sandbox user "${name}" is not a valid user name`;
  try {
    // id(1) answers through NSS, as the rest of the host would.
    const uid = Number((await run('id', ['-u', '--', name])).stdout.trim());
    const gid = Number((await run('id', ['-g', '--', name])).stdout.trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) return `sandbox user "${name}" has no numeric uid/gid`;
    return { uid, gid };
  } catch {
    return `sandbox user "${name}" does not exist`;
  }
}

/** bwrap arguments for the read-only system: /usr, the merged-usr links as links (or read-only binds), host /etc files. */
function systemArgs(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const top of ['/bin', '/lib', '/lib64', '/sbin', '/lib32', '/libx32']) {
    let st;
    try {
      st = lstatSync(top);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else if (st.isDirectory()) args.push('--ro-bind', top, top);
  }
  for (const p of HOST_ETC) if (existsSync(p)) args.push('--ro-bind', p, p);
  return args;
}

/** The generated /etc directories of this process, one per sandbox user, removed when the process exits. */
const etcDirs = new Map<string, Promise<string>>();
const etcMade: string[] = [];
let cleanupInstalled = false;

/** Writes (once per process and user) the minimal passwd/group/hosts/nsswitch.conf the sandbox sees instead of the host's. */
function makeEtc(user: { uid: number; gid: number }): Promise<string> {
  const key = `${user.uid}:${user.gid}`;
  let dir = etcDirs.get(key);
  if (dir === undefined) {
    dir = writeEtc(user);
    dir.catch(() => etcDirs.delete(key));
    etcDirs.set(key, dir);
    if (!cleanupInstalled) {
      cleanupInstalled = true;
      // 'exit' handlers run synchronously: only what is already made can go.
      process.once('exit', () => {
        for (const d of etcMade) rmSync(d, { recursive: true, force: true });
      });
    }
  }
  return dir;
}

async function writeEtc(user: { uid: number; gid: number }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bastion-sandbox-etc-'));
  await chmod(dir, 0o755);
  const passwd = ['root:x:0:0:root:/nonexistent:/usr/sbin/nologin'];
  const group = ['root:x:0:'];
  if (user.uid !== 65534) passwd.push(`sandbox:x:${user.uid}:${user.gid}:sandbox:/workspace:/bin/sh`);
  if (user.gid !== 65534) group.push(`sandbox:x:${user.gid}:`);
  passwd.push(`nobody:x:65534:65534:nobody:${user.uid === 65534 ? '/workspace' : '/nonexistent'}:${user.uid === 65534 ? '/bin/sh' : '/usr/sbin/nologin'}`);
  group.push('nogroup:x:65534:');
  const files: Record<string, string> = {
    passwd: `${passwd.join('\n')}\n`,
    group: `${group.join('\n')}\n`,
    hosts: '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n',
    'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
  };
  etcMade.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o644 });
  return dir;
}

function unavailable(reason: string, extra: Partial<SandboxProbe> = {}): SandboxProbe {
  return Object.freeze({ available: false, reason, cgroup: 'none' as const, user: { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 }, ...extra });
}

/**
 * Probes the host. `user`: the sandbox user when Bastion runs as root (a name
 * or `uid[:gid]`, default `nobody`); ignored otherwise, where runs keep
 * Bastion's own uid (never root inside: bwrap maps it unprivileged). Never
 * throws: every failure is `available: false` with a `reason` naming the
 * missing piece (e.g. `bubblewrap (bwrap) is not installed; .ci/run installs
 * the Debian package bubblewrap`).
 */
export async function probeSandbox(options: { user?: string } = {}): Promise<SandboxProbe> {
  if (process.platform !== 'linux') return unavailable(`the sandbox needs Linux (this is ${process.platform})`);
  if (!seccompSupported()) return unavailable(`no seccomp filter for architecture ${process.arch}`);
  const bwrap = await findProgram('bwrap', ['/usr/bin']);
  if (bwrap === undefined) return unavailable('bubblewrap (bwrap) is not installed; install the Debian package bubblewrap (.ci/run does)');
  if (!bwrap.startsWith('/usr/')) return unavailable(`bwrap at ${bwrap} is outside /usr`);
  let version: string;
  try {
    const m = /(\d+)\.(\d+)\.(\d+)/.exec((await run(bwrap, ['--version'])).stdout);
    if (m === null) return unavailable('bwrap --version printed no version', { bwrap });
    version = `${m[1]}.${m[2]}.${m[3]}`;
    const v = [Number(m[1]), Number(m[2]), Number(m[3])];
    const older = v[0]! < MIN_BWRAP[0] || (v[0] === MIN_BWRAP[0] && (v[1]! < MIN_BWRAP[1] || (v[1] === MIN_BWRAP[1] && v[2]! < MIN_BWRAP[2])));
    if (older) return unavailable(`bubblewrap ${version} is older than ${MIN_BWRAP.join('.')} (needed for --disable-userns)`, { bwrap, version });
  } catch {
    return unavailable('bwrap --version failed', { bwrap });
  }
  const forwarder = await findProgram('socat', ['/usr/bin']);
  if (forwarder === undefined) return unavailable('socat (the egress forwarder) is not installed; install the Debian package socat (.ci/run does)', { bwrap, version });
  if (!forwarder.startsWith('/usr/')) return unavailable(`socat at ${forwarder} is outside /usr, so not visible inside the sandbox`, { bwrap, version });
  const prlimit = await findProgram('prlimit', ['/usr/bin']);
  if (prlimit === undefined) return unavailable('prlimit (util-linux) is not installed', { bwrap, version, forwarder });

  const root = process.getuid?.() === 0;
  let user: { uid: number; gid: number };
  if (root) {
    const u = await resolveUser(options.user ?? 'nobody');
    if (typeof u === 'string') return unavailable(u, { bwrap, version, forwarder });
    if (u.uid === 0 || u.gid === 0) return unavailable('the sandbox user must not be root (uid or gid 0)', { bwrap, version, forwarder });
    user = u;
  } else {
    user = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
  }
  const id = randomId();
  const layout: CgroupLayout | null = await detectCgroups(id);
  let etcDir: string;
  try {
    etcDir = await makeEtc(user);
  } catch {
    return unavailable('the sandbox /etc files could not be written to the temp directory', { bwrap, version, forwarder });
  }
  const probe: SandboxProbe = Object.freeze({
    available: true,
    bwrap,
    version,
    cgroup: layout?.kind ?? 'none',
    user: Object.freeze(user),
    forwarder,
    prlimit,
    ...(layout !== null ? { cgroups: layout } : {}),
    etcDir,
    systemArgs: Object.freeze(systemArgs()),
  });
  try {
    const r = await runSandboxed({ argv: ['/bin/true'], limits: { wallMs: 10_000 } }, probe);
    if (r.exitCode !== 0) {
      const said = r.stderr.toString('utf8').split('\n')[0]?.slice(0, 200) ?? '';
      const userns = /namespace|permission|not permitted/i.test(said);
      return unavailable(`a test sandbox failed${userns ? ' (are unprivileged user namespaces disabled? kernel.unprivileged_userns_clone / user.max_user_namespaces)' : ''}: ${said}`, { bwrap, version, forwarder });
    }
  } catch (err) {
    return unavailable(`a test sandbox could not start: ${(err as Error).message}`, { bwrap, version, forwarder });
  }
  return probe;
}
