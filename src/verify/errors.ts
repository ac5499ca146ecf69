/**
 * The one error type of `bastion/verify`: a closed union of codes, each with the
 * HTTP status a tool server should answer with. Messages are fixed and short;
 * they name a field at most and never echo a header value, key or token.
 */

/** Why a request or token was refused. */
export type VerifyErrorCode =
  | 'missing_signature'
  | 'malformed'
  | 'missing_component'
  | 'unknown_key'
  | 'bad_signature'
  | 'digest_mismatch'
  | 'expired'
  | 'not_yet_valid'
  | 'replayed'
  | 'bad_context'
  | 'bad_alg'
  | 'jwks_unavailable'
  | 'replay_store_unavailable'
  | 'bad_token'
  | 'wrong_origin'
  | 'origin_required'
  | 'replay_store_required';

/** Finer reason of a `bad_token` error (per-call JWT). */
export type CallTokenFailure =
  | 'malformed'
  | 'alg'
  | 'signature'
  | 'unknown_key'
  | 'audience'
  | 'issuer'
  | 'expired'
  | 'not_yet_valid'
  | 'claims'
  | 'replayed';

/**
 * Default HTTP status per code: 400 for `malformed`, 503 for `*_unavailable`,
 * 500 for `*_required` (the verifier is misconfigured: nothing is accepted), 401 for the rest.
 */
export function statusOf(code: VerifyErrorCode): number {
  if (code === 'malformed') return 400;
  if (code === 'jwks_unavailable' || code === 'replay_store_unavailable') return 503;
  if (code === 'origin_required' || code === 'replay_store_required') return 500;
  return 401;
}

/** Options of {@link VerifyError}. */
export interface VerifyErrorOptions {
  /** Underlying error, kept for logs; never sent to the client. */
  readonly cause?: unknown;
  /** HTTP status overriding the code's default (413 for an over-long body). */
  readonly status?: number;
  /** For `bad_token`: which check failed. */
  readonly reason?: CallTokenFailure;
}

/**
 * A refused request or token. `code` is stable and safe to send to the client
 * (`{"error": code}`); `status` is the HTTP status to answer with; `message`
 * names at most a field; `cause` may hold detail for logs only.
 */
export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  readonly status: number;
  readonly reason: CallTokenFailure | undefined;

  constructor(code: VerifyErrorCode, message: string, opts: VerifyErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VerifyError';
    this.code = code;
    this.status = opts.status ?? statusOf(code);
    this.reason = opts.reason;
  }
}
