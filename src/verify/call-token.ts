/**
 * Per-call tokens: short-lived JWTs (RFC 7519) Bastion mints for one tool call,
 * signed EdDSA/Ed25519 with the same keys as its HTTP signatures.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { VerifyError, type CallTokenFailure } from './errors.ts';
import { compileKeySource, type KeyResolver, type KeySourceOptions } from './keys.ts';
import type { ReplayStore } from './replay.ts';

/** Claims of a per-call token. Times in seconds since the epoch. */
export interface CallTokenClaims {
  /** Issuer: the Bastion deployment. */
  readonly iss: string;
  /** Subject: the end user (or `agent:<id>` when none). */
  readonly sub: string;
  /** Actor: the agent acting for `sub` (RFC 8693 §4.1). */
  readonly act: { readonly sub: string };
  readonly aud: string | string[];
  /** The tool the token is good for. */
  readonly scope: string;
  /** Token id, accepted once when a replay store is given. */
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
}

/** Options of {@link verifyCallToken}. */
export interface CallTokenOptions extends KeySourceOptions {
  /** Required `aud` (this tool server). */
  readonly audience: string;
  /** Required `iss`, when set. */
  readonly issuer?: string;
  /** When given, each `jti` is accepted once (kept until `exp` + skew). */
  readonly replayStore?: ReplayStore;
  /** Clock, in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** Tolerated clock difference for `exp`/`iat`/`nbf`, in seconds (default 5). */
  readonly clockSkewS?: number;
}

const resolvers = new WeakMap<object, KeyResolver>();

function fail(reason: CallTokenFailure, cause?: unknown): VerifyError {
  return new VerifyError('bad_token', `call token: ${reason}`, { reason, ...(cause === undefined ? {} : { cause }) });
}

function reasonOf(err: unknown): VerifyError {
  if (err instanceof VerifyError) {
    if (err.code === 'unknown_key') return fail('unknown_key', err);
    return err; // jwks_unavailable: a 503, not the token's fault
  }
  if (err instanceof errors.JWTExpired) return fail('expired', err);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return fail('audience', err);
    if (err.claim === 'iss') return fail('issuer', err);
    if (err.claim === 'nbf' || (err.claim === 'iat' && err.reason === 'check_failed')) return fail('not_yet_valid', err);
    return fail('claims', err);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return fail('alg', err);
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('signature', err);
  return fail('malformed', err);
}

function isStr(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function claimsOf(p: JWTPayload): CallTokenClaims {
  const act = p.act as { sub?: unknown } | undefined;
  const audOk = isStr(p.aud) || (Array.isArray(p.aud) && p.aud.every(isStr));
  if (!isStr(p.iss) || !isStr(p.sub) || !isStr(p.jti) || !audOk || typeof p.iat !== 'number' || typeof p.exp !== 'number') throw fail('claims');
  if (typeof act !== 'object' || act === null || !isStr(act.sub) || !isStr(p.scope)) throw fail('claims');
  return { iss: p.iss, sub: p.sub, act: { sub: act.sub }, aud: p.aud!, scope: p.scope, jti: p.jti, iat: p.iat, exp: p.exp };
}

/**
 * Verifies a per-call JWT: signature with `alg` EdDSA only (so `none` and HS256
 * are refused) by a key from `jwksUrl`/`keys` chosen by `kid`; `aud` must equal
 * `audience`; `iss` must equal `issuer` when given; `exp` and `iat` required and
 * checked with `clockSkewS`; claims `iss`, `sub`, `act.sub`, `scope`, `jti` must be
 * non-empty strings; with `replayStore`, the `jti` is recorded and a repeat refused.
 * RFC 7519 §7.2, RFC 8037, RFC 8693 §4.1.
 * @throws VerifyError `bad_token` with `reason` ('malformed', 'alg', 'signature',
 *   'unknown_key', 'audience', 'issuer', 'expired', 'not_yet_valid', 'claims', 'replayed');
 *   `jwks_unavailable`; `replay_store_unavailable`; TypeError for invalid options.
 */
export async function verifyCallToken(jwt: string, opts: CallTokenOptions): Promise<CallTokenClaims> {
  if (typeof opts.audience !== 'string' || opts.audience === '') throw new TypeError('verifyCallToken: audience is required');
  let resolve = resolvers.get(opts);
  if (resolve === undefined) {
    resolve = compileKeySource(opts);
    resolvers.set(opts, resolve);
  }
  const skew = opts.clockSkewS ?? 5;
  if (!Number.isFinite(skew) || skew < 0) throw new TypeError('verifyCallToken: clockSkewS must be a non-negative number (seconds)');
  const nowMs = (opts.now ?? Date.now)();
  if (typeof jwt !== 'string') throw fail('malformed');
  let payload: JWTPayload;
  try {
    const keyFor = resolve;
    ({ payload } = await jwtVerify(
      jwt,
      async (header) => {
        if (typeof header.kid !== 'string') throw new VerifyError('unknown_key', 'kid: missing');
        return keyFor(header.kid);
      },
      {
        algorithms: ['EdDSA'],
        audience: opts.audience,
        ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
        requiredClaims: ['iss', 'sub', 'aud', 'jti', 'iat', 'exp'],
        clockTolerance: skew,
        currentDate: new Date(nowMs),
      },
    ));
  } catch (err) {
    throw reasonOf(err);
  }
  const claims = claimsOf(payload);
  if (claims.iat > nowMs / 1000 + skew) throw fail('not_yet_valid');
  if (opts.replayStore !== undefined) {
    let fresh: boolean;
    try {
      fresh = await opts.replayStore.remember(`jti:${claims.iss}:${claims.jti}`, Math.max(1000, (claims.exp + skew) * 1000 - nowMs));
    } catch (err) {
      throw new VerifyError('replay_store_unavailable', 'replay store: unavailable', { cause: err });
    }
    if (!fresh) throw fail('replayed');
  }
  return claims;
}
