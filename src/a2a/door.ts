/**
 * The agent-to-agent door: `POST /a2a/send` (a local agent sends an A2A message
 * to a registered peer) and `POST /a2a/inbound` (a peer delivers one to a local
 * agent). See docs/a2a.md for the wire format.
 *
 * Send, in order: agent key → body size → JSON → request shape → message size →
 * `a2a.agents.<agent>.peers` lists the peer → the peer is registered → sign the
 * envelope with the identity key → POST `message/send` to the peer's URL with
 * our outbound token → the peer's answer goes back to the agent.
 *
 * Inbound, in order: bearer token → registered peer (SHA-256 digest lookup,
 * constant-time compare) → body size → JSON → JSON-RPC `message/send` shape →
 * message size → JWS over the rebuilt envelope with the peer's key (EdDSA only,
 * its `kid`) → `sender` is the peer's registered sender id → `recipient` is our
 * `identity.issuer` → `iat` within ±`maxAgeS` → the target agent receives from
 * this peer and has `deliver` → the nonce is new (kept 2 × `maxAgeS` in the
 * nonce store, by default the SQLite store file so restarts do not forget it; a
 * nonce store that cannot answer refuses) → POST to the agent's `deliver` URL → its
 * answer goes back to the peer.
 *
 * Every request ends in exactly one audit record (door `a2a`) with the decision
 * and its reason; records hold peer, agents, nonce, kid and message id, never a
 * token or message text. Errors cross the boundary as an HTTP status and
 * `{error: {code, message}}` with a fixed message.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request, type Dispatcher } from 'undici';
import type { AuditEvent } from '../audit/types.ts';
import { allow, type Decision } from '../decision.ts';
import type { SigningKey } from '../identity/keys.ts';
import type { ResolvedConfig } from '../config/types.ts';
import type { AuditStep } from '../door/audit-step.ts';
import type { KeyIndex } from '../door/authenticate.ts';
import { readBody } from '../door/body.ts';
import { authenticateAgent, presentedKey } from '../door/authenticate.ts';
import type { PeerStore, StoredPeer } from './peer-store.ts';
import { constantTimeEqual, randomId, randomToken } from '../util/crypto.ts';
import type { Kek } from '../vault/kek.ts';
import { DEFAULTS } from '../defaults.ts';
import { openNonceStore, type NonceStore } from '../store/nonces.ts';
import * as jwsStages from './jws.ts';
import { peerKeys, type PeerKeys } from './jws.ts';
import { ENVELOPE_VERSION, firstIssue, InboundRequest, messageBytes, SendRequest, type A2aEnvelope } from './message.ts';
import { MAX_PEER_TOKEN_LENGTH, openPeerToken, peerTokenDigest } from './peers.ts';
import * as a2aStages from './stages.ts';
import { invalid, isRefusal, refuseWith, type PostAnswer, type Refusal } from './stages.ts';
import { timedStages, timeStage } from '../observe/scope.ts';

// The stages, each timed in the request scope (a span and a `bastion_stage_duration_seconds` sample).
const { mayContact, checkClaims, receivingAgent, deliverUrl, peerResult, deliveryResult } = timedStages(a2aStages, ['mayContact', 'checkClaims', 'receivingAgent', 'deliverUrl', 'peerResult', 'deliveryResult']);
const { signEnvelope, verifyEnvelope } = timedStages(jwsStages, ['signEnvelope', 'verifyEnvelope']);

/** Limits of the agent-to-agent door (from {@link DEFAULTS}). */
export const A2A_LIMITS = Object.freeze({
  bodyOverheadBytes: DEFAULTS.a2aBodyOverheadBytes,
  timeoutMs: DEFAULTS.a2aTimeoutMs,
  redisTimeoutMs: DEFAULTS.a2aRedisTimeoutMs,
});

