/**
 * Placeholders: what an agent holds instead of a secret. A placeholder is
 * `bst_ph_` followed by 32 lowercase base32 characters, derived by HMAC from the
 * secret's id and version under a key specific to the agent and the
 * installation. It means nothing outside this Bastion, so an agent that leaks it
 * leaks nothing; the egress proxy swaps it for the real value only in a request
 * to one of the secret's hosts.
 *
 * This module is the pure core: derivation, recognition in a whole text and in
 * a stream of chunks (for bodies whose placeholders may straddle chunk
 * boundaries). No I/O, no state beyond a scanner's small held-back tail.
 *
 * Sources: HMAC (RFC 2104) with SHA-256 (FIPS 180-4); base32 (RFC 4648 §6,
 * lowercased, without padding).
 */
import { base32nopad } from '@scure/base';
import { BastionError } from '../errors.ts';
import { hmacSha256 } from '../util/crypto.ts';

/** Every placeholder starts with this. */
export const PLACEHOLDER_PREFIX = 'bst_ph_';

/** Length of a placeholder in characters: the 7-character prefix and 32 base32 characters (160 bits). */
export const PLACEHOLDER_LENGTH = 39;

/**
 * Matches a placeholder standing as a token of its own: not preceded and not
 * followed by an ASCII word character `[A-Za-z0-9_]` (`\b` without the `u`
 * flag). So `xbst_ph_…`, `_bst_ph_…` and a placeholder followed by more
 * letters or digits are not matches; `-`, `.`, `"`, `=`, `&`, whitespace and
 * non-ASCII characters are boundaries. Case-sensitive: `BST_PH_…` is not a
 * placeholder.
 *
 * Linear time: every attempt is a fixed-length match of at most 39 characters
 * with no alternation or nested quantifier, so no backtracking blow-up.
 *
 * Global (`g`) and therefore stateful: use it with `String.prototype.matchAll`
 * or `replace`, which reset `lastIndex`; never with `test`/`exec` across
 * inputs. {@link findPlaceholders} and {@link isPlaceholder} are the safer entry points.
 */
export const PLACEHOLDER_PATTERN = /\bbst_ph_[a-z2-7]{32}\b/g;

const EXACT = /^bst_ph_[a-z2-7]{32}$/;
const WORD_CHAR = /[A-Za-z0-9_]/;
const BASE32_CHAR = /[a-z2-7]/;

/** Domain-separation label of the HMAC input; a new derivation gets a new label. */
const DERIVATION_LABEL = 'bastion/placeholder/v1';

const utf8 = new TextEncoder();

/** A secret's identity as the vault names it: its stable id and its version (bumped on rotation). */
export interface SecretRef {
  readonly secretId: string;
  readonly version: number;
}

/**
 * Resolves a placeholder to the secret it stands for, for one agent. Implemented
 * by the vault. `undefined` means unknown (never issued, another agent's,
 * revoked, past its rotation grace period, or forged): callers must treat it as
 * a reason to block the request, never as "leave it as it is".
 */
export type PlaceholderLookup = (placeholder: string) => SecretRef | undefined;

/** One placeholder found in a text: `[start, end)` in UTF-16 code units, `end - start` is always {@link PLACEHOLDER_LENGTH}. */
export interface PlaceholderMatch {
  readonly start: number;
  readonly end: number;
  readonly placeholder: string;
}

/**
 * The unambiguous HMAC input: label ‖ 0x00 ‖ u32be(byte length of id) ‖ UTF-8 id
 * ‖ u64be(version). The length prefix keeps (id, version) pairs from colliding
 * as byte strings.
 */
function derivationMessage(secretId: string, version: number): Uint8Array {
  const label = utf8.encode(DERIVATION_LABEL);
  const id = utf8.encode(secretId);
  const out = new Uint8Array(label.length + 1 + 4 + id.length + 8);
  const view = new DataView(out.buffer);
  out.set(label, 0);
  let at = label.length + 1; // out[label.length] stays 0x00
  view.setUint32(at, id.length);
  at += 4;
  out.set(id, at);
  at += id.length;
  view.setBigUint64(at, BigInt(version));
  return out;
}

