/**
 * The redactor of one upstream response on its way back to the agent (the
 * egress proxy's answer from a secret's host): a Transform over the decoded
 * body. A body with a JSON media type is read whole, up to `maxJsonBytes`, so
 * a value split across adjacent fields is found too (src/redact/json.ts); a
 * longer JSON body, and any other body, is redacted as a stream by the byte
 * engine (every form and decoded view, but not the split across fields).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { redactPrefix, type RedactionSet } from './engine.ts';
import { redactJsonBody } from './json.ts';

/** Options of {@link ResponseRedactor}. */
export interface ResponseRedactorOptions {
  /** Whether the body is JSON (see `isJsonMediaType`): read whole for the split-field pass. */
  readonly json: boolean;
  /** Most bytes of a JSON body read whole; past it the body is streamed through the byte engine. */
  readonly maxJsonBytes: number;
}

/** Redacts `set` from a response body; `redactions` counts spans replaced, `split` those found across JSON fields. */
export class ResponseRedactor extends Transform {
  readonly #set: RedactionSet;
  readonly #max: number;
  #whole: Buffer[] | null;
  #wholeBytes = 0;
  #carry: Buffer = Buffer.alloc(0);
  redactions = 0;
  split = 0;

  constructor(set: RedactionSet, opts: ResponseRedactorOptions) {
    super();
    this.#set = set;
    this.#max = opts.maxJsonBytes;
    this.#whole = opts.json ? [] : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#whole !== null) {
      this.#whole.push(chunk);
      this.#wholeBytes += chunk.length;
      if (this.#wholeBytes <= this.#max) return done();
      // Too long to read whole: from here on, a stream like any other body.
      chunk = Buffer.concat(this.#whole);
      this.#whole = null;
    }
    const buf = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { out, count, cut } = redactPrefix(buf, this.#set, false);
    this.#carry = Buffer.from(buf.subarray(cut));
    this.redactions += count;
    if (out.length > 0) this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#whole !== null) {
      const r = redactJsonBody(Buffer.concat(this.#whole), this.#set);
      this.#whole = null;
      this.redactions += r.count;
      this.split += r.split;
      if (r.out.length > 0) this.push(r.out);
      return done();
    }
    const { out, count } = redactPrefix(this.#carry, this.#set, true);
    this.#carry = Buffer.alloc(0);
    this.redactions += count;
    if (out.length > 0) this.push(out);
    done();
  }
}
