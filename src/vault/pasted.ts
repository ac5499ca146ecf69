/**
 * Pasted secrets: credentials an end user typed into a model conversation,
 * vaulted as that user's personal secrets so the model only ever sees a
 * placeholder `<<SECRET_xxxxxxxxxxxx>>`.
 *
 * - The 12 characters are lowercase base32 (RFC 4648 §6) of
 *   HMAC-SHA256(tokenKey, secret id), 60 bits; `tokenKey` is derived from the
 *   installation's root key ({@link Vault.derivedKey}), so a token cannot be
 *   computed outside this Bastion and says nothing about the value.
 * - A secret belongs to one (agent, end user) pair. The same value pasted again
 *   by the same pair maps to the same secret: rows are keyed by
 *   HMAC-SHA256(fingerprintKey, agent ‖ user ‖ value), which reveals nothing
 *   about the value without the key.
 * - Hosts come from the detector rule that found the value
 *   ({@link secretRuleHosts}: a GitHub token → `api.github.com`), minus those
 *   the Public Suffix List check refuses ({@link bindableHosts}: a Shopify
 *   token's `*.myshopify.com` is a namespace anyone can register in). A value
 *   left with no host is stored with none and is unusable (`release.unbound`)
 *   until an admin binds it (`bastion secret pasted bind`, same check).
 * - {@link PastedSecrets.find} looks a placeholder's secret up; whether it may
 *   be swapped in (owner pair, hosts, location) is the release rule's, which
 *   the tool door and the network door both ask (src/vault/release.ts).
 */
import { base32nopad } from '@scure/base';
import { secretRuleHosts } from '../detect/secrets.ts';
import type { PastedSecretStore, StoredPastedSecret } from './pasted-store.ts';
import { constantTimeEqual, hmacSha256, randomId } from '../util/crypto.ts';
import { Secret } from '../util/secret.ts';
import { openSecret, sealSecret, type SealedSecret } from './envelope.ts';
import { bindableHosts, checkHostBinding, hostBindingMessage, isUsableStoredHost } from './host-binding.ts';
import type { Vault } from './vault.ts';

/** A pasted-secret placeholder anywhere in a text; group 1 is the token. Global: use with matchAll/replace only. */
export const PASTED_PLACEHOLDER_PATTERN = /<<SECRET_([a-z2-7]{12})>>/g;
/** The same, percent-encoded (`%3C%3CSECRET_…%3E%3E`, either case), as it appears in URLs. */
export const PASTED_PLACEHOLDER_ENCODED = /%3C%3CSECRET_([a-z2-7]{12})%3E%3E/gi;
/** Length of a token in characters. */
export const PASTED_TOKEN_LENGTH = 12;

/** Most decrypted values kept in memory (least recently used beyond this are dropped). */
const VALUE_CACHE_MAX = 4096;

/** The placeholder text for a token. */
export function pastedPlaceholder(token: string): string {
  return `<<SECRET_${token}>>`;
}

/** The distinct tokens of the placeholders in `text` (raw and percent-encoded forms). */
export function findPastedTokens(text: string): string[] {
  const out = new Set<string>();
  if (text.includes('<<SECRET_')) for (const m of text.matchAll(PASTED_PLACEHOLDER_PATTERN)) out.add(m[1] as string);
  if (/%3C%3CSECRET_/i.test(text)) for (const m of text.matchAll(PASTED_PLACEHOLDER_ENCODED)) out.add(m[1] as string);
  return [...out];
}

/** What {@link PastedSecrets.vault} returns for one value. */
export interface VaultedPaste {
  readonly secret: StoredPastedSecret;
  readonly placeholder: string;
  /** False when the value was vaulted before (same agent, user and value). */
  readonly created: boolean;
}

/** The personal-secret store of the model door. */
export class PastedSecrets {
  readonly #store: PastedSecretStore;
  readonly #vault: Vault;
  readonly #tokenKey: Buffer;
  readonly #fingerprintKey: Buffer;
  readonly #now: () => number;
  /** `token` → value, least recently used first. */
  readonly #values = new Map<string, Secret>();

