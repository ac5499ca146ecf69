/**
 * Executes one ability call, after the tool door's pipeline has decided it
 * (catalogue, Cedar, argument schema, approval, pasted-secret swap):
 *
 *   request from config + parameters (./request.ts; a parameter that would
 *   leave its path segment is refused) → the network door's guard with the
 *   ability's origin as the grant (SSRF as written, static hosts, every address
 *   classified, `unsafeAllowPrivate`) → the bound secret from the vault, as
 *   the release rule lets it go (src/vault/release.ts: its hosts and ports,
 *   https, its own header, formatted) → signed context and per-call token (they
 *   replace same-named headers) → one connection pinned to the checked address,
 *   no redirect followed, `timeoutMs` for the whole exchange, at most
 *   `DEFAULTS.abilityMaxResponseBytes` read → the values sent and every live
 *   value of a secret bound to the host redacted → the response transform (./transform.ts),
 *   and `response.js` in the JavaScript sandbox (src/sandbox/quickjs.ts) when configured.
 *
 * The outcome is a value: refused (a decision and a code; nothing was sent),
 * failed (no usable answer: the signing or the exchange failed) or answered (the tool result). The
 * `detail` of each is for the audit record: method, host, path (no query),
 * status, bytes, the signature's and token's ids, never a credential.
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, type ZlibOptions } from 'node:zlib';
import { rootCertificates } from 'node:tls';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Dispatcher } from 'undici';
import type { ResolvedAbility, ResolvedConfig } from '../config/types.ts';
import { deny, type Decision } from '../decision.ts';
import { DEFAULTS } from '../defaults.ts';
import { isBastionError, type BastionErrorCode } from '../errors.ts';
import type { EgressGuard, EgressVerdict } from '../egress/guard.ts';
import { parseEgressTarget } from '../net/target.ts';
import { PinnedDispatcherPool } from '../net/pinned-connector.ts';
import { compileRedaction, redactString } from '../redact/index.ts';
import type { CallContext, OutboundSigner } from '../identity/signer.ts';
import type { Secret } from '../util/secret.ts';
import { namedSecret, release, userTokenSecret } from '../vault/release.ts';
import type { ResolvedPlaceholder } from '../vault/vault.ts';
import { arrayParams, buildAbilityRequest, type AbilityRequest } from './request.ts';
import { parseUrlTemplate, type UrlTemplate } from './template.ts';
import { parseJsonBody, selectFields, shapeResponse } from './transform.ts';
import type { JsEvaluate } from '../sandbox/quickjs.ts';
import { dropBody } from '../door/body.ts';

/** What the runner needs from the running gateway. */
export interface AbilityRunnerDeps {
  readonly config: Pick<ResolvedConfig, 'secrets' | 'egress'>;
  readonly guard: Pick<EgressGuard, 'checkGranted'>;
  /** The vault, for bound secrets; without it an ability with a secret fails closed. */
  readonly vault?: {
    current(name: string): Promise<ResolvedPlaceholder | undefined>;
    markUsed(secretId: string): void;
    /** Every live value of the secrets bound to `host`: redacted from its answers, whichever secret the call used. */
    valuesForHost?(host: string): Promise<readonly Secret[]>;
  };
  readonly signer: OutboundSigner;
  /**
   * End users' OAuth tokens (abilities with `oauth`): the token, or why not; with
   * `consent_required`, `link` gives the user a sign-in link. Absent: such abilities fail closed.
   */
  readonly userTokens?: {
    accessToken(req: { user: string; provider: string }): Promise<{ ok: true; token: string } | { ok: false; reason: string }>;
    startAuthorization(req: { provider: string; user: string; agent: string }): Promise<{ ok: true; url: URL } | { ok: false; reason: string }>;
  };
  /** Extra CA certificates (PEM) trusted for destinations, besides Node's. */
  readonly upstreamCa?: readonly string[];
  /** Largest response body read, in bytes (default `DEFAULTS.abilityMaxResponseBytes`). */
  readonly maxResponseBytes?: number;
  /** The JavaScript sandbox for `response.js` (src/sandbox/quickjs.ts); absent: such abilities fail with `ERR_JS_UNAVAILABLE`. */
  readonly js?: JsEvaluate;
}

