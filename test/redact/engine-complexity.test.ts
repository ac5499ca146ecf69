/**
 * The byte engine's work grows linearly with adversarial input (src/redact/engine.ts),
 * whole and streamed. Apart from engine.test.ts so mutation runs (which time each
 * mutant's tests) can leave the timing out.
 */
import { test, describe } from 'node:test';
import { compileRedaction, redactBytes, RedactStream } from '../../src/redact/index.ts';
import { assertLinear } from '../helpers/complexity.ts';

describe('complexity: work grows linearly with input', () => {
  const set = compileRedaction(['sk-live-0123456789abcdef', 'aaaaaaaaaaaaaaaa']);
  const units = ['sk-live-01234', '%25%2', '&#x000', '\\u00', 'a', 'c2stbGl2ZS0wMTIz', '+/+/', '%73%6b%2d'];
  for (const unit of units) {
    test(`whole: ${JSON.stringify(unit)}`, () => {
      assertLinear(unit, (s) => void redactBytes(Buffer.from(s, 'latin1'), set), unit.repeat(Math.ceil(20_000 / unit.length)), unit.repeat(Math.ceil(80_000 / unit.length)));
    });
  }
  test('streamed in 64-byte chunks', () => {
    const work = (s: string): void => {
      const r = new RedactStream(set);
      r.resume();
      const b = Buffer.from(s, 'latin1');
      for (let i = 0; i < b.length; i += 64) r.write(b.subarray(i, i + 64));
      r.end();
    };
    assertLinear('stream', work, 'sk-live-01%2'.repeat(2000), 'sk-live-01%2'.repeat(8000));
  });
});
