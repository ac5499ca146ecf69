/**
 * Every default limit in one place, each named with its unit.
 * Config values override these; nothing else in the code base hard-codes a limit.
 */
export const DEFAULTS = Object.freeze({
  /** Where `bastion serve` listens (host:port). */
  listen: '127.0.0.1:8790',
  /** Largest accepted HTTP request body, in bytes (counted as streamed, so chunked bodies too). */
  maxBodyBytes: 1024 * 1024,
  /** Longest a client may take to send a request body, in ms (slowloris bound; SSE responses are not limited). */
  bodyTimeoutMs: 30_000,
  /** Largest tool/resource/prompt result passed back to the agent, in bytes of its JSON form. */
  maxResultBytes: 256 * 1024,
  /** How long one upstream request may take, in ms. */
  upstreamTimeoutMs: 30_000,
  /** How long connecting to (and initializing) an upstream may take, in ms. */
  upstreamConnectTimeoutMs: 30_000,
  /** How long a held call waits for an admin decision, in ms. */
  approvalTimeoutMs: 120_000,
  /** How long an approval granted after the client gave up stays claimable, in ms. */
  approvalReuseTtlMs: 10 * 60_000,
  /** How often a waiting call re-reads the approval store (decisions may come from another process), in ms. */
  approvalPollMs: 250,
  /** How often a held call sends a progress notification (when the client gave a token), in ms. */
  approvalProgressMs: 5_000,
  /** A signed audit checkpoint is written after this many records (and on shutdown). */
  auditCheckpointEvery: 256,
  /** An idle MCP session (no request) is closed after this long, in ms. */
  sessionIdleMs: 30 * 60_000,
  /** At most this many concurrent MCP sessions; more are refused with 503. */
  maxSessions: 1_000,
});
