/**
 * The secret-release rule: the one place that decides whether a secret's
 * value may leave Bastion, and exactly what is inserted where. Every door asks
 * it: the network door for each placeholder it would swap (per occurrence and
 * location), the ability runner for an ability's bound secret, the model door
 * for the provider's API key, and the tool door for an end user's pasted
 * secret in tool arguments (see docs/vault.md, "The release rule").
 *
 * ```
 *  secret (named | pasted)          destination {scheme, host, port, location}
 *         │                                   │
 *         ▼                                   ▼
 *   granted / owner ─▶ hosts declared ─▶ host ─▶ port ─▶ scheme ─▶ location ─▶ allow: the text to insert
 *    not_granted        no_hosts         foreign  foreign  insecure   location
 *    foreign_user       unbound          _host    _port    _scheme
 * ```
 *
 * Rules, in order (the first that fails is the reason):
 *
 * 1. **Who.** A named secret is released only for a use the config grants
 *    (`agents.X.secrets`, `abilities.X.secret`, `agents.X.model.secret`: the
 *    caller says which with `granted`); a pasted secret only for the agent and
 *    end user who pasted it; an end user's OAuth token (per-user OAuth) only
 *    for a use the config grants (`upstreams.X.oauth`, `abilities.X.oauth`) and
 *    only for that end user's requests.
 * 2. **Hosts are declared.** A secret with no host pattern is never released
 *    (fail closed): `release.no_hosts` (named), `release.unbound` (pasted,
 *    until an admin binds it).
 * 3. **Host.** The destination host matches the secret's host patterns (for a
 *    named secret: the hosts stored with the value and, when the config
 *    declares `secrets.NAME.hosts`, those too).
 * 4. **Port.** When the config declares `secrets.NAME.ports`, the destination
 *    port is one of them.
 * 5. **Scheme.** `https` only. Plain `http` is refused even toward the
 *    secret's own host, except to a loopback IP literal (127.0.0.0/8, ::1),
 *    which never leaves the machine (a "potentially trustworthy origin", W3C
 *    Secure Contexts §3.1). There is no switch that allows cleartext.
 * 6. **Location.** Where in the request the value goes: a header (`header:NAME`),
 *    the query, the path, the body, or tool-call arguments (`arguments`, the
 *    tool door). A secret declares where it may go with `swapIn`
 *    (`secrets.NAME.swapIn`, any of `header`, `query`, `path`, `body`); the
 *    default is `[header]`. A secret stored with a header (`--header`) is
 *    released into that header only, never another; one stored without a
 *    header, into any header. Query, path and body are opt-in, because an API
 *    that stores what it is sent can hand the value back (a gist, a ticket, a
 *    log line). A pasted secret goes into a header or tool arguments; a user's
 *    OAuth token into the whole `Authorization` header as `Bearer <token>`, nowhere else.
 *
 * On allow the answer carries the exact text to insert: the value, or, when
 * the placeholder is the whole value of the secret's declared header and the
 * secret has a format (`Bearer {}`), the format with the value put in place of
 * `{}` literally (no replacement patterns).
 *
 * Pure: no I/O, no clock, no config reads; the callers resolve the secret and
 * its metadata and pass them in. Property-tested in test/vault/release.test.ts.
 */
import ipaddr from 'ipaddr.js';
import { hostMatchesAny, normalizeHost } from '../net/host-pattern.ts';
import { Secret } from '../util/secret.ts';

/** Where a secret may be swapped in, as `secrets.NAME.swapIn` lists it. */
export const SWAP_LOCATIONS = ['header', 'query', 'path', 'body'] as const;
export type SwapLocation = (typeof SWAP_LOCATIONS)[number];

/** `swapIn` when a named secret does not declare one: headers only. */
export const DEFAULT_SWAP_IN: readonly SwapLocation[] = Object.freeze(['header']);

/**
 * Where a value would be inserted: `header:<name>` (the field name, any case),
 * the URL's `query` or `path`, the request `body`, or `arguments` of a tool
 * call (the tool door hands them to an MCP server that uses them on its hosts).
 */
export type ReleaseLocation = `header:${string}` | 'query' | 'path' | 'body' | 'arguments';

/** A named vault secret with the metadata the rule needs (never printed: `value` is a {@link Secret}). */
export interface NamedSecret {
  readonly kind: 'named';
  readonly name: string;
  /** Host patterns stored with the value (`bastion secret add --hosts`), normalized. */
  readonly hosts: readonly string[];
  /** Host patterns of `secrets.NAME.hosts` in the config, when declared: the destination must match these too. */
  readonly configHosts?: readonly string[] | undefined;
  /** `secrets.NAME.ports`, when declared: the destination port must be one of them. */
  readonly ports?: readonly number[] | undefined;
  /** The header the value is sent in (`--header`), when bound to one. */
  readonly header?: string | undefined;
  /** The header value template with one `{}` (`--format`), when given. */
  readonly format?: string | undefined;
  /** `secrets.NAME.swapIn`; undefined: {@link DEFAULT_SWAP_IN}. */
  readonly swapIn?: readonly SwapLocation[] | undefined;
  readonly value: Secret;
}

