/**
 * Shared fixtures of the verify tests: a fresh Ed25519 key pair with its public
 * JWK, and a request signed the way Bastion signs (context, content-digest,
 * RFC 9421 signature labelled `bastion`).
 */
import { request as httpRequest } from 'node:http';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import {
  CONTEXT_HEADER,
  contentDigest,
  createSignature,
  serializeContext,
  type RequestParts,
  type SignatureParams,
  type SignedContext,
} from '../../src/verify/index.ts';

export interface TestKey {
  readonly kid: string;
  readonly jwk: JWK;
  readonly sign: (base: Uint8Array) => Promise<Uint8Array>;
}

let keyCount = 0;

/** A fresh Ed25519 key: its public JWK (with `kid`, `alg: EdDSA`, `use: sig`) and a signer. */
export async function generateTestKey(kid = `k-${process.pid}-${keyCount++}`): Promise<TestKey> {
  const pair = await generateKeyPair('Ed25519', { extractable: true });
  const pub = await exportJWK(pair.publicKey);
  const jwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: pub.x!, kid, alg: 'EdDSA', use: 'sig' };
  return {
    kid,
    jwk,
    sign: async (base) => new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, base as Uint8Array<ArrayBuffer>)),
  };
}

export const BASE_CONTEXT: SignedContext = {
  agent: 'support',
  user: 'alice',
  conversation: 'c-17',
  platform: 'acme',
  request: 'r_8f3k',
  tool: 'kb__search',
  time: 1_732_200_000,
};

/** The origin the tests' tool server is called at (the default URL of {@link signedRequest}). */
export const ORIGIN = 'https://tools.example.com';

/** Fixed clock of the tests, in ms. */
export const NOW_MS = 1_732_200_000_000;
export const NOW_S = NOW_MS / 1000;

let nonceCount = 0;
export function freshNonce(): string {
  return `n-${process.pid}-${Date.now()}-${nonceCount++}`;
}

export interface SignedRequestOptions {
  readonly method?: string;
  readonly url?: string;
  readonly body?: Uint8Array | string;
  readonly headers?: Record<string, string>;
  readonly context?: SignedContext;
  /** Context header value as is (overrides `context`). */
  readonly rawContext?: string;
  readonly components?: readonly string[];
  readonly params?: Partial<SignatureParams>;
  readonly label?: string;
  /** Content-Digest value as is (default: the body's sha-256). */
  readonly contentDigest?: string;
}

/** A request signed like Bastion signs it, as parts. */
export async function signedRequest(key: TestKey, o: SignedRequestOptions = {}): Promise<RequestParts & { headers: Record<string, string> }> {
  const body = typeof o.body === 'string' ? new TextEncoder().encode(o.body) : (o.body ?? new TextEncoder().encode('{"q":"refund policy"}'));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...o.headers,
    [CONTEXT_HEADER]: o.rawContext ?? serializeContext(o.context ?? BASE_CONTEXT),
    'content-digest': o.contentDigest ?? (await contentDigest(body)),
  };
  const req = { method: o.method ?? 'POST', url: o.url ?? 'https://tools.example.com/mcp?session=s1', headers };
  const params: SignatureParams = {
    created: Math.floor(NOW_S),
    expires: Math.floor(NOW_S) + 30,
    nonce: freshNonce(),
    keyid: key.kid,
    alg: 'ed25519',
    tag: 'bastion',
    ...o.params,
  };
  const sig = await createSignature(req, {
    label: o.label ?? 'bastion',
    components: o.components ?? ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER],
    params,
    sign: key.sign,
  });
  return { ...req, headers: { ...headers, ...sig }, body };
}

/**
 * POSTs `req` over node:http to `origin` (`http://host:port`, an IPv6 host in
 * brackets) at `path`, sent as written, with `Host` set to `host` when given
 * (node:http lets it be anything). Resolves with the status and the JSON body;
 * rejects on a socket error or a body that is not JSON.
 */
export function postSigned(origin: string, path: string, req: { headers: Record<string, string>; body: string }, host?: string): Promise<[number, unknown]> {
  return new Promise((resolve, reject) => {
    const u = new URL(origin);
    const r = httpRequest(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path, method: 'POST', setHost: host === undefined, headers: { ...req.headers, ...(host !== undefined ? { host } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve([res.statusCode ?? 0, JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown]);
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}
