/**
 * Thin adapters over {@link verifyParts}: a Fetch API `Request`, a Node
 * `IncomingMessage`, a Node http handler helper and Connect/Express middleware.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VerifyError } from './errors.ts';
import { compileVerifyOptions, requireReplayStore, verifyParts, type VerifiedRequest, type VerifyOptions } from './verify.ts';

/**
 * Options of the adapters, on top of {@link VerifyOptions}. The target URI is
 * always `origin` + the request's path and query: `Host`, `X-Forwarded-*` and the
 * URL a Fetch runtime derived from them are never trusted.
 */
export interface AdapterOptions extends VerifyOptions {
  /** The body bytes, when already read (then the request body is not read). */
  readonly body?: Uint8Array;
  /** Largest accepted body, in bytes (default 1 MiB); larger is refused `malformed` with status 413. */
  readonly maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

function maxBody(opts: AdapterOptions): number {
  const v = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError('verify: maxBodyBytes must be a non-negative integer (bytes)');
  return v;
}

function tooLarge(): VerifyError {
  return new VerifyError('malformed', 'body: too large', { status: 413 });
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function readFetchBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) throw tooLarge();
  const stream = request.clone().body;
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    // Count streamed bytes: Content-Length may be absent (chunked) or wrong.
    if (total > limit) {
      // Not awaited: cancelling one branch of a tee'd stream settles only when the other is cancelled too.
      void reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concat(chunks, total);
}

function readNodeBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
      total += bytes.length;
      if (total > limit) {
        cleanup();
        // Drain and drop the rest so the error response can be written.
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(bytes);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(concat(chunks, total));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new VerifyError('malformed', 'body: could not be read', { cause: err }));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Target URI of a Node request (RFC 9110 §7.1): the configured origin + the
 * request target in origin form. The Host header plays no part: a request signed
 * for another server's origin fails its signature here.
 */
function nodeTargetUri(req: IncomingMessage, origin: string): string {
  const target = req.url ?? '';
  if (!target.startsWith('/')) throw new VerifyError('malformed', 'request target: not in origin form');
  return origin + target;
}

/** Target URI of a Fetch `Request`: the configured origin + its path and query (its own origin came from Host). */
function fetchTargetUri(request: Request, origin: string): string {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch (err) {
    throw new VerifyError('malformed', 'request url: not an absolute url', { cause: err });
  }
  return origin + url.pathname + url.search;
}

function nodeHeaders(req: IncomingMessage): Record<string, string | readonly string[] | undefined> {
  // Node joins repeated lines of most fields with ", " already (RFC 9421 §2.1); arrays stay arrays.
  return req.headers;
}

function isFetchRequest(r: Request | IncomingMessage): r is Request {
  if (typeof Request !== 'undefined' && r instanceof Request) return true;
  // A Request from another realm or fetch implementation: Headers-like headers and clone().
  const h = (r as { headers?: unknown }).headers;
  return typeof (r as { clone?: unknown }).clone === 'function' && typeof (h as { get?: unknown } | undefined)?.get === 'function';
}

/**
 * Verifies a Fetch API `Request` (its body is read from a clone) or a Node
 * `IncomingMessage` (its body is read from the stream unless `opts.body` is
 * given; at most `maxBodyBytes`, default 1 MiB, else `malformed` with status 413).
 * The target URI is `${opts.origin}${path and query}`, whatever `Host` or the
 * Fetch runtime's URL say. Checks as {@link verifyParts}.
 * @throws VerifyError (see verifyParts: `origin_required` and `replay_store_required`
 *   for missing options); TypeError for invalid options.
 */
export function verifyRequest(request: Request | IncomingMessage, opts: AdapterOptions): Promise<VerifiedRequest> {
  return verifyWithBody(request, opts, opts.body);
}

async function verifyWithBody(request: Request | IncomingMessage, opts: AdapterOptions, given: Uint8Array | undefined): Promise<VerifiedRequest> {
  const limit = maxBody(opts);
  // Options first: a misconfigured verifier refuses before reading anything.
  const { origin } = compileVerifyOptions(opts);
  if (isFetchRequest(request)) {
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const url = fetchTargetUri(request, origin);
    const body = given ?? (await readFetchBody(request, limit));
    return verifyParts({ method: request.method, url, headers, body }, opts);
  }
  const url = nodeTargetUri(request, origin);
  const body = given ?? (await readNodeBody(request, limit));
  return verifyParts({ method: request.method ?? '', url, headers: nodeHeaders(request), body }, opts);
}

/** Writes the JSON error answer `{"error": code}` with the error's status. */
function writeError(res: ServerResponse, status: number, code: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: code });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length,
    'cache-control': 'no-store',
    ...(status === 413 ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** Options of {@link verifyNodeRequest} and {@link bastionMiddleware}. */
export interface NodeVerifyOptions extends AdapterOptions {
  /** Called with every refusal or internal error (for logs); never with a successful request. */
  readonly onError?: (err: unknown) => void;
}

function answer(res: ServerResponse, err: unknown, opts: NodeVerifyOptions): void {
  opts.onError?.(err);
  if (err instanceof VerifyError) writeError(res, err.status, err.code);
  else writeError(res, 500, 'internal');
}

/**
 * Node http helper: verifies `req` ({@link verifyRequest}) and returns the
 * {@link VerifiedRequest}, or writes the error answer (status from the error,
 * JSON `{"error": code}`; 500 `{"error":"origin_required"}` or
 * `{"error":"replay_store_required"}` when the options lack them, so a
 * misconfigured server accepts nothing; 500 `{"error":"internal"}` for anything
 * unexpected) and returns `undefined`. Never throws for a bad request.
 */
export async function verifyNodeRequest(req: IncomingMessage, res: ServerResponse, opts: NodeVerifyOptions): Promise<VerifiedRequest | undefined> {
  try {
    return await verifyRequest(req, opts);
  } catch (err) {
    answer(res, err, opts);
    return undefined;
  }
}

/** A Node request as seen by Connect/Express middleware after this one ran. */
export interface BastionIncomingMessage extends IncomingMessage {
  /** Set by {@link bastionMiddleware}: the verified request. */
  bastion?: VerifiedRequest;
  /** The raw body bytes: read by {@link bastionMiddleware}, or set earlier by a body parser's `verify` hook. */
  rawBody?: Uint8Array;
}

/**
 * Connect/Express middleware: verifies each request; on success sets
 * `req.bastion` (the {@link VerifiedRequest}) and `req.rawBody` (the body bytes)
 * and calls `next()`; on refusal answers the error's status with JSON
 * `{"error": code}` and does not call `next`. Mount it before body parsers, or
 * have the parser keep `req.rawBody`; a body already consumed without `rawBody`
 * is passed to `next(err)` as a TypeError (a server misconfiguration).
 * Options are validated when the middleware is created.
 * @throws VerifyError `origin_required` or `replay_store_required` when `origin`
 *   or a replay store is missing; TypeError for other invalid options.
 */
export function bastionMiddleware(opts: NodeVerifyOptions): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  requireReplayStore(compileVerifyOptions(opts));
  maxBody(opts);
  return function bastionVerify(req, res, next): void {
    const r = req as BastionIncomingMessage;
    let body = r.rawBody;
    if (body === undefined && (req.readableDidRead || req.readableEnded)) {
      next(new TypeError('bastionMiddleware: body already consumed; mount before body parsers or set req.rawBody'));
      return;
    }
    const run = async (): Promise<void> => {
      if (body === undefined) body = await readNodeBody(req, maxBody(opts));
      const verified = await verifyWithBody(req, opts, body);
      r.bastion = verified;
      r.rawBody = body;
    };
    run().then(
      () => next(),
      (err: unknown) => answer(res, err, opts),
    );
  };
}
