/**
 * The catalogue: what one session's upstreams offer, under the names Bastion
 * exposes. Tools and prompts are exposed as `<upstream>__<name>` (or as they are
 * for an upstream with `prefix: false`), so two servers cannot shadow each other
 * and the names stay valid OpenAI/Anthropic function names. A name that two
 * upstreams would both expose is hidden from both and reported as a collision.
 *
 * Resource URIs are not renamed: a URI is the server's identifier and appears
 * inside content (links, embedded resources), so rewriting it would break them.
 * Instead a URI is routed to the upstream that listed it (or whose template
 * matches it); a URI two upstreams both claim is hidden and reported.
 *
 * Pure: no I/O. Tool definitions are untrusted input: names are checked against
 * the MCP name rule, and hidden characters in descriptions are stripped and flagged.
 */
import type { Prompt, Resource, ResourceTemplate, Tool } from '@modelcontextprotocol/sdk/types.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import { findHiddenCharacters, stripHiddenCharacters } from '../detect/hidden.ts';

/** Separator between upstream and original name. Upstream names cannot contain `_`, so the split is unambiguous. */
export const NAME_SEPARATOR = '__';

/** MCP 2025-11-25 tool-name rule (also valid for OpenAI/Anthropic function names up to 64 chars). */
const VALID_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export interface Entry<T> {
  /** Name (or URI) the agent sees. */
  readonly exposed: string;
  readonly upstream: string;
  /** Name (or URI) at the upstream. */
  readonly original: string;
  /** The definition as the agent will see it (name rewritten, hidden characters stripped). */
  readonly item: T;
  /** Hidden-character kinds found in the upstream's definition, if any. */
  readonly hidden: readonly string[];
}

export interface UpstreamListing {
  readonly upstream: string;
  readonly prefix: boolean;
  readonly tools: readonly Tool[];
  readonly resources: readonly Resource[];
  readonly templates: readonly ResourceTemplate[];
  readonly prompts: readonly Prompt[];
  /** The upstream declared the resources capability. */
  readonly servesResources: boolean;
}

export interface Catalogue {
  readonly tools: ReadonlyMap<string, Entry<Tool>>;
  readonly prompts: ReadonlyMap<string, Entry<Prompt>>;
  readonly resources: ReadonlyMap<string, Entry<Resource>>;
  readonly templates: readonly (Entry<ResourceTemplate> & { readonly matcher: UriTemplate })[];
  /** Upstreams that declared the resources capability. */
  readonly resourceUpstreams: readonly string[];
  /** Names/URIs hidden because two upstreams expose them, or because they break the name rule. */
  readonly problems: readonly { readonly kind: 'collision' | 'invalid_name'; readonly name: string; readonly upstreams: readonly string[] }[];
}

/** The exposed name of an upstream's tool or prompt. */
export function exposeName(upstream: string, prefix: boolean, name: string): string {
  return prefix ? `${upstream}${NAME_SEPARATOR}${name}` : name;
}

/** Removes hidden characters from a description (the kinds found are reported by {@link hiddenIn}). */
function clean(text: string | undefined): { text: string | undefined } {
  return { text: text === undefined ? undefined : stripHiddenCharacters(text) };
}

/** Scans every string in a definition for hidden characters (descriptions, titles, schema text). */
function hiddenIn(value: unknown, depth = 0): string[] {
  if (depth > 32) return [];
  if (typeof value === 'string') return [...new Set(findHiddenCharacters(value).map((f) => f.kind))];
  if (Array.isArray(value)) return [...new Set(value.flatMap((v) => hiddenIn(v, depth + 1)))];
  if (value && typeof value === 'object') return [...new Set(Object.values(value).flatMap((v) => hiddenIn(v, depth + 1)))];
  return [];
}