/** A credential an end user pasted to the model, vaulted as theirs (src/vault/pasted.ts). */
export interface PastedSecret {
  readonly kind: 'pasted';
  /** The agent and end user who pasted it: the only requester it is released for. */
  readonly owner: { readonly agent: string; readonly user: string };
  /** Host patterns (from the detector rule or an admin's binding); empty: unbound. */
  readonly hosts: readonly string[];
  readonly value: Secret;
}

/**
 * An end user's OAuth access token at a provider (per-user OAuth, src/oauth/):
 * released only for that user's requests, only where the config uses the
 * provider (`granted`), only to the hosts of that use (the upstream's or the
 * ability's), and only as `Authorization: Bearer`.
 */
export interface UserTokenSecret {
  readonly kind: 'user-token';
  readonly provider: string;
  /** The end user whose token it is. */
  readonly owner: { readonly user: string };
  /** Host patterns the token may be sent to; empty: never released. */
  readonly hosts: readonly string[];
  /** The access token. */
  readonly value: Secret;
}

/** A secret the rule can release. */
export type ReleasableSecret = NamedSecret | PastedSecret | UserTokenSecret;

/** Where the value would go. */
export interface ReleaseDestination {
  /** URL scheme without the colon (`https`, `http`). */
  readonly scheme: string;
  /** The destination host (any case, IPv6 with or without brackets). */
  readonly host: string;
  /** The destination port (1-65535). */
  readonly port: number;
  readonly location: ReleaseLocation;
  /**
   * The placeholder is the location's whole value (a header holding only the
   * placeholder): then the secret's format applies. Default false.
   */
  readonly whole?: boolean;
}

/** One question to the rule. */
export interface ReleaseRequest {
  readonly secret: ReleasableSecret;
  /** The agent the request is made for. */
  readonly agent: string;
  /**
   * Whether the config grants this use of a named secret to `agent`
   * (`agents.X.secrets` includes it, or it is the ability's or the model's
   * bound secret). Ignored for pasted secrets: ownership decides.
   */
  readonly granted: boolean;
  /** The end user the request is made for, when known. */
  readonly user: string | null;
  readonly destination: ReleaseDestination;
}

/** Every reason the rule denies, a closed set (each is a refusal reason of the doors: 403, `ERR_PLACEHOLDER_DENIED`). */
export const RELEASE_DENIALS = [
  'release.not_granted',
  'release.foreign_user',
  'release.no_hosts',
  'release.unbound',
  'release.foreign_host',
  'release.foreign_port',
  'release.insecure_scheme',
  'release.location',
  'release.format',
] as const;
export type ReleaseDenial = (typeof RELEASE_DENIALS)[number];

/** The rule's answer: a deny decision, or an allow carrying the text to insert. */
export type ReleaseDecision =
  | { readonly effect: 'deny'; readonly reason: ReleaseDenial; readonly rule: string }
  | { readonly effect: 'allow'; readonly reason: 'release.allowed'; readonly rule: string; readonly value: Secret };

function denied(reason: ReleaseDenial, rule: string): ReleaseDecision {
  return { effect: 'deny', reason, rule };
}

/**
 * Decides one release (see the module docs for the rules and their order).
 * Never throws on well-typed input; anything it cannot place denies.
 */
