/**
 * The stages of the network door's inspected forwarding (`EgressProxy#forward`),
 * as functions with narrow dependencies, each testable without sockets
 * (test/egress/forward-stages.test.ts):
 *
 *   connectMode       CONNECT: tunnel, or intercept TLS (a rule, `intercept: all`, a secret's host)
 *   readForwardBody   bounded read (egress.maxBodyBytes / bodyTimeoutMs), no coded body
 *   requestParts      the parts a placeholder can stand in: each header value, path, query, body
 *   releasePlaceholders  every placeholder found, resolved, and put through the release rule per part
 *   outboundDlp       the detector on what the agent sent (placeholders blanked)
 *   swapReleased      the request as it will be sent, each occurrence with its part's release
 *   responseDecoder   the response's content coding: identity, a decoder, or refused
 *   responseHeaders   the response headers as forwarded (hop-by-hop dropped, values redacted)
 *
 * Connecting to the pinned address, streaming through the response redactor
 * and the audit record stay in the proxy, which composes these. A stage that
 * refuses returns a {@link StageRefusal}: the kernel's refusal value (status
 * and code from the closed table, door `network`), whether it is an
 * exfiltration attempt (alerted, flagged on the record) and the secret names
 * involved (never values).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Decision } from '../decision.ts';
import type { Reason } from '../door/reasons.ts';
import { refusalOf, type Refusal } from '../door/refusal.ts';
import { Secret } from '../util/secret.ts';
import { findPastedTokens, PASTED_PLACEHOLDER_ENCODED, PASTED_PLACEHOLDER_PATTERN } from '../vault/pasted.ts';
import { findPlaceholders, PLACEHOLDER_PATTERN } from '../vault/placeholder.ts';
import { namedSecret, pastedSecret, release, userTokenSecret, type ReleaseLocation, type SwapLocation } from '../vault/release.ts';
import { findOAuthPlaceholders, OAUTH_PLACEHOLDER_PATTERN, oauthPlaceholder } from '../oauth/placeholder.ts';
import { compileRedaction, NO_VALUES, redactString, type RedactionSet } from '../redact/index.ts';
import { dlpBlocks, maskPlaceholders, mayMaskBytes } from './dlp.ts';

/** A stage's refusal: the kernel's refusal value plus what the record and the alert need. */
export interface StageRefusal {
  readonly ok: false;
  readonly refusal: Refusal;
  /** An exfiltration attempt (a placeholder or credential headed elsewhere): alerted, `detail.alert` on the record. */
  readonly exfiltration: boolean;
  /** Secret names involved (`pasted:<token>` for pasted ones); never values. */
  readonly secrets: readonly string[];
  /** The client went away: record only, nothing to answer. */
  readonly aborted?: true;
  /** Answer with `Connection: close` (the body was not read to its end). */
  readonly close?: true;
}

/** A stage's answer: its value, or a refusal. */
export type StageResult<T> = { readonly ok: true; readonly value: T } | StageRefusal;

/** The refusal of `reason` decided by `rule`, as the network door answers it. */
export function refuseStage(reason: Reason, rule: string, extra: { exfiltration?: boolean; secrets?: readonly string[]; aborted?: true; close?: true } = {}): StageRefusal {
  return refuseDecision({ effect: 'deny', reason, rule }, extra);
}

/** {@link refuseStage} for a deny decision made elsewhere (the release rule, the user step). */
export function refuseDecision(decision: Decision, extra: { exfiltration?: boolean; secrets?: readonly string[]; aborted?: true; close?: true } = {}): StageRefusal {
  return {
    ok: false,
    refusal: refusalOf(decision, 'network'),
    exfiltration: extra.exfiltration === true,
    secrets: extra.secrets ?? [],
    ...(extra.aborted ? { aborted: true as const } : {}),
    ...(extra.close ? { close: true as const } : {}),
  };
}

