/**
 * Input cut into chunks, for the tests that show a streaming redactor or
 * parser gives the same answer however its input arrives.
 */
import type { Duplex } from 'node:stream';

/**
 * `seq` (a string, in UTF-16 code units, or bytes) cut at the offsets `cuts`,
 * each taken modulo `seq.length + 1`, deduplicated and sorted: the pieces in
 * order, joining back to `seq`. A piece may be empty.
 */
export function cutAt(seq: string, cuts: readonly number[]): string[];
export function cutAt<T extends Uint8Array>(seq: T, cuts: readonly number[]): T[];
export function cutAt(seq: string | Uint8Array, cuts: readonly number[]): (string | Uint8Array)[] {
  const points = [...new Set(cuts.map((c) => c % (seq.length + 1)))].sort((a, b) => a - b);
  const piece = (from: number, to?: number): string | Uint8Array => (typeof seq === 'string' ? seq.slice(from, to) : seq.subarray(from, to));
  const out: (string | Uint8Array)[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(piece(prev, p));
    prev = p;
  }
  out.push(piece(prev));
  return out;
}

/** `bytes` as one-byte chunks. */
export function everyByte(bytes: Uint8Array): Buffer[] {
  return [...bytes].map((b) => Buffer.from([b]));
}

/**
 * Writes `chunks` to `stream` (a Transform such as a redactor), ends it, and
 * resolves with everything it emitted, concatenated; rejects with its error.
 */
export async function streamThrough(stream: Duplex, chunks: readonly Uint8Array[]): Promise<Buffer> {
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  for (const c of chunks) stream.write(c);
  stream.end();
  await ended;
  return Buffer.concat(out);
}
