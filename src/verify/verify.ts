/**
 * The verifying half of RFC 9421 for tool servers: check Bastion's signature
 * over a request, its freshness, the body's Content-Digest (RFC 9530), the
 * signed context, and that the nonce is seen once.
 */
import { parseDictionary, serializeInnerList, type Dictionary, type InnerList, type Item } from 'structured-headers';
import { CONTEXT_HEADER, parseContext, type SignedContext } from './context.ts';
import { checkContentDigest } from './digest.ts';
import { VerifyError } from './errors.ts';
import { compileKeySource, type KeyResolver, type KeySourceOptions } from './keys.ts';
import type { ReplayStore } from './replay.ts';
import { SqliteReplayStore } from './sqlite-replay.ts';
import { buildSignatureBase, checkComponentId, parseComponentId, serializeComponentId, type ComponentId, type SignableRequest } from './signature-base.ts';

/** Components a Bastion signature must cover unless `requiredComponents` says otherwise. */
export const DEFAULT_REQUIRED_COMPONENTS: readonly string[] = ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER];
/** The `tag` parameter Bastion sets on its signatures. */
export const BASTION_TAG = 'bastion';

/** Options of {@link verifyParts} and the adapters. Times: seconds unless named `Ms`. */
export interface VerifyOptions extends KeySourceOptions {
  /**
   * Required. The origin Bastion calls this tool server at: scheme, host and port,
   * e.g. `https://tools.example:8443` (no path). The target URI a signature covers
   * is checked against this origin, never against the request's `Host` header, so
   * a request signed for another tool server is refused here whatever `Host` says.
   * Parsed with `new URL` (host lower-cased, a default port dropped, IPv6 in brackets).
   * Missing or not an http(s) origin: `VerifyError('origin_required')`.
   */
  readonly origin: string | URL;
  /** Oldest accepted `created`, in seconds before now (default 60); `expires` in the past is refused too. */
  readonly maxAgeS?: number;
  /** Tolerated clock difference, in seconds (default 5): `created` further in the future is `not_yet_valid`. */
  readonly clockSkewS?: number;
  /**
   * Where nonces are remembered: a `SqliteReplayStore`, a `RedisReplayStore` (several
   * hosts), or a `MemoryReplayStore` (lost at restart). Key `${keyid}:${nonce}`, kept
   * `(maxAgeS + clockSkewS) * 1000` ms. Give this or `replayStorePath`; with neither,
   * every request is refused `replay_store_required` (there is no silent in-memory default).
   */
  readonly replayStore?: ReplayStore;
  /**
   * Shorthand for `replayStore: new SqliteReplayStore({ path })`: a SQLite file on
   * persistent storage (one store per path per process). Not together with `replayStore`.
   */
  readonly replayStorePath?: string;
  /** Components the signature must cover (default `['@method', '@target-uri', 'content-digest', 'bastion-context']`). */
  readonly requiredComponents?: readonly string[];
  /** Label of the signature to check; default: the first with `tag="bastion"`, else the first. */
  readonly label?: string;
  /** Clock, in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

/** A request whose signature checked out. Times in seconds. */
export interface VerifiedRequest {
  /** The signed `Bastion-Context`. */
  readonly context: SignedContext;
  /** `keyid` of the key that signed. */
  readonly keyid: string;
  readonly created: number;
  readonly expires?: number;
  readonly nonce: string;
  /** Label of the checked signature. */
  readonly label: string;
  /** Covered components, serialized identifiers without quotes for plain names (e.g. `@method`, `content-type;sf`). */
  readonly components: string[];
}

/** What {@link verifyMessageSignature} establishes: a valid, fresh signature; no context or replay check. */
export interface VerifiedSignature {
  readonly keyid: string;
  readonly created: number;
  readonly expires?: number;
  readonly nonce?: string;
  readonly alg?: string;
  readonly tag?: string;
  readonly label: string;
  readonly components: string[];
}

/** A request as parts: method, absolute target URI, headers, and the exact body bytes (empty when none). */
export type RequestParts = SignableRequest & { readonly body: Uint8Array };

interface Compiled {
  readonly resolveKey: KeyResolver;
  /** The expected origin, serialized by `URL#origin` (`https://tools.example:8443`). */
  readonly origin: string;
  readonly maxAgeS: number;
  readonly clockSkewS: number;
  /** Undefined: none configured; {@link verifyParts} refuses `replay_store_required`. */
  readonly replayStore: ReplayStore | undefined;
  readonly required: readonly ComponentId[];
  readonly label: string | undefined;
  readonly now: () => number;
}

/** Stores opened from `replayStorePath`, one per resolved path per process. */
const storesByPath = new Map<string, SqliteReplayStore>();
/** Options are compiled once per options object (keys imported, components parsed). */
const compiledCache = new WeakMap<object, Compiled>();
/** Longest accepted nonce, in characters. */
const MAX_NONCE_CHARS = 256;
/** RFC 9421 §3.3.6: an Ed25519 signature is 64 bytes. */
const ED25519_SIG_BYTES = 64;

function seconds(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`verify: ${name} must be a non-negative number (seconds)`);
  return v;
}

