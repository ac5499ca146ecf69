/**
 * The vault: secrets stored sealed in the {@link VaultStore}, placeholders handed to
 * agents instead of values, and the hot-path lookup from a placeholder back to
 * a value (see docs/vault.md and ARCHITECTURE.md, "vault").
 *
 * - Each secret version is sealed with its own data key under the KEK
 *   (./envelope.ts); the store never sees a clear value.
 * - Placeholders are `derivePlaceholder(agentKey, {secretId, version})`
 *   (./placeholder.ts) where the per-agent key is
 *
 *       agentKey = HMAC-SHA256(rootKey, "bastion/placeholder/agent/v1|" + agentName)
 *
 *   and `rootKey` is 32 random bytes made once per installation and stored
 *   sealed under the KEK as the vault item {@link PLACEHOLDER_ROOT_ITEM}. The
 *   label separates this use of the root key from any other; the agent name
 *   (config syntax: 1-64 of `A-Za-z0-9_-`) cannot contain the `|` separator. So a
 *   placeholder is specific to the agent, the installation, the secret and its
 *   version, and changes on rotation and on revoke-then-add (a new id).
 * - {@link Vault.resolve} keeps, per agent, an index from placeholder to
 *   version, built from the store's valid versions and rebuilt whenever the
 *   store's vault generation changes (another process, e.g. the CLI, changed a
 *   secret). Values are decrypted on first use and cached as {@link Secret}s.
 */
import { HostPattern, SECRET_NAME } from '../config/schema.ts';
import { hostMatchesAny, normalizeHost } from '../net/host-pattern.ts';
import { BastionError } from '../errors.ts';
import { hmacSha256, randomId, randomKeyBytes } from '../util/crypto.ts';
import { Secret } from '../util/secret.ts';
import { openSecret, sealSecret, type SealedSecret } from './envelope.ts';
import { vaultDecryptError } from './errors.ts';
import { checkHostBinding, hostBindingMessage, isUsableStoredHost } from './host-binding.ts';
import type { Kek } from './kek.ts';
import { derivePlaceholder, isPlaceholder } from './placeholder.ts';
import type { StoredSecret, VaultStore } from './store.ts';

/** Name of the vault item holding the sealed placeholder root key. */
export const PLACEHOLDER_ROOT_ITEM = 'placeholder-root-key';

/** Domain-separation label of the per-agent placeholder key derivation (see the module docs). */
export const AGENT_KEY_LABEL = 'bastion/placeholder/agent/v1|';

/** Domain-separation label of {@link Vault.derivedKey}. */
const DERIVED_KEY_LABEL = 'bastion/derived/v1|';

/** Largest secret value, in UTF-8 bytes. */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

/** Most host patterns one secret may be bound to. */
const MAX_HOSTS = 64;
/** Longest header name and format template, in characters. */
const MAX_HEADER_LENGTH = 256;
const MAX_FORMAT_LENGTH = 1024;

/** Most hosts whose live values {@link Vault.valuesForHost} keeps per index (the cache is dropped whole beyond). */
const VALUES_BY_HOST_MAX = 1024;

/** How often at most `markUsed` writes `lastUsedAt` for one secret, in ms. */
const MARK_USED_INTERVAL_MS = 1000;

/** The sealed root key's reference (AAD binding; ./envelope.ts). */
const ROOT_REF = { id: `vault-item:${PLACEHOLDER_ROOT_ITEM}`, version: 1 } as const;

/** An HTTP field name: an RFC 9110 §5.6.2 token. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A secret's metadata as the vault shows it: never its value. Times are epoch ms. */
export interface VaultSecretInfo {
  readonly id: string;
  readonly name: string;
  /** Host patterns the value may be sent to (lower case). */
  readonly hosts: readonly string[];
  /** HTTP header the value is sent in, when bound to one. */
  readonly header?: string;
  /** Header value template with one `{}`, when given (`Bearer {}`). */
  readonly format?: string;
  /** The current version (1 after add, +1 per rotation). */
  readonly version: number;
  readonly createdAt: number;
  readonly rotatedAt: number | null;
  readonly lastUsedAt: number | null;
}