/** One call to run. `args` are validated and have pasted secrets swapped in. */
export interface AbilityCall {
  readonly ability: ResolvedAbility;
  readonly args: Readonly<Record<string, unknown>>;
  /** Who the call is for, from the session (never from the model). */
  readonly context: CallContext;
  /** Clear values swapped into `args` (pasted secrets): redacted from the answer. */
  readonly redact: readonly string[];
  /** Aborts the call (the agent cancelled). */
  readonly signal?: AbortSignal;
}

/** Audit detail of a call (merged into the tools/call record's `detail`). */
export type AbilityDetail = Record<string, unknown>;

/** The outcome of one call. */
export type AbilityOutcome =
  | { readonly kind: 'refused'; readonly decision: Decision; readonly code: BastionErrorCode; readonly text: string; readonly detail: AbilityDetail }
  | { readonly kind: 'failed'; readonly code: BastionErrorCode; readonly text: string; readonly timeout: boolean; readonly detail: AbilityDetail }
  | { readonly kind: 'answered'; readonly result: CallToolResult; readonly detail: AbilityDetail };

const unzip: Record<string, (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>,
};

/** Reason texts for a parameter the URL cannot take (names from config, never values). */
const PARAM_TEXT: Record<string, string> = {
  empty: 'is empty',
  dot_segment: 'is a dot segment (. or ..)',
  separator: 'holds /, \\, ?, #, @ or an encoded slash',
  control: 'holds a control character',
  type: 'is not a string, number or boolean',
  missing: 'is missing',
};

/** Runs ability calls; one per gateway, shared by every session. */
export class AbilityRunner {
  readonly #deps: AbilityRunnerDeps;
  /** Pinned keep-alive dispatchers: calls to the same API reuse connections. */
  readonly #dispatchers: PinnedDispatcherPool;
  readonly #maxResponseBytes: number;
  readonly #compiled = new WeakMap<ResolvedAbility, { template: UrlTemplate; arrays: ReadonlySet<string> } | null>();

  constructor(deps: AbilityRunnerDeps) {
    this.#deps = deps;
    const ca = deps.upstreamCa && deps.upstreamCa.length > 0 ? [...rootCertificates, ...deps.upstreamCa] : undefined;
    this.#dispatchers = new PinnedDispatcherPool({ connectTimeoutMs: deps.config.egress.connectTimeoutMs, ...(ca ? { ca } : {}) });
    this.#maxResponseBytes = deps.maxResponseBytes ?? DEFAULTS.abilityMaxResponseBytes;
  }

