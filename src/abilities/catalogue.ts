/**
 * Abilities as MCP tools, for the tool door's catalogue. They join it as one
 * pseudo-upstream listing named {@link ABILITIES_UPSTREAM} without a prefix, so
 * an ability is offered under its own name, and a name an MCP upstream also
 * offers is hidden from both as a collision, like any other.
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedAbility } from '../config/types.ts';

/** The listing name of abilities: not a valid upstream name, so it cannot clash with one. */
export const ABILITIES_UPSTREAM = '@abilities';

const cache = new WeakMap<ReadonlyMap<string, ResolvedAbility>, readonly Tool[]>();

/**
 * Each ability as a tool: its name, description and parameter schema (the
 * tool's `inputSchema`), with hints from the method (GET and HEAD read only).
 * Computed once per config.
 */
export function abilityTools(abilities: ReadonlyMap<string, ResolvedAbility>): readonly Tool[] {
  const hit = cache.get(abilities);
  if (hit !== undefined) return hit;
  const tools: Tool[] = [...abilities.values()].map((a) => ({
    name: a.name,
    description: a.description,
    inputSchema: a.params as Tool['inputSchema'],
    annotations: { readOnlyHint: a.method === 'GET' || a.method === 'HEAD', openWorldHint: true },
  }));
  cache.set(abilities, tools);
  return tools;
}
