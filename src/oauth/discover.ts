/**
 * From an upstream's 401 to the authorization server to use (RFC 9728): read
 * the `resource_metadata` URL from the `WWW-Authenticate` Bearer challenge
 * (§5.1), fetch the protected resource metadata (§3), check that its `resource`
 * is the URL that was requested (§3.3, §7.3), and name its authorization server.
 *
 * The challenge is parsed and the metadata validated by `oauth4webapi`.
 */
import * as oauth from 'oauth4webapi';
import { boundedFetch } from './http.ts';
import type { ChallengeDiscovery, FetchLike, OAuthReason, OAuthRefusal } from './types.ts';

/** Options of {@link discoverFromChallenge}. Durations in ms. */
export interface ChallengeDiscoveryOptions {
  /** Transport; default `globalThis.fetch`. Inject Bastion's egress-guarded fetch in production. */
  readonly fetch?: FetchLike;
  /** Deadline of the metadata fetch. Default 10_000. */
  readonly timeoutMs?: number;
  /** Cap on the metadata body. Default 65_536. */
  readonly maxResponseBytes?: number;
  /**
   * Admit a `resource_metadata` URL on another origin than the resource. Default
   * false: RFC 9728 allows it, but a URL chosen by the upstream is a request
   * Bastion makes on the upstream's word, so it stays on the upstream's origin unless allowed.
   */
  readonly crossOriginMetadata?: boolean;
  /** Admit http URLs: loopback tests only, never in production. */
  readonly unsafeAllowHttp?: boolean;
}

/** Header values longer than this are refused unparsed (bytes of UTF-16 text; real challenges are a few hundred). */
const MAX_HEADER_CHARS = 8192;

const refuse = (reason: OAuthReason): OAuthRefusal => ({ ok: false, reason });

/**
 * The challenges of a `WWW-Authenticate` value (RFC 9110 §11.6.1), parsed by
 * `oauth4webapi`. The library parses challenges only from a response it
 * processes, so the value is handed to it as a 401 response with that header;
 * it answers with a `WWWAuthenticateChallengeError` carrying the parse.
 * Undefined when the value does not parse.
 */
export async function parseChallenges(header: string): Promise<readonly oauth.WWWAuthenticateChallenge[] | undefined> {
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_HEADER_CHARS) return undefined;
  let headers: Headers;
  try {
    headers = new Headers({ 'www-authenticate': header });
  } catch {
    return undefined;
  }
  try {
    await oauth.processRevocationResponse(new Response(null, { status: 401, headers }));
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) return err.cause;
  }
  return undefined;
}

function urlAllowed(text: string, insecure: boolean): URL | undefined {
  if (!URL.canParse(text)) return undefined;
  const u = new URL(text);
  if (u.protocol !== 'https:' && !(insecure && u.protocol === 'http:')) return undefined;
  if (u.username !== '' || u.password !== '') return undefined;
  return u;
}

/**
 * Discovers the authorization server of a protected resource from the
 * `WWW-Authenticate` header of its 401 (RFC 9728 §5.1) and the URL that was
 * requested. Without a `resource_metadata` parameter in the Bearer challenge,
 * the well-known location derived from `resourceUrl` is used (RFC 9728 §3.1).
 *
 * Refuses with `oauth.challenge_invalid` (no Bearer challenge, or a
 * `resource_metadata` that is not an allowed URL), `oauth.resource_metadata_failed`
 * (fetch failed, not 200, not JSON metadata, too large, timed out),
 * `oauth.resource_mismatch` (metadata `resource` differs from `resourceUrl`), and
 * `oauth.authorization_server_missing`. Never throws for remote input.
 *
 * @throws TypeError when `resourceUrl` is not a URL; RangeError for out-of-range options.
 */
export async function discoverFromChallenge(wwwAuthenticate: string, resourceUrl: URL, opts: ChallengeDiscoveryOptions = {}): Promise<ChallengeDiscovery> {
  if (!(resourceUrl instanceof URL)) throw new TypeError('discoverFromChallenge: resourceUrl must be a URL');
  const insecure = opts.unsafeAllowHttp === true;
  const doFetch = boundedFetch(opts.fetch ?? ((url, init) => fetch(url, init)), opts.timeoutMs ?? 10_000, opts.maxResponseBytes ?? 65_536);
  // RFC 9728 §1.2: a resource identifier has no fragment.
  const resource = new URL(resourceUrl.href);
  resource.hash = '';
  if (!urlAllowed(resource.href, insecure)) return refuse('oauth.challenge_invalid');

  const challenges = await parseChallenges(wwwAuthenticate);
  const bearer = challenges?.find((c) => c.scheme === 'bearer');
  if (!bearer) return refuse('oauth.challenge_invalid');
  const metadataParam = bearer.parameters.resource_metadata;

  let response: Response;
  let metadataUrl: string;
  try {
    if (metadataParam !== undefined) {
      const u = urlAllowed(metadataParam, insecure);
      if (!u || u.hash !== '') return refuse('oauth.challenge_invalid');
      if (opts.crossOriginMetadata !== true && u.origin !== resource.origin) return refuse('oauth.challenge_invalid');
      metadataUrl = u.href;
      response = await doFetch(u.href, { method: 'GET', headers: { accept: 'application/json' } });
    } else {
      let asked = '';
      const recording: FetchLike = (url, init) => ((asked = url), doFetch(url, init));
      const options = { [oauth.customFetch]: recording, ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}) };
      response = await oauth.resourceDiscoveryRequest(resource, options);
      metadataUrl = asked;
    }
  } catch {
    return refuse('oauth.resource_metadata_failed');
  }

  let metadata: oauth.ResourceServer;
  try {
    metadata = await oauth.processResourceDiscoveryResponse(resource, response);
  } catch (err) {
    if (err instanceof oauth.OperationProcessingError && err.code === oauth.JSON_ATTRIBUTE_COMPARISON) return refuse('oauth.resource_mismatch');
    return refuse('oauth.resource_metadata_failed');
  }

  const servers = Array.isArray(metadata.authorization_servers) ? metadata.authorization_servers.filter((s): s is string => typeof s === 'string') : [];
  const usable = servers.filter((s) => {
    const u = urlAllowed(s, insecure);
    return u !== undefined && u.search === '' && u.hash === '';
  });
  const issuer = usable[0];
  if (issuer === undefined) return refuse('oauth.authorization_server_missing');

  const scopeParam = bearer.parameters.scope;
  const scopes =
    typeof scopeParam === 'string' && scopeParam.length > 0
      ? scopeParam.split(' ').filter((s) => s.length > 0)
      : Array.isArray(metadata.scopes_supported)
        ? metadata.scopes_supported.filter((s): s is string => typeof s === 'string')
        : [];
  return { ok: true, resource: metadata.resource, issuer, authorizationServers: usable, scopes, metadataUrl };
}