/**
 * Derives the placeholder of a secret for one agent:
 * `bst_ph_` + lowercase base32 (RFC 4648 §6, no padding) of the first 20 bytes
 * of HMAC-SHA256 (RFC 2104) under `key` of (secretId, version). Deterministic;
 * always {@link PLACEHOLDER_LENGTH} (39) characters.
 *
 * Why 160 bits: guessing a valid placeholder takes about 2^160 tries, and
 * collisions among the placeholders of one installation are negligible (birthday
 * bound 2^80) — no collision check is needed.
 *
 * Why lowercase base32: a single-case alphabet survives transports and tools
 * that fold case (hostnames, some headers, case-insensitive file systems) with
 * no loss of bits; it has no `-`, `_`, `+` or `/` that tokenizers, URL encoders
 * or shell words split or escape, so the whole body stays one token; and the
 * fixed prefix plus a fixed-length run of `[a-z2-7]` is easy and cheap to find in
 * any text. 20 bytes encode to exactly 32 characters, so there is no padding
 * and every 32-character run is a valid encoding.
 *
 * @param key the per-agent placeholder key, at least 32 bytes (the vault derives it per agent and installation).
 *   Use keys of one fixed length: HMAC zero-pads keys shorter than its 64-byte
 *   block (RFC 2104 §2), so a key and the same key with trailing zero bytes are one key.
 * @param ref the secret's id (a non-empty, well-formed Unicode string) and version (a non-negative safe integer)
 * @throws TypeError if `key` is not a Uint8Array or `ref.secretId` is not a non-empty well-formed string;
 *   RangeError if `key` is shorter than 32 bytes or `ref.version` is not a non-negative safe integer
 */
export function derivePlaceholder(key: Uint8Array, ref: SecretRef): string {
  if (!(key instanceof Uint8Array)) throw new TypeError('derivePlaceholder: key must be a Uint8Array');
  if (key.length < 32) throw new RangeError('derivePlaceholder: key must be at least 32 bytes');
  const { secretId, version } = ref;
  // A lone surrogate would encode as U+FFFD, so two different ids could derive the same placeholder.
  if (typeof secretId !== 'string' || secretId.length === 0 || !secretId.isWellFormed()) {
    throw new TypeError('derivePlaceholder: secretId must be a non-empty well-formed string');
  }
  if (!Number.isSafeInteger(version) || version < 0) throw new RangeError('derivePlaceholder: version must be a non-negative safe integer');
  const mac = hmacSha256(key, derivationMessage(secretId, version));
  return PLACEHOLDER_PREFIX + base32nopad.encode(mac.subarray(0, 20)).toLowerCase();
}

/** Whether `s` is exactly one placeholder (shape only: it says nothing about whether the vault knows it). Never throws. */
export function isPlaceholder(s: unknown): s is string {
  return typeof s === 'string' && EXACT.test(s);
}

/**
 * The placeholders in `text`, in order, with their offsets (UTF-16 code units,
 * `end` exclusive). Word boundaries as in {@link PLACEHOLDER_PATTERN}. Linear time.
 * @throws TypeError if `text` is not a string
 */
export function findPlaceholders(text: string): PlaceholderMatch[] {
  if (typeof text !== 'string') throw new TypeError('findPlaceholders: text must be a string');
  const out: PlaceholderMatch[] = [];
  for (const m of text.matchAll(PLACEHOLDER_PATTERN)) out.push({ start: m.index, end: m.index + m[0].length, placeholder: m[0] });
  return out;
}

/** What one step of a streaming scanner returns. */
export interface PlaceholderScanResult {
  /**
   * Text safe to emit now: it contains no part of a placeholder that is not
   * reported in `found` of this or an earlier step. The scanner's `text` is the
   * input verbatim; the replacer's has placeholders replaced.
   */
  readonly text: string;
  /** Placeholders completed in this step; offsets are in the whole input stream (UTF-16 code units). */
  readonly found: PlaceholderMatch[];
}

/**
 * A streaming placeholder scanner. Concatenating the `text` of every `push` and
 * the final `end` gives the whole output; the `found` lists together equal
 * {@link findPlaceholders} on the whole input.
 */
export interface PlaceholderScanner {
  /**
   * Feeds the next chunk. Holds back only the shortest tail that could still be
   * (the start of) a placeholder — at most {@link PLACEHOLDER_LENGTH} characters:
   * 38 for a prefix, 39 for a complete placeholder whose right boundary depends
   * on the next character — and emits everything before it.
   * @throws TypeError if `chunk` is not a string; BastionError `ERR_INTERNAL` after `end`
   */
  push(chunk: string): PlaceholderScanResult;
  /**
   * Ends the stream and flushes the held-back tail.
   * @throws BastionError `ERR_INTERNAL` if called twice
   */
  end(): PlaceholderScanResult;
}

