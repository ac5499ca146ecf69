/**
 * The closed table of refusal reasons: every reason a door can refuse a request
 * for, with the error code it carries and the HTTP status and JSON-RPC error
 * code each door answers with. A door never maps a reason by its prefix: it
 * looks the reason up here, and a reason that is not in the table is a
 * programming error answered as `internal` (500, fail closed).
 *
 * Status overrides per door exist where HTTP gives the door's role its own
 * status: the egress proxy answers an authentication failure with 407 (RFC 9110
 * §15.5.8, Proxy Authentication Required), every other door with 401.
 */
import type { BastionErrorCode } from '../errors.ts';
import type { AddressClass } from '../egress/ssrf-classify.ts';
import { RELEASE_DENIALS, type ReleaseDenial } from '../vault/release.ts';

/** The doors that refuse requests. `admin` is the admin API. */
export type DoorName = 'tool' | 'model' | 'network' | 'a2a' | 'admin';

/** One row of the table. */
export interface ReasonEntry {
  /** The error code answered to the client and recorded. */
  readonly code: BastionErrorCode;
  /** The HTTP status every door answers with, unless `byDoor` names another. */
  readonly status: number;
  /** Per-door HTTP status overrides. */
  readonly byDoor?: Partial<Record<DoorName, number>>;
  /** Per-door error-code overrides, where a door has its own code for the same refusal (a wrong method is the request's fault in the door's own vocabulary). */
  readonly codeByDoor?: Partial<Record<DoorName, BastionErrorCode>>;
  /** JSON-RPC error code for the tool door (MCP); default {@link RPC.DENIED}. */
  readonly rpc?: number;
}

/**
 * JSON-RPC 2.0 error codes the tool door answers with (JSON-RPC 2.0 §5.1; -32000..-32099 are server-defined),
 * with those MCP 2026-07-28 defines: `HEADER_MISMATCH` (SEP-2243), `UNSUPPORTED_VERSION`.
 */
export const RPC = Object.freeze({ PARSE: -32700, INVALID: -32600, METHOD: -32601, PARAMS: -32602, INTERNAL: -32603, SERVER: -32000, SESSION: -32001, DENIED: -32003, HEADER_MISMATCH: -32020, UNSUPPORTED_VERSION: -32022 });

const e = (code: BastionErrorCode, status: number, extra: Omit<ReasonEntry, 'code' | 'status'> = {}): ReasonEntry => ({ code, status, ...extra });

/** Every address class of src/egress/ssrf-classify.ts that can refuse a destination. */
export const SSRF_ADDRESS_CLASSES = [
  'invalid', 'unspecified', 'this-network', 'loopback', 'private', 'cgnat', 'metadata', 'link-local', 'ietf-protocol', 'documentation',
  '6to4-relay', 'benchmarking', 'multicast', 'broadcast', 'reserved', 'ipv4-mapped', 'ipv4-compatible', 'ipv4-translated', 'nat64',
  'discard', 'teredo', '6to4', 'srv6', 'unique-local', 'site-local', 'zone',
] as const;

const SSRF = e('ERR_EGRESS_SSRF', 403);
const ssrfRows = Object.fromEntries(SSRF_ADDRESS_CLASSES.map((c) => [`ssrf.address.${c}`, SSRF])) as Record<`ssrf.address.${(typeof SSRF_ADDRESS_CLASSES)[number]}`, ReasonEntry>;

/** The network door's established code for a placeholder it will not swap (docs/network-door.md, README's error table). */
const NETWORK_PLACEHOLDER = { network: 'ERR_EGRESS_PLACEHOLDER' } as const;
/** The network door's established code for a destination that failed (refused, reset, TLS, timeout). */
const NETWORK_UPSTREAM = { network: 'ERR_EGRESS_UPSTREAM' } as const;
/** The network door's established code for an egress policy refusal. */
const NETWORK_DENIED = { network: 'ERR_EGRESS_DENIED' } as const;

/** Every denial of the secret-release rule (src/vault/release.ts): 403, the placeholder's value is not released. */
const releaseRows = Object.fromEntries(RELEASE_DENIALS.map((r) => [r, e('ERR_PLACEHOLDER_DENIED', 403, { codeByDoor: NETWORK_PLACEHOLDER })])) as Record<ReleaseDenial, ReasonEntry>;

