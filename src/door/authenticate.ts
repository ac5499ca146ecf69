/**
 * Agent authentication, once for every door.
 *
 * An agent presents its Bastion key in one of the headers its client can send:
 * `Authorization` (OpenAI and MCP clients: `Bearer <key>`), `Proxy-Authorization`
 * (HTTP proxy clients: `Basic base64(agent:key)` or `Bearer <key>`), `x-api-key`
 * (Anthropic clients) or `Bastion-Key` (the egress base-URL mode). Each door says
 * which headers it reads, in priority order; the first one present decides, so a
 * malformed `Authorization` is never rescued by another header.
 *
 * The auth-scheme is case-insensitive (RFC 9110 §11.1); Basic credentials are
 * parsed by `basic-auth` (RFC 7617). The key is looked up by its SHA-256 digest,
 * compared in constant time against every known digest.
 *
 * Isolation (incident response, src/incidents/isolation.ts) is stated here once:
 * a {@link KeyIndex} built with an `isolated` predicate refuses every credential
 * of an isolated agent — its keys and its OAuth access tokens — as
 * `agent.isolated` (403, `ERR_AGENT_ISOLATED`), naming the agent so the door's
 * audit record does.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parse as parseBasic } from 'basic-auth';
import { createHash, timingSafeEqual } from 'node:crypto';

/** A header an agent key may be presented in. */
export type CredentialHeader = 'authorization' | 'proxy-authorization' | 'x-api-key' | 'bastion-key';

/** Shortest and longest key accepted, in characters: generated keys are 39, configured keys at least 16. */
export const MIN_KEY_CHARS = 16;
export const MAX_KEY_CHARS = 512;

/** What a request presented: a key, nothing, or something that is not a credential. */
export type PresentedKey =
  | { readonly kind: 'key'; readonly key: string; readonly header: CredentialHeader; readonly scheme: 'bearer' | 'basic' | 'bare' }
  | { readonly kind: 'missing' }
  | { readonly kind: 'malformed'; readonly header: CredentialHeader };

// credentials = auth-scheme [ 1*SP token68 ] (RFC 9110 §11.4). Bastion keys are visible ASCII.
const SCHEME_AND_TOKEN = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*) +([!-~]+)$/;

/**
 * The key presented in `headers`, reading `from` in order. A header sent twice
 * (an array in Node) is malformed: two credentials are ambiguous.
 */
export function presentedKey(headers: IncomingHttpHeaders, from: readonly CredentialHeader[]): PresentedKey {
  for (const header of from) {
    const raw = headers[header];
    if (raw === undefined) continue;
    if (typeof raw !== 'string') return { kind: 'malformed', header };
    if (header === 'x-api-key' || header === 'bastion-key') {
      return /^[!-~]+$/.test(raw) ? { kind: 'key', key: raw, header, scheme: 'bare' } : { kind: 'malformed', header };
    }
    const m = SCHEME_AND_TOKEN.exec(raw);
    if (m === null) return { kind: 'malformed', header };
    const scheme = (m[1] as string).toLowerCase();
    if (scheme === 'bearer') return { kind: 'key', key: m[2] as string, header, scheme: 'bearer' };
    if (scheme === 'basic') {
      const creds = parseBasic(raw);
      if (creds === undefined) return { kind: 'malformed', header };
      // `agent:key`, or a client that puts the key in the user part (`key:`).
      const key = creds.pass !== '' ? creds.pass : creds.name;
      return key === '' ? { kind: 'malformed', header } : { kind: 'key', key, header, scheme: 'basic' };
    }
    return { kind: 'malformed', header };
  }
  return { kind: 'missing' };
}

/**
 * Principals by the SHA-256 digest of their keys. Lookup compares the presented
 * key's digest with every stored digest in constant time, so timing tells
 * nothing about which digests exist.
 */
export class KeyIndex {
  readonly #entries: { readonly digest: Buffer; readonly principal: string }[] = [];
  readonly #isolated: ((principal: string) => boolean) | undefined;

  /** With `opts.isolated`, the kernel's authentication refuses the principals it names (read per request, synchronously). */
  constructor(opts: { readonly isolated?: (principal: string) => boolean } = {}) {
    this.#isolated = opts.isolated;
  }