/** Start of the held-back tail of `buf`, or `buf.length` if nothing need be held. `afterWord`: the character before `buf` is a word character. */
function heldStart(buf: string, from: number, afterWord: boolean): number {
  for (let i = Math.max(from, buf.length - PLACEHOLDER_LENGTH); i < buf.length; i++) {
    if (buf[i] !== 'b') continue;
    if (i === 0 ? afterWord : WORD_CHAR.test(buf[i - 1] as string)) continue;
    if (couldStartPlaceholder(buf, i)) return i;
  }
  return buf.length;
}

/** Whether `buf.slice(i)` (at most 39 characters) is a prefix of some placeholder. */
function couldStartPlaceholder(buf: string, i: number): boolean {
  for (let j = i; j < buf.length; j++) {
    const k = j - i;
    const c = buf[j] as string;
    if (k < PLACEHOLDER_PREFIX.length ? c !== PLACEHOLDER_PREFIX[k] : !BASE32_CHAR.test(c)) return false;
  }
  return true;
}

function createStream(name: string, replace: ((placeholder: string) => string) | undefined): PlaceholderScanner {
  let held = ''; // the held-back tail
  let afterWord = false; // the last character emitted before `held` is a word character
  let base = 0; // stream offset of held[0]
  let ended = false;

  // Processes `held + chunk`. Computes everything first (including calls to
  // `replace`, which may throw) and commits state last, so a throw leaves the
  // stream as it was.
  function step(chunk: string, final: boolean): PlaceholderScanResult {
    if (ended) throw new BastionError('ERR_INTERNAL', `${name}: used after end`);
    const buf = held + chunk;
    // Scan with a stand-in for the character before `buf` in front, so the left
    // boundary is right: 'x' (a word character) or ' ', neither of which can start
    // a match. A match that ends at the end of `buf` is unconfirmed until the next
    // character.
    const scan = (afterWord ? 'x' : ' ') + buf;
    const shift = 1;
    const found: PlaceholderMatch[] = [];
    const pieces: string[] = [];
    let last = 0; // in buf: end of the last confirmed match
    for (const m of scan.matchAll(PLACEHOLDER_PATTERN)) {
      const start = m.index - shift;
      const end = start + m[0].length;
      if (!final && end === buf.length) break;
      found.push({ start: base + start, end: base + end, placeholder: m[0] });
      if (replace !== undefined) {
        const value = replace(m[0]);
        if (typeof value !== 'string') throw new TypeError(`${name}: replace must return a string`);
        pieces.push(buf.slice(last, start), value);
      }
      last = end;
    }
    const cut = final ? buf.length : heldStart(buf, last, afterWord);
    pieces.push(buf.slice(last, cut));
    const text = replace === undefined ? buf.slice(0, cut) : pieces.join('');
    if (cut > 0) afterWord = WORD_CHAR.test(buf[cut - 1] as string);
    held = buf.slice(cut);
    base += cut;
    ended = final;
    return { text, found };
  }

  return {
    push(chunk: string): PlaceholderScanResult {
      if (typeof chunk !== 'string') throw new TypeError(`${name}: chunk must be a string`);
      return step(chunk, false);
    },
    end(): PlaceholderScanResult {
      return step('', true);
    },
  };
}

/**
 * A streaming scanner that finds placeholders split across chunk boundaries
 * and passes the text through unchanged (use it to decide, before forwarding,
 * whether a stream carries placeholders). See {@link PlaceholderScanner}.
 *
 * Offsets are UTF-16 code units of the concatenated input. To scan bytes
 * exactly, decode them as latin1 (one character per byte; placeholders are ASCII).
 */
export function createPlaceholderScanner(): PlaceholderScanner {
  return createStream('placeholder scanner', undefined);
}

/**
 * A streaming scanner that replaces each placeholder with `replace(placeholder)`
 * — the proxy's swap of placeholders for secret values in streamed request
 * bodies. Same shape and hold-back as {@link createPlaceholderScanner}; `text`
 * is the rewritten output, `found` offsets are in the input stream.
 *
 * `replace` may throw to block the request (an unknown placeholder, or a secret
 * not bound to the destination host): the error propagates unchanged from
 * `push`/`end`, no text of that step is emitted, and the replacer's state is as
 * before the call.
 *
 * @param replace maps a placeholder to its replacement text; called once per match, in order
 * @throws TypeError if `replace` is not a function, or (from `push`/`end`) if it returns a non-string
 */
export function createPlaceholderReplacer(replace: (placeholder: string) => string): PlaceholderScanner {
  if (typeof replace !== 'function') throw new TypeError('createPlaceholderReplacer: replace must be a function');
  return createStream('placeholder replacer', replace);
}
