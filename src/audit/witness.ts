/**
 * Audit witnesses: copies of the signed checkpoints kept outside the store, so
 * that someone able to write the store (cut it, empty it, or rewrite records and
 * re-chain their hashes) cannot also erase the evidence. See docs/audit.md.
 *
 * - {@link FileWitness}: an append-only file, one JSON checkpoint per line
 *   (`{"seq","hash","time","keyId","signature"}`), opened `O_APPEND|O_CREAT`,
 *   `fdatasync` after every write (checkpoints are rare: one per
 *   `audit.checkpointEvery` records).
 * - {@link WebhookWitness}: POSTs `{"checkpoints": [...]}` as JSON, bounded by a timeout.
 *
 * Lines are the checkpoints the store holds, Ed25519-signed over RFC 8785
 * canonical JSON (./chain.ts `checkpointPayload`): a forged line fails verification.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { BastionError } from '../errors.ts';
import type { AuditCheckpoint } from './types.ts';

/** Where the audit log also writes checkpoints. Implementations never hold a secret. */
export interface AuditWitness {
  /**
   * Records `checkpoints` (ascending seq) durably outside the store.
   * @throws BastionError `ERR_AUDIT_WITNESS` when they could not be written.
   */
  write(checkpoints: readonly AuditCheckpoint[]): Promise<void>;
  /** The highest seq the witness holds (0: none), when it can tell; used to resend checkpoints lost by a crash. */
  lastSeq?(): Promise<number>;
  /**
   * The newest checkpoints the witness holds (ascending seq; at least the last
   * one when it holds any), when it can tell. Compared with the store on start
   * (./recovery.ts): one past the store's tip, or not matching its record, means
   * the store was cut or rewritten.
   * @throws BastionError `ERR_AUDIT_WITNESS` when the witness cannot be read.
   */
  recent?(): Promise<AuditCheckpoint[]>;
  close(): Promise<void>;
}

/** Bytes read from the end of a witness file to find its last line. */
const TAIL_BYTES = 64 * 1024;
/** Longest witness line accepted when reading, in characters (a checkpoint line is about 300). */
const MAX_LINE = 4096;
/** Default timeout of one webhook POST, in ms. */
export const WITNESS_WEBHOOK_TIMEOUT_MS = 5_000;

/** One witness line: the checkpoint's fields in a fixed order. */
export function witnessLine(cp: AuditCheckpoint): string {
  return JSON.stringify({ seq: cp.seq, hash: cp.hash, time: cp.time, keyId: cp.keyId, signature: cp.signature });
}

/**
 * An append-only witness file. Opened with `O_APPEND|O_CREAT` (mode 0600), so
 * every write lands at the end whatever else has the file open; each write is
 * one `write` of whole lines followed by `fdatasync`. A partial last line left
 * by a crash mid-write is cut off when the file is opened (the audit log then
 * resends the store's checkpoints past the last whole line).
 */
export class FileWitness implements AuditWitness {
  readonly #path: string;
  readonly #fh: FileHandle;

  private constructor(path: string, fh: FileHandle) {
    this.#path = path;
    this.#fh = fh;
  }

