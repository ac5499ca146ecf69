/**
 * Validation of {@link OAuthProviderConfig} lists, once, at construction:
 * a bad provider rejects the whole list with the path of the field at fault.
 */
import { BastionError } from '../errors.ts';
import type { OAuthProviderConfig } from './types.ts';

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function invalid(path: string, message: string): BastionError {
  return new BastionError('ERR_CONFIG_INVALID', `${path}: ${message}`, { detail: { path } });
}

function parseUrl(path: string, text: unknown): URL {
  if (typeof text !== 'string' || text.length === 0 || text.length > 2048) throw invalid(path, 'must be an absolute URL of at most 2048 characters');
  if (!URL.canParse(text)) throw invalid(path, 'must be an absolute URL');
  return new URL(text);
}

/** True for a client ID that is a client ID metadata document URL (an https URL with a path). */
export function isClientIdMetadataUrl(clientId: string): boolean {
  if (!URL.canParse(clientId)) return false;
  const u = new URL(clientId);
  return u.protocol === 'https:' && u.pathname !== '/' && u.hash === '' && u.username === '' && u.password === '';
}

/**
 * Validates and freezes providers by name. `unsafeAllowHttp` admits http
 * issuers and redirect URIs (loopback tests only); otherwise issuers are https
 * and redirect URIs https or http on a loopback host (RFC 8252 §7.3).
 *
 * @throws BastionError `ERR_CONFIG_INVALID` naming `providers[i].field`.
 */
export function compileProviders(list: readonly OAuthProviderConfig[], unsafeAllowHttp: boolean): ReadonlyMap<string, OAuthProviderConfig> {
  if (!Array.isArray(list)) throw invalid('providers', 'must be an array');
  const out = new Map<string, OAuthProviderConfig>();
  list.forEach((p, i) => {
    const at = `providers[${i}]`;
    if (typeof p.name !== 'string' || !NAME.test(p.name)) throw invalid(`${at}.name`, 'must match [a-z0-9][a-z0-9_.-]{0,63}');
    if (out.has(p.name)) throw invalid(`${at}.name`, `duplicate provider "${p.name}"`);

    const issuer = parseUrl(`${at}.issuer`, p.issuer);
    if (issuer.protocol !== 'https:' && !(unsafeAllowHttp && issuer.protocol === 'http:')) throw invalid(`${at}.issuer`, 'must be an https URL');
    if (issuer.search !== '' || issuer.hash !== '' || issuer.href.includes('?') || issuer.href.includes('#')) throw invalid(`${at}.issuer`, 'must have no query or fragment (RFC 8414 §2)');

    const redirect = parseUrl(`${at}.redirectUri`, p.redirectUri);
    const redirectOk = redirect.protocol === 'https:' || (redirect.protocol === 'http:' && (unsafeAllowHttp || LOOPBACK_HOSTS.has(redirect.hostname)));
    if (!redirectOk) throw invalid(`${at}.redirectUri`, 'must be https, or http on a loopback host');
    if (redirect.hash !== '') throw invalid(`${at}.redirectUri`, 'must have no fragment (RFC 6749 §3.1.2)');

    if (typeof p.clientId !== 'string' || p.clientId.length === 0 || p.clientId.length > 2048) throw invalid(`${at}.clientId`, 'must be a non-empty string of at most 2048 characters');
    if (p.clientAuth !== 'none' && p.clientAuth !== 'client_secret_basic' && p.clientAuth !== 'client_secret_post') {
      throw invalid(`${at}.clientAuth`, 'must be one of none, client_secret_basic, client_secret_post');
    }
    if (p.clientAuth === 'none' && p.clientSecret !== undefined) throw invalid(`${at}.clientSecret`, 'must be absent when clientAuth is none');
    if (p.clientAuth !== 'none' && (p.clientSecret === undefined || typeof p.clientSecret.reveal !== 'function')) throw invalid(`${at}.clientSecret`, `is required when clientAuth is ${p.clientAuth}`);
    if (/^https?:/i.test(p.clientId)) {
      if (!isClientIdMetadataUrl(p.clientId)) throw invalid(`${at}.clientId`, 'a URL client ID must be an https URL with a path (client ID metadata document)');
      if (p.clientAuth !== 'none') throw invalid(`${at}.clientAuth`, 'must be none with a client ID metadata document');
    }

    if (!Array.isArray(p.scopes) || p.scopes.length > 64 || !p.scopes.every((s: unknown) => typeof s === 'string' && SCOPE_TOKEN.test(s))) {
      throw invalid(`${at}.scopes`, 'must be at most 64 scope tokens (RFC 6749 §3.3)');
    }
    if (p.resource !== undefined) {
      const r = parseUrl(`${at}.resource`, p.resource);
      if (r.hash !== '' || p.resource.includes('#')) throw invalid(`${at}.resource`, 'must have no fragment (RFC 8707 §2)');
    }
    out.set(p.name, Object.freeze({ ...p, scopes: Object.freeze([...p.scopes]) }));
  });
  return out;
}
