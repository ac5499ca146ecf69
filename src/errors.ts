/**
 * Bastion's one error type. Every failure that crosses a module boundary is a
 * `BastionError` whose `code` comes from the closed union below, so callers and
 * tests branch on the code, never on message text.
 *
 * Messages name the field or value at fault but never echo secret input: a key,
 * a credential or a tool argument value is not placed in a message.
 */

/** The closed set of error codes. Adding one is an API change: document it in README. */
export type BastionErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_NOT_FOUND'
  | 'ERR_CONFIG_SECRET_REF'
  | 'ERR_POLICY_INVALID'
  | 'ERR_POLICY_DENIED'
  | 'ERR_POLICY_EVALUATION'
  | 'ERR_POLICY_GUARD'
  | 'ERR_CONVERSATION_LIMIT'
  | 'ERR_AUTH_REQUIRED'
  | 'ERR_AUTH_INVALID'
  | 'ERR_AUTH_SCOPE'
  | 'ERR_AUTH_UNAVAILABLE'
  | 'ERR_AGENT_UNKNOWN'
  | 'ERR_AGENT_ISOLATED'
  | 'ERR_AGENT_NOT_ISOLATED'
  | 'ERR_HOST_NOT_ALLOWED'
  | 'ERR_ORIGIN_NOT_ALLOWED'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_BODY_TIMEOUT'
  | 'ERR_JSONRPC_PARSE'
  | 'ERR_JSONRPC_INVALID'
  | 'ERR_JSONRPC_BATCH'
  | 'ERR_SESSION_UNKNOWN'
  | 'ERR_SESSION_LIMIT'
  | 'ERR_HEADER_MISMATCH'
  | 'ERR_PROTOCOL_VERSION'
  | 'ERR_REQUEST_STATE'
  | 'ERR_OAUTH_CONSENT'
  | 'ERR_OAUTH_CALLBACK'
  | 'ERR_OAUTH_PROVIDER'
  | 'ERR_TOOL_UNKNOWN'
  | 'ERR_ARGS_INVALID'
  | 'ERR_PATH_DENIED'
  | 'ERR_APPROVAL_DENIED'
  | 'ERR_APPROVAL_TIMEOUT'
  | 'ERR_APPROVAL_UNKNOWN'
  | 'ERR_UPSTREAM_UNAVAILABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_PROTOCOL'
  | 'ERR_RESULT_TOO_LARGE'
  | 'ERR_STORE'
  | 'ERR_AUDIT_CHAIN_BROKEN'
  | 'ERR_AUDIT_WRITE'
  | 'ERR_AUDIT_CONFLICT'
  | 'ERR_AUDIT_WITNESS'
  | 'ERR_VAULT_KEY'
  | 'ERR_VAULT_DECRYPT'
  | 'ERR_VAULT_SECRET_EXISTS'
  | 'ERR_VAULT_SECRET_UNKNOWN'
  | 'ERR_CA'
  | 'ERR_EGRESS_DENIED'
  | 'ERR_EGRESS_SSRF'
  | 'ERR_EGRESS_PLACEHOLDER'
  | 'ERR_EGRESS_DLP'
  | 'ERR_EGRESS_UPSTREAM'
  /** A principal socket of the network door could not be created (path taken, not absolute, too long, or not ownable). */
  | 'ERR_EGRESS_SOCKET'
  | 'ERR_MODEL_REQUEST_INVALID'
  | 'ERR_MODEL_UPSTREAM'
  | 'ERR_MODEL_UPSTREAM_TIMEOUT'
  | 'ERR_MODEL_NOT_CONFIGURED'
  | 'ERR_USER_REQUIRED'
  | 'ERR_USER_UNVERIFIED'
  | 'ERR_RATE_LIMITED'
  | 'ERR_USER_BANNED'
  | 'ERR_PLACEHOLDER_DENIED'
  | 'ERR_ALERT_DELIVERY'
  | 'ERR_ABILITY_REQUEST'
  | 'ERR_JS_TIMEOUT'
  | 'ERR_JS_MEMORY'
  | 'ERR_JS_ERROR'
  | 'ERR_JS_RESULT'
  | 'ERR_JS_UNAVAILABLE'
  | 'ERR_SIGNING'
  | 'ERR_KEY_UNKNOWN'
  | 'ERR_A2A_PEER_UNKNOWN'
  | 'ERR_A2A_UNAUTHORIZED'
  | 'ERR_A2A_INVALID'
  | 'ERR_A2A_SIGNATURE'
  | 'ERR_A2A_STALE'
  | 'ERR_A2A_REPLAY'
  | 'ERR_A2A_DELIVERY'
  | 'ERR_CONSOLE_CSRF'
  | 'ERR_CONSOLE_UNAVAILABLE'
  | 'ERR_CONSOLE_NOT_FOUND'
  | 'ERR_CLI_USAGE'
  /** A shell line does not parse (src/sandbox/shell.ts). */
  | 'ERR_SHELL_PARSE'
  /** A shell line uses a construct that cannot be decided before it runs (eval, a dynamic command name, ...). */
  | 'ERR_SHELL_UNSUPPORTED'
  /** Every sandbox slot (`sandbox.maxConcurrent`) is in use. */
  | 'ERR_SANDBOX_BUSY'
  /** The sandbox cannot run here (bubblewrap missing, user namespaces off, ...), or is not enabled. */
  | 'ERR_SANDBOX_UNAVAILABLE'
  /** bubblewrap could not set up the sandbox, or a run's cgroup could not be made (src/sandbox/runner.ts). */
  | 'ERR_SANDBOX_START'
  /** A run ended because a limit fired (wall, CPU, memory, processes, output, file size). */
  | 'ERR_SANDBOX_LIMIT'
  /** A sandbox workspace path or name was refused (symlink, not a directory, unsafe name). */
  | 'ERR_SANDBOX_WORKSPACE'
  | 'ERR_INTERNAL';

/** Options accepted by {@link BastionError}. */
export interface BastionErrorOptions {
  /** The underlying error, kept for the audit record and never sent to a client. */
  cause?: unknown;
  /** Structured, non-secret detail for the audit record (field paths, line numbers, ids). */
  detail?: Readonly<Record<string, unknown>>;
}

/**
 * The base error. `code` is stable; `message` is for operators; `detail` is
 * structured context for the audit record.
 */
export class BastionError extends Error {
  readonly code: BastionErrorCode;
  readonly detail: Readonly<Record<string, unknown>> | undefined;

  constructor(code: BastionErrorCode, message: string, options: BastionErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BastionError';
    this.code = code;
    this.detail = options.detail;
  }
}

/** True when `err` is a {@link BastionError}, optionally with the given code. */
export function isBastionError(err: unknown, code?: BastionErrorCode): err is BastionError {
  return err instanceof BastionError && (code === undefined || err.code === code);
}

/**
 * Normalizes anything thrown into a {@link BastionError}. Unknown errors become
 * `ERR_INTERNAL` with a generic message, so no internal text (which might hold
 * input) leaks to a client; the original is kept as `cause` for the audit record.
 */
export function toBastionError(err: unknown, fallback: BastionErrorCode = 'ERR_INTERNAL'): BastionError {
  if (err instanceof BastionError) return err;
  return new BastionError(fallback, 'internal error', { cause: err });
}
