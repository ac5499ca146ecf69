/**
 * Agent-to-agent tests: in-process Bastion instances (config on disk, SQLite
 * store, the A2A door on a loopback port), the local agents' `deliver`
 * endpoints, and a hand-rolled peer that signs with its own Ed25519 key using
 * jose and canonicalize directly (not Bastion's signing code), so what is
 * verified is the wire format, not Bastion agreeing with itself.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { A2aDoor } from '../../src/a2a/door.ts';
import { registerPeer } from '../../src/a2a/peers.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { loadConfig } from '../../src/config/load.ts';
import { loadVaultKey } from '../../src/vault/kek.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { Secret } from '../../src/util/secret.ts';
import type { Kek } from '../../src/vault/kek.ts';
import { kekKeyProtector } from '../../src/vault/key-protector.ts';
import { TEST_MASTER_KEY } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';
import { freePort } from '../helpers/mcp.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

export { TEST_MASTER_KEY };

/** One local agent of a test instance. */
export interface AgentSpec {
  readonly key: string;
  readonly peers?: readonly string[];
  readonly receiveFrom?: readonly string[];
  /** The agent's deliver URL. */
  readonly deliver?: string;
}

export interface InstanceSpec {
  readonly issuer: string;
  readonly agents: Readonly<Record<string, AgentSpec>>;
  readonly maxAgeS?: number;
  readonly maxMessageBytes?: number;
  readonly redis?: { readonly url: string; readonly keyPrefix: string };
  /** `a2a.nonceStore` (default: the config's default). */
  readonly nonceStore?: 'store' | 'redis' | 'memory';
  /** Clock of the door, epoch ms. */
  readonly now?: () => number;
  /** Folder of an earlier instance to start again on (its config and store); default: a new one. */
  readonly dir?: string;
}

export interface Instance {
  readonly dir: string;
  readonly configFile: string;
  readonly dbFile: string;
  readonly gateway: Gateway;
  readonly door: A2aDoor;
  readonly running: RunningServer;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly kek: Kek;
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

/** The bastion.yaml of an instance (ports 0, no egress proxy). */
export function instanceYaml(spec: InstanceSpec): string {
  const lines = [
    'version: 1',
    'server:',
    '  listen: 127.0.0.1:0',
    '  egress: false',
    'store:',
    '  sqlite: ./bastion.db',
    'identity:',
    `  issuer: ${JSON.stringify(spec.issuer)}`,
    'agents:',
  ];
  for (const name of Object.keys(spec.agents)) lines.push(`  ${name}:`, `    keys: [env:KEY_${name.toUpperCase()}]`);
  lines.push('a2a:');
  if (spec.maxAgeS !== undefined) lines.push(`  maxAgeS: ${spec.maxAgeS}`);
  if (spec.maxMessageBytes !== undefined) lines.push(`  maxMessageBytes: ${spec.maxMessageBytes}`);
  if (spec.nonceStore !== undefined) lines.push(`  nonceStore: ${spec.nonceStore}`);
  lines.push('  agents:');
  for (const [name, a] of Object.entries(spec.agents)) {
    lines.push(`    ${name}:`, `      peers: ${JSON.stringify(a.peers ?? [])}`, `      receiveFrom: ${JSON.stringify(a.receiveFrom ?? [])}`);
    if (a.deliver !== undefined) lines.push(`      deliver: ${JSON.stringify(a.deliver)}`);
  }
  if (spec.redis !== undefined) lines.push(`redis: { url: ${JSON.stringify(spec.redis.url)}, keyPrefix: ${JSON.stringify(spec.redis.keyPrefix)} }`);
  return `${lines.join('\n')}\n`;
}

/** The environment an instance's config resolves against (agent keys, the test KEK). */
export function instanceEnv(spec: InstanceSpec): Record<string, string> {
  const env: Record<string, string> = { BASTION_MASTER_KEY: TEST_MASTER_KEY };
  for (const [name, a] of Object.entries(spec.agents)) env[`KEY_${name.toUpperCase()}`] = a.key;
  return env;
}

/** Starts an in-process instance with the A2A door on 127.0.0.1:0. */
export async function startInstance(spec: InstanceSpec): Promise<Instance> {
  const dir = spec.dir ?? tempDir();
  const configFile = join(dir, 'bastion.yaml');
  writeFileSync(configFile, instanceYaml(spec));
  const env = instanceEnv(spec);
  const { config } = await loadConfig(configFile, { env, secrets: 'strict' });
  const kek = await loadVaultKey(config, env);
  const { gateway } = await Gateway.open(config, { keyProtector: kekKeyProtector(kek) });
  const door = await A2aDoor.open(gateway, { kek, ...(spec.now ? { now: spec.now } : {}) });
  const running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 }, { a2a: door });
  return {
    dir,
    configFile,
    dbFile: join(dir, 'bastion.db'),
    gateway,
    door,
    running,
    base: `http://${running.url.host}`,
    kek,
    env,
    close: async () => {
      await running.close();
      await door.close();
      await gateway.close();
    },
  };
}