const AUTH_STATUS = { network: 407 } as const;
/** The tool door's code for every refusal of a tools/call at the policy stage (unknown and forbidden tools look alike). */
const TOOL_AS_DENIED = { tool: 'ERR_POLICY_DENIED' } as const;

/**
 * The table. Keys are the stable reason codes written to audit records
 * (`decision.reason`); docs/kernel.md lists them.
 */
export const REASONS = Object.freeze({
  // Authentication and identity.
  'auth.missing': e('ERR_AUTH_REQUIRED', 401, { byDoor: AUTH_STATUS }),
  'auth.invalid': e('ERR_AUTH_INVALID', 401, { byDoor: AUTH_STATUS }),
  // An agent an admin isolated (incident response, src/incidents/isolation.ts): every door, 403 (JSON-RPC -32003).
  'agent.isolated': e('ERR_AGENT_ISOLATED', 403),
  // OAuth bearer tokens at /mcp (src/door/oauth-resource.ts): 401 with an RFC 6750 challenge; 503 when the issuer cannot be asked.
  'oauth.token_invalid': e('ERR_AUTH_INVALID', 401),
  'oauth.token_expired': e('ERR_AUTH_INVALID', 401),
  'oauth.audience': e('ERR_AUTH_INVALID', 401),
  'oauth.issuer': e('ERR_AUTH_INVALID', 401),
  'oauth.unmapped': e('ERR_AUTH_INVALID', 401),
  'oauth.scope': e('ERR_AUTH_SCOPE', 403),
  'oauth.jwks_unavailable': e('ERR_AUTH_UNAVAILABLE', 503, { rpc: RPC.SERVER }),
  'oauth.introspection_failed': e('ERR_AUTH_UNAVAILABLE', 503, { rpc: RPC.SERVER }),
  // Per-user OAuth to upstreams (src/oauth/): the callback page and the tool door's calls.
  'oauth.consent_required': e('ERR_OAUTH_CONSENT', 401),
  'oauth.provider_unknown': e('ERR_OAUTH_CONSENT', 404),
  'oauth.state_unknown': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.state_expired': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.state_user_mismatch': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.issuer_mismatch': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.authorization_denied': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.callback_invalid': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.code_exchange_failed': e('ERR_OAUTH_CALLBACK', 400),
  'oauth.pending_limit': e('ERR_OAUTH_CONSENT', 503, { rpc: RPC.SERVER }),
  'oauth.pkce_unsupported': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.client_id_metadata_unsupported': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.discovery_failed': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.refresh_failed': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.revocation_failed': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.revocation_unsupported': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.challenge_invalid': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.resource_metadata_failed': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.resource_mismatch': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.authorization_server_missing': e('ERR_OAUTH_PROVIDER', 502, { rpc: RPC.SERVER }),
  'oauth.token_unreadable': e('ERR_STORE', 500, { rpc: RPC.INTERNAL }),
  'oauth.store_error': e('ERR_STORE', 503, { rpc: RPC.SERVER }),
  'user.missing': e('ERR_USER_REQUIRED', 400, { rpc: RPC.INVALID }),
  'user.invalid': e('ERR_USER_REQUIRED', 400, { rpc: RPC.INVALID }),
  'user.ambiguous': e('ERR_USER_REQUIRED', 400, { rpc: RPC.INVALID }),
  'user.unverified': e('ERR_USER_UNVERIFIED', 401, { rpc: RPC.DENIED }),
  'user.token_invalid': e('ERR_USER_UNVERIFIED', 401, { rpc: RPC.DENIED }),
  'user.jwks_unavailable': e('ERR_USER_UNVERIFIED', 503, { rpc: RPC.SERVER }),
  'user.banned': e('ERR_USER_BANNED', 403),
  'conversation.invalid': e('ERR_JSONRPC_INVALID', 400, { rpc: RPC.INVALID, codeByDoor: { model: 'ERR_MODEL_REQUEST_INVALID' } }),
  'host.not_allowed': e('ERR_HOST_NOT_ALLOWED', 403),
  'origin.not_allowed': e('ERR_ORIGIN_NOT_ALLOWED', 403),
  // Request framing.
  'body.too_large': e('ERR_BODY_TOO_LARGE', 413, { rpc: RPC.INVALID }),
  'body.timeout': e('ERR_BODY_TIMEOUT', 408, { rpc: RPC.INVALID }),
  'body.aborted': e('ERR_BODY_TIMEOUT', 400, { rpc: RPC.INVALID, codeByDoor: { a2a: 'ERR_A2A_INVALID' } }),
  'body.encoded': e('ERR_EGRESS_DENIED', 415),
  'http.method': e('ERR_JSONRPC_INVALID', 405, { rpc: RPC.SERVER, codeByDoor: { a2a: 'ERR_A2A_INVALID', model: 'ERR_MODEL_REQUEST_INVALID' } }),
  'jsonrpc.parse': e('ERR_JSONRPC_PARSE', 400, { rpc: RPC.PARSE }),
  'jsonrpc.batch': e('ERR_JSONRPC_BATCH', 400, { rpc: RPC.INVALID }),
  'jsonrpc.invalid': e('ERR_JSONRPC_INVALID', 400, { rpc: RPC.INVALID }),
  'session.unknown': e('ERR_SESSION_UNKNOWN', 404, { rpc: RPC.SESSION }),
  'session.missing': e('ERR_SESSION_UNKNOWN', 400, { rpc: RPC.SERVER }),
  // Sessions and per-agent limits of the tool door (config `server.sessions`, docs/tool-door.md "Limits"):
  // the global cap with no idle session left to close is the server's capacity (503); an agent's own
  // caps are its doing (429, with Retry-After). An evicted session is recorded, never answered.
  'session.limit': e('ERR_SESSION_LIMIT', 503, { rpc: RPC.SERVER }),
  'session.agent_limit': e('ERR_SESSION_LIMIT', 429, { rpc: RPC.SERVER }),
  'session.evicted': e('ERR_SESSION_UNKNOWN', 404, { rpc: RPC.SESSION }),
  'ratelimit.concurrent': e('ERR_RATE_LIMITED', 429, { rpc: RPC.SERVER }),
  'transport.rejected': e('ERR_JSONRPC_INVALID', 400, { rpc: RPC.INVALID }),
  // MCP 2026-07-28 (src/mcp/revision/wire.ts): the spec's own JSON-RPC codes. A header that disagrees
  // with the body is audited as a possible bypass (an intermediary may have routed on the header).
  'mcp.header_mismatch': e('ERR_HEADER_MISMATCH', 400, { rpc: RPC.HEADER_MISMATCH }),
  'mcp.envelope_invalid': e('ERR_JSONRPC_INVALID', 400, { rpc: RPC.PARAMS }),
  'mcp.unsupported_version': e('ERR_PROTOCOL_VERSION', 400, { rpc: RPC.UNSUPPORTED_VERSION }),
  'mcp.method_unknown': e('ERR_JSONRPC_INVALID', 404, { rpc: RPC.METHOD }),
  // A tool whose input schema declares x-mcp-header wrongly (SEP-2243): conforming clients exclude it; Bastion refuses it.
  'mcp.param_headers_invalid': e('ERR_TOOL_UNKNOWN', 404, { codeByDoor: TOOL_AS_DENIED }),
  // A requestState (MCP 2026-07-28 multi-round-trip request) Bastion will not honour (src/mcp/request-state.ts).
  'state.malformed': e('ERR_REQUEST_STATE', 400, { rpc: RPC.PARAMS }),
  'state.forged': e('ERR_REQUEST_STATE', 400, { rpc: RPC.PARAMS }),
  'state.expired': e('ERR_REQUEST_STATE', 400, { rpc: RPC.PARAMS }),
  'state.rebound': e('ERR_REQUEST_STATE', 400, { rpc: RPC.PARAMS }),
  'state.replayed': e('ERR_REQUEST_STATE', 400, { rpc: RPC.PARAMS }),
  'state.store_error': e('ERR_STORE', 503, { rpc: RPC.SERVER }),
  'request.json': e('ERR_MODEL_REQUEST_INVALID', 400),
  'request.shape': e('ERR_MODEL_REQUEST_INVALID', 400),
  'request.aborted': e('ERR_EGRESS_DENIED', 400),
  'request.bad_authority': e('ERR_EGRESS_DENIED', 400),
  'request.bad_base_url': e('ERR_EGRESS_DENIED', 400),
  'request.bad_target': e('ERR_EGRESS_DENIED', 400),
  'request.misdirected': e('ERR_EGRESS_DENIED', 421),
  'request.not_origin_form': e('ERR_EGRESS_DENIED', 400),
  'request.not_absolute_form': e('ERR_EGRESS_DENIED', 400),
  'request.https_absolute_form': e('ERR_EGRESS_DENIED', 400),
  'request.upgrade_unsupported': e('ERR_EGRESS_DENIED', 501),
  // A request head too large, too slow or unparsable: the network door's own code; the main listener's
  // (src/server/http.ts, which records them before any door is known) the framing codes.
  'request.header_too_large': e('ERR_BODY_TOO_LARGE', 431, { codeByDoor: NETWORK_DENIED }),
  'request.header_timeout': e('ERR_BODY_TIMEOUT', 408, { codeByDoor: NETWORK_DENIED }),
  'request.malformed': e('ERR_JSONRPC_INVALID', 400, { codeByDoor: NETWORK_DENIED }),
  // Limits and abuse.
  'ratelimit.exceeded': e('ERR_RATE_LIMITED', 429),
  'ratelimit.store_error': e('ERR_STORE', 503),
  'ratelimit.charge_failed': e('ERR_STORE', 503),
  // The model door bans the user for it (escalating): its client reads a ban.
  'prompt.extraction': e('ERR_POLICY_DENIED', 403, { codeByDoor: { model: 'ERR_USER_BANNED' } }),
  // Policy.
  'policy.forbid': e('ERR_POLICY_DENIED', 403, { codeByDoor: NETWORK_DENIED }),
  'policy.no_permit': e('ERR_POLICY_DENIED', 403, { codeByDoor: NETWORK_DENIED }),
  // The tool door answers a request refused at the policy stage (tools/call, prompts/get, resources/read)
  // alike, ERR_POLICY_DENIED and JSON-RPC -32003, whatever the cause: an unknown, hidden, forbidden or
  // unevaluable tool, prompt or resource must not tell the agent that it exists.
  'policy.error': e('ERR_POLICY_EVALUATION', 500, { codeByDoor: TOOL_AS_DENIED }),
  'policy.invalid_request': e('ERR_POLICY_EVALUATION', 500, { codeByDoor: TOOL_AS_DENIED }),
  'policy.unknown_agent': e('ERR_POLICY_DENIED', 403, { codeByDoor: NETWORK_DENIED }),
  'policy.args_unrepresentable': e('ERR_ARGS_INVALID', 400, { codeByDoor: TOOL_AS_DENIED }),
  'policy.approval_unsupported': e('ERR_POLICY_DENIED', 403, { codeByDoor: NETWORK_DENIED }),
  // Provenance-aware policy (issue 13): a condition whose fallback is a tool error that tells the model why
  // (so it can ask the user); a per-conversation budget spent; the tracker failed (fail closed).
  'policy.guard': e('ERR_POLICY_GUARD', 403),
  'limit.conversation': e('ERR_CONVERSATION_LIMIT', 429),
  'provenance.error': e('ERR_POLICY_EVALUATION', 500, { codeByDoor: TOOL_AS_DENIED }),
  'tool.unknown': e('ERR_TOOL_UNKNOWN', 404, { codeByDoor: TOOL_AS_DENIED }),
  // Pinned tool definitions (issue 13, rug pulls; src/mcp/pins.ts): a withheld tool is refused like an unknown
  // one; these reasons name why in the `tools/pin` record written once per detection. The pinned definition
  // changed; a pinned tool reappeared under another name; mode `manual` and never approved; its description
  // was flagged before first pinning; the pin store failed (every tool withheld, fail closed).
  'tool.pin_changed': e('ERR_POLICY_DENIED', 403),
  'tool.pin_renamed': e('ERR_POLICY_DENIED', 403),
  'tool.pin_unapproved': e('ERR_POLICY_DENIED', 403),
  'tool.pin_flagged': e('ERR_POLICY_DENIED', 403),
  'tool.pin_unavailable': e('ERR_STORE', 503, { codeByDoor: TOOL_AS_DENIED }),
  // Config `tools`: a tool outside the agent's scope, or another user's, is refused like an unknown one.
  'tool.internal_scope': e('ERR_POLICY_DENIED', 403),
  'tool.cross_user': e('ERR_POLICY_DENIED', 403),
  'prompt.unknown': e('ERR_TOOL_UNKNOWN', 404, { codeByDoor: TOOL_AS_DENIED }),
  'prompt.unknown_or_forbidden': e('ERR_TOOL_UNKNOWN', 404, { codeByDoor: TOOL_AS_DENIED }),
  'resource.unknown': e('ERR_TOOL_UNKNOWN', 404, { codeByDoor: TOOL_AS_DENIED }),
  'args.schema': e('ERR_ARGS_INVALID', 400, { rpc: RPC.PARAMS }),
  'path.denied': e('ERR_PATH_DENIED', 403),
  'path.invalid': e('ERR_PATH_DENIED', 403),
  'path.nul': e('ERR_PATH_DENIED', 403),
  'path.outside': e('ERR_PATH_DENIED', 403),
  'path.relative': e('ERR_PATH_DENIED', 403),
  'path.tilde': e('ERR_PATH_DENIED', 403),
  'path.unresolvable': e('ERR_PATH_DENIED', 403),
  'approval.denied': e('ERR_APPROVAL_DENIED', 403),
  'approval.timeout': e('ERR_APPROVAL_TIMEOUT', 403),
  // The agent stopped waiting (cancelled, disconnected); the approval stays pending for a later identical call.
  'approval.cancelled': e('ERR_APPROVAL_TIMEOUT', 403),
  'approval.not_pending': e('ERR_APPROVAL_UNKNOWN', 409),
  // Secrets: the release rule and placeholders.
  'placeholder.unknown': e('ERR_PLACEHOLDER_DENIED', 403, { codeByDoor: NETWORK_PLACEHOLDER }),
  'placeholder.foreign_host': e('ERR_PLACEHOLDER_DENIED', 403, { codeByDoor: NETWORK_PLACEHOLDER }),
  'placeholder.foreign_user': e('ERR_PLACEHOLDER_DENIED', 403, { codeByDoor: NETWORK_PLACEHOLDER }),
  'placeholder.unbound': e('ERR_PLACEHOLDER_DENIED', 403, { codeByDoor: NETWORK_PLACEHOLDER }),
  ...releaseRows,
  'dlp.credential': e('ERR_EGRESS_DLP', 403),
  'dlp.error': e('ERR_EGRESS_DLP', 503),
  'detector.error': e('ERR_INTERNAL', 503),
  // The tool door refuses the pasted-secret swap as a placeholder it will not release.
  'vault.unavailable': e('ERR_EGRESS_DENIED', 503, { codeByDoor: { model: 'ERR_STORE', tool: 'ERR_PLACEHOLDER_DENIED' } }),
  'vault.error': e('ERR_EGRESS_DENIED', 503, { codeByDoor: { model: 'ERR_STORE', tool: 'ERR_PLACEHOLDER_DENIED' } }),
  'provider.key': e('ERR_MODEL_NOT_CONFIGURED', 503),
  // Egress policy and SSRF.
  'egress.no_rule': e('ERR_EGRESS_DENIED', 403),
  'egress.denied': e('ERR_EGRESS_DENIED', 403),
  'egress.method': e('ERR_EGRESS_DENIED', 403),
  'egress.path': e('ERR_EGRESS_DENIED', 403),
  'egress.port': e('ERR_EGRESS_DENIED', 403),
  'egress.error': e('ERR_EGRESS_DENIED', 503),
  'egress.no_address': e('ERR_EGRESS_SSRF', 403),
  'egress.no_ca': e('ERR_CA', 503),
  'ca.issue_failed': e('ERR_CA', 503),
  'tls.handshake_failed': e('ERR_EGRESS_UPSTREAM', 502),
  'ssrf.url.invalid': SSRF,
  'ssrf.url.scheme': SSRF,
  'ssrf.host.special': SSRF,
  'ssrf.host.single_label': SSRF,
  'ssrf.dns.unresolvable': SSRF,
  'ssrf.dns.no_address': SSRF,
  'ssrf.unparsable': SSRF,
  ...ssrfRows,
  // Upstreams.
  // The model door names its provider's failures in its own codes (ERR_MODEL_UPSTREAM*).
  'upstream.error': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: { model: 'ERR_MODEL_UPSTREAM', ...NETWORK_UPSTREAM } }),
  'upstream.unreachable': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: { model: 'ERR_MODEL_UPSTREAM' } }),
  'upstream.timeout': e('ERR_UPSTREAM_TIMEOUT', 504, { rpc: RPC.SERVER, codeByDoor: { model: 'ERR_MODEL_UPSTREAM_TIMEOUT', ...NETWORK_UPSTREAM } }),
  'upstream.cut': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: { model: 'ERR_MODEL_UPSTREAM' } }),
  'upstream.invalid': e('ERR_UPSTREAM_PROTOCOL', 502, { rpc: RPC.SERVER, codeByDoor: { model: 'ERR_MODEL_UPSTREAM' } }),
  'upstream.unknown_encoding': e('ERR_UPSTREAM_PROTOCOL', 502, { rpc: RPC.SERVER, codeByDoor: NETWORK_UPSTREAM }),
  // The network door's destination failures (src/egress/proxy.ts), in its established code.
  'upstream.connect_failed': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: NETWORK_UPSTREAM }),
  'upstream.refused': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: NETWORK_UPSTREAM }),
  'upstream.reset': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: NETWORK_UPSTREAM }),
  'upstream.tls': e('ERR_UPSTREAM_UNAVAILABLE', 502, { rpc: RPC.SERVER, codeByDoor: NETWORK_UPSTREAM }),
  // A CONNECT tunnel closed for idleness (recorded, never answered: the tunnel is already open).
  'tunnel.idle': e('ERR_UPSTREAM_TIMEOUT', 504, { rpc: RPC.SERVER, codeByDoor: NETWORK_UPSTREAM }),
  'model.not_configured': e('ERR_MODEL_NOT_CONFIGURED', 404),
  'model.wrong_provider': e('ERR_MODEL_NOT_CONFIGURED', 400),
  'supervisor.error': e('ERR_MODEL_UPSTREAM', 502),
  // Abilities (declarative HTTP tools of the tool door).
  'ability.template': e('ERR_CONFIG_INVALID', 500, { rpc: RPC.INTERNAL }),
  'ability.secret_missing': e('ERR_VAULT_SECRET_UNKNOWN', 503, { rpc: RPC.SERVER }),
  'ability.secret_unbound': e('ERR_ABILITY_REQUEST', 500, { rpc: RPC.INTERNAL }),
  'ability.header_conflict': e('ERR_ABILITY_REQUEST', 500, { rpc: RPC.INTERNAL }),
  'ability.unavailable': e('ERR_UPSTREAM_UNAVAILABLE', 503, { rpc: RPC.SERVER }),
  // The sandbox (src/sandbox/): a line that cannot be decided, no free slot.
  'sandbox.shell_parse': e('ERR_SHELL_PARSE', 400, { rpc: RPC.PARAMS }),
  'sandbox.shell_unsupported': e('ERR_SHELL_UNSUPPORTED', 403),
  'sandbox.busy': e('ERR_SANDBOX_BUSY', 429, { rpc: RPC.SERVER }),
  'sandbox.unavailable': e('ERR_SANDBOX_UNAVAILABLE', 503, { rpc: RPC.SERVER }),
  // Agent-to-agent.
  'a2a.invalid': e('ERR_A2A_INVALID', 400),
  'a2a.wrong_recipient': e('ERR_A2A_INVALID', 400),
  'a2a.too_large': e('ERR_BODY_TOO_LARGE', 413),
  'a2a.unauthorized': e('ERR_A2A_UNAUTHORIZED', 401),
  'a2a.signature': e('ERR_A2A_SIGNATURE', 401),
  'a2a.sender_mismatch': e('ERR_A2A_SIGNATURE', 401),
  'a2a.jwks_unavailable': e('ERR_A2A_SIGNATURE', 503),
  'a2a.stale': e('ERR_A2A_STALE', 401),
  'a2a.replay': e('ERR_A2A_REPLAY', 409),
  'a2a.nonce_store': e('ERR_A2A_REPLAY', 503),
  'a2a.not_allowed': e('ERR_A2A_UNAUTHORIZED', 403),
  'a2a.not_receiving': e('ERR_A2A_UNAUTHORIZED', 403),
  'a2a.no_deliver': e('ERR_A2A_UNAUTHORIZED', 403),
  'a2a.peer_unknown': e('ERR_A2A_PEER_UNKNOWN', 404),
  'a2a.peer_no_token': e('ERR_A2A_PEER_UNKNOWN', 404),
  'a2a.peer_unreachable': e('ERR_A2A_DELIVERY', 502),
  'a2a.peer_refused': e('ERR_A2A_DELIVERY', 502),
  'a2a.delivery': e('ERR_A2A_DELIVERY', 502),
  'a2a.credentials': e('ERR_INTERNAL', 500),
  // Alerts that could not be delivered (recorded as system events).
  'alert.delivery': e('ERR_ALERT_DELIVERY', 502),
  // Config reloads (system records `config.reload`, src/server/reload.ts).
  'config.invalid': e('ERR_CONFIG_INVALID', 500),
  'config.restart_required': e('ERR_CONFIG_INVALID', 409),
  // Stores and the audit step.
  'store.error': e('ERR_STORE', 503, { rpc: RPC.SERVER }),
  'audit.write_failed': e('ERR_AUDIT_WRITE', 503, { rpc: RPC.SERVER }),
  // Admin API.
  'admin.bad_request': e('ERR_CLI_USAGE', 400),
  'admin.disabled': e('ERR_AUTH_REQUIRED', 404),
  'admin.unknown_route': e('ERR_CLI_USAGE', 404),
  'admin.csrf': e('ERR_ORIGIN_NOT_ALLOWED', 403),
  // Console (src/console/): no or an expired session, a missing or wrong CSRF token, a feature not wired in.
  'console.session': e('ERR_AUTH_REQUIRED', 401),
  'console.csrf': e('ERR_CONSOLE_CSRF', 403),
  'console.unavailable': e('ERR_CONSOLE_UNAVAILABLE', 501),
  'console.not_found': e('ERR_CONSOLE_NOT_FOUND', 404),
  // Anything unexpected.
  internal: e('ERR_INTERNAL', 500, { rpc: RPC.INTERNAL }),
} satisfies Record<string, ReasonEntry>);