/**
 * The expected origin of this tool server, serialized (`new URL(origin).origin`):
 * an absolute http(s) URL with nothing after the authority but an optional `/`.
 * @throws VerifyError `origin_required` when missing or not such an origin.
 */
export function compileOrigin(origin: unknown): string {
  if (origin === undefined || origin === null || origin === '') {
    throw new VerifyError('origin_required', 'verify: origin is required (the scheme, host and port Bastion calls this server at)');
  }
  if (typeof origin !== 'string' && !(origin instanceof URL)) throw new VerifyError('origin_required', 'verify: origin must be a string or a URL');
  let url: URL;
  try {
    url = new URL(origin);
  } catch (err) {
    throw new VerifyError('origin_required', 'verify: origin is not an absolute URL', { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new VerifyError('origin_required', 'verify: origin must be http or https');
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new VerifyError('origin_required', 'verify: origin must be scheme://host[:port] only (no path, query or credentials)');
  }
  return url.origin;
}

function replayStoreOf(opts: VerifyOptions): ReplayStore | undefined {
  if (opts.replayStorePath === undefined) return opts.replayStore;
  if (opts.replayStore !== undefined) throw new TypeError('verify: give replayStore or replayStorePath, not both');
  if (typeof opts.replayStorePath !== 'string' || opts.replayStorePath === '') throw new TypeError('verify: replayStorePath must be a non-empty string');
  let store = storesByPath.get(opts.replayStorePath);
  if (store === undefined) {
    store = new SqliteReplayStore({ path: opts.replayStorePath });
    storesByPath.set(opts.replayStorePath, store);
  }
  return store;
}

/**
 * Validates and compiles verifier options (done once per options object; the
 * adapters call it when created, so bad options fail at startup).
 * @throws VerifyError `origin_required` (no usable `origin`); TypeError naming
 *   another bad option; ReplayStoreError when `replayStorePath` cannot be opened.
 */
export function compileVerifyOptions(opts: VerifyOptions): Compiled {
  const hit = compiledCache.get(opts);
  if (hit !== undefined) return hit;
  let required: ComponentId[];
  try {
    required = (opts.requiredComponents ?? DEFAULT_REQUIRED_COMPONENTS).map(parseComponentId);
  } catch (err) {
    throw new TypeError('verify: requiredComponents holds an unsupported component', { cause: err });
  }
  if (opts.label !== undefined && (typeof opts.label !== 'string' || !/^[a-z*][a-z0-9_\-.*]*$/.test(opts.label))) {
    throw new TypeError('verify: label must be a structured fields key');
  }
  const compiled: Compiled = {
    origin: compileOrigin(opts.origin),
    resolveKey: compileKeySource(opts),
    maxAgeS: seconds('maxAgeS', opts.maxAgeS, 60),
    clockSkewS: seconds('clockSkewS', opts.clockSkewS, 5),
    replayStore: replayStoreOf(opts),
    required,
    label: opts.label,
    now: opts.now ?? Date.now,
  };
  compiledCache.set(opts, compiled);
  return compiled;
}

function header(req: SignableRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.toLowerCase() !== name || v === undefined) continue;
    return typeof v === 'string' ? v : v.join(', ');
  }
  return undefined;
}

function parseSignatureDict(value: string, field: string): Dictionary {
  try {
    return parseDictionary(value);
  } catch (err) {
    throw new VerifyError('malformed', `${field}: not a structured dictionary`, { cause: err });
  }
}

function pickLabel(inputs: Dictionary, wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (!inputs.has(wanted)) throw new VerifyError('missing_signature', 'signature-input: no signature with that label');
    return wanted;
  }
  for (const [label, member] of inputs) {
    if (member[1].get('tag') === BASTION_TAG) return label;
  }
  const first = inputs.keys().next();
  if (first.done === true) throw new VerifyError('missing_signature', 'signature-input: empty');
  return first.value;
}

interface ParsedParams {
  created: number;
  expires?: number;
  nonce?: string;
  keyid: string;
  alg?: string;
  tag?: string;
}

