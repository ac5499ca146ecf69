/**
 * Validation of tool arguments against the tool's `inputSchema` with ajv.
 * JSON Schema 2020-12 is the default dialect (MCP 2025-11-25); a schema that
 * declares draft-07 (`$schema`) is validated as draft-07, as many servers
 * still emit it. Tool schemas come from upstreams and are untrusted: a schema
 * ajv cannot compile makes the tool unusable (hidden from lists, calls refused),
 * never unchecked. Compiled validators are cached by the schema's canonical text.
 *
 * Error messages name the failing location and keyword only, never the value.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv | Ajv2020) => void;

/** Most validator entries kept; the oldest are dropped beyond this. */
const MAX_CACHE = 2048;
/** Most schema errors reported back. */
const MAX_ERRORS = 5;

export class ArgumentValidator {
  readonly #v2020: Ajv2020;
  readonly #v7: Ajv;
  readonly #cache = new Map<string, ValidateFunction | null>();
  readonly #byObject = new WeakMap<object, ValidateFunction | null>();

  constructor() {
    const opts = { strict: false, allErrors: false, validateSchema: true, addUsedSchema: false, loadSchema: undefined } as const;
    this.#v2020 = new Ajv2020(opts);
    this.#v7 = new Ajv(opts);
    addFormats(this.#v2020);
    addFormats(this.#v7);
  }

  #compile(schema: unknown): ValidateFunction | null {
    // The same schema object (a catalogue entry's, on every call of its tool) skips the text key:
    // schemas are never modified once listed.
    const byObject = typeof schema === 'object' && schema !== null ? this.#byObject.get(schema) : undefined;
    if (byObject !== undefined) return byObject;
    const fn = this.#compileByText(schema);
    if (typeof schema === 'object' && schema !== null) this.#byObject.set(schema, fn);
    return fn;
  }

  #compileByText(schema: unknown): ValidateFunction | null {
    const key = JSON.stringify(schema) ?? 'undefined';
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    let fn: ValidateFunction | null;
    try {
      if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw new TypeError('schema must be an object');
      const declared = (schema as { $schema?: unknown }).$schema;
      const draft7 = typeof declared === 'string' && declared.includes('draft-07');
      fn = draft7 ? this.#v7.compile(schema) : this.#v2020.compile(schema);
    } catch {
      fn = null;
    }
    if (this.#cache.size >= MAX_CACHE) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(key, fn);
    return fn;
  }

  /** True when the schema compiles (the tool can be offered). */
  compiles(schema: unknown): boolean {
    return this.#compile(schema) !== null;
  }

  /**
   * Validates `args`. Returns null when valid, else up to 5 messages like
   * `/path: must be string` (locations and keywords, never values). An
   * uncompilable schema yields `["the tool's input schema cannot be compiled"]`.
   */
  validate(schema: unknown, args: unknown): string[] | null {
    const fn = this.#compile(schema);
    if (!fn) return ["the tool's input schema cannot be compiled"];
    if (fn(args)) return null;
    return (fn.errors ?? []).slice(0, MAX_ERRORS).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`);
  }
}
