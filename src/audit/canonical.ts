/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the byte-exact JSON form that
 * audit hashes and checkpoint signatures are computed over.
 */
import canonicalize from 'canonicalize';

/**
 * The RFC 8785 canonical JSON of `value`: object members sorted by UTF-16 code
 * units (§3.2.3), numbers in ECMAScript form (§3.2.2.3), no whitespace.
 * Object members whose value is `undefined` are omitted, as `JSON.stringify` does.
 *
 * Throws `TypeError` when `value` is not representable as I-JSON (RFC 7493):
 * `undefined`, a function, a symbol or a bigint at any depth, a non-finite
 * number, a string with a lone surrogate (§3.2.2.2), or a cycle.
 */
export function canonicalJson(value: unknown): string {
  assertJsonValue(value, 'value');
  let out: string | undefined;
  try {
    out = canonicalize(value);
  } catch (err) {
    // canonicalize throws plain Errors for NaN, Infinity, lone surrogates and cycles.
    throw new TypeError(`canonicalJson: ${err instanceof Error ? err.message : 'value is not JSON'}`, { cause: err });
  }
  if (typeof out !== 'string') throw new TypeError('canonicalJson: value is not JSON');
  return out;
}

/**
 * Rejects what the `canonicalize` package would silently mangle: a function or
 * symbol value inside an object becomes the text `undefined`, a bigint makes
 * `JSON.stringify` throw an unlabelled error. Objects with `toJSON` (Date) are
 * left to `canonicalize`, which calls it.
 */
function assertJsonValue(value: unknown, path: string, depth = 0): void {
  if (depth > 256) throw new TypeError(`canonicalJson: ${path} is nested too deeply`);
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'number':
      return;
    case 'object':
      if (value === null) return;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (item !== undefined) assertJsonValue(item, `${path}[${i}]`, depth + 1);
        }
        return;
      }
      for (const [key, item] of Object.entries(value)) {
        if (item !== undefined) assertJsonValue(item, `${path}.${key}`, depth + 1);
      }
      return;
    default:
      throw new TypeError(`canonicalJson: ${path} is ${typeof value}, not a JSON value`);
  }
}
