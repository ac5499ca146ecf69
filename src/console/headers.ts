/**
 * The headers every console response carries, and the session cookie.
 *
 * The Content-Security-Policy allows scripts, styles and connections to the
 * console's own origin only, no inline script or style, no framing, no plugin
 * or base-URI tricks (CSP Level 3). The console's pages are built with DOM
 * calls and `textContent` only, so they need nothing more.
 */
import { parseCookie, stringifySetCookie } from 'cookie';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { headerOne } from '../door/body.ts';

/** The console's Content-Security-Policy. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Headers on every console response (pages, assets, JSON, events, refusals). */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

/** The session cookie's name. `__Host-` would forbid `Path=/console`, so a plain name scoped by path. */
export const SESSION_COOKIE = 'bastion_console';

/**
 * True when the browser reached the console over https: the socket is TLS, or
 * the page's Origin (already checked against `server.allowedOrigins`) is https
 * (a TLS-terminating proxy in front). Then the cookie gets `Secure`.
 */
export function cameOverHttps(req: IncomingMessage): boolean {
  if ((req.socket as Partial<TLSSocket>).encrypted === true) return true;
  const origin = headerOne(req, 'origin');
  return origin !== undefined && origin.toLowerCase().startsWith('https://');
}

/** The `Set-Cookie` value that sets the session id (`maxAgeS`: the session's lifetime, in s). RFC 6265 §4.1, serialized by `cookie`. */
export function sessionCookie(id: string, maxAgeS: number, secure: boolean): string {
  return stringifySetCookie({ name: SESSION_COOKIE, value: id, path: '/console', httpOnly: true, sameSite: 'strict', maxAge: Math.max(0, Math.floor(maxAgeS)), secure });
}

/** The `Set-Cookie` value that clears the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return stringifySetCookie({ name: SESSION_COOKIE, value: '', path: '/console', httpOnly: true, sameSite: 'strict', maxAge: 0, secure });
}

/**
 * The session id in the request's `Cookie` header (RFC 6265 §5.4, parsed by
 * `cookie`), or undefined. Only a value of base64url characters is taken.
 */
export function sessionIdOf(req: IncomingMessage): string | undefined {
  const raw = req.headers.cookie;
  if (typeof raw !== 'string' || raw.length > 8192) return undefined;
  const v = parseCookie(raw)[SESSION_COOKIE];
  return v !== undefined && /^[A-Za-z0-9_-]{1,128}$/.test(v) ? v : undefined;
}