/** What {@link Vault.resolve} returns for a valid placeholder. */
export interface ResolvedPlaceholder {
  /** The secret, as of the last index rebuild (`lastUsedAt` may lag). */
  readonly secret: VaultSecretInfo;
  /** The version the placeholder stands for: the current one, or an older one within its rotation grace. */
  readonly version: number;
  readonly value: Secret;
}

/** One generation of the vault, read once ({@link Vault.view}): the same lookups, synchronous. */
export interface VaultView {
  /** As {@link Vault.resolve}. @throws BastionError `ERR_VAULT_DECRYPT` */
  resolve(agent: string, placeholder: string): ResolvedPlaceholder | undefined;
  /** As {@link Vault.current}. @throws BastionError `ERR_VAULT_DECRYPT`; TypeError / RangeError on an invalid name */
  current(name: string): ResolvedPlaceholder | undefined;
  /** As {@link Vault.valuesForHost}; the same array for the same host while the generation and expiries hold. @throws BastionError `ERR_VAULT_DECRYPT` */
  valuesForHost(host: string): readonly Secret[];
}

/** Where a secret may be sent, given at {@link Vault.add}. */
export interface VaultSecretMeta {
  /** At least one host pattern: `api.github.com`, `*.slack.com`, an IP literal. */
  readonly hosts: readonly string[];
  /** An HTTP header name (RFC 9110 token). */
  readonly header?: string | undefined;
  /** A header value template with exactly one `{}`; needs `header`. */
  readonly format?: string | undefined;
  /** Accept exact hosts under a Public Suffix List PRIVATE-section suffix (src/vault/host-binding.ts); the caller audits it. */
  readonly unsafeAllowSharedSuffix?: boolean | undefined;
}

/** Options of {@link Vault.open}. */
export interface VaultOptions {
  /** How long a rotated-out version stays valid, in ms (config `vault.rotationGraceMs`). */
  readonly rotationGraceMs: number;
  /** The clock, epoch ms (tests inject one). Default `Date.now`. */
  readonly now?: () => number;
}

interface IndexedVersion {
  readonly secretId: string;
  readonly version: number;
  readonly sealed: string;
  readonly expiresAt: number | null;
}

/** What one index build holds; replaced whole on a generation change. */
interface IndexState {
  readonly generation: number;
  readonly secrets: ReadonlyMap<string, VaultSecretInfo>;
  readonly versions: readonly IndexedVersion[];
  /** Secret name → its current version. */
  readonly currentByName: ReadonlyMap<string, IndexedVersion>;
  /** Per agent: placeholder → version; built on first use. */
  readonly byAgent: Map<string, Map<string, IndexedVersion>>;
  /** `secretId|version` → decrypted value. */
  readonly values: Map<string, Secret>;
}

function toInfo(s: StoredSecret): VaultSecretInfo {
  return {
    id: s.id,
    name: s.name,
    hosts: [...s.hosts],
    ...(s.header === null ? {} : { header: s.header }),
    ...(s.format === null ? {} : { format: s.format }),
    version: s.version,
    createdAt: s.createdAt,
    rotatedAt: s.rotatedAt,
    lastUsedAt: s.lastUsedAt,
  };
}

/**
 * Checks a secret name: 1-64 of `A-Za-z0-9_-` (the config's `secrets` keys).
 * @throws TypeError if not a string; RangeError naming the field otherwise
 */
export function assertSecretName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError('secret name must be a string');
  if (!SECRET_NAME.test(name)) throw new RangeError('secret name must be 1-64 of A-Z a-z 0-9 _ -');
}

/**
 * Checks a secret value: a {@link Secret} whose value is non-empty, well-formed
 * Unicode, at most {@link MAX_SECRET_VALUE_BYTES} UTF-8 bytes, without CR, LF or
 * NUL (it may end up in an HTTP header). Messages never include the value.
 * @throws TypeError if not a Secret; RangeError otherwise
 */
export function assertSecretValue(value: unknown): asserts value is Secret {
  if (!(value instanceof Secret)) throw new TypeError('secret value must be a Secret');
  const clear = value.reveal();
  if (clear.length === 0) throw new RangeError('secret value must not be empty');
  if (!clear.isWellFormed()) throw new RangeError('secret value must be well-formed Unicode');
  if (Buffer.byteLength(clear, 'utf8') > MAX_SECRET_VALUE_BYTES) throw new RangeError(`secret value must be at most ${MAX_SECRET_VALUE_BYTES} bytes`);
  if (/[\r\n\0]/.test(clear)) throw new RangeError('secret value must not contain CR, LF or NUL');
}

