/** Test helper: drives a RedactStream chunk by chunk (src/redact/engine.ts). */
import { RedactStream, type RedactionSet } from '../../src/redact/index.ts';

/**
 * Writes `chunks` (each read as latin1, one byte per char) to a new RedactStream for `set`.
 * Returns how many bytes it held back after each write, and its whole output (latin1).
 */
export async function heldAfterEach(set: RedactionSet, chunks: readonly string[]): Promise<{ held: number[]; out: string }> {
  const r = new RedactStream(set);
  const out: Buffer[] = [];
  r.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => r.once('end', resolve));
  const held: number[] = [];
  for (const c of chunks) {
    r.write(Buffer.from(c, 'latin1'));
    held.push(r.held);
  }
  r.end();
  await ended;
  return { held, out: Buffer.concat(out).toString('latin1') };
}
