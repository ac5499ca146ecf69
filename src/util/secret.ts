/**
 * A secret value as a type that redacts itself: printing, string-interpolating,
 * JSON-serializing or `util.inspect`-ing a `Secret` yields `[redacted]`. The
 * value is reached only through `reveal()`, which makes every use greppable.
 */
const REDACTED = '[redacted]';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    if (typeof value !== 'string') throw new TypeError('Secret value must be a string');
    this.#value = value;
  }

  /** The clear value. Call only where the value must leave Bastion's hands (a comparison, an outbound header). */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return REDACTED;
  }
}
