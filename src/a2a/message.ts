/**
 * Agent-to-agent wire shapes: the A2A protocol's `Message` (v0.3 JSON-RPC
 * binding: `kind` discriminators, `role` `user` | `agent`), the body an agent
 * posts to `POST /a2a/send`, the JSON-RPC `message/send` request one Bastion
 * posts to another's `POST /a2a/inbound`, and the envelope that is signed.
 *
 * Pure: validation and the canonical signing input, no I/O. What departs from
 * the A2A specification is listed in docs/a2a.md.
 */
import { z } from 'zod';
import { canonicalJson } from '../audit/canonical.ts';

/** Local agent names, as in `agents` and `a2a.agents`. */
export const AGENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Peer names, as `bastion peers add NAME` and `a2a.agents.*.peers` spell them. */
export const PEER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** The `typ` of the protected header (RFC 7515 §4.1.9; explicit typing per RFC 8725 §3.11). */
export const A2A_JWS_TYP = 'bastion-a2a+jws';
/** Version of the signed envelope's layout. */
export const ENVELOPE_VERSION = 1;

const Id = z.string().min(1).max(256);
const Metadata = z.record(z.string().max(256), z.unknown());
const NoControl = /^[^\u0000-\u001f\u007f]{1,256}$/;

const TextPart = z.strictObject({ kind: z.literal('text'), text: z.string(), metadata: Metadata.optional() });
const DataPart = z.strictObject({ kind: z.literal('data'), data: z.record(z.string(), z.unknown()), metadata: Metadata.optional() });

/**
 * An A2A `Message` (A2A v0.3 §6.4) with text and data parts. File parts are not
 * relayed: a `uri` would make the receiving agent fetch a URL the sender chose.
 */
export const A2aMessage = z.strictObject({
  kind: z.literal('message'),
  role: z.enum(['user', 'agent']),
  parts: z
    .array(z.discriminatedUnion('kind', [TextPart, DataPart], { error: 'must be a text or data part (kind "text" or "data"; file parts are not relayed)' }))
    .min(1)
    .max(256),
  messageId: Id,
  contextId: Id.optional(),
  taskId: Id.optional(),
  referenceTaskIds: z.array(Id).max(64).optional(),
  extensions: z.array(z.string().min(1).max(2048)).max(64).optional(),
  metadata: Metadata.optional(),
});
export type A2aMessage = z.infer<typeof A2aMessage>;

/** Body of `POST /a2a/send`. */
export const SendRequest = z.strictObject({
  peer: z.string().regex(PEER_NAME, 'must be a registered peer name'),
  to: z.string().regex(AGENT_NAME, 'must be an agent name (1-64 of A-Z a-z 0-9 _ -)').optional(),
  user: z.string().regex(NoControl, 'must be 1-256 characters without control characters').optional(),
  message: A2aMessage,
});

/** The fields of the signed envelope that travel beside the message, in `params.metadata.bastion`. */
const BastionMetadata = z.strictObject({
  v: z.literal(ENVELOPE_VERSION),
  sender: z.string().min(1).max(512),
  recipient: z.string().min(1).max(512),
  agent: z.string().regex(AGENT_NAME, 'must be an agent name'),
  to: z.string().regex(AGENT_NAME, 'must be an agent name').nullable(),
  user: z.string().regex(NoControl, 'must be 1-256 characters without control characters').nullable(),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'must be 16-128 base64url characters'),
  iat: z.number().int().nonnegative(),
  jws: z.string().max(4096).regex(/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/, 'must be a compact JWS with a detached payload (header..signature)'),
});

/** Body of `POST /a2a/inbound`: a JSON-RPC 2.0 `message/send` request (A2A v0.3 §7.1). */
export const InboundRequest = z.strictObject({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.string().max(256), z.number().int()]),
  method: z.literal('message/send'),
  params: z.strictObject({
    message: A2aMessage,
    metadata: z.strictObject({ bastion: BastionMetadata }),
  }),
});
export type InboundRequest = z.infer<typeof InboundRequest>;

/**
 * What is signed: the RFC 8785 canonical JSON of this object is the JWS payload
 * (detached, RFC 7515 Appendix F). `sender` is the signing instance's
 * `identity.issuer`, `recipient` the receiving instance's; `iat` in seconds.
 */
export interface A2aEnvelope {
  readonly v: typeof ENVELOPE_VERSION;
  readonly sender: string;
  readonly recipient: string;
  /** The local agent that sent it (on the sender's side). */
  readonly agent: string;
  /** The agent it is for on the recipient's side; null: the one agent there that receives from this peer. */
  readonly to: string | null;
  /** The end user the sending agent acted for, or null. */
  readonly user: string | null;
  readonly nonce: string;
  readonly iat: number;
  readonly message: unknown;
}

/** The JWS payload bytes of an envelope. @throws TypeError when the message is not I-JSON (lone surrogate, ...). */
export function envelopePayload(envelope: A2aEnvelope): Uint8Array {
  return new TextEncoder().encode(canonicalJson(envelope));
}

/** The size of a message as it is signed (its canonical JSON), in bytes. @throws TypeError when not I-JSON. */
export function messageBytes(message: unknown): number {
  return Buffer.byteLength(canonicalJson(message), 'utf8');
}

/** The first problem zod found, as `field: what` (the field path joined with dots: `message.parts.0.kind`). */
export function firstIssue(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
  // Never echo the input: zod's messages name types and limits, not values.
  return `${path === '' ? 'body' : path}: ${issue.message}`;
}
