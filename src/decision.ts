/**
 * Decisions are values, not exceptions: every gate in a door returns one.
 * `effect` is what happens, `reason` a stable machine-readable reason code,
 * `rule` names the rule, policy id or check that decided (for `explain` and the audit record).
 */
export type Effect = 'allow' | 'deny' | 'approve';

/** A policy decision `{effect, reason, rule}`. */
export interface Decision {
  readonly effect: Effect;
  /** Stable reason code, e.g. `policy.forbid`, `policy.no_permit`, `args.schema`, `path.escape`. */
  readonly reason: string;
  /** The rule that decided: a Cedar policy id, a config path, or a named check. */
  readonly rule: string;
}

/** Builds a deny decision. */
export function deny(reason: string, rule: string): Decision {
  return { effect: 'deny', reason, rule };
}

/** Builds an allow decision. */
export function allow(reason: string, rule: string): Decision {
  return { effect: 'allow', reason, rule };
}
