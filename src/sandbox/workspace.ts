/**
 * Sandbox workspaces on the host: the one directory a run may write, bound at
 * /workspace. Made owned by the sandbox user (so an unprivileged run can
 * write it), never followed through a symlink, and swept of setuid/setgid
 * bits after every run.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, opendir, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { BastionError } from '../errors.ts';

/** The sandbox user a workspace must belong to (see `SandboxProbe.user`). */
export interface WorkspaceOwner {
  readonly user: { readonly uid: number; readonly gid: number };
}

/** A workspace name: one path segment of letters, digits, `.`, `_`, `-` (not `.`/`..`), at most 128 characters. */
const NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/;

/**
 * Creates `root/name` (mode 0700) owned by the sandbox user and returns its
 * absolute path. `root` must be an absolute, existing directory that is not a
 * symlink; `name` must not exist yet.
 *
 * @throws BastionError `ERR_SANDBOX_WORKSPACE` for a bad name, a root that is not a real directory, or a name already taken.
 */
export async function createWorkspace(root: string, name: string, probe: WorkspaceOwner): Promise<string> {
  if (!isAbsolute(root)) throw new BastionError('ERR_SANDBOX_WORKSPACE', 'workspace root must be an absolute path');
  if (!NAME.test(name)) throw new BastionError('ERR_SANDBOX_WORKSPACE', 'workspace name must be one safe path segment');
  const st = await lstat(root).catch(() => null);
  if (st === null || !st.isDirectory()) throw new BastionError('ERR_SANDBOX_WORKSPACE', 'workspace root is not a directory (symlinks are refused)');
  const path = join(root, name);
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (err) {
    throw new BastionError('ERR_SANDBOX_WORKSPACE', 'workspace could not be created', { cause: err, detail: { name } });
  }
  // Through an fd opened without following links: the directory just made, not whatever replaced it.
  const fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    if (process.getuid?.() === 0) await fh.chown(probe.user.uid, probe.user.gid);
    await fh.chmod(0o700);
  } finally {
    await fh.close();
  }
  return path;
}

/**
 * Deletes a workspace and everything in it. Symlinks inside are removed, never
 * followed. A path that is itself a symlink or not a directory is refused.
 *
 * @throws BastionError `ERR_SANDBOX_WORKSPACE` when `path` is not an absolute path to a real directory.
 */
export async function removeWorkspace(path: string): Promise<void> {
  if (!isAbsolute(path)) throw new BastionError('ERR_SANDBOX_WORKSPACE', 'workspace path must be absolute');
  const st = await lstat(path).catch(() => null);
  if (st === null) return;
  if (!st.isDirectory()) throw new BastionError('ERR_SANDBOX_WORKSPACE', 'workspace is not a directory (symlinks are refused)');
  await rm(path, { recursive: true, force: true });
}

/** Bounds of {@link stripSetidBits}' walk. */
export interface StripBounds {
  /** Entries visited at most (default 100 000). */
  maxEntries?: number;
  /** Directory depth at most (default 64). */
  maxDepth?: number;
}

/**
 * Clears setuid/setgid bits (and sticky-exec combos with them) on every file
 * and directory under `dir`, without following symlinks: each hit is reopened
 * with O_NOFOLLOW and changed through the fd. Run after every sandboxed run,
 * while nothing of the run is alive. Returns how many entries were changed and
 * whether the walk stopped at a bound (then the caller should treat the
 * workspace as tainted).
 */
export async function stripSetidBits(dir: string, bounds: StripBounds = {}): Promise<{ changed: number; complete: boolean }> {
  const maxEntries = bounds.maxEntries ?? 100_000;
  const maxDepth = bounds.maxDepth ?? 64;
  let seen = 0;
  let changed = 0;
  let complete = true;
  // S_ISUID | S_ISGID (inode(7)); not in Node's typed fs.constants.
  const setid = 0o4000 | 0o2000;
  const fix = async (path: string): Promise<void> => {
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch(() => null);
    if (fh === null) return;
    try {
      const st = await fh.stat();
      if ((st.mode & setid) !== 0) {
        await fh.chmod(st.mode & 0o1777 & ~setid);
        changed++;
      }
    } finally {
      await fh.close();
    }
  };
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > maxDepth) {
      complete = false;
      return;
    }
    const handle = await opendir(d).catch(() => null);
    if (handle === null) return;
    for await (const entry of handle) {
      if (++seen > maxEntries) {
        complete = false;
        return;
      }
      const p = join(d, entry.name);
      if (entry.isSymbolicLink()) continue;
      const st = await lstat(p).catch(() => null);
      if (st === null) continue;
      if ((st.mode & setid) !== 0 && (st.isFile() || st.isDirectory())) await fix(p);
      if (st.isDirectory()) await walk(p, depth + 1);
    }
  };
  const top = await lstat(dir).catch(() => null);
  if (top === null || !top.isDirectory()) return { changed, complete };
  if ((top.mode & setid) !== 0) await fix(dir);
  await walk(dir, 0);
  return { changed, complete };
}