/** RFC 9421 §2.3 parameters, strictly: known names and types only. */
function parseParams(inner: InnerList): ParsedParams {
  const out: Partial<ParsedParams> = {};
  for (const [k, v] of inner[1]) {
    switch (k) {
      case 'created':
      case 'expires':
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new VerifyError('malformed', `signature-input: ${k} is not an integer`);
        out[k] = v;
        break;
      case 'nonce':
      case 'keyid':
      case 'alg':
      case 'tag':
        if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NONCE_CHARS) throw new VerifyError('malformed', `signature-input: ${k} is not a string`);
        out[k] = v;
        break;
      default:
        throw new VerifyError('malformed', 'signature-input: unknown parameter');
    }
  }
  if (out.created === undefined) throw new VerifyError('malformed', 'signature-input: created is missing');
  if (out.keyid === undefined) throw new VerifyError('malformed', 'signature-input: keyid is missing');
  return out as ParsedParams;
}

function displayComponent(id: ComponentId): string {
  const s = serializeComponentId(id);
  // `"@method"` → `@method`, `"content-type";sf` → `content-type;sf`
  const end = s.indexOf('"', 1);
  return s.slice(1, end) + s.slice(end + 1);
}

/**
 * Verifies one RFC 9421 signature of a request (§3.2) without the Bastion-specific
 * checks (signed context, nonce): the target URI is on `origin` → parse
 * Signature-Input/Signature → label → covered components include
 * `requiredComponents` and `@target-uri` or `@authority` → `alg` is `ed25519` when
 * present → key by `keyid` → Ed25519 signature over the rebuilt base →
 * `created`/`expires` window → Content-Digest against the body when
 * `content-digest` is covered. Needs no replay store.
 * Useful for checking RFC test vectors or signatures from other signers.
 * @throws VerifyError `origin_required`, `wrong_origin`, `missing_signature`, `malformed`,
 *   `missing_component`, `bad_alg`, `unknown_key`, `jwks_unavailable`, `bad_signature`,
 *   `expired`, `not_yet_valid`, `digest_mismatch`; TypeError for invalid options.
 */
export async function verifyMessageSignature(req: RequestParts, opts: VerifyOptions): Promise<VerifiedSignature> {
  return (await checkSignature(req, compileVerifyOptions(opts), false)).sig;
}

/**
 * The request's target URI must be on the expected origin (`URL#origin` on both
 * sides, so `HTTPS://Tools.Example:443` equals `https://tools.example`).
 * @throws VerifyError `malformed` (not an absolute URL), `wrong_origin`.
 */
function checkOrigin(url: string, c: Compiled): void {
  let target: URL;
  try {
    target = new URL(url);
  } catch (err) {
    throw new VerifyError('malformed', 'target uri: not an absolute url', { cause: err });
  }
  if (target.origin !== c.origin) throw new VerifyError('wrong_origin', 'target uri: not this server\'s origin');
}

/**
 * The compiled options' replay store.
 * @throws VerifyError `replay_store_required` when neither `replayStore` nor `replayStorePath` was given.
 */
export function requireReplayStore(c: Compiled): ReplayStore {
  if (c.replayStore === undefined) {
    throw new VerifyError('replay_store_required', 'verify: replayStore or replayStorePath is required (nonces must outlive a restart)');
  }
  return c.replayStore;
}

