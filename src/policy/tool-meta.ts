/**
 * Tool metadata from the config's `tools` section (scope and cross-user reach)
 * and the visibility rule both doors apply before Cedar:
 *
 * - an agent with `scope: external` never sees a tool marked `scope: internal`;
 * - an agent with `isolateUsers: true` never sees a tool marked `crossUser: true`.
 *
 * Patterns are matched in config order, `*` matching any run of characters; the
 * first match gives the tool's metadata. An unlisted tool is external and not
 * cross-user (Cedar's allowlist still decides whether the agent may use it).
 */
import type { ResolvedAgent, ResolvedToolMeta } from '../config/types.ts';

/** A tool's metadata: its scope and whether it reaches other users' data. */
export interface ToolMeta {
  readonly scope: 'external' | 'internal';
  readonly crossUser: boolean;
}

const DEFAULT_META: ToolMeta = Object.freeze({ scope: 'external', crossUser: false });

/** Compiles a `*` glob (any run of characters); everything else is literal. Shared by src/policy/labels.ts. */
export function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('.*')}$`, 's');
}

/** Resolves tool names to metadata; one per config. */
export class ToolMetaIndex {
  readonly #rules: readonly { readonly re: RegExp; readonly meta: ToolMeta }[];

  constructor(tools: readonly ResolvedToolMeta[]) {
    this.#rules = tools.map((t) => ({ re: globRegExp(t.pattern), meta: { scope: t.scope, crossUser: t.crossUser } }));
  }

  /** The metadata of the first pattern matching `name`, else external and not cross-user. */
  metaOf(name: string): ToolMeta {
    for (const r of this.#rules) if (r.re.test(name)) return r.meta;
    return DEFAULT_META;
  }

  /**
   * Why `agent` may not see tool `name` (`tool.internal_scope`, `tool.cross_user`),
   * or undefined when the metadata lets it through (Cedar decides the rest).
   */
  hiddenReason(agent: Pick<ResolvedAgent, 'scope' | 'isolateUsers'>, name: string): 'tool.internal_scope' | 'tool.cross_user' | undefined {
    const meta = this.metaOf(name);
    if (meta.scope === 'internal' && agent.scope !== 'internal') return 'tool.internal_scope';
    if (meta.crossUser && agent.isolateUsers) return 'tool.cross_user';
    return undefined;
  }
}