export function release(req: ReleaseRequest): ReleaseDecision {
  const { secret, destination: dest } = req;
  const base = secret.kind === 'named' ? `secrets.${secret.name}` : secret.kind === 'pasted' ? 'pasted' : `oauth.providers.${secret.provider}`;

  // 1. Who.
  if (secret.kind === 'named') {
    if (req.granted !== true) return denied('release.not_granted', `${base}.grant`);
  } else if (secret.kind === 'user-token') {
    if (req.granted !== true) return denied('release.not_granted', `${base}.grant`);
    // The token's user only: a request with no end user (null) is never the owner.
    if (secret.owner.user !== req.user) return denied('release.foreign_user', `${base}.owner`);
  } else if (secret.owner.agent !== req.agent || secret.owner.user !== req.user) {
    // The owner's user is a string: a request with no end user (null) is never the owner.
    return denied('release.foreign_user', `${base}.owner`);
  }

  // 2. Hosts are declared.
  if (secret.hosts.length === 0 || (secret.kind === 'named' && secret.configHosts !== undefined && secret.configHosts.length === 0)) {
    return denied(secret.kind === 'pasted' ? 'release.unbound' : 'release.no_hosts', `${base}.hosts`);
  }

  // 3. Host.
  const host = normalizeHost(dest.host);
  if (host === '' || !hostMatchesAny(secret.hosts, host) || (secret.kind === 'named' && secret.configHosts !== undefined && !hostMatchesAny(secret.configHosts, host))) {
    return denied('release.foreign_host', `${base}.hosts`);
  }

  // 4. Port.
  if (secret.kind === 'named' && secret.ports !== undefined && !secret.ports.includes(dest.port)) return denied('release.foreign_port', `${base}.ports`);

  // 5. Scheme.
  const scheme = dest.scheme.toLowerCase();
  if (scheme !== 'https' && !(scheme === 'http' && isLoopbackLiteral(host))) return denied('release.insecure_scheme', `${base}.scheme`);

  // 6. Location, and what to insert.
  if (secret.kind === 'user-token') {
    if (dest.location.toLowerCase() !== 'header:authorization' || dest.whole !== true) return denied('release.location', `${base}.header`);
    return { effect: 'allow', reason: 'release.allowed', rule: `${base}.hosts`, value: new Secret(`Bearer ${secret.value.reveal()}`) };
  }
  if (secret.kind === 'pasted') {
    if (dest.location !== 'arguments' && !dest.location.startsWith('header:')) return denied('release.location', `${base}.swapIn`);
    return { effect: 'allow', reason: 'release.allowed', rule: `${base}.hosts`, value: secret.value };
  }
  const swapIn = secret.swapIn ?? DEFAULT_SWAP_IN;
  const rule = `${base}.swapIn`;
  if (dest.location.startsWith('header:')) {
    if (!swapIn.includes('header')) return denied('release.location', rule);
    const name = dest.location.slice('header:'.length).toLowerCase();
    if (secret.header === undefined) return { effect: 'allow', reason: 'release.allowed', rule, value: secret.value };
    if (name !== secret.header.toLowerCase()) return denied('release.location', rule);
    if (dest.whole !== true || secret.format === undefined) return { effect: 'allow', reason: 'release.allowed', rule, value: secret.value };
    const at = secret.format.indexOf('{}');
    if (at < 0) return denied('release.format', `${base}.format`);
    const clear = secret.value.reveal();
    return { effect: 'allow', reason: 'release.allowed', rule, value: new Secret(secret.format.slice(0, at) + clear + secret.format.slice(at + 2)) };
  }
  if (dest.location === 'arguments' || !(swapIn as readonly string[]).includes(dest.location)) return denied('release.location', rule);
  return { effect: 'allow', reason: 'release.allowed', rule, value: secret.value };
}

/** Whether normalized `host` is a loopback IP literal: 127.0.0.0/8 or ::1 (RFC 6890), in canonical form (as the WHATWG URL parser writes it). */
function isLoopbackLiteral(host: string): boolean {
  if (!ipaddr.isValid(host)) return false;
  const addr = ipaddr.parse(host);
  return addr.toString() === host && addr.range() === 'loopback';
}

/**
 * A named secret for {@link release}, from the vault's metadata and value and
 * the config's `secrets.NAME` (undefined when the config does not declare it:
 * only the stored hosts apply).
 */
export function namedSecret(
  info: { readonly name: string; readonly hosts: readonly string[]; readonly header?: string | undefined; readonly format?: string | undefined },
  value: Secret,
  config?: { readonly hosts?: readonly string[] | undefined; readonly ports?: readonly number[] | undefined; readonly swapIn?: readonly SwapLocation[] | undefined },
): NamedSecret {
  return {
    kind: 'named',
    name: info.name,
    hosts: info.hosts,
    ...(config?.hosts !== undefined ? { configHosts: config.hosts } : {}),
    ...(config?.ports !== undefined ? { ports: config.ports } : {}),
    ...(info.header !== undefined ? { header: info.header } : {}),
    ...(info.format !== undefined ? { format: info.format } : {}),
    ...(config?.swapIn !== undefined ? { swapIn: config.swapIn } : {}),
    value,
  };
}

/** A pasted secret for {@link release}, from its stored row (owner and hosts) and value. */
export function pastedSecret(stored: { readonly agent: string; readonly user: string; readonly hosts: readonly string[] }, value: Secret): PastedSecret {
  return { kind: 'pasted', owner: { agent: stored.agent, user: stored.user }, hosts: stored.hosts, value };
}

/** A user's OAuth token for {@link release}: the provider, its owner, the hosts of the use that asks, and the token. */
export function userTokenSecret(provider: string, user: string, hosts: readonly string[], token: string): UserTokenSecret {
  return { kind: 'user-token', provider, owner: { user }, hosts: hosts.map(normalizeHost), value: new Secret(token) };
}
