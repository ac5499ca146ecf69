/**
 * End-user identity, once for every door.
 *
 * An agent names the end user it acts for (`Bastion-User`, or the request's
 * `user` field at the model door): an assertion, good for attribution and
 * per-user limits, not for privilege, since the agent is client-side code
 * anyone can drive. With `users.token` configured, an end user can also be
 * proven: a JWT (RFC 7519) in the configured header, verified by jose against
 * the issuer, audience and JWKS (RFC 7517), with an explicit algorithm allowlist.
 *
 * Privilege (being a model-door admin, exemption from bans, use of pasted
 * secrets, approvals) then needs the verified form: see {@link UserIdentity.verified}
 * and {@link mayActPrivileged}.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { ResolvedUsers } from '../config/types.ts';

/** A user id: 1-256 characters without control characters. */
export const USER_ID = /^[^\u0000-\u001f\u007f]{1,256}$/;

/** Who the request is for. `verified`: proven by a token from the configured issuer. */
export interface UserIdentity {
  readonly id: string;
  readonly verified: boolean;
}

/** The outcome of {@link UserVerifier.identify}. `user` is null when no user is named. */
export type UserOutcome =
  | { readonly ok: true; readonly user: UserIdentity | null }
  | { readonly ok: false; readonly reason: 'user.invalid' | 'user.ambiguous' | 'user.unverified' | 'user.token_invalid' | 'user.jwks_unavailable' };

/** What a request asserts and presents. */
export interface UserClaims {
  /** The id asserted in a header (`Bastion-User`). */
  readonly header?: string | undefined;
  /** The id asserted in the body (the model door's `user` field). */
  readonly field?: string | undefined;
  /** The token from the configured header, when present. */
  readonly token?: string | undefined;
}

/** Most characters of a token read; longer is refused without parsing. */
const MAX_TOKEN_CHARS = 16_384;

/**
 * Verifies end users' tokens for one config. Stateless apart from jose's JWKS
 * cache (a remote JWKS is fetched on first use and refetched on an unknown `kid`).
 */
export class UserVerifier {
  readonly #config: ResolvedUsers;
  readonly #keys: JWTVerifyGetKey | undefined;

  constructor(config: ResolvedUsers, opts: { timeoutMs?: number } = {}) {
    this.#config = config;
    const t = config.token;
    if (t === undefined) this.#keys = undefined;
    else if ('url' in t.jwks) this.#keys = createRemoteJWKSet(new URL(t.jwks.url), { timeoutDuration: opts.timeoutMs ?? 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    else this.#keys = createLocalJWKSet({ keys: t.jwks.keys.keys.map((k) => ({ ...k })) });
  }

  /** True when tokens are configured (so privilege needs a verified user). */
  get enabled(): boolean {
    return this.#keys !== undefined;
  }

  /** The lowercase header the token is read from, when configured. */
  get tokenHeader(): string | undefined {
    return this.#config.token?.header;
  }

  /** The claims of a Node request: `Bastion-User` and the configured token header (a repeated header counts as invalid). */
  claimsOf(headers: IncomingHttpHeaders, field?: string): UserClaims | 'invalid' {
    const header = headers['bastion-user'];
    const th = this.tokenHeader;
    const token = th === undefined ? undefined : headers[th];
    if (Array.isArray(header) || Array.isArray(token)) return 'invalid';
    return { header: header === '' ? undefined : header, field, token };
  }

  /**
   * The end user of a request. An asserted id must be well-formed; two asserted
   * ids must agree; a token, when present, must verify (whether or not it is
   * required) and must name the same user as any asserted id. With
   * `users.require: always`, a named user without a valid token is refused.
   * Never throws.
   */
  async identify(claims: UserClaims): Promise<UserOutcome> {
    const { header, field, token } = claims;
    if (header !== undefined && !USER_ID.test(header)) return { ok: false, reason: 'user.invalid' };
    if (field !== undefined && !USER_ID.test(field)) return { ok: false, reason: 'user.invalid' };
    if (header !== undefined && field !== undefined && header !== field) return { ok: false, reason: 'user.ambiguous' };
    const asserted = header ?? field;
    if (token === undefined || this.#keys === undefined) {
      if (asserted !== undefined && this.#keys !== undefined && this.#config.require === 'always') return { ok: false, reason: 'user.unverified' };
      return { ok: true, user: asserted === undefined ? null : { id: asserted, verified: false } };
    }
    const verified = await this.#verify(token);
    if (!verified.ok) return verified;
    if (asserted !== undefined && asserted !== verified.id) return { ok: false, reason: 'user.ambiguous' };
    return { ok: true, user: { id: verified.id, verified: true } };
  }

  async #verify(token: string): Promise<{ ok: true; id: string } | { ok: false; reason: 'user.token_invalid' | 'user.jwks_unavailable' }> {
    const t = this.#config.token;
    if (t === undefined || this.#keys === undefined || token.length > MAX_TOKEN_CHARS) return { ok: false, reason: 'user.token_invalid' };
    try {
      const { payload } = await jwtVerify(token, this.#keys, {
        issuer: t.issuer,
        audience: typeof t.audience === 'string' ? t.audience : [...t.audience],
        algorithms: [...t.algorithms],
        clockTolerance: t.clockToleranceS,
        requiredClaims: ['exp', t.claim],
        ...(t.maxAgeS !== undefined ? { maxTokenAge: t.maxAgeS } : {}),
      });
      const id = payload[t.claim];
      if (typeof id !== 'string' || !USER_ID.test(id)) return { ok: false, reason: 'user.token_invalid' };
      return { ok: true, id };
    } catch (err) {
      // The JWKS could not be had: the token may be fine, the verifier is not (503, retry).
      if (err instanceof joseErrors.JWKSTimeout || (err instanceof Error && !(err instanceof joseErrors.JOSEError))) return { ok: false, reason: 'user.jwks_unavailable' };
      return { ok: false, reason: 'user.token_invalid' };
    }
  }
}

/**
 * Whether `user` may hold a privilege (admin, ban exemption, pasted secrets,
 * approvals): always when tokens are not configured (ids are only asserted,
 * and the config says so), else only when verified.
 */
export function mayActPrivileged(user: UserIdentity | null, verifier: Pick<UserVerifier, 'enabled'>): boolean {
  if (user === null) return false;
  return !verifier.enabled || user.verified;
}
