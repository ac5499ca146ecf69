/**
 * The config's short forms of provenance-aware policy (`agents.X.approveWhen`,
 * `agents.X.denyWhen`; docs/injection-defense.md) compiled to Cedar. Each
 * condition becomes one `forbid` on `tools/call`, annotated with what happens
 * when it holds:
 *
 * ```cedar
 * @id("agents.demo.approveWhen[0]")
 * @fallback("approve")
 * forbid (principal == Bastion::Agent::"demo", action == Bastion::Action::"tools/call", resource is Bastion::Tool)
 * when { context.listing == false && context.tool.effects.containsAny(["send", "pay"]) && context.argsFrom.contains("untrusted") };
 * ```
 *
 * | key | condition |
 * | --- | --- |
 * | `tool: [p…]` | `(resource.name like "p1" \|\| …)` |
 * | `effect: [e…]` | `context.tool.effects.containsAny([…])` |
 * | `source: s` | `context.tool.source == "s"` |
 * | `argsFrom: [o…]` | `context.argsFrom.containsAny([…])` |
 * | `tainted: b` | `context.conversation.tainted == b` |
 * | `flagged: b` | `context.conversation.flagged == b` |
 * | `hostNotIn`, `recipientNotIn` | `context.outside.contains("<id>")` (host and address patterns are matched before Cedar: src/provenance/facts.ts) |
 *
 * A `@fallback` forbid never grants: the engine (src/policy/engine.ts) applies
 * it only to a call some permit allows, as `deny` (refused like any forbid),
 * `error` (refused with a tool error telling the model why, reason
 * `policy.guard`) or `approve` (held, reason `policy.approval`).
 */
import type { ResolvedGuard } from '../config/types.ts';

/** The Cedar condition of one short form (joined with `&&`; `true` when it has no key). */
export function guardCondition(g: ResolvedGuard, literal: (s: string) => string): string {
  const set = (xs: readonly string[]): string => `[${xs.map(literal).join(', ')}]`;
  const parts = ['context.listing == false'];
  if (g.tool !== undefined) parts.push(`(${g.tool.map((p) => `resource.name like ${literal(p)}`).join(' || ')})`);
  if (g.effect !== undefined) parts.push(`context.tool.effects.containsAny(${set(g.effect)})`);
  if (g.source !== undefined) parts.push(`context.tool.source == ${literal(g.source)}`);
  if (g.argsFrom !== undefined) parts.push(`context.argsFrom.containsAny(${set(g.argsFrom)})`);
  if (g.tainted !== undefined) parts.push(`context.conversation.tainted == ${String(g.tainted)}`);
  if (g.flagged !== undefined) parts.push(`context.conversation.flagged == ${String(g.flagged)}`);
  if (g.hostNotIn !== undefined || g.recipientNotIn !== undefined) parts.push(`context.outside.contains(${literal(g.id)})`);
  return parts.join(' && ');
}