/**
 * Validates and normalizes where a secret may be sent: hosts lower-cased
 * (brackets and one trailing dot removed), deduplicated, in order, each passing
 * the Public Suffix List check ({@link checkHostBinding}).
 * @throws TypeError on wrong types; RangeError naming the field (`hosts`, `header`, `format`) and, for a refused host, the reason
 */
export function normalizeSecretMeta(meta: VaultSecretMeta): { hosts: string[]; header: string | null; format: string | null } {
  if (typeof meta !== 'object' || meta === null) throw new TypeError('secret meta must be an object');
  if (!Array.isArray(meta.hosts)) throw new TypeError('hosts must be an array of strings');
  if (meta.hosts.length === 0) throw new RangeError('hosts must name at least one host');
  if (meta.hosts.length > MAX_HOSTS) throw new RangeError(`hosts may name at most ${MAX_HOSTS} hosts`);
  const hosts: string[] = [];
  for (const h of meta.hosts) {
    if (typeof h !== 'string') throw new TypeError('hosts must be an array of strings');
    const n = normalizeHost(h);
    if (!HostPattern.safeParse(n).success) {
      throw new RangeError(`hosts: ${JSON.stringify(h.slice(0, 256))} must be a host name, *.domain (any subdomain) or an IP literal`);
    }
    const binding = checkHostBinding(n, { unsafeAllowSharedSuffix: meta.unsafeAllowSharedSuffix });
    if (!binding.ok) throw new RangeError(`hosts: ${hostBindingMessage(binding, h)}`);
    if (!hosts.includes(n)) hosts.push(n);
  }
  const { header, format } = meta;
  if (header !== undefined) {
    if (typeof header !== 'string') throw new TypeError('header must be a string');
    if (header.length > MAX_HEADER_LENGTH || !HTTP_TOKEN.test(header)) throw new RangeError('header must be an HTTP header name (RFC 9110 token)');
  }
  if (format !== undefined) {
    if (typeof format !== 'string') throw new TypeError('format must be a string');
    if (header === undefined) throw new RangeError('format needs a header');
    if (format.length > MAX_FORMAT_LENGTH) throw new RangeError(`format must be at most ${MAX_FORMAT_LENGTH} characters`);
    if (format.split('{}').length !== 2) throw new RangeError('format must contain exactly one {}');
    if (/[\r\n\0]/.test(format) || !format.isWellFormed()) throw new RangeError('format must not contain CR, LF or NUL');
  }
  return { hosts, header: header ?? null, format: format ?? null };
}

/**
 * The vault over a {@link VaultStore} and a {@link Kek}. Open one per process with
 * {@link Vault.open}; several processes may share one store.
 *
 * Errors: store failures propagate as `BastionError('ERR_STORE')`, a sealed
 * item that does not open (wrong KEK, tampering) as `ERR_VAULT_DECRYPT`; input
 * errors are `TypeError`/`RangeError` naming the field, never the value.
 */
export class Vault {
  readonly #store: VaultStore;
  readonly #kek: Kek;
  readonly #rootKey: Buffer;
  readonly #graceMs: number;
  readonly #now: () => number;
  readonly #agentKeys = new Map<string, Buffer>();
  #index: IndexState | undefined;
  #rebuilding: Promise<IndexState> | undefined;
  /** This turn's read of the store's vault generation (see `#generationOfTurn`). */
  #turnRead: Promise<number> | undefined;
  readonly #lastMarked = new Map<string, number>();
  readonly #pendingMarks = new Set<Promise<void>>();
  /** Per index: host → its secrets' live values, until the first of their rotation graces ends. */
  readonly #byHost = new WeakMap<IndexState, Map<string, { readonly values: readonly Secret[]; readonly expiresAt: number }>>();