/**
 * The CONNECT stage: tunnel, or intercept TLS (local CA). Intercepted when a
 * method/path rule or `egress.intercept: all` requires it (`required`), else
 * when the host has a secret (`hasSecret`: a store failure refuses,
 * `vault.unavailable` 503, fail closed). Interception without a CA is
 * `egress.no_ca` (503): the tunnel is never opened uninspected instead.
 */
export async function connectMode(opts: { readonly required: boolean; readonly hasSecret: () => Promise<boolean>; readonly hasIssuer: boolean }): Promise<StageResult<'tunnel' | 'intercept'>> {
  let intercept = opts.required;
  if (!intercept) {
    try {
      intercept = await opts.hasSecret();
    } catch {
      return refuseStage('vault.unavailable', 'vault');
    }
  }
  if (!intercept) return { ok: true, value: 'tunnel' };
  return opts.hasIssuer ? { ok: true, value: 'intercept' } : refuseStage('egress.no_ca', 'ca');
}

const EMPTY = Buffer.alloc(0);

/** What {@link readForwardBody} reads with: the kernel's bounded reader, bound to the request. */
export type BodyReader = (maxBytes: number, timeoutMs: number) => Promise<Buffer | 'too_large' | 'aborted' | 'timeout'>;

/**
 * Stage 1: the request body, whole, bounded by `limits.maxBodyBytes` (bytes)
 * and `limits.bodyTimeoutMs` (ms). A request without Content-Length or
 * Transfer-Encoding has no body (RFC 9112 §6.3): `skip` drains it and nothing is
 * read. A non-empty body in a content coding other than `identity` cannot be
 * inspected: `body.encoded` (415).
 */
