/**
 * Signing of requests to HTTP MCP upstreams marked `signContext` or `token`.
 * The transport signs each HTTP request; which tool call a request belongs to
 * (its request id, tool name and audit record) travels in an AsyncLocalStorage
 * scope that the session opens around the call, so protocol traffic outside a
 * call (initialize, listings, the GET stream) is signed too, with a fresh id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedUpstream } from '../config/types.ts';
import type { UpstreamRequestSigner } from '../mcp/http-upstream-transport.ts';
import { randomToken } from '../util/crypto.ts';
import type { OutboundSigner, SignatureAudit } from './signer.ts';

/** The tool call an upstream request is made for. */
export interface CallScope {
  /** The audit record's ref: the signed context's `request`. */
  readonly requestId: string;
  /** Exposed tool name: the context's `tool` and the token's `scope`. */
  readonly tool: string;
  /** Receives what was signed, for the call's audit record. */
  readonly onSigned: (audit: SignatureAudit) => void;
}

const scope = new AsyncLocalStorage<CallScope>();

/** Runs `fn` with `call` as the scope of the upstream requests it makes. */
export function withCallScope<T>(call: CallScope, fn: () => T): T {
  return scope.run(call, fn);
}

/**
 * The transport signer of `upstream` for one session, or undefined when the
 * upstream neither signs nor takes tokens. Outside a call scope the request id is
 * `rpc_<random>` and the tool is null; the token's scope is then `mcp:<method>`.
 */
export function upstreamRequestSigner(
  signer: OutboundSigner,
  upstream: ResolvedUpstream,
  who: { readonly agent: string; readonly user: string | null; readonly conversation: string | null },
): UpstreamRequestSigner | undefined {
  if (!upstream.signContext && upstream.token === undefined) return undefined;
  const audience = upstream.token?.audience ?? (upstream.url as URL).origin;
  return async (req, message: JSONRPCMessage | undefined) => {
    const call = scope.getStore();
    const method = message !== undefined && 'method' in message ? message.method : req.method;
    const signed = await signer.sign(req, { ...who, requestId: call?.requestId ?? `rpc_${randomToken(16).slice(0, 12)}`, tool: call?.tool ?? null }, {
      signContext: upstream.signContext,
      ...(upstream.token ? { token: { ...upstream.token, audience, scope: call?.tool ?? `mcp:${method}` } } : {}),
    });
    call?.onSigned(signed.audit);
    return signed.headers;
  };
}