  constructor(store: PastedSecretStore, vault: Vault, opts: { now?: () => number } = {}) {
    this.#store = store;
    this.#vault = vault;
    this.#tokenKey = vault.derivedKey('pasted/token');
    this.#fingerprintKey = vault.derivedKey('pasted/fingerprint');
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Vaults `value` (found by detector rule `rule`) as a personal secret of
   * `agent` and `user`, or finds the one vaulted before, and returns its placeholder.
   * @throws BastionError `ERR_STORE`; TypeError on a value that is not well-formed Unicode
   */
  async vault(agent: string, user: string, value: Secret, rule: string): Promise<VaultedPaste> {
    const fingerprint = hmacSha256(this.#fingerprintKey, `${agent}\u0000${user}\u0000${value.reveal()}`).toString('hex');
    const id = randomId();
    const token = this.tokenOf(id);
    const sealed = sealSecret(this.#vault.kek, refOf(id), value);
    const row: StoredPastedSecret = {
      id,
      token,
      agent,
      user,
      fingerprint,
      rule,
      hosts: bindableHosts(secretRuleHosts(rule)),
      sealed: JSON.stringify(sealed),
      createdAt: this.#now(),
      lastUsedAt: null,
    };
    const stored = await this.#store.putPastedSecret(row);
    this.#remember(stored.token, value);
    return { secret: stored, placeholder: pastedPlaceholder(stored.token), created: stored.id === id };
  }

  /** The token of a secret id: 12 lowercase base32 characters of HMAC-SHA256(tokenKey, id). */
  tokenOf(id: string): string {
    return base32nopad.encode(hmacSha256(this.#tokenKey, id)).slice(0, PASTED_TOKEN_LENGTH).toLowerCase();
  }

  /**
   * The values `agent` and `user` vaulted before (newest first, at most
   * `limit`), with their placeholders: the model door redacts them from every
   * answer to that user and replaces their copies in later requests, whether
   * or not the detector would recognize them again.
   * @throws BastionError `ERR_STORE`, `ERR_VAULT_DECRYPT` (the caller refuses the request)
   */
  async known(agent: string, user: string, limit: number): Promise<{ readonly value: Secret; readonly placeholder: string }[]> {
    const rows = await this.#store.listPastedSecrets({ agent, user, limit });
    return rows.filter((r) => r.agent === agent && r.user === user).map((r) => ({ value: this.#open(r), placeholder: pastedPlaceholder(r.token) }));
  }

  /**
   * The pasted secret whose placeholder has `token`, with its value, or
   * undefined when there is none (the caller refuses: `placeholder.unknown`).
   * Whether it may be used, by whom and where, is the release rule's
   * (`release` with `pastedSecret`, src/vault/release.ts).
   * @throws BastionError `ERR_STORE`, `ERR_VAULT_DECRYPT` (the caller denies)
   */
  async find(token: string): Promise<{ readonly secret: StoredPastedSecret; readonly value: Secret } | undefined> {
    const secret = await this.#store.getPastedSecretByToken(token);
    if (secret === undefined || !constantTimeEqual(this.tokenOf(secret.id), token)) return undefined;
    // Hosts stored before the Public Suffix List check that no override could accept (`*.myshopify.com`) are not used (src/vault/host-binding.ts).
    return { secret: { ...secret, hosts: secret.hosts.filter(isUsableStoredHost) }, value: this.#open(secret) };
  }

  /** Records a use (coalescing is the store's; failures are ignored: usage times are informational). */
  markUsed(id: string): void {
    this.#store.touchPastedSecret(id, this.#now()).catch(() => undefined);
  }

  /**
   * Binds a pasted secret to `hosts` (admin, `bastion secret pasted bind`),
   * replacing its hosts. Each host must pass {@link checkHostBinding}, exact
   * hosts under a shared suffix only with `unsafeAllowSharedSuffix` (the caller audits).
   * False when the token is unknown.
   * @throws RangeError naming a refused host and the reason, before anything is read; BastionError `ERR_STORE`
   */
  async bind(token: string, hosts: readonly string[], opts: { unsafeAllowSharedSuffix?: boolean } = {}): Promise<boolean> {
    if (hosts.length === 0) throw new RangeError('hosts must name at least one host');
    const checked = hosts.map((h) => {
      const c = checkHostBinding(h, opts);
      if (!c.ok) throw new RangeError(`hosts: ${hostBindingMessage(c, h)}`);
      return c.host;
    });
    const secret = await this.#store.getPastedSecretByToken(token);
    if (secret === undefined) return false;
    return this.#store.setPastedSecretHosts(secret.id, [...new Set(checked)]);
  }

  #open(secret: StoredPastedSecret): Secret {
    const cached = this.#values.get(secret.token);
    if (cached !== undefined) {
      this.#remember(secret.token, cached);
      return cached;
    }
    const value = openSecret(this.#vault.kek, refOf(secret.id), JSON.parse(secret.sealed) as SealedSecret);
    this.#remember(secret.token, value);
    return value;
  }

  #remember(token: string, value: Secret): void {
    this.#values.delete(token);
    this.#values.set(token, value);
    if (this.#values.size > VALUE_CACHE_MAX) this.#values.delete(this.#values.keys().next().value as string);
  }
}

/** The envelope reference of a pasted secret: its own id space, so a sealed row cannot be replayed as a named secret's version. */
function refOf(id: string): { id: string; version: number } {
  return { id: `pasted:${id}`, version: 1 };
}
