/**
 * Bounds for every HTTP exchange of the OAuth client: a deadline covering
 * headers and body, a cap on response body bytes, and no redirect following
 * (RFC 6749 §3.2 endpoints are not redirected to; RFC 9728 and RFC 8414
 * metadata must come from the URL asked).
 */
import type { FetchLike } from './types.ts';

/** Thrown when a response body exceeds its cap. Its message names no URL content beyond the limit. */
export class ResponseTooLargeError extends RangeError {
  constructor(limitBytes: number) {
    super(`OAuth response body exceeds ${limitBytes} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/** Statuses whose responses carry no body (Fetch standard, "null body status"). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * Wraps `inner` so that each call aborts after `timeoutMs` (headers and body
 * together), never follows redirects, and errors the body stream past
 * `maxResponseBytes`. Throws `RangeError` for out-of-range limits.
 */
export function boundedFetch(inner: FetchLike, timeoutMs: number, maxResponseBytes: number): FetchLike {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) throw new RangeError('boundedFetch: timeoutMs must be an integer 1-120000');
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 1024 || maxResponseBytes > 16 * 1024 * 1024) throw new RangeError('boundedFetch: maxResponseBytes must be an integer 1024-16777216');
  return async (url, init) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    const res = await inner(url, { ...init, redirect: 'manual', signal });
    const declared = res.headers.get('content-length');
    if (declared !== null && Number(declared) > maxResponseBytes) {
      await res.body?.cancel();
      throw new ResponseTooLargeError(maxResponseBytes);
    }
    if (res.body === null || NULL_BODY.has(res.status)) return res;
    let seen = 0;
    const limit = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > maxResponseBytes) controller.error(new ResponseTooLargeError(maxResponseBytes));
        else controller.enqueue(chunk);
      },
    });
    return new Response(res.body.pipeThrough(limit), { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