export async function readForwardBody(
  headers: IncomingHttpHeaders,
  read: BodyReader,
  skip: () => void,
  limits: { readonly maxBodyBytes: number; readonly bodyTimeoutMs: number },
): Promise<StageResult<Buffer>> {
  const bodiless = headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0');
  if (bodiless) {
    skip();
    return { ok: true, value: EMPTY };
  }
  const body = await read(limits.maxBodyBytes, limits.bodyTimeoutMs);
  if (body === 'aborted') return refuseStage('request.aborted', 'http', { aborted: true });
  if (body === 'too_large') return refuseStage('body.too_large', 'egress.maxBodyBytes', { close: true });
  if (body === 'timeout') return refuseStage('body.timeout', 'egress.bodyTimeoutMs', { close: true });
  const encoding = headers['content-encoding'];
  if (body.length > 0 && encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return refuseStage('body.encoded', 'content-encoding');
  return { ok: true, value: body };
}

/**
 * A request body as the scans read it: its bytes, and its text as latin1 (one
 * character per byte, so offsets are byte offsets), made at most once and only
 * when a scan needs it. The placeholder finders and the DLP scan look at the
 * bytes first (native substring searches for the placeholders' literals, the
 * detector's keyword walk), so a body with neither placeholders nor credential
 * keywords is never copied into a string. What is found is the same as in the text.
 */
export class RequestBody {
  readonly bytes: Buffer;
  #text: string | undefined;
  #maskable: boolean | undefined;
  #placeholders: boolean | undefined;

  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  /** The body as latin1 text (`bytes.toString('latin1')`), made on first use and kept. */
  get text(): string {
    this.#text ??= this.bytes.toString('latin1');
    return this.#text;
  }

  /** Whether blanking placeholders (src/egress/dlp.ts `maskPlaceholders`) could change the text; false: it is the text itself. */
  get maskable(): boolean {
    this.#maskable ??= mayMaskBytes(this.bytes);
    return this.#maskable;
  }

  /** Whether any placeholder (`bst_ph_…`, `<<SECRET_…>>` raw or percent-encoded, `<<OAUTH_…>>`) may occur; false: none does. */
  get mayHoldPlaceholders(): boolean {
    this.#placeholders ??= this.maskable || this.bytes.includes('<<OAUTH_');
    return this.#placeholders;
  }
}

/** One part of a request a placeholder can stand in: a header's value, the path, the query (with its `?`), the body (latin1 text, or a {@link RequestBody}). */
export interface RequestPart {
  readonly location: ReleaseLocation;
  readonly text: string | RequestBody;
}

/** Stage 2's input: every header value (forwarded headers, lower-case names), the path, the query, the body as latin1 (bytes kept 1:1). */
export function requestParts(headers: readonly (readonly [string, string])[], url: URL, bodyText: string | RequestBody): RequestPart[] {
  const parts: RequestPart[] = headers.map(([k, v]) => ({ location: `header:${k}` as const, text: v }));
  parts.push({ location: 'path', text: url.pathname }, { location: 'query', text: url.search }, { location: 'body', text: bodyText });
  return parts;
}

/** A vault secret as the release stage needs it (no value). */
export interface NamedSecretInfo {
  readonly id: string;
  readonly name: string;
  readonly hosts: readonly string[];
  readonly header?: string;
  readonly format?: string;
}

/** A pasted secret found by its token. */
export interface FoundPasted {
  readonly secret: { readonly id: string; readonly agent: string; readonly user: string; readonly hosts: readonly string[] };
  readonly value: Secret;
}

/** What the release stage needs: lookups (each may throw on a store failure: `vault.unavailable`), the grants and the config. */
export interface ReleaseDeps {
  /** The named secret behind an agent's placeholder, or undefined (forged, another agent's, revoked, expired). */
  readonly resolve: (placeholder: string) => Promise<{ readonly info: NamedSecretInfo; readonly value: Secret } | undefined>;
  /** The pasted secret behind a token, or undefined; absent when the door has no pasted-secret store. */
  readonly findPasted?: (token: string) => Promise<FoundPasted | undefined>;
  /** Whether `agents.X.secrets` grants the named secret. */
  readonly granted: (name: string) => boolean;
  /** `secrets.NAME` of the config (hosts, ports, swapIn), when declared. */
  readonly secretConfig: (name: string) => { readonly hosts?: readonly string[] | undefined; readonly ports?: readonly number[] | undefined; readonly swapIn?: readonly SwapLocation[] | undefined } | undefined;
  /**
   * The end-user step for pasted secrets (with `users.token`, only a proven
   * owner may use one): a deny decision, or undefined to go on. Asked before
   * each pasted release.
   */
  readonly verifyOwner?: () => Promise<Decision | undefined>;
  /**
   * Per-user OAuth (`<<OAUTH_provider>>`): the request's end user's token at a
   * provider, or why not (`oauth.consent_required`…); whether the agent holds
   * the provider (`agents.X.oauth`); the provider's egress hosts. Absent: every
   * such placeholder is refused.
   */
  readonly oauth?: {
    token(provider: string, user: string): Promise<{ ok: true; token: string } | { ok: false; reason: string }>;
    granted(provider: string): boolean;
    hosts(provider: string): readonly string[];
  };
}

/** What the release stage allowed: per part, each placeholder or token → the text to insert; and what was swapped. */
export interface Released {
  readonly inserts: readonly ReadonlyMap<string, string>[];
  readonly named: ReadonlyMap<string, { readonly info: NamedSecretInfo; readonly value: Secret }>;
  readonly pasted: ReadonlyMap<string, FoundPasted>;
  /** Per-user OAuth tokens swapped in, by provider (redacted from the answer). */
  readonly tokens: ReadonlyMap<string, Secret>;
}

/**
 * Stage 3: every placeholder (`bst_ph_…`) and pasted token (`<<SECRET_…>>`) in
 * every part, resolved, then the release rule (src/vault/release.ts) for that
 * occurrence in that part: scheme, host, port and location. The first refusal
 * stops the request: `placeholder.unknown` or a `release.*` denial (an
 * exfiltration attempt, alerted), `vault.unavailable` on a store failure, the
 * end-user step's denial.
 */
export async function releasePlaceholders(
  parts: readonly RequestPart[],
  who: { readonly agent: string; readonly user: string | null },
  target: { readonly scheme: string; readonly host: string; readonly port: number },
  deps: ReleaseDeps,
): Promise<StageResult<Released>> {
  const resolved = new Map<string, { readonly info: NamedSecretInfo; readonly value: Secret } | undefined>();
  const found = new Map<string, FoundPasted | undefined>();
  const inserts = parts.map(() => new Map<string, string>());
  const named = new Map<string, { readonly info: NamedSecretInfo; readonly value: Secret }>();
  const pasted = new Map<string, FoundPasted>();
  const tokens = new Map<string, Secret>();
  const fetched = new Map<string, { ok: true; token: string } | { ok: false; reason: string }>();
  let owner: Decision | undefined | null = null;
  for (const [i, part] of parts.entries()) {
    // A body whose bytes hold none of the placeholders' literals holds no placeholder: its text is not made.
    if (typeof part.text !== 'string' && !part.text.mayHoldPlaceholders) continue;
    const text = typeof part.text === 'string' ? part.text : part.text.text;
    const destination = { scheme: target.scheme, host: target.host, port: target.port, location: part.location };
    for (const { placeholder: ph } of findPlaceholders(text)) {
      if (!resolved.has(ph)) {
        try {
          resolved.set(ph, await deps.resolve(ph));
        } catch {
          return refuseStage('vault.unavailable', 'vault');
        }
      }
      const r = resolved.get(ph);
      if (r === undefined) return refuseStage('placeholder.unknown', 'vault', { exfiltration: true });
      const name = r.info.name;
      const whole = part.location.startsWith('header:') && text.trim() === ph;
      const d = release({ secret: namedSecret(r.info, r.value, deps.secretConfig(name)), agent: who.agent, granted: deps.granted(name), user: who.user, destination: { ...destination, whole } });
      if (d.effect !== 'allow') return refuseDecision(d, { exfiltration: true, secrets: [name] });
      inserts[i]?.set(ph, d.value.reveal());
      named.set(ph, r);
    }
    for (const token of findPastedTokens(text)) {
      if (!found.has(token)) {
        if (deps.findPasted === undefined) return refuseStage('vault.unavailable', 'vault');
        try {
          found.set(token, await deps.findPasted(token));
        } catch {
          return refuseStage('vault.unavailable', 'vault');
        }
      }
      const p = found.get(token);
      if (p === undefined) return refuseStage('placeholder.unknown', 'vault', { exfiltration: true });
      // The end user is proven once per request, however many pasted tokens it carries.
      if (owner === null) owner = deps.verifyOwner ? await deps.verifyOwner() : undefined;
      if (owner !== undefined) return refuseDecision(owner);
      const d = release({ secret: pastedSecret(p.secret, p.value), agent: who.agent, granted: false, user: who.user, destination });
      if (d.effect !== 'allow') return refuseDecision(d, { exfiltration: true, secrets: [`pasted:${token}`] });
      inserts[i]?.set(token, d.value.reveal());
      pasted.set(token, p);
    }
    for (const provider of findOAuthPlaceholders(text)) {
      const placeholder = oauthPlaceholder(provider);
      if (deps.oauth === undefined) return refuseStage('vault.unavailable', 'oauth');
      // Only for a named end user (the token is theirs), and only a provider the agent holds: asked before any token is read.
      if (who.user === null) return refuseStage('release.foreign_user', `oauth.providers.${provider}.owner`, { exfiltration: true, secrets: [`oauth:${provider}`] });
      if (!deps.oauth.granted(provider)) return refuseStage('release.not_granted', `oauth.providers.${provider}.grant`, { exfiltration: true, secrets: [`oauth:${provider}`] });
      if (!fetched.has(provider)) {
        try {
          fetched.set(provider, await deps.oauth.token(provider, who.user));
        } catch {
          return refuseStage('oauth.store_error', 'oauth');
        }
      }
      const t = fetched.get(provider) as { ok: true; token: string } | { ok: false; reason: string };
      // Not connected (or no longer): `oauth.consent_required`; the door answers it with a sign-in link.
      if (!t.ok) return refuseDecision({ effect: 'deny', reason: t.reason, rule: `oauth.providers.${provider}` }, { secrets: [`oauth:${provider}`] });
      const whole = part.location.startsWith('header:') && text.trim() === placeholder;
      const d = release({ secret: userTokenSecret(provider, who.user, deps.oauth.hosts(provider), t.token), agent: who.agent, granted: true, user: who.user, destination: { ...destination, whole } });
      if (d.effect !== 'allow') return refuseDecision(d, { exfiltration: true, secrets: [`oauth:${provider}`] });
      inserts[i]?.set(placeholder, d.value.reveal());
      tokens.set(provider, new Secret(t.token));
    }
  }
  return { ok: true, value: { inserts, named, pasted, tokens } };
}

/**
 * The detector as the DLP stage calls it (src/egress/dlp.ts `dlpScan`). May throw: fails closed.
 * `latin1`, when present, scans bytes read as latin1 with the same findings as the text
 * (`text` returns that string when the scan needs it); the stage uses it for a {@link RequestBody}.
 */
export type DlpScan = ((text: string) => readonly import('./proxy.ts').DlpFinding[]) & {
  readonly latin1?: (bytes: Uint8Array, text: () => string) => readonly import('./proxy.ts').DlpFinding[];
};

/**
 * Stage 4: outbound DLP on what the agent sent (each text: the header block,
 * path and query, the body), placeholders blanked first. A credential headed
 * where it does not belong (src/egress/dlp.ts `dlpBlocks`) is `dlp.credential`
 * (an exfiltration attempt, the rule named); a detector that throws is
 * `dlp.error` (fail closed). A {@link RequestBody} with no placeholder to blank
 * is scanned as bytes when the detector can (`scan.latin1`): same findings, no copy.
 */
export function outboundDlp(texts: readonly (string | RequestBody)[], host: string, scan: DlpScan): StageResult<undefined> {
  for (const text of texts) {
    let findings: ReturnType<DlpScan>;
    try {
      if (typeof text === 'string') findings = scan(maskPlaceholders(text));
      else if (!text.maskable && scan.latin1 !== undefined) findings = scan.latin1(text.bytes, () => text.text);
      else findings = scan(maskPlaceholders(text.text));
    } catch {
      return refuseStage('dlp.error', 'detector');
    }
    for (const f of findings) if (dlpBlocks(f, host)) return refuseStage('dlp.credential', f.rule, { exfiltration: true });
  }
  return { ok: true, value: undefined };
}

const EMPTY_MAP: ReadonlyMap<string, string> = new Map();

/** The request as it will be sent. */
export interface SwappedRequest {
  readonly headers: [string, string][];
  /** Path and query, values percent-encoded. */
  readonly path: string;
  readonly body: Buffer;
}

/**
 * Stage 5: each placeholder occurrence replaced by what the release rule gave
 * for its part (headers as is, path and query percent-encoded, the body as
 * UTF-8 bytes; everything else byte for byte). `parts` are
 * {@link requestParts}' order: the headers, then path, query, body.
 */
export function swapReleased(headers: readonly (readonly [string, string])[], url: URL, body: Buffer | RequestBody, released: Released): SwappedRequest {
  const swap = (text: string, put: ReadonlyMap<string, string>, encode: (v: string) => string): string => {
    if (put.size === 0) return text;
    const one = (m: string, key: string): string => {
      const v = put.get(key);
      return v !== undefined ? encode(v) : m;
    };
    return text
      .replace(PLACEHOLDER_PATTERN, (m) => one(m, m))
      .replace(PASTED_PLACEHOLDER_PATTERN, one)
      .replace(PASTED_PLACEHOLDER_ENCODED, one)
      .replace(OAUTH_PLACEHOLDER_PATTERN, (m) => one(m, m));
  };
  const at = (i: number): ReadonlyMap<string, string> => released.inserts[i] ?? EMPTY_MAP;
  const outHeaders: [string, string][] = headers.map(([k, v], i) => [k, swap(v, at(i), (x) => x)]);
  const path = swap(url.pathname, at(headers.length), encodeURIComponent) + swap(url.search, at(headers.length + 1), encodeURIComponent);
  const bodyPut = at(headers.length + 2);
  const bytes = body instanceof RequestBody ? body.bytes : body;
  const outBody = bodyPut.size > 0 ? Buffer.from(swap(body instanceof RequestBody ? body.text : body.toString('latin1'), bodyPut, (v) => Buffer.from(v, 'utf8').toString('latin1')), 'latin1') : bytes;
  return { headers: outHeaders, path, body: outBody };
}

/**
 * Stage 6: what the response is redacted of: the values swapped in, and every
 * live value of every secret bound to the destination host (`live`, from the
 * vault), whether or not this request carried a placeholder.
 */
export function responseRedaction(released: Released, live: readonly Secret[]): RedactionSet {
  const swapped = [...[...released.named.values(), ...released.pasted.values()].map((s) => s.value), ...released.tokens.values()];
  if (swapped.length === 0 && live.length === 0) return NO_VALUES;
  // The vault hands out the same array (and the same Secret objects) for a host while its
  // generation holds: the live values' forms are compiled once, not per request.
  let liveForms = LIVE_FORMS.get(live);
  if (liveForms === undefined) {
    liveForms = compileRedaction(live.map((s) => s.reveal()));
    LIVE_FORMS.set(live, liveForms);
  }
  const extra = swapped.filter((v) => !live.includes(v));
  if (extra.length === 0) return liveForms;
  return compileRedaction([...extra.map((v) => v.reveal()), ...live.map((s) => s.reveal())]);
}

/** Compiled forms of a host's live values, per array the vault returned (collected with it). */
const LIVE_FORMS = new WeakMap<readonly Secret[], RedactionSet>();

/**
 * `headers` asking for an identity-encoded answer (so an echoed value can be
 * redacted). No Accept-Encoding would mean any coding is acceptable (RFC 9110
 * §12.5.3), so it is set, not only filtered.
 */
export function askIdentity(headers: readonly (readonly [string, string])[]): [string, string][] {
  return [...headers.filter((h) => h[0] !== 'accept-encoding').map(([k, v]): [string, string] => [k, v]), ['accept-encoding', 'identity']];
}

/**
 * Stage 7a: how the response body is read for redaction. Not redacting: as it
 * comes. Redacting: `identity` as is; gzip, deflate, br decoded (and forwarded
 * decoded); any other coding `upstream.unknown_encoding` (502): it cannot be
 * redacted, so it is not forwarded.
 */
export function responseDecoder(contentEncoding: string | string[] | undefined, redacting: boolean): StageResult<Transform | undefined> {
  const enc = String(contentEncoding ?? 'identity').trim().toLowerCase() || 'identity';
  if (!redacting || enc === 'identity') return { ok: true, value: undefined };
  if (enc === 'gzip' || enc === 'x-gzip') return { ok: true, value: createGunzip() };
  if (enc === 'deflate') return { ok: true, value: createInflate() };
  if (enc === 'br') return { ok: true, value: createBrotliDecompress() };
  return refuseStage('upstream.unknown_encoding', 'content-encoding');
}

/** Hop-by-hop and proxy headers never forwarded back (RFC 9110 §7.6.1), plus ones recomputed. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']);

/**
 * Stage 7b: the response headers as forwarded: hop-by-hop dropped, values
 * redacted when redacting, `content-encoding` dropped when the body is decoded,
 * `content-length` kept only when the body passes unchanged; `rebase` rewrites
 * `Location` (base-URL mode).
 */
export function responseHeaders(
  upstream: Readonly<Record<string, string | string[] | undefined>>,
  opts: { readonly redaction: RedactionSet | undefined; readonly decoded: boolean; readonly rebase?: (location: string) => string },
): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(upstream)) {
    if (DROP_RESPONSE.has(k) || v === undefined) continue;
    if (opts.decoded && k === 'content-encoding') continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      let value = opts.redaction ? redactString(one, opts.redaction).text : one;
      if (k === 'location' && opts.rebase) value = opts.rebase(value);
      out.push([k, value]);
    }
  }
  if (opts.redaction === undefined && upstream['content-length'] !== undefined) out.push(['content-length', String(upstream['content-length'])]);
  return out;
}