  /** True when `principal` is isolated now (never throws: a failing predicate isolates). */
  isIsolated(principal: string): boolean {
    if (this.#isolated === undefined) return false;
    try {
      return this.#isolated(principal);
    } catch {
      return true;
    }
  }

  /**
   * Adds a key digest (lowercase hex SHA-256, 64 characters) for `principal`.
   * @throws TypeError for a digest that is not 64 lowercase hex characters; Error when the digest already belongs to another principal (two principals cannot share a key).
   */
  add(digest: string, principal: string): void {
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new TypeError(`the key digest of ${principal} must be 64 lowercase hex characters (SHA-256)`);
    const bytes = Buffer.from(digest, 'hex');
    const other = this.#entries.find((e) => timingSafeEqual(e.digest, bytes));
    if (other !== undefined) {
      if (other.principal !== principal) throw new Error(`${other.principal} and ${principal} share a key`);
      return;
    }
    this.#entries.push({ digest: bytes, principal });
  }

  /** The principal `key` belongs to, or undefined. Keys outside 16-512 characters belong to nobody. */
  lookup(key: string): string | undefined {
    if (key.length < MIN_KEY_CHARS || key.length > MAX_KEY_CHARS) return undefined;
    const digest = createHash('sha256').update(key).digest();
    let found: string | undefined;
    // Every entry is compared (32 bytes, constant time), whatever matched.
    for (const e of this.#entries) {
      if (timingSafeEqual(e.digest, digest)) found = e.principal;
    }
    return found;
  }

  /** Number of keys. */
  get size(): number {
    return this.#entries.length;
  }
}

/** The outcome of {@link authenticateAgent}. */
export type Authentication =
  | { readonly ok: true; readonly agent: string; readonly header: CredentialHeader }
  | { readonly ok: false; readonly reason: 'auth.missing' | 'auth.invalid'; readonly agent?: undefined }
  | { readonly ok: false; readonly reason: 'agent.isolated'; readonly agent: string };

/**
 * Authenticates the agent of a request: the key presented in `from` (in order),
 * looked up in `keys`; a known key of an isolated agent is `agent.isolated`
 * (with the agent). Never throws.
 */
export function authenticateAgent(headers: IncomingHttpHeaders, keys: KeyIndex, from: readonly CredentialHeader[]): Authentication {
  const presented = presentedKey(headers, from);
  if (presented.kind === 'missing') return { ok: false, reason: 'auth.missing' };
  // A header that holds no credential is an invalid one, not a missing one: the client tried.
  if (presented.kind === 'malformed') return { ok: false, reason: 'auth.invalid' };
  const agent = keys.lookup(presented.key);
  if (agent === undefined) return { ok: false, reason: 'auth.invalid' };
  return keys.isIsolated(agent) ? { ok: false, reason: 'agent.isolated', agent } : { ok: true, agent, header: presented.header };
}

/** What {@link authenticateAgentOrToken} needs to verify an OAuth access token (src/door/oauth-resource.ts `AccessTokenVerifier`). */
export interface AccessTokenCheck<R extends string> {
  verify(token: string): Promise<{ readonly ok: true; readonly agent: string; readonly user: string | null } | { readonly ok: false; readonly reason: R }>;
}

/** The outcome of {@link authenticateAgentOrToken}: the agent, and the end user a token proved; or why not. */
export type KeyOrTokenAuthentication<R extends string> =
  | { readonly ok: true; readonly agent: string; readonly tokenUser: string | null }
  | { readonly ok: false; readonly reason: 'auth.missing' | 'auth.invalid' | R; readonly agent?: undefined }
  | { readonly ok: false; readonly reason: 'agent.isolated'; readonly agent: string };

/**
 * The agent of a request whose `Authorization` may hold an agent key or an
 * OAuth access token (MCP authorization at the tool door): the credential is
 * parsed once; a known agent key wins; with `tokens`, any other Bearer value is
 * verified as an access token (its refusal reason is the verifier's). Without
 * `tokens` this is {@link authenticateAgent}. The key or token of an isolated
 * agent is `agent.isolated` (with the agent). Never throws.
 */
export async function authenticateAgentOrToken<R extends string>(
  headers: IncomingHttpHeaders,
  keys: KeyIndex,
  tokens: AccessTokenCheck<R> | undefined,
): Promise<KeyOrTokenAuthentication<R>> {
  const presented = presentedKey(headers, ['authorization']);
  if (presented.kind === 'missing') return { ok: false, reason: 'auth.missing' };
  if (presented.kind === 'malformed') return { ok: false, reason: 'auth.invalid' };
  const agent = keys.lookup(presented.key);
  if (agent !== undefined) return keys.isIsolated(agent) ? { ok: false, reason: 'agent.isolated', agent } : { ok: true, agent, tokenUser: null };
  if (tokens === undefined || presented.scheme !== 'bearer') return { ok: false, reason: 'auth.invalid' };
  const v = await tokens.verify(presented.key);
  if (!v.ok) return { ok: false, reason: v.reason };
  // An access token of an isolated agent is revoked here, whatever its issuer still says (the issuer is not ours to revoke at).
  return keys.isIsolated(v.agent) ? { ok: false, reason: 'agent.isolated', agent: v.agent } : { ok: true, agent: v.agent, tokenUser: v.user };
}

/**
 * A principal Bastion bound to a transport itself: every connection on a Unix
 * socket it created for one sandbox session (src/egress/principal-socket.ts) is
 * this agent, in this session, for this end user (null: none named). Nothing
 * the connection sends can choose or change it.
 */
export interface TransportPrincipal {
  readonly agent: string;
  readonly session: string;
  readonly user: string | null;
}

/** The outcome of {@link authenticateTransport}. */
export type TransportAuthentication =
  | { readonly ok: true; readonly agent: string; readonly session: string; readonly user: string | null }
  | { readonly ok: false; readonly reason: 'auth.invalid'; readonly agent?: undefined }
  | { readonly ok: false; readonly reason: 'agent.isolated'; readonly agent: string };

/**
 * Authenticates a request that arrived on a transport bound to `bound` (issue 16,
 * "requests from the sandbox are identified as that agent and session without a
 * key in the sandbox"). No header is read: a credential presented on such a
 * transport neither adds nor changes anything. The binding is re-checked per
 * request like a key: an agent no longer configured (`isAgent` false, e.g. after
 * a reload) is `auth.invalid`; an isolated one is `agent.isolated` (with the
 * agent). Never throws (a failing `isAgent` is `auth.invalid`).
 */
export function authenticateTransport(bound: TransportPrincipal, keys: KeyIndex, isAgent: (agent: string) => boolean): TransportAuthentication {
  let known: boolean;
  try {
    known = isAgent(bound.agent);
  } catch {
    known = false;
  }
  if (!known) return { ok: false, reason: 'auth.invalid' };
  if (keys.isIsolated(bound.agent)) return { ok: false, reason: 'agent.isolated', agent: bound.agent };
  return { ok: true, agent: bound.agent, session: bound.session, user: bound.user };
}
