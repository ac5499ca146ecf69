/**
 * `bastion/verify`: for tool servers that receive requests from Bastion, and for
 * Bastion's own signer. HTTP Message Signatures (RFC 9421) with Ed25519,
 * Content-Digest (RFC 9530), the signed `Bastion-Context`, replay stores, and
 * per-call tokens. Stands alone: depends only on `jose`, `structured-headers` and
 * Node built-ins (`node:sqlite` loaded only by `SqliteReplayStore`).
 */
export { VerifyError, type VerifyErrorCode, type CallTokenFailure, type VerifyErrorOptions } from './errors.ts';
export { contentDigest, checkContentDigest } from './digest.ts';
export { CONTEXT_HEADER, serializeContext, parseContext, type SignedContext } from './context.ts';
export { signatureBase, parseComponentId, type SignableRequest, type SignatureParams } from './signature-base.ts';
export { createSignature, type CreateSignatureOptions, type SignatureHeaders } from './sign.ts';
export { type KeySourceOptions } from './keys.ts';
export {
  verifyParts,
  verifyMessageSignature,
  DEFAULT_REQUIRED_COMPONENTS,
  BASTION_TAG,
  type VerifyOptions,
  type VerifiedRequest,
  type VerifiedSignature,
  type RequestParts,
} from './verify.ts';
export {
  verifyRequest,
  verifyNodeRequest,
  bastionMiddleware,
  type AdapterOptions,
  type NodeVerifyOptions,
  type BastionIncomingMessage,
} from './adapters.ts';
export { verifyCallToken, type CallTokenClaims, type CallTokenOptions } from './call-token.ts';
export { MemoryReplayStore, RedisReplayStore, ReplayStoreError, type ReplayStore, type MemoryReplayStoreOptions, type RedisReplayStoreOptions, type RedisSetNx } from './replay.ts';
export { SqliteReplayStore, type SqliteReplayStoreOptions } from './sqlite-replay.ts';
