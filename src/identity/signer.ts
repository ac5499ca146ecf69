/**
 * Signs Bastion's outbound requests to tools: the signed user context
 * (`Bastion-Context`), RFC 9530 `Content-Digest`, an RFC 9421 signature with
 * the identity key, and optionally a per-call JWT. The model provides only the
 * tool parameters; everything here is added after, from the session.
 */
import { SignJWT } from 'jose';
import type { ResolvedCallToken, ResolvedConfig } from '../config/types.ts';
import { BastionError } from '../errors.ts';
import { serializeDictionary } from 'structured-headers';
import { randomId, randomToken, sha256Bytes } from '../util/crypto.ts';
import { CONTEXT_HEADER, createSignature, serializeContext } from '../verify/index.ts';
import type { IdentityKeys } from './keys.ts';

/** Who and what a call is for: taken from the session, never from the model. */
export interface CallContext {
  readonly agent: string;
  /** The end user (`Bastion-User`), or null. */
  readonly user: string | null;
  /** The conversation (`Bastion-Conversation`, else the MCP session id), or null. */
  readonly conversation: string | null;
  /** Request id: the audit record's `ref` for a tool call. */
  readonly requestId: string;
  /** Exposed tool name, or null for protocol traffic. */
  readonly tool: string | null;
}

/** An outbound request about to be sent. `url` is absolute; header names any case. */
export interface OutboundRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The exact body bytes that will be sent; empty when none. */
  readonly body: Uint8Array;
}

/** What to add to one request. */
export interface SignOptions {
  /** Add `Bastion-Context` and sign (RFC 9421). */
  readonly signContext: boolean;
  /** Mint a per-call JWT; `audience` and `scope` are filled in by the caller. */
  readonly token?: ResolvedCallToken & { readonly audience: string; readonly scope: string };
}

/** The audit detail of one signing: never a key or a token. */
export interface SignatureAudit {
  readonly signature?: { readonly kid: string; readonly nonce: string; readonly created: number; readonly expires: number; readonly components: readonly string[] };
  readonly token?: { readonly kid: string; readonly jti: string; readonly aud: string; readonly lifetimeS: number; readonly exp: number };
}

/** Headers to add (lower-case names) and what to audit. */
export interface SignedAdditions {
  readonly headers: Readonly<Record<string, string>>;
  readonly audit: SignatureAudit;
}

/** Signs outbound requests; implemented by {@link RequestSigner}. */
export interface OutboundSigner {
  /**
   * Returns the headers to add to `req` (`bastion-context`, `content-digest`,
   * `signature-input`, `signature`, and the token header) and the audit detail.
   * Headers of `req` with those names are replaced, never merged.
   * @throws BastionError `ERR_SIGNING` (no usable key, unrepresentable context), `ERR_VAULT_KEY`, `ERR_STORE`.
   */
  sign(req: OutboundRequest, ctx: CallContext, opts: SignOptions): Promise<SignedAdditions>;
}

/** Label of Bastion's signature in `Signature-Input` / `Signature` (RFC 9421 §4). */
export const SIGNATURE_LABEL = 'bastion';
/** Components every Bastion signature covers (RFC 9421 §2). */
export const SIGNED_COMPONENTS: readonly string[] = ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER];

/** Headers Bastion sets on signed requests; a configured or model-provided header of these names is replaced. */
export const SIGNING_HEADERS: ReadonlySet<string> = new Set([CONTEXT_HEADER, 'content-digest', 'signature', 'signature-input']);

/** The {@link OutboundSigner} over the identity keys. */
export class RequestSigner implements OutboundSigner {
  readonly #keys: IdentityKeys;
  readonly #identity: ResolvedConfig['identity'];
  readonly #now: () => number;

  constructor(keys: IdentityKeys, identity: ResolvedConfig['identity'], now: () => number = Date.now) {
    this.#keys = keys;
    this.#identity = identity;
    this.#now = now;
  }

  async sign(req: OutboundRequest, ctx: CallContext, opts: SignOptions): Promise<SignedAdditions> {
    if (!opts.signContext && opts.token === undefined) return { headers: {}, audit: {} };
    const key = await this.#keys.signingKey();
    const nowS = Math.floor(this.#now() / 1000);
    const added: Record<string, string> = {};
    const audit: { signature?: SignatureAudit['signature']; token?: SignatureAudit['token'] } = {};
    let tokenHeader: string | undefined;
    if (opts.token !== undefined) {
      const t = opts.token;
      const jti = randomId();
      const exp = nowS + t.lifetimeS;
      let jwt: string;
      try {
        jwt = await new SignJWT({ scope: t.scope, act: { sub: ctx.agent } })
          .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' })
          .setIssuer(this.#identity.issuer)
          .setSubject(ctx.user ?? `agent:${ctx.agent}`)
          .setAudience(t.audience)
          .setJti(jti)
          .setIssuedAt(nowS)
          .setExpirationTime(exp)
          .sign(key.cryptoKey);
      } catch (err) {
        throw new BastionError('ERR_SIGNING', 'identity: could not mint the call token', { cause: err });
      }
      tokenHeader = t.header.toLowerCase();
      added[tokenHeader] = tokenHeader === 'authorization' ? `Bearer ${jwt}` : jwt;
      audit.token = { kid: key.kid, jti, aud: t.audience, lifetimeS: t.lifetimeS, exp };
    }
    if (opts.signContext) {
      try {
        added[CONTEXT_HEADER] = serializeContext({
          agent: ctx.agent,
          ...(ctx.user !== null ? { user: ctx.user } : {}),
          ...(ctx.conversation !== null ? { conversation: ctx.conversation } : {}),
          platform: this.#identity.platform,
          request: ctx.requestId,
          ...(ctx.tool !== null ? { tool: ctx.tool } : {}),
          time: nowS,
        });
      } catch (err) {
        throw new BastionError('ERR_SIGNING', 'identity: the call context cannot be put in a header', { cause: err });
      }
      // RFC 9530 §2, hashed synchronously: Web Crypto's async digest costs a thread-pool round trip per request.
      added['content-digest'] = serializeDictionary(new Map([['sha-256', [sha256Bytes(req.body), new Map()]]]));
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
      Object.assign(headers, added);
      const components = tokenHeader === undefined ? SIGNED_COMPONENTS : [...SIGNED_COMPONENTS, tokenHeader];
      const nonce = randomToken(16);
      const expires = nowS + this.#identity.signatureTtlS;
      const sig = await createSignature(
        { method: req.method, url: req.url, headers },
        { label: SIGNATURE_LABEL, components, params: { created: nowS, expires, nonce, keyid: key.kid, alg: 'ed25519', tag: SIGNATURE_LABEL }, sign: key.signBytes },
      );
      added['signature-input'] = sig['signature-input'];
      added.signature = sig.signature;
      audit.signature = { kid: key.kid, nonce, created: nowS, expires, components };
    }
    return { headers: added, audit };
  }
}
