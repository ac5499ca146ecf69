/**
 * The destination of an outbound HTTP request, as the SSRF guard, the network
 * door and abilities decide on it: scheme, normalized host, port, method and
 * path. Parsed by the WHATWG URL parser (never by hand).
 */
import { normalizeHost } from './host-pattern.ts';

/** A request's destination. `host` is normalized (lowercase, no trailing dot; an IPv6 literal without brackets). */
export interface EgressTarget {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
}

/**
 * Parses a URL (`http:`/`https:` only) into a target, or undefined when it
 * does not parse or names no host a rule could mean (an empty label). The
 * port defaults from the scheme; the path is WHATWG's normalized pathname (dot
 * segments resolved).
 */
export function parseEgressTarget(input: string, method = 'GET'): EgressTarget | undefined {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  // An empty label (".example.com", "a..example.com") is no host a rule could mean.
  if (url.hostname === '' || url.hostname.startsWith('.') || url.hostname.includes('..')) return undefined;
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  return { scheme, host: normalizeHost(url.hostname), port: url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port), method, path: url.pathname };
}
