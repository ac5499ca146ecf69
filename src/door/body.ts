/**
 * The kernel's bounded body reader and header helper, used by every door (the HTTP listener,
 * the admin API, the model door, the agent-to-agent door and the egress proxy).
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { DEFAULTS } from '../defaults.ts';

/** One header value; repeated headers (ambiguous) count as absent. */
export function headerOne(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Reads a request body, counting bytes as they stream (Content-Length is checked
 * first but not trusted). Returns 'too_large' as soon as the limit is passed,
 * 'timeout' when the body is not complete within `timeoutMs`, or 'aborted' when
 * the client went away.
 */
export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs: number = DEFAULTS.bodyTimeoutMs): Promise<Buffer | 'too_large' | 'aborted' | 'timeout'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.resolve('too_large');
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = setTimeout(() => {
      req.pause();
      finish('timeout');
    }, timeoutMs);
    const finish = (v: Buffer | 'too_large' | 'aborted' | 'timeout'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(v);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        req.resume();
        finish('too_large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish(Buffer.concat(chunks, size)));
    req.on('error', () => finish('aborted'));
    req.on('close', () => finish('aborted'));
  });
}

/**
 * Drops a stream unread or read in part (an upstream's answer body nobody will
 * read: the client left, the answer was refused, a limit was passed). The no-op
 * 'error' listener comes first: undici's body emits `UND_ERR_ABORTED` when
 * destroyed before its end, and an unheard 'error' event ends the process.
 */
export function dropBody(body: Readable): void {
  body.on('error', noop);
  body.destroy();
}

function noop(): void {}