/** A refusal reason: a key of {@link REASONS}. */
export type Reason = keyof typeof REASONS;

// Every address class the classifier can produce has a row (a compile-time check).
type MissingSsrfClass = Exclude<AddressClass, (typeof SSRF_ADDRESS_CLASSES)[number] | 'global'>;
type ExtraSsrfClass = Exclude<(typeof SSRF_ADDRESS_CLASSES)[number], AddressClass>;
const ssrfClassesExact: [MissingSsrfClass, ExtraSsrfClass] extends [never, never] ? true : never = true;
void ssrfClassesExact;

/** True when `reason` is a row of the table. */
export function isReason(reason: string): reason is Reason {
  return Object.hasOwn(REASONS, reason);
}

/**
 * The row for `reason`; an unknown reason gets the `internal` row, so a reason
 * missing from the table fails closed (500) instead of passing as some default.
 */
export function reasonEntry(reason: string): ReasonEntry {
  return isReason(reason) ? REASONS[reason] : REASONS.internal;
}

/** The error code `door` answers `reason` with. */
export function codeOf(reason: string, door: DoorName): BastionErrorCode {
  const row = reasonEntry(reason);
  return row.codeByDoor?.[door] ?? row.code;
}

/** The HTTP status `door` answers `reason` with. */
export function statusOf(reason: string, door: DoorName): number {
  const row = reasonEntry(reason);
  return row.byDoor?.[door] ?? row.status;
}
