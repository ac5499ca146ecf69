/**
 * The socket file of a principal socket: a Unix socket Bastion creates for one
 * sandbox session, whose every connection is one principal (issue 16 part 3,
 * "Network only through Bastion"). The network door serves it
 * (`EgressProxy.attachPrincipalSocket`); this module only validates the
 * principal and creates and removes the file.
 *
 * The file never exists with looser permissions than asked: the server binds in
 * a fresh private folder (mkdtemp, 0700) beside the path, the socket is made
 * 0600 (and chowned to the sandbox's uid:gid when given), and only then is it
 * linked at `path` (link(2) fails on an existing name, so a file that appears in
 * the meantime is never replaced).
 */
import { chmod, chown, link, lstat, mkdtemp, rm, unlink } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { TransportPrincipal } from '../door/authenticate.ts';
import { BastionError } from '../errors.ts';

/** Longest Unix socket path on Linux, in bytes (`sun_path` is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;
/** Longest session id or end-user id a principal socket takes, in characters. */
export const MAX_PRINCIPAL_FIELD_CHARS = 256;

/** The principal of {@link EgressProxy.attachPrincipalSocket}: agent, session, end user (optional) and the socket's owner (optional). */
export interface SocketPrincipal {
  /** A configured agent (`agents:` key). */
  readonly agent: string;
  /** The sandbox session the connections belong to (recorded as the audit record's `session`); 1-256 visible characters. */
  readonly session: string;
  /** The end user the session acts for (recorded as `user`; a pasted secret is released for this user only); absent or null: none. */
  readonly user?: string | null;
  /** Give the socket to this uid:gid (mode 0600 either way), so the sandbox's user can connect and nobody else. */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

/** A principal socket, listening. */
export interface PrincipalSocket {
  /** The socket's path, as given. */
  readonly path: string;
  /** Stops listening, ends its open connections and tunnels, and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

/** The identity of the socket file Bastion created: removed on close only while the path still names it. */
export interface SocketFile {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

// Printable, no spaces or controls: the id lands in audit records and log lines as it is.
const FIELD = /^[!-~]+$/;

/**
 * The transport principal of `p`, checked: `session` and `user` are 1-256
 * visible ASCII characters; `owner` ids are non-negative integers.
 * @throws TypeError naming the field.
 */
export function transportPrincipalOf(p: SocketPrincipal): TransportPrincipal {
  if (typeof p !== 'object' || p === null) throw new TypeError('principal must be an object');
  if (typeof p.agent !== 'string' || p.agent === '') throw new TypeError('principal.agent must be a non-empty string');
  const field = (v: unknown, name: string): void => {
    if (typeof v !== 'string' || v.length > MAX_PRINCIPAL_FIELD_CHARS || !FIELD.test(v)) throw new TypeError(`principal.${name} must be 1-${MAX_PRINCIPAL_FIELD_CHARS} visible ASCII characters`);
  };
  field(p.session, 'session');
  if (p.user !== undefined && p.user !== null) field(p.user, 'user');
  if (p.owner !== undefined) {
    for (const k of ['uid', 'gid'] as const) {
      const v = p.owner[k];
      if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`principal.owner.${k} must be a non-negative integer`);
    }
  }
  return Object.freeze({ agent: p.agent, session: p.session, user: p.user ?? null });
}

/**
 * Makes `server` listen on the Unix socket `path`, mode 0600 (owned by `owner`
 * when given), without a moment of looser permissions. An existing file at
 * `path` is refused unless it is a stale socket (nothing accepts on it), which
 * is removed.
 * @throws TypeError for a relative path; BastionError `ERR_EGRESS_SOCKET` when the path is too long, taken, or the socket cannot be made or given to `owner`.
 */
export async function listenUnixSocket(server: Server, path: string, owner?: { readonly uid: number; readonly gid: number }): Promise<SocketFile> {
  if (typeof path !== 'string' || !isAbsolute(path)) throw new TypeError('path must be an absolute path');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) throw new BastionError('ERR_EGRESS_SOCKET', `socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
  await clearStaleSocket(path);
  let dir: string;
  try {
    dir = await mkdtemp(join(dirname(path), '.bastion-'));
  } catch (err) {
    throw new BastionError('ERR_EGRESS_SOCKET', `cannot create the socket beside ${basename(path)}: ${codeOf(err)}`, { cause: err });
  }
  const staged = join(dir, 's');
  try {
    if (Buffer.byteLength(staged) > MAX_SOCKET_PATH_BYTES) throw new BastionError('ERR_EGRESS_SOCKET', `socket path longer than ${MAX_SOCKET_PATH_BYTES - (Buffer.byteLength(staged) - Buffer.byteLength(path))} bytes (room is needed to stage it)`);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(staged, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(staged, 0o600);
    if (owner !== undefined) await chown(staged, owner.uid, owner.gid);
    await link(staged, path);
    const st = await lstat(path);
    return { path, dev: st.dev, ino: st.ino };
  } catch (err) {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (err instanceof BastionError) throw err;
    const code = codeOf(err);
    throw new BastionError('ERR_EGRESS_SOCKET', code === 'EEXIST' ? `${basename(path)} appeared while the socket was made` : `cannot make the socket ${basename(path)}: ${code}`, { cause: err });
  } finally {
    // The staged name goes once linked (or on failure): the socket lives on at `path` alone.
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes the socket file, only while `path` still names the socket Bastion made (never a file put there since). Never throws. */
export async function removeSocketFile(file: SocketFile): Promise<void> {
  try {
    const st = await lstat(file.path);
    if (st.isSocket() && st.dev === file.dev && st.ino === file.ino) await unlink(file.path);
  } catch {
    // Already gone, or not ours to remove.
  }
}

/**
 * Refuses an existing file at `path` unless it is a stale socket, which is removed.
 * @throws BastionError `ERR_EGRESS_SOCKET` when the path holds anything else or a live socket.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    throw new BastionError('ERR_EGRESS_SOCKET', `cannot inspect ${basename(path)}: ${codeOf(err)}`, { cause: err });
  }
  if (!st.isSocket()) throw new BastionError('ERR_EGRESS_SOCKET', `${basename(path)} exists and is not a socket`);
  const probe = await new Promise<string>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  // ECONNREFUSED: a socket file nothing listens on any more (a crashed Bastion's).
  if (probe !== 'ECONNREFUSED') throw new BastionError('ERR_EGRESS_SOCKET', probe === 'live' ? `${basename(path)} is a socket in use` : `cannot probe the socket ${basename(path)}: ${probe}`);
  try {
    await unlink(path);
  } catch (err) {
    if (codeOf(err) !== 'ENOENT') throw new BastionError('ERR_EGRESS_SOCKET', `cannot remove the stale socket ${basename(path)}: ${codeOf(err)}`, { cause: err });
  }
}

function codeOf(err: unknown): string {
  return (err as { code?: string } | null)?.code ?? 'error';
}