  /**
   * Opens (creating) the witness file at `path` for appending.
   * @throws BastionError `ERR_AUDIT_WITNESS` naming the path when it cannot be opened.
   */
  static async open(path: string): Promise<FileWitness> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'a', 0o600);
    } catch (err) {
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: cannot open ${path}`, { cause: err });
    }
    try {
      const { size } = await fh.stat();
      if (size > 0) {
        const start = Math.max(0, size - TAIL_BYTES);
        const tail = await readBytes(path, start, size - start);
        if (tail.at(-1) !== 0x0a) {
          // A torn write: keep the whole lines only.
          const cut = tail.lastIndexOf(0x0a);
          await fh.truncate(cut < 0 ? start : start + cut + 1);
        }
      }
      return new FileWitness(path, fh);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: cannot read ${path}`, { cause: err });
    }
  }

  async write(checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    if (checkpoints.length === 0) return;
    const text = checkpoints.map((cp) => `${witnessLine(cp)}\n`).join('');
    try {
      await this.#fh.write(text);
      await this.#fh.datasync();
    } catch (err) {
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: cannot write ${this.#path}`, { cause: err });
    }
  }

  /** The seq of the last well-formed line (read from the file's last 64 KiB); 0 when there is none. */
  async lastSeq(): Promise<number> {
    return (await this.recent()).at(-1)?.seq ?? 0;
  }

  /** The well-formed checkpoint lines in the file's last 64 KiB (about 200), ascending seq. */
  async recent(): Promise<AuditCheckpoint[]> {
    try {
      const { size } = await this.#fh.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const lines = (await readRange(this.#path, start, size - start)).split('\n');
      // The first line may be cut by the 64 KiB window, the last torn: both fail to parse and are skipped.
      const out: AuditCheckpoint[] = [];
      for (const line of lines) {
        const cp = parseWitnessLine(line);
        if (cp !== undefined) out.push(cp);
      }
      return out.sort((a, b) => a.seq - b.seq);
    } catch (err) {
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: cannot read ${this.#path}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}

async function readRange(path: string, start: number, length: number): Promise<string> {
  return (await readBytes(path, start, length)).toString('utf8');
}

async function readBytes(path: string, start: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Options of {@link WebhookWitness}. */
export interface WebhookWitnessOptions {
  /** An http(s) URL. */
  readonly url: string;
  /** Longest one POST may take, in ms (default {@link WITNESS_WEBHOOK_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/**
 * POSTs checkpoints as `application/json` `{"checkpoints": [...]}` (the witness
 * line fields); a 2xx answer is success. Redirects are not followed. Uses its own
 * undici connection pool (no global dispatcher or proxy settings), with connect,
 * header and body timeouts of `timeoutMs` besides the overall one.
 */
export class WebhookWitness implements AuditWitness {
  readonly #url: URL;
  readonly #timeoutMs: number;
  readonly #agent: Agent;

  /** @throws BastionError `ERR_CONFIG_INVALID` for a URL that is not http(s) or holds user info, or a bad timeout. */
  constructor(opts: WebhookWitnessOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new BastionError('ERR_CONFIG_INVALID', 'audit.witness.webhook.url: not a URL');
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
      throw new BastionError('ERR_CONFIG_INVALID', 'audit.witness.webhook.url: must be an http(s) URL without user info');
    }
    const timeoutMs = opts.timeoutMs ?? WITNESS_WEBHOOK_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new BastionError('ERR_CONFIG_INVALID', 'audit.witness.webhook.timeoutMs: must be a positive integer');
    this.#url = url;
    this.#timeoutMs = timeoutMs;
    this.#agent = new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  async write(checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    if (checkpoints.length === 0) return;
    const body = `{"checkpoints":[${checkpoints.map(witnessLine).join(',')}]}`;
    let status: number;
    try {
      const res = await request(this.#url.href, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = res.statusCode;
      // Read and discard the answer (bounded by bodyTimeout) so the connection can be reused.
      await res.body.dump();
    } catch (err) {
      const name = err instanceof Error ? err.name : '';
      const code = (err as { code?: unknown } | null)?.code;
      const timedOut = name === 'TimeoutError' || name === 'AbortError' || (typeof code === 'string' && code.endsWith('_TIMEOUT'));
      const reason = timedOut ? 'timeout' : 'network';
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: webhook ${reason}`, { cause: err, detail: { reason } });
    }
    if (status < 200 || status > 299) {
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: webhook answered HTTP ${status}`, { detail: { reason: 'http_status', status } });
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** Writes to every witness; fails (after trying all) when any failed. */
class WitnessSet implements AuditWitness {
  readonly #all: readonly AuditWitness[];
  constructor(all: readonly AuditWitness[]) {
    this.#all = all;
  }
  async write(checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    const results = await Promise.allSettled(this.#all.map((w) => w.write(checkpoints)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
  async lastSeq(): Promise<number> {
    // The file is the witness that can tell; a webhook cannot, and is resent nothing.
    for (const w of this.#all) if (w.lastSeq !== undefined) return w.lastSeq();
    return Number.MAX_SAFE_INTEGER;
  }
  async recent(): Promise<AuditCheckpoint[]> {
    const all: AuditCheckpoint[] = [];
    for (const w of this.#all) if (w.recent !== undefined) all.push(...(await w.recent()));
    return all.sort((a, b) => a.seq - b.seq);
  }
  async close(): Promise<void> {
    await Promise.allSettled(this.#all.map((w) => w.close()));
  }
}

/**
 * Opens the witnesses configured in `audit.witness` (file and/or webhook), or
 * undefined when none is.
 * @throws BastionError `ERR_AUDIT_WITNESS` (file cannot be opened), `ERR_CONFIG_INVALID` (webhook).
 */
export async function openWitness(config: { readonly file?: string; readonly webhook?: WebhookWitnessOptions } | undefined): Promise<AuditWitness | undefined> {
  if (config === undefined) return undefined;
  const all: AuditWitness[] = [];
  if (config.webhook !== undefined) all.push(new WebhookWitness(config.webhook));
  if (config.file !== undefined) all.push(await FileWitness.open(config.file));
  if (all.length === 0) return undefined;
  return all.length === 1 ? all[0] : new WitnessSet(all);
}

/** A witness line as a checkpoint, or undefined when it is not one (blank, torn, or not the shape). */
function parseWitnessLine(line: string): AuditCheckpoint | undefined {
  if (line.length === 0 || line.length > MAX_LINE) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const { seq, hash, time, keyId, signature } = o;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return undefined;
  if (typeof time !== 'string' || typeof keyId !== 'string' || typeof signature !== 'string') return undefined;
  return { seq, hash, time, keyId, signature };
}

/** What {@link readWitnessFile} found. */
export interface WitnessFile {
  readonly checkpoints: AuditCheckpoint[];
  /** The file ended in a partial line (a crash mid-write), which was skipped. */
  readonly tornTail: boolean;
}

/**
 * Reads a witness file written by {@link FileWitness}. A last line without its
 * newline is a torn write and is skipped (`tornTail`); any other line that is
 * not a checkpoint is an error, since the file is append-only.
 * @throws BastionError `ERR_AUDIT_WITNESS` naming the 1-based line (never its content), or the file when it cannot be read.
 */
export async function readWitnessFile(path: string): Promise<WitnessFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: cannot read ${path}`, { cause: err, detail: { reason: 'unreadable' } });
  }
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const checkpoints: AuditCheckpoint[] = [];
  for (let i = 0; i < lines.length; i++) {
    const cp = parseWitnessLine(lines[i]!);
    if (cp === undefined) {
      throw new BastionError('ERR_AUDIT_WITNESS', `audit witness: line ${i + 1} of ${path} is not a checkpoint`, { detail: { reason: 'malformed', line: i + 1 } });
    }
    checkpoints.push(cp);
  }
  return { checkpoints, tornTail: last.length > 0 };
}