/** Options of {@link A2aDoor.open}. */
export interface A2aDoorOptions {
  /** The vault's key-encryption key: opens the outbound tokens of peers. */
  readonly kek: Kek;
  /** Clock, epoch ms (tests inject one). */
  readonly now?: () => number;
  /** Overrides of {@link A2A_LIMITS}. */
  readonly timeoutMs?: number;
  readonly redisTimeoutMs?: number;
  /** The nonce store (default: opened from `a2a.nonceStore`); the door closes it. */
  readonly nonces?: NonceStore;
}

/**
 * What the agent-to-agent door is built from (the composition root, `Gateway`,
 * passes its parts): the config, agent authentication, the identity's signing
 * key, the peer registry and the audit step.
 */
export interface A2aDoorDeps {
  readonly config: ResolvedConfig;
  readonly agentKeys: KeyIndex;
  readonly identity: { signingKey(): Promise<SigningKey> };
  readonly store: Pick<PeerStore, 'getPeer' | 'getPeerByInboundDigest'>;
  readonly auditStep: Pick<AuditStep, 'durable'>;
  /** The gateway's metrics: a failed Redis command of the nonce store is counted (`bastion_errors_total{component="redis"}`). */
  readonly observer?: { readonly metrics: { countError(component: 'redis', code: string): void } };
}

/** One request through the door, collected for its audit record. */
interface Exchange {
  readonly started: number;
  readonly method: 'a2a.send' | 'a2a.inbound';
  agent: string | null;
  user: string | null;
  peer: string | null;
  readonly detail: Record<string, unknown>;
}

/** Thrown by {@link readCapped} when an answer is larger than allowed. */
class TooLarge extends Error {}

export class A2aDoor {
  readonly #gateway: A2aDoorDeps;
  readonly #a2a: NonNullable<ResolvedConfig['a2a']>;
  readonly #kek: Kek;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #nonces: NonceStore;
  readonly #dispatcher: Agent;
  /** Verification keys per peer, rebuilt when the peer's registration changes. */
  readonly #keys = new Map<string, { readonly stamp: string; readonly keys: PeerKeys }>();

  private constructor(gateway: A2aDoorDeps, opts: A2aDoorOptions, nonces: NonceStore) {
    const a2a = gateway.config.a2a;
    if (a2a === undefined) throw new TypeError('A2aDoor: the config has no a2a section');
    this.#gateway = gateway;
    this.#a2a = a2a;
    this.#kek = opts.kek;
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.timeoutMs ?? A2A_LIMITS.timeoutMs;
    this.#nonces = nonces;
    // A private pool with explicit timeouts (undici's defaults are 300 s); redirects are never followed.
    this.#dispatcher = new Agent({ connect: { timeout: this.#timeoutMs }, headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs });
  }

  /**
   * Builds the door for a gateway whose config has `a2a`. Nonces go where
   * `a2a.nonceStore` says (src/store/nonces.ts): `store` (default without Redis)
   * is a table in the SQLite store file, so a message accepted before a restart
   * is a replay after it; `redis` connects to `redis.url`, waiting at most
   * `redisTimeoutMs`; an unreachable Redis does not fail `open` (the client keeps
   * reconnecting) but every inbound message is refused (503) until it answers.
   * @throws TypeError when the config has no `a2a` section; BastionError `ERR_STORE`
   *   when the nonce table cannot be opened.
   */
  static async open(gateway: A2aDoorDeps, opts: A2aDoorOptions): Promise<A2aDoor> {
    const a2a = gateway.config.a2a;
    if (a2a === undefined) throw new TypeError('A2aDoor: the config has no a2a section');
    const nonces =
      opts.nonces ??
      (await openNonceStore(
        { kind: a2a.nonceStore, storePath: gateway.config.storePath, store: gateway.config.store, namespace: 'a2a', ...(gateway.config.redis !== undefined ? { redis: gateway.config.redis } : {}) },
        {
          redisTimeoutMs: opts.redisTimeoutMs ?? A2A_LIMITS.redisTimeoutMs,
          ...(opts.now ? { now: opts.now } : {}),
          ...(gateway.observer ? { onRedisError: (code: string) => gateway.observer?.metrics.countError('redis', code) } : {}),
        },
      ));
    return new A2aDoor(gateway, opts, nonces);
  }