async function checkSignature(req: RequestParts, c: Compiled, bastion: boolean): Promise<{ sig: VerifiedSignature; ids: ComponentId[] }> {
  checkOrigin(req.url, c);
  const inputValue = header(req, 'signature-input');
  const sigValue = header(req, 'signature');
  if (inputValue === undefined || sigValue === undefined) throw new VerifyError('missing_signature', 'signature: headers absent');
  const inputs = parseSignatureDict(inputValue, 'signature-input');
  const sigs = parseSignatureDict(sigValue, 'signature');
  const label = pickLabel(inputs, c.label);
  const inner = inputs.get(label)!;
  if (!Array.isArray(inner[0])) throw new VerifyError('malformed', 'signature-input: member is not an inner list');
  const sigItem = sigs.get(label);
  if (sigItem === undefined) throw new VerifyError('missing_signature', 'signature: no value for the label');
  if (!(sigItem[0] instanceof ArrayBuffer) || sigItem[1].size > 0) throw new VerifyError('malformed', 'signature: not a byte sequence');
  const ids = (inner as InnerList)[0] as Item[];
  for (const id of ids) checkComponentId(id);
  const params = parseParams(inner as InnerList);

  // Required components before any crypto: a signature that does not cover them is refused whatever it says.
  const covered = new Set(ids.map(serializeComponentId));
  for (const r of c.required) {
    if (!covered.has(serializeComponentId(r))) throw new VerifyError('missing_component', `signature does not cover ${displayComponent(r)}`);
  }
  // The origin check above means something only if the signature binds the origin.
  if (!covered.has('"@target-uri"') && !covered.has('"@authority"')) {
    throw new VerifyError('missing_component', 'signature covers neither @target-uri nor @authority');
  }
  if (bastion) {
    if (!covered.has('"bastion-context"')) throw new VerifyError('missing_component', 'signature does not cover bastion-context');
    if (params.nonce === undefined) throw new VerifyError('missing_component', 'signature-input: nonce is missing');
  }
  if (params.alg !== undefined && params.alg !== 'ed25519') throw new VerifyError('bad_alg', 'signature-input: alg is not ed25519');

  const key = await c.resolveKey(params.keyid);
  // §3.2: the @signature-params line is the received member, re-serialized canonically.
  const base = buildSignatureBase(req, ids, serializeInnerList(inner as InnerList));
  const sigBytes = new Uint8Array(sigItem[0]);
  const ok =
    sigBytes.length === ED25519_SIG_BYTES &&
    (await globalThis.crypto.subtle.verify({ name: 'Ed25519' }, key, sigBytes, new TextEncoder().encode(base)));
  if (!ok) throw new VerifyError('bad_signature', 'signature: does not verify');

  const nowS = c.now() / 1000;
  if (params.created > nowS + c.clockSkewS) throw new VerifyError('not_yet_valid', 'signature: created is in the future');
  if (nowS - params.created > c.maxAgeS) throw new VerifyError('expired', 'signature: created is too old');
  if (params.expires !== undefined && params.expires + c.clockSkewS < nowS) throw new VerifyError('expired', 'signature: expires has passed');

  if (covered.has('"content-digest"')) await checkContentDigest(header(req, 'content-digest')!, req.body);

  return {
    sig: {
      keyid: params.keyid,
      created: params.created,
      ...(params.expires !== undefined ? { expires: params.expires } : {}),
      ...(params.nonce !== undefined ? { nonce: params.nonce } : {}),
      ...(params.alg !== undefined ? { alg: params.alg } : {}),
      ...(params.tag !== undefined ? { tag: params.tag } : {}),
      label,
      components: ids.map(displayComponent),
    },
    ids,
  };
}

/**
 * Verifies a request from Bastion given as parts: `method`, the full target URI as
 * the client targeted it (`url`), `headers`, and the raw `body` bytes (empty when none).
 * Build `url` from the configured origin, not from `Host` (the adapters do).
 * Checks, in order (first failure wins): options name an `origin` and a replay store
 * (`origin_required`, `replay_store_required`) → `url` is on `origin` (`wrong_origin`)
 * → Signature-Input/Signature parse (`missing_signature`, `malformed`) → required
 * components covered, plus `@target-uri` or `@authority`, `bastion-context` and a
 * `nonce` (`missing_component`) → `alg` is `ed25519` if
 * present (`bad_alg`) → key by `keyid` (`unknown_key`, `jwks_unavailable`) → signature
 * (`bad_signature`) → `created` within `maxAgeS`/`clockSkewS`, `expires` not passed
 * (`expired`, `not_yet_valid`) → Content-Digest equals the body's SHA-256
 * (`digest_mismatch`; only sha-256 is accepted, a digest with none is a mismatch)
 * → context parse (`bad_context`) → nonce first use (`replayed`; a store error is
 * `replay_store_unavailable`). The nonce is recorded only after all else passed.
 * RFC 9421 §3.2, RFC 9530 §2.
 * @throws VerifyError with the code above; TypeError for invalid options.
 */
export async function verifyParts(req: RequestParts, opts: VerifyOptions): Promise<VerifiedRequest> {
  const c = compileVerifyOptions(opts);
  const replayStore = requireReplayStore(c);
  const { sig } = await checkSignature(req, c, true);
  const context = parseContext(header(req, CONTEXT_HEADER)!);
  const nonce = sig.nonce!;
  let fresh: boolean;
  try {
    fresh = await replayStore.remember(`${sig.keyid}:${nonce}`, Math.ceil((c.maxAgeS + c.clockSkewS) * 1000));
  } catch (err) {
    throw new VerifyError('replay_store_unavailable', 'replay store: unavailable', { cause: err });
  }
  if (!fresh) throw new VerifyError('replayed', 'signature: nonce already seen');
  return {
    context,
    keyid: sig.keyid,
    created: sig.created,
    ...(sig.expires !== undefined ? { expires: sig.expires } : {}),
    nonce,
    label: sig.label,
    components: sig.components,
  };
}