/** Registers `other` as peer `name` of `self` (its JWKS URL) with `outbound` as the token `self` presents; returns the inbound token. */
export async function addPeer(self: Instance, name: string, other: { base: string; issuer: string }, outbound?: string): Promise<string> {
  const added = await registerPeer(self.gateway.store, self.kek, {
    name,
    url: `${other.base}/a2a/inbound`,
    sender: other.issuer,
    jwksUrl: `${other.base}/.well-known/jwks.json`,
    ...(outbound !== undefined ? { outboundToken: new Secret(outbound) } : {}),
  });
  if (added === 'exists') throw new Error(`peer ${name} exists`);
  return added.inboundToken.reveal();
}

/** A local agent's endpoint: records what Bastion delivered and answers as an A2A server. */
export interface DeliverEndpoint {
  readonly url: string;
  readonly received: { headers: IncomingMessage['headers']; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function startDeliver(name: string): Promise<DeliverEndpoint> {
  const received: DeliverEndpoint['received'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      received.push({ headers: req.headers, body });
      const params = body.params as { message: { messageId: string; parts: { kind: string; text?: string }[] } };
      const text = params.message.parts.map((p) => p.text ?? '').join('');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { kind: 'message', role: 'agent', messageId: `reply-${params.message.messageId}`, parts: [{ kind: 'text', text: `${name} got: ${text}` }] } }));
    });
  });
  const port = await listenLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/agent`,
    received,
    close: () => closeServer(server),
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export const deadPort = freePort;

/** POSTs JSON; resolves with status and parsed body. */
export async function post(url: string, body: unknown, token?: string, extraHeaders: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...extraHeaders },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/** An A2A text message. */
export function textMessage(text: string, messageId = `m-${Math.random().toString(36).slice(2)}`): Record<string, unknown> {
  return { kind: 'message', role: 'user', messageId, parts: [{ kind: 'text', text }] };
}

/** A peer outside Bastion: its own Ed25519 key, signing by the documented wire format. */
export interface CraftedPeer {
  readonly sender: string;
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly privateKey: CryptoKey;
}

export async function craftedPeer(sender: string, kid = 'crafted-1'): Promise<CraftedPeer> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(publicKey);
  return { sender, kid, publicJwk: { ...jwk, kid }, privateKey };
}

/** Fields of an inbound request a test may override. */
export interface CraftOptions {
  readonly recipient: string;
  readonly agent?: string;
  readonly to?: string | null;
  readonly user?: string | null;
  readonly nonce?: string;
  /** Seconds. */
  readonly iat?: number;
  readonly message?: Record<string, unknown>;
  /** Sign with this key instead (a key not the peer's). */
  readonly signWith?: CryptoKey;
  readonly kid?: string;
  readonly header?: Record<string, unknown>;
  readonly sender?: string;
}

/** A JSON-RPC `message/send` body signed by `peer`, as another implementation would build it. */
export async function craftInbound(peer: CraftedPeer, o: CraftOptions): Promise<Record<string, unknown>> {
  const message = o.message ?? textMessage('hello from outside');
  const fields = {
    v: 1,
    sender: o.sender ?? peer.sender,
    recipient: o.recipient,
    agent: o.agent ?? 'outsider',
    to: o.to === undefined ? null : o.to,
    user: o.user === undefined ? null : o.user,
    nonce: o.nonce ?? Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString('base64url'),
    iat: o.iat ?? Math.floor(Date.now() / 1000),
  };
  const payload = new TextEncoder().encode(canonicalize({ ...fields, message }) as string);
  const compact = await new CompactSign(payload)
    .setProtectedHeader({ alg: 'EdDSA', kid: o.kid ?? peer.kid, typ: 'bastion-a2a+jws', ...o.header } as never)
    .sign(o.signWith ?? peer.privateKey);
  const [h, , s] = compact.split('.');
  return { jsonrpc: '2.0', id: 1, method: 'message/send', params: { message, metadata: { bastion: { ...fields, jws: `${h}..${s}` } } } };
}

/** The audit records of an instance with door `a2a`, oldest first. */
export async function a2aRecords(inst: Instance): Promise<AuditRecord[]> {
  await inst.gateway.audit.flush();
  const all = await inst.gateway.store.readAudit(1, 100_000);
  return all.filter((r) => r.door === 'a2a');
}

/** The raw bytes of the instance's SQLite files (db, WAL). */
export function storeBytes(inst: Instance): Buffer {
  const parts: Buffer[] = [];
  for (const f of [inst.dbFile, `${inst.dbFile}-wal`]) {
    try {
      parts.push(readFileSync(f));
    } catch {
      // no WAL yet
    }
  }
  return Buffer.concat(parts);
}