  #compile(ability: ResolvedAbility): { template: UrlTemplate; arrays: ReadonlySet<string> } | null {
    let c = this.#compiled.get(ability);
    if (c === undefined) {
      const t = parseUrlTemplate(ability.url);
      c = 'error' in t ? null : { template: t, arrays: arrayParams(ability.params) };
      this.#compiled.set(ability, c);
    }
    return c;
  }

  /** Runs one call (see the module docs). Never throws. */
  async run(call: AbilityCall): Promise<AbilityOutcome> {
    const { ability } = call;
    const rule = `abilities.${ability.name}`;
    const detail: AbilityDetail = {};
    const record: Record<string, unknown> = { method: ability.method, host: ability.host };
    detail.ability = record;
    const refuse = (decision: Decision, code: BastionErrorCode, text: string): AbilityOutcome => ({ kind: 'refused', decision, code, text, detail });

    // 1. The request: parameters fill the URL and body only.
    const compiled = this.#compile(ability);
    if (compiled === null) return refuse(deny('ability.template', `${rule}.url`), 'ERR_CONFIG_INVALID', 'Bastion refused this call: the ability is misconfigured');
    const built = buildAbilityRequest(ability, compiled.template, call.args, compiled.arrays);
    if (!('url' in built)) {
      detail.unsafeParam = { param: built.param, reason: built.reason };
      const reason = built.reason === 'missing' ? 'ability.param_missing' : built.reason === 'type' ? 'ability.param_type' : 'ability.param_unsafe';
      const text =
        built.param === null
          ? 'Bastion refused this call: the parameters would change the URL beyond its path and query'
          : `Bastion refused this call: parameter ${built.param} ${PARAM_TEXT[built.reason] ?? 'cannot be placed in the URL'}; it fills one path segment`;
      return refuse(deny(reason, `${rule}.url`), 'ERR_ARGS_INVALID', text);
    }
    record.path = built.path;
    const headers = built.headers;

    // 2. The network door: the ability's origin is its grant; SSRF, static hosts and exceptions apply.
    const target = parseEgressTarget(built.url.href, built.method);
    if (target === undefined) return refuse(deny('ssrf.unparsable', 'ssrf-guard'), 'ERR_EGRESS_SSRF', 'Bastion refused this call: the destination is not allowed');
    const verdict: EgressVerdict = await this.#deps.guard.checkGranted(call.context.agent, target, rule);
    if (verdict.address !== undefined) record.address = verdict.address;
    if (verdict.exception) record.exception = true;
    if (verdict.decision.effect !== 'allow' || verdict.address === undefined) {
      const ssrf = verdict.decision.reason.startsWith('ssrf.');
      const decision = verdict.decision.effect === 'allow' ? deny('egress.no_address', 'guard') : verdict.decision;
      return refuse(decision, ssrf ? 'ERR_EGRESS_SSRF' : 'ERR_EGRESS_DENIED', 'Bastion refused this call: the destination is not allowed');
    }
    const address = verdict.address;

    // 3. The bound secret, in its own header, only for a host its bindings cover.
    const redact = [...call.redact];
    let secretId: string | undefined;
    const tokenHeader = ability.token?.header.toLowerCase();
    if (ability.secret !== undefined) {
      detail.secret = ability.secret;
      const secretRule = `${rule}.secret`;
      let current: ResolvedPlaceholder | undefined;
      try {
        current = await this.#deps.vault?.current(ability.secret);
      } catch (err) {
        return refuse(deny('vault.error', 'vault'), isBastionError(err) ? err.code : 'ERR_STORE', 'Bastion refused this call: the credential is unavailable');
      }
      if (current === undefined) return refuse(deny('ability.secret_missing', secretRule), 'ERR_VAULT_SECRET_UNKNOWN', 'Bastion refused this call: the credential is not in the vault');
      const { secret, value } = current;
      const header = secret.header?.toLowerCase();
      if (header === undefined) return refuse(deny('ability.secret_unbound', secretRule), 'ERR_ABILITY_REQUEST', 'Bastion refused this call: the credential has no header to be sent in');
      // The release rule (src/vault/release.ts): the ability's own secret (granted by config), its URL, its header.
      const released = release({
        secret: namedSecret(secret, value, this.#deps.config.secrets.get(ability.secret)),
        agent: call.context.agent,
        granted: true,
        user: call.context.user,
        destination: { scheme: target.scheme, host: target.host, port: target.port, location: `header:${header}`, whole: true },
      });
      if (released.effect !== 'allow') {
        return refuse(deny(released.reason, released.rule), 'ERR_EGRESS_DENIED', 'Bastion refused this call: the credential may not be sent to this host');
      }
      if (Object.keys(ability.headers).some((k) => k.toLowerCase() === header)) {
        return refuse(deny('ability.header_conflict', `${rule}.headers`), 'ERR_ABILITY_REQUEST', 'Bastion refused this call: the ability configures the credential\'s header');
      }
      if (header === tokenHeader || header === 'bastion-context' || header === 'signature' || header === 'signature-input' || header === 'content-digest') {
        return refuse(deny('ability.header_conflict', secretRule), 'ERR_ABILITY_REQUEST', 'Bastion refused this call: the credential\'s header is one Bastion sets');
      }
      headers[header] = released.value.reveal();
      redact.push(value.reveal());
      secretId = secret.id;
    }

    // 3b. Or the end user's own OAuth token, released by the same rule: this user only, this host, Authorization only.
    if (ability.oauth !== undefined) {
      const oauthRule = `${rule}.oauth`;
      detail.oauth = ability.oauth;
      const user = call.context.user;
      const tokens = this.#deps.userTokens;
      if (user === null) return refuse(deny('user.missing', oauthRule), 'ERR_USER_REQUIRED', 'Bastion refused this call: it acts as the end user, and none is named');
      if (tokens === undefined) return refuse(deny('vault.unavailable', oauthRule), 'ERR_OAUTH_CONSENT', 'Bastion refused this call: per-user accounts are not available on this gateway');
      const t = await tokens.accessToken({ user, provider: ability.oauth });
      if (!t.ok) {
        if (t.reason !== 'oauth.consent_required') return refuse(deny(t.reason, oauthRule), 'ERR_OAUTH_PROVIDER', 'Bastion refused this call: the account cannot be used now');
        const link = await tokens.startAuthorization({ provider: ability.oauth, user, agent: call.context.agent });
        const text = link.ok
          ? `The user must connect their ${ability.oauth} account first: open ${link.url.href} and then call this tool again`
          : `The user must connect their ${ability.oauth} account first, and the sign-in could not be started`;
        return refuse(deny('oauth.consent_required', oauthRule), 'ERR_OAUTH_CONSENT', text);
      }
      const released = release({
        secret: userTokenSecret(ability.oauth, user, [ability.host], t.token),
        agent: call.context.agent,
        granted: true,
        user,
        destination: { scheme: target.scheme, host: target.host, port: target.port, location: 'header:authorization', whole: true },
      });
      if (released.effect !== 'allow') return refuse(deny(released.reason, released.rule), 'ERR_EGRESS_DENIED', 'Bastion refused this call: the account\'s token may not be sent to this host');
      if (Object.keys(ability.headers).some((k) => k.toLowerCase() === 'authorization') || tokenHeader === 'authorization') {
        return refuse(deny('ability.header_conflict', oauthRule), 'ERR_ABILITY_REQUEST', 'Bastion refused this call: the ability configures the Authorization header');
      }
      headers.authorization = released.value.reveal();
      redact.push(t.token);
    }

    // 4. Signed context and per-call token: added after everything else, replacing same-named headers.
    if (ability.signContext || ability.token !== undefined) {
      try {
        const signed = await this.#deps.signer.sign(
          { method: built.method, url: built.url.href, headers, body: built.body },
          call.context,
          {
            signContext: ability.signContext,
            ...(ability.token !== undefined ? { token: { ...ability.token, audience: ability.token.audience ?? ability.name, scope: ability.name } } : {}),
          },
        );
        Object.assign(headers, signed.headers);
        if (signed.audit.signature) detail.signature = signed.audit.signature;
        if (signed.audit.token) detail.token = signed.audit.token;
      } catch (err) {
        return { kind: 'failed', code: isBastionError(err) ? err.code : 'ERR_SIGNING', text: 'Bastion could not sign this call', timeout: false, detail };
      }
    }

    // 5. Send, pinned to the checked address.
    const sent = await this.#send(built, headers, target.host, address, ability.timeoutMs, call.signal);
    if (secretId !== undefined) this.#deps.vault?.markUsed(secretId);
    if (sent.status !== undefined) record.status = sent.status;
    if (sent.bytes !== undefined) record.bytes = sent.bytes;
    if ('error' in sent) {
      if (sent.cause !== undefined) record.error = sent.cause;
      return { kind: 'failed', code: 'ERR_ABILITY_REQUEST', text: sent.error, timeout: sent.timeout, detail };
    }

    // 6. Echoed secrets out (the values sent, and every live value of a secret bound to this host), then the transform.
    try {
      for (const v of (await this.#deps.vault?.valuesForHost?.(target.host)) ?? []) redact.push(v.reveal());
    } catch (err) {
      return { kind: 'failed', code: isBastionError(err) ? err.code : 'ERR_STORE', text: 'Bastion could not check the answer for credentials', timeout: false, detail };
    }
    const text = redact.length > 0 ? redactString(sent.body, compileRedaction(redact)).text : sent.body;
    const failed = sent.status >= 400;
    let shaped: ReturnType<typeof shapeResponse>;
    if (!failed && ability.response.js !== undefined) {
      // 7. `response.js` over the selected JSON (or the text), in the sandbox; its value, as JSON, is the answer.
      const js = await this.#transformJs(ability.response.js, text, sent.contentType, ability.response.select);
      if (!js.ok) {
        record.error = js.code;
        if (js.code === 'ERR_JS_ERROR') record.jsError = js.message;
        return { kind: 'failed', code: js.code, text: 'Bastion could not transform the API\'s answer (response.js)', timeout: js.code === 'ERR_JS_TIMEOUT', detail };
      }
      shaped = shapeResponse(js.json, 'application/json', undefined, ability.response.maxBytes);
    } else {
      shaped = shapeResponse(text, sent.contentType, failed ? undefined : ability.response.select, ability.response.maxBytes);
    }
    record.truncated = shaped.truncated;
    const result: CallToolResult = {
      content: [{ type: 'text', text: failed ? `The API answered HTTP ${sent.status}:\n${shaped.text}` : shaped.text }],
      ...(failed ? { isError: true } : {}),
      _meta: { 'bastion/ability': { status: sent.status, truncated: shaped.truncated } },
    };
    return { kind: 'answered', result, detail };
  }

  /**
   * Evaluates `source` with `response` bound to the JSON body after `select`
   * (the text when the body is not JSON); the value as JSON text. Never throws.
   */
  async #transformJs(
    source: string,
    body: string,
    contentType: string | undefined,
    select: readonly string[] | undefined,
  ): Promise<{ ok: true; json: string } | { ok: false; code: 'ERR_JS_TIMEOUT' | 'ERR_JS_MEMORY' | 'ERR_JS_ERROR' | 'ERR_JS_RESULT' | 'ERR_JS_UNAVAILABLE'; message: string }> {
    const evaluator = this.#deps.js;
    if (evaluator === undefined) return { ok: false, code: 'ERR_JS_UNAVAILABLE', message: 'no JavaScript sandbox on this gateway' };
    const parsed = parseJsonBody(body, contentType);
    let response: unknown = body;
    if (parsed !== undefined) {
      try {
        response = select !== undefined ? selectFields(parsed.value, select) : parsed.value;
      } catch {
        return { ok: false, code: 'ERR_JS_ERROR', message: 'the answer is too deeply nested' };
      }
    }
    // An expression (parenthesized, so an object literal is one); `response` is a block-scoped alias of `input`.
    const r = await evaluator.evaluate(`const response = input;\n(${source}\n)`, response, { maxResultBytes: this.#maxResponseBytes });
    if (!r.ok) return r;
    try {
      return { ok: true, json: JSON.stringify(r.value) };
    } catch {
      return { ok: false, code: 'ERR_JS_RESULT', message: 'the value is too deeply nested' };
    }
  }

  /** One exchange with the API. Never throws; a 3xx, a timeout or a body over the cap is an error. */
  async #send(
    req: AbilityRequest,
    headers: Record<string, string>,
    host: string,
    address: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<
    | { status: number; bytes: number; body: string; contentType: string | undefined }
    | { error: string; timeout: boolean; cause?: string; status?: number; bytes?: number }
  > {
    const deadline = AbortSignal.timeout(timeoutMs);
    const abort = signal ? AbortSignal.any([deadline, signal]) : deadline;
    const dispatcher = this.#dispatchers.get(host, address);
    let res: Dispatcher.ResponseData | undefined;
    try {
      // undici's request() never follows redirects; a 3xx comes back as it is.
      res = await dispatcher.request({
        origin: req.url.origin,
        path: `${req.url.pathname}${req.url.search}`,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: req.body.length > 0 ? Buffer.from(req.body) : null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: abort,
      });
      const status = res.statusCode;
      if (status >= 300 && status < 400) {
        dropBody(res.body);
        return { error: `The API answered with a redirect (HTTP ${status}); Bastion does not follow redirects`, timeout: false, status };
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > this.#maxResponseBytes) {
          dropBody(res.body);
          return { error: 'The API answered with more data than Bastion accepts', timeout: false, cause: 'response_too_large', status, bytes };
        }
        chunks.push(chunk);
      }
      let body: Buffer = Buffer.concat(chunks);
      const encoding = String(res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== '') {
        const decode = unzip[encoding];
        if (decode === undefined) return { error: 'The API answered in an unsupported content encoding', timeout: false, cause: 'content_encoding', status, bytes };
        try {
          body = await decode(body, { maxOutputLength: this.#maxResponseBytes });
        } catch {
          return { error: 'The API answered with more data than Bastion accepts, or a corrupt encoding', timeout: false, cause: 'decode', status, bytes };
        }
      }
      const ct = res.headers['content-type'];
      return { status, bytes, body: body.toString('utf8'), contentType: Array.isArray(ct) ? ct[0] : ct };
    } catch (err) {
      if (res) dropBody(res.body);
      const status = res?.statusCode;
      if (deadline.aborted || isTimeout(err)) return { error: 'The API did not answer in time', timeout: true, cause: 'timeout', ...(status !== undefined ? { status } : {}) };
      if (signal?.aborted) return { error: 'The call was cancelled', timeout: false, cause: 'cancelled' };
      return { error: 'The API could not be reached', timeout: false, cause: errorCode(err), ...(status !== undefined ? { status } : {}) };
    }
  }

  /** Closes the pooled connections (on shutdown). */
  close(): Promise<void> {
    return this.#dispatchers.close();
  }
}


function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || (err as { name?: unknown } | null)?.name === 'TimeoutError';
}

/** A short, non-secret error code for the audit record (`ECONNREFUSED`, `UND_ERR_SOCKET`, …). */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'error';
}