  /** Whether this door serves `pathname`. */
  static serves(pathname: string): boolean {
    return pathname === '/a2a/send' || pathname === '/a2a/inbound';
  }

  /** Handles a request under `/a2a/`. Never throws on input. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ex: Exchange = {
      started: performance.now(),
      method: url.pathname === '/a2a/send' ? 'a2a.send' : 'a2a.inbound',
      agent: null,
      user: null,
      peer: null,
      detail: {},
    };
    if (!A2aDoor.serves(url.pathname)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":{"code":"ERR_A2A_INVALID","message":"not found"}}');
    }
    if (req.method !== 'POST') {
      return this.#refuse(res, ex, refuseWith('http.method', ex.method, 'method not allowed: use POST', { headers: { allow: 'POST' } }));
    }
    const refusal = ex.method === 'a2a.send' ? await this.#send(req, res, ex) : await this.#inbound(req, res, ex);
    if (refusal !== undefined) return this.#refuse(res, ex, refusal);
  }

  /** Releases the nonce store and the HTTP pool. */
  async close(): Promise<void> {
    await this.#nonces.close();
    await this.#dispatcher.close();
  }

  // --- send ---------------------------------------------------------------------------------------

  async #send(req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<Refusal | undefined> {
    const rule = 'a2a.send';
    const authn = authenticateAgent(req.headers, this.#gateway.agentKeys, ['authorization']);
    if (!authn.ok && authn.reason === 'agent.isolated') {
      ex.agent = authn.agent;
      return refuseWith('agent.isolated', 'incidents', 'agent isolated');
    }
    if (!authn.ok) {
      return authn.reason === 'auth.missing'
        ? refuseWith(authn.reason, rule, 'authentication required', { headers: { 'www-authenticate': 'Bearer realm="bastion"' } })
        : refuseWith(authn.reason, rule, 'invalid key', { headers: { 'www-authenticate': 'Bearer realm="bastion", error="invalid_token"' } });
    }
    const agent = authn.agent;
    ex.agent = agent;

    const body = await this.#readJson(req, res, ex);
    if ('refusal' in body) return body.refusal;
    const parsed = SendRequest.safeParse(body.json);
    if (!parsed.success) return invalid(firstIssue(parsed.error), rule);
    const { peer: peerName, message } = parsed.data;
    const to = parsed.data.to ?? null;
    const user = parsed.data.user ?? null;
    ex.peer = peerName;
    ex.user = user;
    Object.assign(ex.detail, { remoteAgent: to, messageId: message.messageId });
    const size = this.#sizeRefusal(body.json, rule);
    if (size !== undefined) return size;

    const allowed = mayContact(this.#a2a.agents, agent, peerName);
    if (allowed !== undefined) return allowed;
    const creds = await this.#credentials(peerName, rule);
    if (isRefusal(creds)) return creds;
    const { peer, token, signingKey } = creds;

    const envelope: A2aEnvelope = {
      v: ENVELOPE_VERSION,
      sender: this.#gateway.config.identity.issuer,
      recipient: peer.sender,
      agent,
      to,
      user,
      nonce: randomToken(24),
      iat: Math.floor(this.#now() / 1000),
      message: (body.json as { message: unknown }).message,
    };
    let jws: string;
    try {
      jws = await signEnvelope(envelope, signingKey);
    } catch {
      // Only the free-text `user` can still be outside I-JSON here (a lone surrogate); the message was checked above.
      return invalid('user: not well-formed Unicode', rule);
    }
    Object.assign(ex.detail, { nonce: envelope.nonce, kid: signingKey.kid, recipient: peer.sender });
    const { message: signed, ...fields } = envelope;
    const rpc = { jsonrpc: '2.0', id: randomId(), method: 'message/send', params: { message: signed, metadata: { bastion: { ...fields, jws } } } };

    const answer = peerResult(await timeStage('forward', () => this.#post(peer.url, rpc, token)), peerName);
    if (isRefusal(answer)) return answer;
    ex.detail.peerStatus = answer.status;
    return this.#answer(res, ex, 200, { peer: peerName, messageId: message.messageId, nonce: envelope.nonce, result: answer.result }, allow('a2a.sent', `a2a.agents.${agent}.peers`));
  }

  /**
   * Inbound: the peer whose inbound token is the request's bearer credential
   * (SHA-256 digest lookup, then a constant-time compare), else `a2a.unauthorized`
   * (`auth: missing|invalid` in the record) or `store.error`.
   */
  async #authenticatePeer(req: IncomingMessage, rule: string): Promise<StoredPeer | Refusal> {
    const unauthorized = (why: 'missing' | 'invalid'): Refusal =>
      refuseWith('a2a.unauthorized', 'peers', 'peer authentication failed', { headers: { 'www-authenticate': 'Bearer realm="bastion-a2a"' }, detail: { auth: why } });
    const token = bearer(req);
    if (token === undefined) return unauthorized('missing');
    if (token.length > MAX_PEER_TOKEN_LENGTH) return unauthorized('invalid');
    const digest = peerTokenDigest(token);
    let peer: StoredPeer | undefined;
    try {
      peer = await this.#gateway.store.getPeerByInboundDigest(digest);
    } catch {
      return refuseWith('store.error', rule, 'store unavailable', { outcome: 'error' });
    }
    // The lookup is by digest of a 256-bit token; the constant-time compare keeps a store that matched loosely from letting it through.
    if (peer === undefined || !constantTimeEqual(peer.inboundTokenDigest, digest)) return unauthorized('invalid');
    return peer;
  }

  /** Send: the registered peer, its outbound token (opened with the KEK) and our signing key. */
  async #credentials(peerName: string, rule: string): Promise<{ peer: StoredPeer; token: string; signingKey: SigningKey } | Refusal> {
    let peer: StoredPeer | undefined;
    try {
      peer = await this.#gateway.store.getPeer(peerName);
    } catch {
      return refuseWith('store.error', rule, 'store unavailable', { outcome: 'error' });
    }
    if (peer === undefined) return refuseWith('a2a.peer_unknown', 'peers', `peer ${peerName} is not registered`);
    if (peer.outboundTokenSealed === null) {
      return refuseWith('a2a.peer_no_token', `peers.${peerName}`, `peer ${peerName} has no outbound token (bastion peers token)`);
    }
    try {
      return { peer, token: openPeerToken(this.#kek, peer.name, peer.outboundTokenSealed).reveal(), signingKey: await this.#gateway.identity.signingKey() };
    } catch {
      return refuseWith('a2a.credentials', `peers.${peerName}`, 'the peer credentials or the signing key are unavailable', { outcome: 'error' });
    }
  }

  // --- inbound ------------------------------------------------------------------------------------

  async #inbound(req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<Refusal | undefined> {
    const rule = 'a2a.inbound';
    const peer = await this.#authenticatePeer(req, rule);
    if (isRefusal(peer)) return peer;
    ex.peer = peer.name;

    const body = await this.#readJson(req, res, ex);
    if ('refusal' in body) return body.refusal;
    const parsed = InboundRequest.safeParse(body.json);
    if (!parsed.success) return invalid(firstIssue(parsed.error), rule);
    const rpc = parsed.data;
    const meta = rpc.params.metadata.bastion;
    ex.user = meta.user;
    Object.assign(ex.detail, { sender: meta.sender, remoteAgent: meta.agent, nonce: meta.nonce, messageId: rpc.params.message.messageId });
    const size = this.#sizeRefusal((body.json as { params: unknown }).params, rule);
    if (size !== undefined) return size;

    // The envelope is rebuilt from the message as received (not zod's copy), so the bytes verified are the bytes delivered.
    const message = (body.json as { params: { message: unknown } }).params.message;
    const { jws, ...fields } = meta;
    const envelope: A2aEnvelope = { ...fields, message };
    const verified = await verifyEnvelope(jws, envelope, this.#keysOf(peer));
    ex.detail.kid = verified.kid;
    if (!verified.ok) {
      ex.detail.why = verified.why;
      if (verified.why === 'malformed') return invalid('params.metadata.bastion.jws: malformed', rule);
      if (verified.why === 'jwks_unavailable') {
        return refuseWith('a2a.jwks_unavailable', `peers.${peer.name}`, 'the peer\'s keys could not be fetched', { outcome: 'error' });
      }
      return refuseWith('a2a.signature', `peers.${peer.name}`, 'signature verification failed');
    }
    const claims = checkClaims(meta, peer, { issuer: this.#gateway.config.identity.issuer, maxAgeS: this.#a2a.maxAgeS, nowMs: this.#now() });
    if (claims !== undefined) return claims;

    const target = receivingAgent(this.#a2a.agents, meta.to, peer.name);
    if (isRefusal(target)) return target;
    ex.agent = target;
    // Nothing reaches an isolated agent either (incident response, src/incidents/isolation.ts).
    if (this.#gateway.agentKeys.isIsolated(target)) return refuseWith('agent.isolated', 'incidents', 'agent isolated');
    const deliver = deliverUrl(this.#a2a.agents, target);
    if (isRefusal(deliver)) return deliver;

    let fresh: boolean;
    try {
      fresh = await this.#nonces.remember(`${encodeURIComponent(meta.sender)}:${meta.nonce}`, 2 * this.#a2a.maxAgeS * 1000);
    } catch {
      return refuseWith('a2a.nonce_store', 'a2a.nonceStore', 'the nonce cache is unavailable', { outcome: 'error', headers: { 'retry-after': '1' } });
    }
    if (!fresh) return refuseWith('a2a.replay', 'a2a.nonceStore', 'message already received (nonce replayed)');

    const delivery = {
      jsonrpc: '2.0',
      id: randomId(),
      method: 'message/send',
      params: {
        message,
        metadata: { bastion: { peer: peer.name, sender: meta.sender, agent: meta.agent, user: meta.user, nonce: meta.nonce, iat: meta.iat, kid: verified.kid } },
      },
    };
    const answer = deliveryResult(await timeStage('forward', () => this.#post(deliver.href, delivery)), target);
    if (isRefusal(answer)) return answer;
    return this.#answer(res, ex, 200, { jsonrpc: '2.0', id: rpc.id, result: answer.result }, allow('a2a.delivered', `a2a.agents.${target}.receiveFrom`));
  }

  /** The verification keys of a peer, cached until its registration changes. */
  #keysOf(peer: StoredPeer): PeerKeys {
    const stamp = `${peer.createdAt}|${peer.jwksUrl ?? ''}|${peer.publicJwks ?? ''}`;
    const cached = this.#keys.get(peer.name);
    if (cached !== undefined && cached.stamp === stamp) return cached.keys;
    const keys = peerKeys(peer);
    this.#keys.set(peer.name, { stamp, keys });
    return keys;
  }

  // --- shared -------------------------------------------------------------------------------------

  /** Reads and parses the body (bounded by `maxMessageBytes` plus the envelope's room). */
  async #readJson(req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<{ json: unknown } | { refusal: Refusal }> {
    const limit = this.#a2a.maxMessageBytes + A2A_LIMITS.bodyOverheadBytes;
    const body = await readBody(req, limit, this.#gateway.config.server.bodyTimeoutMs);
    if (body === 'too_large' || body === 'timeout' || body === 'aborted') {
      res.setHeader('connection', 'close');
      if (body === 'too_large') return { refusal: refuseWith('a2a.too_large', 'a2a.maxMessageBytes', `request body over ${limit} bytes`) };
      if (body === 'timeout') return { refusal: refuseWith('body.timeout', 'server.bodyTimeoutMs', 'request body not received in time') };
      return { refusal: refuseWith('body.aborted', ex.method, 'request body aborted') };
    }
    try {
      return { json: JSON.parse(body.toString('utf8')) as unknown };
    } catch {
      return { refusal: invalid('body: not JSON', ex.method) };
    }
  }

  /** 413 when the message (as signed: canonical JSON) is over `maxMessageBytes`; 400 when it is not I-JSON. */
  #sizeRefusal(container: unknown, rule: string): Refusal | undefined {
    let bytes: number;
    try {
      bytes = messageBytes((container as { message: unknown }).message);
    } catch {
      return invalid('message: not I-JSON (a lone surrogate or a number out of range)', rule);
    }
    if (bytes <= this.#a2a.maxMessageBytes) return undefined;
    return refuseWith('a2a.too_large', 'a2a.maxMessageBytes', `message over ${this.#a2a.maxMessageBytes} bytes`);
  }

  /**
   * POSTs JSON to `url` (with our bearer token for a peer), reading at most
   * `maxMessageBytes` plus the envelope's room of the answer. Never throws.
   */
  async #post(url: string, body: unknown, token?: string): Promise<PostAnswer> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    try {
      const res = await request(url, { method: 'POST', headers, body: JSON.stringify(body), dispatcher: this.#dispatcher, signal: AbortSignal.timeout(this.#timeoutMs) });
      const text = await readCapped(res.body, this.#a2a.maxMessageBytes + A2A_LIMITS.bodyOverheadBytes);
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, json };
    } catch (err) {
      if (err instanceof TooLarge) return { error: 'answer_too_large' };
      return { error: errorCode(err) };
    }
  }

  /** Answers 200 (or `status`) with `payload`, after the audit record is durable; if it cannot be written, answers 500 instead. */
  async #answer(res: ServerResponse, ex: Exchange, status: number, payload: unknown, decision: Decision): Promise<undefined> {
    const written = await this.#record(ex, decision, 'ok', status);
    if (!written) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'ERR_AUDIT_WRITE', message: 'the audit record could not be written' } }));
      return undefined;
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(payload));
    return undefined;
  }

  async #refuse(res: ServerResponse, ex: Exchange, r: Refusal): Promise<void> {
    Object.assign(ex.detail, r.detail);
    ex.detail.code = r.code;
    await this.#record(ex, r.decision, r.outcome ?? 'denied', r.status);
    if (res.headersSent) return void res.end();
    res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
    res.end(JSON.stringify({ error: { code: r.code, message: r.message, ...r.extra } }));
  }

  /** Writes the exchange's one audit record; false when it could not be written. */
  async #record(ex: Exchange, decision: Decision, outcome: AuditEvent['outcome'], status: number): Promise<boolean> {
    const event: AuditEvent = {
      time: new Date(Date.now() - (performance.now() - ex.started)).toISOString(),
      door: 'a2a',
      agent: ex.agent,
      user: ex.user,
      method: ex.method,
      target: ex.peer,
      decision,
      outcome,
      durationMs: Math.round((performance.now() - ex.started) * 1000) / 1000,
      detail: { status, peer: ex.peer, ...ex.detail },
    };
    return this.#gateway.auditStep.durable(event);
  }
}

/** The bearer credential of `Authorization: Bearer <token>` (the kernel's credential parser), or undefined. */
function bearer(req: IncomingMessage): string | undefined {
  const p = presentedKey(req.headers, ['authorization']);
  return p.kind === 'key' && p.scheme === 'bearer' ? p.key : undefined;
}

/** Reads a response body as UTF-8, at most `max` bytes. @throws TooLarge. */
async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > max) {
      body.destroy();
      throw new TooLarge();
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** A short, non-secret name for a network failure (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, `TimeoutError`). */
function errorCode(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 3 && typeof e === 'object' && e !== null; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error && /^[A-Za-z]{1,64}$/.test(err.name) ? err.name : 'network';
}
