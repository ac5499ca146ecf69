/**
 * The signing half of RFC 9421 (what Bastion does): build the signature base,
 * have the caller's key sign it, and return the two header values to add.
 */
import { serializeDictionary, type InnerList } from 'structured-headers';
import { parseComponentId, signatureBase, signatureParamsMap, type SignableRequest, type SignatureParams } from './signature-base.ts';

/** Options of {@link createSignature}. */
export interface CreateSignatureOptions {
  /** Signature label (RFC 9421 §4), e.g. `bastion`: a Structured Fields key (lower case). */
  readonly label: string;
  /** Covered components, in order (see `signatureBase`). */
  readonly components: readonly string[];
  /** Signature parameters; times in seconds. */
  readonly params: SignatureParams;
  /** Signs the UTF-8 bytes of the signature base; returns the raw 64-byte Ed25519 signature (RFC 8032 §5.1.6). */
  readonly sign: (base: Uint8Array) => Uint8Array | Promise<Uint8Array>;
}

/** The two header values to add to the request (RFC 9421 §4.1, §4.2). */
export interface SignatureHeaders {
  readonly 'signature-input': string;
  readonly signature: string;
}

/**
 * Signs `req` (RFC 9421 §3.1): returns `{ 'signature-input': 'label=(...);created=...',
 * signature: 'label=:<base64>:' }`. The caller adds both headers, replacing any
 * it had. Covered headers (e.g. `content-digest`, `bastion-context`) must already be in `req.headers`.
 * @throws VerifyError `missing_component` (a covered header is absent), `malformed`
 *   (bad component); TypeError for a bad label or when `sign` returns something other than bytes;
 *   whatever `sign` throws.
 */
export async function createSignature(req: SignableRequest, opts: CreateSignatureOptions): Promise<SignatureHeaders> {
  const { base, signatureParams } = signatureBase(req, opts.components, opts.params);
  const sig = await opts.sign(new TextEncoder().encode(base));
  if (!(sig instanceof Uint8Array)) throw new TypeError('createSignature: sign() must return a Uint8Array');
  const inner: InnerList = [opts.components.map(parseComponentId), signatureParamsMap(opts.params)];
  let headers: SignatureHeaders;
  try {
    headers = {
      'signature-input': serializeDictionary(new Map([[opts.label, inner]])),
      signature: serializeDictionary(new Map([[opts.label, [sig, new Map()]]])),
    };
  } catch (err) {
    throw new TypeError('createSignature: label is not a structured fields key', { cause: err });
  }
  // The member must be exactly what was signed as @signature-params (RFC 9421 §4.1).
  if (headers['signature-input'] !== `${opts.label}=${signatureParams}`) throw new TypeError('createSignature: signature-input mismatch');
  return headers;
}
