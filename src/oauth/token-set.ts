/**
 * The clear form of one user's token set at one provider, as sealed into the
 * {@link UserTokenStore}. Pure: encoding, strict decoding, and the AAD that
 * binds a sealed set to its (user, provider).
 */

/** Format version of the clear token set; bump on any change of shape. */
export const TOKEN_SET_VERSION = 1;

/** A token set in clear. Never logged, never placed in an error. */
export interface TokenSet {
  readonly v: typeof TOKEN_SET_VERSION;
  /** The issuer that issued the set (RFC 8414 §2); a set from another issuer is not used. */
  readonly issuer: string;
  readonly accessToken: string;
  readonly refreshToken?: string;
  /** Unix epoch ms, or null when the server gave no `expires_in` (RFC 6749 §5.1). */
  readonly expiresAt: number | null;
  readonly scope?: string;
  /** The end user's subject at the provider, from a validated ID token when one was issued. */
  readonly sub?: string;
}

/**
 * The additional authenticated data for sealing the set of `user` at `provider`:
 * a JSON array, so no choice of names can make two pairs encode alike.
 */
export function tokenSetAad(user: string, provider: string): string {
  return JSON.stringify(['bastion/oauth-token-set/v1', user, provider]);
}

/** The set as JSON text for the sealer. */
export function encodeTokenSet(set: TokenSet): string {
  return JSON.stringify(set);
}

const KEYS = new Set(['v', 'issuer', 'accessToken', 'refreshToken', 'expiresAt', 'scope', 'sub']);

const isNonEmpty = (x: unknown): x is string => typeof x === 'string' && x.length > 0;

/** Strict decoding: undefined for anything but a well-formed version-1 set (unknown keys included). */
export function decodeTokenSet(text: string): TokenSet | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  if (Object.keys(o).some((k) => !KEYS.has(k))) return undefined;
  if (o.v !== TOKEN_SET_VERSION || !isNonEmpty(o.issuer) || !isNonEmpty(o.accessToken)) return undefined;
  if (o.refreshToken !== undefined && !isNonEmpty(o.refreshToken)) return undefined;
  if (o.scope !== undefined && typeof o.scope !== 'string') return undefined;
  if (o.sub !== undefined && !isNonEmpty(o.sub)) return undefined;
  if (o.expiresAt !== null && !(typeof o.expiresAt === 'number' && Number.isSafeInteger(o.expiresAt) && o.expiresAt > 0)) return undefined;
  return {
    v: TOKEN_SET_VERSION,
    issuer: o.issuer,
    accessToken: o.accessToken,
    expiresAt: o.expiresAt,
    ...(o.refreshToken !== undefined ? { refreshToken: o.refreshToken } : {}),
    ...(o.scope !== undefined ? { scope: o.scope } : {}),
    ...(o.sub !== undefined ? { sub: o.sub } : {}),
  };
}
