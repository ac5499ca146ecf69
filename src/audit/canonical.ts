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
 * {@link canonicalJson} of a value built only from {@link jsonSnapshot} results
 * and well-formed strings and finite numbers: the I-JSON walk is skipped, since
 * the snapshot already passed it (JSON.stringify of well-formed strings parses
 * back to well-formed strings). For the audit log's hot path; anything else
 * must use {@link canonicalJson}.
 * @throws TypeError when `canonicalize` refuses the value (it cannot for a snapshot).
 */
export function canonicalJsonOfSnapshot(value: unknown): string {
  const out = canonicalize(value);
  if (typeof out !== 'string') throw new TypeError('canonicalJson: value is not JSON');
  return out;
}

/**
 * A deep copy of `value` through JSON, accepting exactly what {@link canonicalJson}
 * accepts (so the copy always canonicalizes later), at the cost of the native
 * `JSON.stringify` rather than a canonical serialization. Throws `TypeError`
 * where `canonicalJson` would.
 */
export function jsonSnapshot<T>(value: T): T {
  return sizedJsonSnapshot(value).value;
}

/** {@link jsonSnapshot}, with the length of its JSON text in UTF-16 code units (about its size in bytes; the audit log's batch bound). Throws `TypeError` likewise. */
export function sizedJsonSnapshot<T>(value: T): { value: T; size: number } {
  assertJsonValue(value, 'value');
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError('jsonSnapshot: value is not JSON (a cycle?)', { cause: err });
  }
  if (typeof text !== 'string') throw new TypeError('jsonSnapshot: value is not JSON');
  return { value: JSON.parse(text) as T, size: text.length };
}

/**
 * Rejects what the `canonicalize` package would silently mangle or refuse: a
 * function or symbol value inside an object becomes the text `undefined`, a
 * bigint makes `JSON.stringify` throw an unlabelled error, and non-finite
 * numbers and lone surrogates (in values or keys) are not I-JSON. Objects with `toJSON` (Date) are
 * left to `canonicalize`, which calls it.
 */
function assertJsonValue(value: unknown, root: string): void {
  // The path is kept as segments and only joined for the error message: building a
  // string per member made this walk the costliest part of snapshotting an event.
  const path: (string | number)[] = [];
  const fail = (what: string): never => {
    const at = root + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
    throw new TypeError(`canonicalJson: ${at} ${what}`);
  };
  const walk = (v: unknown, depth: number): void => {
    if (depth > 256) fail('is nested too deeply');
    switch (typeof v) {
      case 'string':
        if (!v.isWellFormed()) fail('holds a lone surrogate');
        return;
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(v)) fail('is not a finite number');
        return;
      case 'object':
        if (v === null) return;
        if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return;
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            const item: unknown = v[i];
            if (item === undefined) continue;
            path.push(i);
            walk(item, depth + 1);
            path.pop();
          }
          return;
        }
        for (const key in v) {
          if (!Object.hasOwn(v, key)) continue;
          const item = (v as Record<string, unknown>)[key];
          if (!key.isWellFormed()) fail('has a key holding a lone surrogate');
          if (item === undefined) continue;
          path.push(key);
          walk(item, depth + 1);
          path.pop();
        }
        return;
      default:
        fail(`is ${typeof v}, not a JSON value`);
    }
  };
  walk(value, 0);
}
