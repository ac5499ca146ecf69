/**
 * Tool labels: where a tool's results come from (`source`) and what its calls
 * do (`effect`), the facts provenance-aware policy decides on (issue 13; see
 * docs/labels.md). Labels come from the config only: the agent's own
 * `agents.X.labels` patterns first, then the global `tools` patterns, first
 * match wins (`*` matches any run of characters, as everywhere in Bastion).
 *
 * Fail closed twice over:
 * - a tool no pattern labels is read strictly: `untrusted` results and every
 *   side effect (`write`, `send`, `pay`, `share`, `delete`, `egress`); a pattern
 *   that sets only one of the two leaves the other strict;
 * - MCP tool annotations (2025-06-18 `ToolAnnotations`) come from the upstream,
 *   which is untrusted, so they may only tighten a label, never loosen it:
 *   `openWorldHint: true` makes the source untrusted and adds `egress`,
 *   `destructiveHint: true` adds `delete`, `readOnlyHint: false` adds `write`.
 *   `readOnlyHint: true` or `destructiveHint: false` change nothing.
 */
import type { ResolvedAgentLabel, ResolvedToolMeta, ToolEffect } from '../config/types.ts';
import { globRegExp } from './tool-meta.ts';

/** Every effect, in a fixed order (labels are reported in it). */
export const EFFECTS: readonly ToolEffect[] = Object.freeze(['read', 'write', 'send', 'pay', 'share', 'delete', 'egress']);

/** The effects an unlabelled tool is assumed to have: every side effect. */
export const STRICT_EFFECTS: readonly ToolEffect[] = Object.freeze(['write', 'send', 'pay', 'share', 'delete', 'egress']);

/** A tool's labels as policy sees them. */
export interface ToolLabel {
  readonly source: 'trusted' | 'untrusted';
  /** In {@link EFFECTS} order, without repeats. */
  readonly effects: readonly ToolEffect[];
  /** True when a config pattern declared both `source` and `effect` (nothing was assumed). */
  readonly labelled: boolean;
  /** What decided: `agents.X.labels.<pattern>`, `tools.<pattern>`, or `default` (strict). */
  readonly rule: string;
  /** The annotations that tightened the configured label (`openWorldHint` …); empty when none did. */
  readonly tightenedBy: readonly string[];
}

/** The MCP annotations a label may be tightened by (untrusted input: any other shape is ignored). */
export interface ToolAnnotationsLike {
  readonly readOnlyHint?: unknown;
  readonly destructiveHint?: unknown;
  readonly openWorldHint?: unknown;
}

interface Rule {
  readonly re: RegExp;
  readonly rule: string;
  readonly source: 'trusted' | 'untrusted' | undefined;
  readonly effect: readonly ToolEffect[] | undefined;
}

function ordered(effects: Iterable<ToolEffect>): ToolEffect[] {
  const set = new Set(effects);
  return EFFECTS.filter((e) => set.has(e));
}

/** Resolves tools' labels for agents; one per config. */
export class LabelIndex {
  readonly #global: readonly Rule[];
  readonly #agents = new Map<string, readonly Rule[]>();

  /**
   * `tools` is the config's `tools` (patterns with optional `source`/`effect`);
   * `agents` each agent's `labels`. Patterns that declare no label are skipped
   * (they carry only scope or cross-user metadata).
   */
  constructor(tools: readonly ResolvedToolMeta[], agents: Iterable<{ readonly name: string; readonly labels: readonly ResolvedAgentLabel[] }>) {
    this.#global = tools
      .filter((t) => t.source !== undefined || t.effect !== undefined)
      .map((t) => ({ re: globRegExp(t.pattern), rule: `tools.${t.pattern}`, source: t.source, effect: t.effect }));
    for (const a of agents) {
      this.#agents.set(
        a.name,
        a.labels.map((l) => ({ re: globRegExp(l.pattern), rule: `agents.${a.name}.labels.${l.pattern}`, source: l.source, effect: l.effect })),
      );
    }
  }

  /**
   * The labels of tool `name` (its exposed name) for `agent`, tightened by the
   * tool's MCP `annotations` when given. Never throws.
   */
  labelOf(agent: string, name: string, annotations?: ToolAnnotationsLike): ToolLabel {
    const found = (this.#agents.get(agent) ?? []).find((r) => r.re.test(name)) ?? this.#global.find((r) => r.re.test(name));
    let source = found?.source ?? 'untrusted';
    const effects = new Set<ToolEffect>(found?.effect ?? STRICT_EFFECTS);
    const tightenedBy: string[] = [];
    if (annotations !== undefined && annotations !== null && typeof annotations === 'object') {
      if (annotations.openWorldHint === true && (source !== 'untrusted' || !effects.has('egress'))) {
        source = 'untrusted';
        effects.add('egress');
        tightenedBy.push('openWorldHint');
      }
      if (annotations.destructiveHint === true && !effects.has('delete')) {
        effects.add('delete');
        tightenedBy.push('destructiveHint');
      }
      if (annotations.readOnlyHint === false && !effects.has('write')) {
        effects.add('write');
        tightenedBy.push('readOnlyHint');
      }
    }
    return {
      source,
      effects: ordered(effects),
      labelled: found !== undefined && found.source !== undefined && found.effect !== undefined,
      rule: found?.rule ?? 'default',
      tightenedBy,
    };
  }

  /** Whether some pattern (the agent's or a global one) labels `name` fully. */
  isLabelled(agent: string, name: string): boolean {
    return this.labelOf(agent, name).labelled;
  }

  /**
   * The label patterns that match none of `names` (for `config check`: a pattern
   * naming no existing tool is probably a typo), as their config paths.
   */
  unusedPatterns(names: readonly string[]): string[] {
    const rules = [...this.#global, ...[...this.#agents.values()].flat()];
    return rules.filter((r) => !names.some((n) => r.re.test(n))).map((r) => r.rule);
  }
}