  private constructor(store: VaultStore, kek: Kek, rootKey: Buffer, opts: VaultOptions) {
    this.#store = store;
    this.#kek = kek;
    this.#rootKey = rootKey;
    this.#graceMs = opts.rotationGraceMs;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Opens the vault: loads the installation's placeholder root key, creating it
   * on first use (32 CSPRNG bytes sealed under `kek`, stored insert-if-absent and
   * read back, so concurrent first opens agree on one key).
   * @throws BastionError `ERR_VAULT_DECRYPT` when the stored root key does not open under `kek`
   *   (another KEK: the wrong `BASTION_MASTER_KEY` or key file); `ERR_STORE`
   * @throws RangeError if `opts.rotationGraceMs` is not a non-negative integer
   */
  static async open(store: VaultStore, kek: Kek, opts: VaultOptions): Promise<Vault> {
    if (!Number.isSafeInteger(opts.rotationGraceMs) || opts.rotationGraceMs < 0) {
      throw new RangeError('Vault.open: rotationGraceMs must be a non-negative integer (ms)');
    }
    if (opts.now !== undefined && typeof opts.now !== 'function') throw new TypeError('Vault.open: now must be a function');
    let stored = await store.getVaultItem(PLACEHOLDER_ROOT_ITEM);
    if (stored === undefined) {
      const fresh = randomKeyBytes(32);
      const sealed = sealSecret(kek, ROOT_REF, new Secret(fresh.toString('base64url')));
      fresh.fill(0);
      stored = await store.putVaultItemIfAbsent(PLACEHOLDER_ROOT_ITEM, JSON.stringify(sealed));
    }
    const root = Buffer.from(openSecret(kek, ROOT_REF, parseSealed(stored, ROOT_REF)).reveal(), 'base64url');
    if (root.length !== 32) throw vaultDecryptError(ROOT_REF);
    return new Vault(store, kek, root, opts);
  }

  /**
   * Stores a new secret (version 1) and returns its metadata.
   * @throws BastionError `ERR_VAULT_SECRET_EXISTS` when a live secret has the name; `ERR_STORE`
   * @throws TypeError / RangeError on an invalid name, value or `meta` (see {@link normalizeSecretMeta}, {@link assertSecretValue})
   */
  async add(name: string, value: Secret, meta: VaultSecretMeta): Promise<VaultSecretInfo> {
    assertSecretName(name);
    const m = normalizeSecretMeta(meta);
    assertSecretValue(value);
    const id = randomId();
    const sealed = sealSecret(this.#kek, { id, version: 1 }, value);
    const createdAt = this.#now();
    this.#turnRead = undefined;
    await this.#store.createSecret({ id, name, hosts: m.hosts, header: m.header, format: m.format, createdAt, sealed: JSON.stringify(sealed) });
    this.#turnRead = undefined;
    return toInfo({ id, name, ...m, version: 1, createdAt, rotatedAt: null, revokedAt: null, lastUsedAt: null });
  }

  /**
   * Stores a new value as the next version. The previous version (and its
   * placeholders) stays valid for `rotationGraceMs` from now; older ones keep their earlier expiry.
   * @throws BastionError `ERR_VAULT_SECRET_UNKNOWN` for an unknown or revoked name; `ERR_STORE`
   * @throws TypeError / RangeError on an invalid name or value
   */
  async rotate(name: string, value: Secret): Promise<VaultSecretInfo> {
    assertSecretName(name);
    assertSecretValue(value);
    // A concurrent rotation may take the next version first: seal again for the one after.
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.#live(name);
      const version = current.version + 1;
      const sealed = sealSecret(this.#kek, { id: current.id, version }, value);
      const at = this.#now();
      this.#turnRead = undefined;
      const rotated = await this.#store.rotateSecret(current.id, { version, sealed: JSON.stringify(sealed), createdAt: at }, at + this.#graceMs);
      this.#turnRead = undefined;
      if (rotated) {
        return toInfo({ ...current, version, rotatedAt: at });
      }
    }
    throw new BastionError('ERR_STORE', 'vault: rotate lost too many concurrent updates', { detail: { name } });
  }

  /**
   * Revokes a secret: every version and placeholder stops resolving now, and
   * the name may be added again (as a new secret with new placeholders).
   * @throws BastionError `ERR_VAULT_SECRET_UNKNOWN` for an unknown or revoked name; `ERR_STORE`
   */
  async revoke(name: string): Promise<void> {
    assertSecretName(name);
    const current = await this.#live(name);
    this.#turnRead = undefined;
    const revoked = await this.#store.revokeSecret(current.id, this.#now());
    this.#turnRead = undefined;
    if (!revoked) throw unknownSecret(name);
  }

  /** The live secrets, ascending by name, read from the store (never values). @throws BastionError `ERR_STORE` */
  async list(): Promise<VaultSecretInfo[]> {
    return (await this.#store.listSecrets()).map(toInfo);
  }

  /** The live secret `name`'s metadata. @throws BastionError `ERR_VAULT_SECRET_UNKNOWN`; `ERR_STORE` */
  async info(name: string): Promise<VaultSecretInfo> {
    assertSecretName(name);
    return toInfo(await this.#live(name));
  }

  /**
   * The placeholder `agent` uses for the current version of secret `name`. It
   * does not check that the agent is granted the secret (config); callers do.
   * @throws BastionError `ERR_VAULT_SECRET_UNKNOWN`; `ERR_STORE`
   * @throws TypeError if `agent` is not a non-empty string
   */
  async placeholder(name: string, agent: string): Promise<string> {
    assertSecretName(name);
    assertAgent(agent);
    const current = await this.#live(name);
    return derivePlaceholder(this.#agentKey(agent), { secretId: current.id, version: current.version });
  }

  /**
   * The secret version that `placeholder` stands for when presented by `agent`,
   * or undefined when it stands for nothing valid: not a placeholder, forged,
   * derived for another agent or installation, a revoked secret's, or a
   * rotated-out version past its grace. Grants (config `agents.X.secrets`) and
   * host bindings are the caller's to check.
   *
   * Costs one small store read (the vault generation) per call; the index is
   * rebuilt when it changed, and each value is decrypted once and cached.
   * Fails closed: a store or decrypt failure rejects (the caller denies).
   * @throws BastionError `ERR_STORE`, `ERR_VAULT_DECRYPT`
   */
  async resolve(agent: string, placeholder: string): Promise<ResolvedPlaceholder | undefined> {
    if (typeof agent !== 'string' || agent === '' || !isPlaceholder(placeholder)) return undefined;
    return this.#resolveIn(await this.#current(), agent, placeholder);
  }

  #resolveIn(state: IndexState, agent: string, placeholder: string): ResolvedPlaceholder | undefined {
    if (typeof agent !== 'string' || agent === '' || !isPlaceholder(placeholder)) return undefined;
    const hit = this.#agentIndex(state, agent).get(placeholder);
    if (hit === undefined) return undefined;
    if (hit.expiresAt !== null && hit.expiresAt <= this.#now()) return undefined;
    const secret = state.secrets.get(hit.secretId);
    if (secret === undefined) return undefined;
    return { secret, version: hit.version, value: this.#value(state, hit) };
  }

  /**
   * The current version of live secret `name`, for Bastion's own use of it (a
   * model provider's key), not through an agent's placeholder; undefined when
   * there is none. Same cost as {@link resolve}: one generation read per call.
   * Host bindings are the caller's to check.
   * @throws BastionError `ERR_STORE`, `ERR_VAULT_DECRYPT`; TypeError / RangeError on an invalid name
   */
  async current(name: string): Promise<ResolvedPlaceholder | undefined> {
    assertSecretName(name);
    return this.#currentIn(await this.#current(), name);
  }

  #currentIn(state: IndexState, name: string): ResolvedPlaceholder | undefined {
    assertSecretName(name);
    const hit = state.currentByName.get(name);
    const secret = hit === undefined ? undefined : state.secrets.get(hit.secretId);
    if (hit === undefined || secret === undefined) return undefined;
    return { secret, version: hit.version, value: this.#value(state, hit) };
  }

  /**
   * Every live value of every secret whose stored hosts match `host`: each
   * valid version (the current one and those still in their rotation grace),
   * whatever agent may use it. The network door redacts them from every
   * response of that host, whether or not the request carried a placeholder.
   * Same cost as {@link resolve} (one generation read); the answer is cached
   * per host until the vault changes.
   * @throws BastionError `ERR_STORE`, `ERR_VAULT_DECRYPT` (the caller refuses the request)
   */
  async valuesForHost(host: string): Promise<readonly Secret[]> {
    return this.#valuesForHostIn(await this.#current(), host);
  }

  /**
   * One consistent reading of the vault for one request: the generation is read
   * once (one small store read, shared by every view taken in the same turn of
   * the event loop), and the view's lookups, the same as {@link resolve},
   * {@link current} and {@link valuesForHost}, answer from that generation
   * without another read. Hold it for one request only: a change made
   * afterwards (a revoke from the CLI) is seen by the views of the next turn;
   * this Vault's own changes by the next view.
   * The view's methods throw `ERR_VAULT_DECRYPT` like the async ones.
   * @throws BastionError `ERR_STORE` (the caller refuses the request)
   */
  async view(): Promise<VaultView> {
    const state = await this.#current(true);
    return {
      resolve: (agent, placeholder) => this.#resolveIn(state, agent, placeholder),
      current: (name) => this.#currentIn(state, name),
      valuesForHost: (host) => this.#valuesForHostIn(state, host),
    };
  }

  #valuesForHostIn(state: IndexState, host: string): readonly Secret[] {
    const h = normalizeHost(host);
    let byHost = this.#byHost.get(state);
    if (byHost === undefined) {
      byHost = new Map();
      this.#byHost.set(state, byHost);
    }
    const now = this.#now();
    const cached = byHost.get(h);
    if (cached !== undefined && cached.expiresAt > now) return cached.values;
    const values: Secret[] = [];
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const v of state.versions) {
      if (v.expiresAt !== null && v.expiresAt <= now) continue;
      const secret = state.secrets.get(v.secretId);
      if (secret === undefined || !hostMatchesAny(secret.hosts, h)) continue;
      values.push(this.#value(state, v));
      if (v.expiresAt !== null) expiresAt = Math.min(expiresAt, v.expiresAt);
    }
    if (byHost.size >= VALUES_BY_HOST_MAX) byHost.clear();
    byHost.set(h, { values, expiresAt });
    return values;
  }

  /** A version's value, decrypted once per index and cached. */
  #value(state: IndexState, hit: IndexedVersion): Secret {
    const cacheKey = `${hit.secretId}|${hit.version}`;
    let value = state.values.get(cacheKey);
    if (value === undefined) {
      const ref = { id: hit.secretId, version: hit.version };
      value = openSecret(this.#kek, ref, parseSealed(hit.sealed, ref));
      state.values.set(cacheKey, value);
    }
    return value;
  }

  /**
   * Records that secret `secretId` was just used (its `lastUsedAt`), at most
   * once per second per secret, in the background. Store errors are swallowed:
   * a missed timestamp must not fail a request. See {@link flush}.
   */
  markUsed(secretId: string): void {
    const now = this.#now();
    const last = this.#lastMarked.get(secretId);
    if (last !== undefined && now - last < MARK_USED_INTERVAL_MS && now >= last) return;
    this.#lastMarked.set(secretId, now);
    const write = this.#store.touchSecret(secretId, now).then(
      () => undefined,
      () => undefined,
    );
    this.#pendingMarks.add(write);
    void write.finally(() => this.#pendingMarks.delete(write));
  }

  /** Waits for the background writes of {@link markUsed} (call before closing the store). Never rejects. */
  async flush(): Promise<void> {
    await Promise.all([...this.#pendingMarks]);
  }

  async #live(name: string): Promise<StoredSecret> {
    const s = await this.#store.getSecretByName(name);
    if (s === undefined) throw unknownSecret(name);
    return s;
  }

  /**
   * A 32-byte key for one purpose, derived from the installation's root key:
   * HMAC-SHA256(rootKey, "bastion/derived/v1|" + label). Labels name their use
   * (`pasted/token`, `pasted/fingerprint`); different labels give independent keys.
   */
  derivedKey(label: string): Buffer {
    if (typeof label !== 'string' || label.length === 0 || label.includes('|')) throw new TypeError('derivedKey: label must be a non-empty string without |');
    return hmacSha256(this.#rootKey, DERIVED_KEY_LABEL + label);
  }

  /** The KEK, for modules that seal their own items under it (pasted secrets). */
  get kek(): Kek {
    return this.#kek;
  }

  #agentKey(agent: string): Buffer {
    let key = this.#agentKeys.get(agent);
    if (key === undefined) {
      key = hmacSha256(this.#rootKey, AGENT_KEY_LABEL + agent);
      this.#agentKeys.set(agent, key);
    }
    return key;
  }

  /** The index for the store's current generation, rebuilt when it changed. */
  async #current(shareTurn = false): Promise<IndexState> {
    const generation = await (shareTurn ? this.#generationOfTurn() : this.#store.vaultGeneration());
    const index = this.#index;
    if (index !== undefined && index.generation === generation) return index;
    // Concurrent callers share one rebuild; one that started for an older generation is not reused.
    const pending = this.#rebuilding;
    if (pending !== undefined) {
      const built = await pending;
      if (built.generation === generation) return built;
    }
    const rebuild = this.#build(generation);
    this.#rebuilding = rebuild;
    try {
      const built = await rebuild;
      if (this.#index === undefined || this.#index.generation <= built.generation) this.#index = built;
      return built;
    } finally {
      if (this.#rebuilding === rebuild) this.#rebuilding = undefined;
    }
  }

  /**
   * The store's vault generation, read at most once per turn of the event loop:
   * requests that arrive together (the network door's under load) share one
   * small store read. A change another process commits during the turn is seen
   * from the next turn on, exactly as if those requests had arrived just before
   * it; this Vault's own changes drop the shared read before and after they
   * write, so a caller never reads its own change stale. A failed read is
   * shared too: every request of the turn fails closed.
   * @throws BastionError `ERR_STORE`
   */
  #generationOfTurn(): Promise<number> {
    let read = this.#turnRead;
    if (read === undefined) {
      const fresh = this.#store.vaultGeneration();
      read = fresh;
      this.#turnRead = fresh;
      setImmediate(() => {
        if (this.#turnRead === fresh) this.#turnRead = undefined;
      });
    }
    return read;
  }

  /**
   * Reads the index as of at least `generation`. The generation was read
   * before the rows, so a change made meanwhile carries a newer generation and
   * triggers another rebuild on the next call.
   */
  async #build(generation: number): Promise<IndexState> {
    const [secrets, versions] = await Promise.all([this.#store.listSecrets(), this.#store.listValidSecretVersions(this.#now())]);
    // Hosts stored before the Public Suffix List check, that no override could accept (`*.github.io`), are not used.
    const byId = new Map(secrets.map((s) => [s.id, toInfo({ ...s, hosts: s.hosts.filter(isUsableStoredHost) })]));
    const indexed = versions
      .filter((v) => byId.has(v.secretId))
      .map((v) => ({ secretId: v.secretId, version: v.version, sealed: v.sealed, expiresAt: v.expiresAt }));
    const currentByName = new Map<string, IndexedVersion>();
    for (const v of indexed) {
      const info = byId.get(v.secretId) as VaultSecretInfo;
      if (v.version === info.version) currentByName.set(info.name, v);
    }
    return { generation, secrets: byId, versions: indexed, currentByName, byAgent: new Map(), values: new Map() };
  }

  #agentIndex(state: IndexState, agent: string): Map<string, IndexedVersion> {
    let index = state.byAgent.get(agent);
    if (index === undefined) {
      const key = this.#agentKey(agent);
      index = new Map();
      for (const v of state.versions) index.set(derivePlaceholder(key, { secretId: v.secretId, version: v.version }), v);
      state.byAgent.set(agent, index);
    }
    return index;
  }
}

function unknownSecret(name: string): BastionError {
  return new BastionError('ERR_VAULT_SECRET_UNKNOWN', `vault: no secret named ${name}`, { detail: { name } });
}

function assertAgent(agent: unknown): asserts agent is string {
  if (typeof agent !== 'string' || agent === '' || agent.length > 256) throw new TypeError('agent must be a non-empty string');
}

/** JSON text of a stored SealedSecret; anything unparsable fails like a wrong key (openSecret checks the shape). */
function parseSealed(text: string, ref: { readonly id: string; readonly version: number }): SealedSecret {
  try {
    if (typeof text !== 'string') throw new TypeError('sealed must be a string');
    return JSON.parse(text) as SealedSecret;
  } catch {
    throw vaultDecryptError(ref);
  }
}
