/**
 * The vault's key-encryption key (KEK): the one long-lived key of envelope
 * encryption (see ARCHITECTURE.md, "vault"). It wraps each secret's data key
 * with AES-256-GCM (NIST SP 800-38D, RFC 5116 AEAD_AES_256_GCM) and never
 * encrypts a value itself.
 *
 * The KEK comes from `BASTION_MASTER_KEY` (base64 or base64url of 32 bytes) or
 * from a key file holding base64 of 32 bytes, created on first run with mode
 * 0600 in a 0700 folder. Losing that file loses every secret sealed under it.
 */
import { constants } from 'node:fs';
import { link, mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { aesGcmDecrypt, aesGcmEncrypt, randomKeyBytes, sha256Hex } from '../util/crypto.ts';
import { vaultKeyError } from './errors.ts';
import { decodeBox, encodeBox, type SealedBox } from './sealed-box.ts';

/** Length of a KEK and of a data key, in bytes (AES-256). */
export const KEY_BYTES = 32;

/** The name of the environment variable that holds the KEK; used in messages, never read here. */
export const MASTER_KEY_ENV = 'BASTION_MASTER_KEY';

/** Largest key file read, in bytes: a 32-byte key is 44 base64 characters plus a newline. */
const MAX_KEY_FILE_BYTES = 256;

/** A data key wrapped by a KEK: an AES-256-GCM box (12-byte IV, 16-byte tag, 32-byte ciphertext) as unpadded base64url. */
export type WrappedKey = SealedBox;

/**
 * A loaded key-encryption key. The key bytes stay inside the object: `id` is a
 * fingerprint, and `JSON.stringify` / `util.inspect` show only `{ id }`.
 */
export interface Kek {
  /** First 16 hex characters of SHA-256 (FIPS 180-4) of the key bytes: records which KEK wrapped a data key. */
  readonly id: string;
  /**
   * Wraps a 32-byte data key with AES-256-GCM under the KEK and a fresh random
   * 96-bit IV; `aad` (UTF-8) is authenticated, not encrypted, and must be given
   * again to unwrap. Throws `RangeError` unless `dataKey` is 32 bytes.
   */
  wrap(dataKey: Uint8Array, aad: string): WrappedKey;
  /**
   * Unwraps a data key: a fresh 32-byte buffer the caller should zero after use,
   * or undefined (never a throw) when the box is malformed, was wrapped under
   * another key or another `aad`, or was altered in any way.
   */
  unwrap(wrapped: WrappedKey, aad: string): Buffer | undefined;
}

/** Where the KEK comes from: the value of `BASTION_MASTER_KEY` wins over the key file when both are given. */
export interface KekSource {
  /** The value of `BASTION_MASTER_KEY` (undefined when the variable is unset; an empty value is an error). */
  readonly env?: string | undefined;
  /** Absolute path of the key file. */
  readonly keyFile?: string | undefined;
}

/** Options of {@link loadKek}. */
export interface LoadKekOptions {
  /** Create the key file (and its folder) when it does not exist. Default false. */
  readonly create?: boolean;
}

class KeyEncryptionKey implements Kek {
  readonly id: string;
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    // A private copy: the caller zeroes its own buffer.
    this.#key = Buffer.alloc(KEY_BYTES);
    this.#key.set(key);
    this.id = sha256Hex(this.#key).slice(0, 16);
  }

  wrap(dataKey: Uint8Array, aad: string): WrappedKey {
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== KEY_BYTES) throw new RangeError('Kek.wrap: dataKey must be 32 bytes');
    if (typeof aad !== 'string') throw new TypeError('Kek.wrap: aad must be a string');
    return encodeBox(aesGcmEncrypt(this.#key, dataKey, Buffer.from(aad, 'utf8')));
  }

  unwrap(wrapped: WrappedKey, aad: string): Buffer | undefined {
    if (typeof aad !== 'string') return undefined;
    const box = decodeBox(wrapped);
    if (box === undefined || box.ciphertext.length !== KEY_BYTES) return undefined;
    return aesGcmDecrypt(this.#key, box, Buffer.from(aad, 'utf8'));
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Kek { id: '${this.id}' }`;
  }
}

/**
 * A KEK from raw key bytes, for callers that hold the key already (tests, a
 * KMS adapter). The bytes are copied; zero yours afterwards. Throws `RangeError`
 * unless `key` is 32 bytes.
 */
export function kekFromBytes(key: Uint8Array): Kek {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new RangeError('kekFromBytes: key must be 32 bytes');
  return new KeyEncryptionKey(key);
}

/**
 * Loads the KEK: from `source.env` when it is defined, else from
 * `source.keyFile`.
 *
 * - `env`: base64 (RFC 4648 §4) or base64url (§5) of exactly 32 bytes, padding
 *   optional, nothing else (no whitespace, no mixed alphabets, no stray bits).
 * - `keyFile`: an absolute path. An existing file must be a regular file (a
 *   symbolic link is followed and its target checked) owned by the current user
 *   with mode 0600 or stricter (no group or other bits, no execute, no
 *   setuid/setgid/sticky), holding the same encoding plus at most one trailing
 *   `\n`. On Windows, where POSIX owner and mode do not exist, those two checks
 *   are skipped. A missing file is created when `opts.create` is true: its folder
 *   with mode 0700 (when missing), then 32 CSPRNG bytes written to a temporary
 *   file opened with O_EXCL and mode 0600 in that folder, synced, and
 *   hard-linked to the final name, which fails rather than replaces when another
 *   process created the key first; in that case the other key is read and used.
 *   A partial key is never visible under the final name.
 *
 * Rejects with a `BastionError` ({@link VAULT_KEY_ERROR_CODE}) whose message names the variable or the path (and the mode,
 * for an unsafe file) but never echoes key material. Throws `TypeError` when
 * neither source is given or `keyFile` is not absolute.
 */
export async function loadKek(source: KekSource, opts: LoadKekOptions = {}): Promise<Kek> {
  if (source.env !== undefined) {
    const key = decodeKeyText(source.env);
    if (key === undefined) {
      throw vaultKeyError(`${MASTER_KEY_ENV} must be the base64 or base64url encoding of exactly 32 bytes`, { source: 'env' });
    }
    return consumeKey(key);
  }
  const file = source.keyFile;
  if (file === undefined) throw new TypeError('loadKek: give source.env or source.keyFile');
  if (typeof file !== 'string' || !isAbsolute(file)) throw new TypeError('loadKek: source.keyFile must be an absolute path');
  const existing = await readKeyFile(file);
  if (existing !== undefined) return consumeKey(existing);
  if (opts.create !== true) throw vaultKeyError(`key file ${file} does not exist`, { source: 'file', path: file });
  return consumeKey(await createKeyFile(file));
}

function consumeKey(key: Buffer): Kek {
  try {
    return new KeyEncryptionKey(key);
  } finally {
    key.fill(0);
  }
}

const BASE64_STD = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64_URL = /^[A-Za-z0-9_-]{43}=?$/;

/**
 * Base64 or base64url of exactly 32 bytes, padding optional, to bytes; undefined
 * for anything else. 32 bytes are 43 characters plus one `=`; the last character
 * carries 2 unused bits, which must be zero (canonical encoding only).
 */
function decodeKeyText(text: string): Buffer | undefined {
  if (typeof text !== 'string') return undefined;
  const std = BASE64_STD.test(text);
  if (!std && !BASE64_URL.test(text)) return undefined;
  const key = Buffer.from(text, std ? 'base64' : 'base64url');
  const canonical = key.toString(std ? 'base64' : 'base64url').replace(/=+$/, '');
  if (key.length !== KEY_BYTES || canonical !== text.replace(/=$/, '')) {
    key.fill(0);
    return undefined;
  }
  return key;
}

/** The key in `file`, or undefined when the file does not exist. */
async function readKeyFile(file: string): Promise<Buffer | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang the open; fstat then refuses it.
    handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw vaultKeyError(`key file ${file} cannot be opened (${errnoOf(err) ?? 'error'})`, { source: 'file', path: file }, err);
  }
  try {
    // fstat on the open descriptor: the checked file is the file read.
    const info = await handle.stat();
    if (!info.isFile()) throw vaultKeyError(`key file ${file} is not a regular file`, { source: 'file', path: file });
    if (process.platform !== 'win32') {
      const uid = process.getuid?.();
      if (uid !== undefined && info.uid !== uid) {
        throw vaultKeyError(`key file ${file} is owned by uid ${info.uid}, not by the current user (uid ${uid})`, {
          source: 'file',
          path: file,
          uid: info.uid,
        });
      }
      const mode = info.mode & 0o7777;
      if ((mode & ~0o600) !== 0) {
        const shown = mode.toString(8).padStart(4, '0');
        throw vaultKeyError(`key file ${file} has mode ${shown}; it must be 0600 or stricter (chmod 600 ${file})`, {
          source: 'file',
          path: file,
          mode: shown,
        });
      }
    }
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buf.length) break;
    }
    const text = buf.toString('latin1', 0, length);
    buf.fill(0);
    const key = length > MAX_KEY_FILE_BYTES ? undefined : decodeKeyText(text.endsWith('\n') ? text.slice(0, -1) : text);
    if (key === undefined) {
      throw vaultKeyError(`key file ${file} must hold the base64 encoding of exactly 32 bytes`, { source: 'file', path: file });
    }
    return key;
  } finally {
    await handle.close();
  }
}

/** Creates `file` with a fresh key; returns the key in the file, which is another process's when it won the race. */
async function createKeyFile(file: string): Promise<Buffer> {
  const dir = dirname(file);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw vaultKeyError(`key folder ${dir} cannot be created (${errnoOf(err) ?? 'error'})`, { source: 'file', path: file }, err);
  }
  const temp = join(dir, `.${basename(file)}.${randomKeyBytes(16).toString('hex')}.tmp`);
  const key = randomKeyBytes(KEY_BYTES);
  const text = Buffer.from(`${key.toString('base64')}\n`, 'latin1');
  let published = false;
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.chmod(0o600); // the umask may have narrowed it; make the mode exact
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    published = await publish(temp, file);
  } catch (err) {
    key.fill(0);
    throw vaultKeyError(`key file ${file} cannot be created (${errnoOf(err) ?? 'error'})`, { source: 'file', path: file }, err);
  } finally {
    text.fill(0);
    await unlink(temp).catch(() => undefined);
  }
  if (published) {
    await syncDir(dir);
    return key;
  }
  key.fill(0);
  const theirs = await readKeyFile(file);
  if (theirs === undefined) throw vaultKeyError(`key file ${file} vanished while being created`, { source: 'file', path: file });
  return theirs;
}

/**
 * Gives the complete temporary file its final name without replacing an existing
 * one: `link(2)` fails with EEXIST when the name is taken (true: published;
 * false: someone else's key is there). Where hard links are not supported, falls
 * back to `rename(2)` after an existence check, which leaves a small race window.
 */
async function publish(temp: string, file: string): Promise<boolean> {
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  }
  const exists = await stat(file).then(
    () => true,
    (err: unknown) => {
      if (errnoOf(err) === 'ENOENT') return false;
      throw err;
    },
  );
  if (exists) return false;
  await rename(temp, file);
  return true;
}

/** fsync of the folder so the new name survives a crash; best effort (not every platform can open a folder). */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The key is complete and linked; only its durability across a power loss is weaker.
  }
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * The key-encryption key: `BASTION_MASTER_KEY` from `env` when set, else the key
 * file `vault.keyFile`, created (0600) on first run.
 * @throws BastionError `ERR_VAULT_KEY`.
 */
export function loadVaultKey(config: { readonly vault: { readonly keyFile: string } }, env: Readonly<Record<string, string | undefined>>): Promise<Kek> {
  return loadKek({ env: env[MASTER_KEY_ENV], keyFile: config.vault.keyFile }, { create: true });
}