function addNamed<T extends { name: string; description?: string | undefined }>(
  into: Map<string, Entry<T>>,
  owners: Map<string, string[]>,
  problems: Catalogue['problems'][number][],
  listing: UpstreamListing,
  items: readonly T[],
): void {
  for (const raw of items) {
    const exposed = exposeName(listing.upstream, listing.prefix, raw.name);
    if (!VALID_NAME.test(exposed)) {
      problems.push({ kind: 'invalid_name', name: exposed.slice(0, 200), upstreams: [listing.upstream] });
      continue;
    }
    const seen = owners.get(exposed);
    if (seen) {
      seen.push(listing.upstream);
      continue;
    }
    owners.set(exposed, [listing.upstream]);
    const hidden = hiddenIn(raw);
    const desc = clean(raw.description);
    const item = { ...raw, name: exposed, ...(desc.text === undefined ? {} : { description: desc.text }) } as T;
    into.set(exposed, { exposed, upstream: listing.upstream, original: raw.name, item, hidden });
  }
}

/**
 * Builds the catalogue from each upstream's listing. Deterministic for a given
 * input order; collisions hide the name from every upstream that offered it.
 */
export function buildCatalogue(listings: readonly UpstreamListing[]): Catalogue {
  const problems: Catalogue['problems'][number][] = [];
  const tools = new Map<string, Entry<Tool>>();
  const prompts = new Map<string, Entry<Prompt>>();
  const toolOwners = new Map<string, string[]>();
  const promptOwners = new Map<string, string[]>();
  const resources = new Map<string, Entry<Resource>>();
  const resourceOwners = new Map<string, string[]>();
  const templates: (Entry<ResourceTemplate> & { matcher: UriTemplate })[] = [];

  for (const l of listings) {
    addNamed(tools, toolOwners, problems, l, l.tools);
    addNamed(prompts, promptOwners, problems, l, l.prompts);
    for (const r of l.resources) {
      const owners = resourceOwners.get(r.uri);
      if (owners) {
        owners.push(l.upstream);
        continue;
      }
      resourceOwners.set(r.uri, [l.upstream]);
      const desc = clean(r.description);
      const item = { ...r, ...(desc.text === undefined ? {} : { description: desc.text }) };
      resources.set(r.uri, { exposed: r.uri, upstream: l.upstream, original: r.uri, item, hidden: hiddenIn(r) });
    }
    for (const t of l.templates) {
      let matcher: UriTemplate;
      try {
        matcher = new UriTemplate(t.uriTemplate);
      } catch {
        problems.push({ kind: 'invalid_name', name: t.uriTemplate.slice(0, 200), upstreams: [l.upstream] });
        continue;
      }
      const desc = clean(t.description);
      const item = { ...t, ...(desc.text === undefined ? {} : { description: desc.text }) };
      templates.push({ exposed: t.uriTemplate, upstream: l.upstream, original: t.uriTemplate, item, hidden: hiddenIn(t), matcher });
    }
  }
  for (const [owners, map] of [
    [toolOwners, tools],
    [promptOwners, prompts],
    [resourceOwners, resources],
  ] as const) {
    for (const [name, ups] of owners) {
      if (ups.length > 1) {
        (map as Map<string, unknown>).delete(name);
        problems.push({ kind: 'collision', name, upstreams: ups });
      }
    }
  }
  const resourceUpstreams = listings.filter((l) => l.servesResources).map((l) => l.upstream);
  return { tools, prompts, resources, templates, resourceUpstreams, problems };
}

/**
 * The upstream a resource URI belongs to: the one that listed it, else the only
 * upstream whose template matches it, else — when exactly one upstream serves
 * resources at all — that one (servers may accept URIs they do not list, and with
 * a single candidate nothing can be shadowed). Undefined when none or several claim it.
 */
export function resourceOwner(catalogue: Catalogue, uri: string): string | undefined {
  const listed = catalogue.resources.get(uri);
  if (listed) return listed.upstream;
  const owners = new Set<string>();
  for (const t of catalogue.templates) {
    let m: ReturnType<UriTemplate['match']>;
    try {
      m = t.matcher.match(uri);
    } catch {
      m = null;
    }
    if (m) owners.add(t.upstream);
  }
  if (owners.size === 1) return [...owners][0];
  if (owners.size === 0 && catalogue.resourceUpstreams.length === 1) return catalogue.resourceUpstreams[0];
  return undefined;
}
