/**
 * Assembles a running gateway from a resolved config: store, audit log, policy
 * engine, path guard, approval queue and agent authentication. Both `bastion
 * serve` (HTTP) and `bastion stdio` build one of these; tests do too.
 */
import { LabelIndex } from '../policy/labels.ts';
import { ProvenanceTracker } from '../provenance/tracker.ts';
import { ApprovalQueue } from '../approvals/queue.ts';
import { AuditLog, type KeyProtector } from '../audit/log.ts';
import { openWitness } from '../audit/witness.ts';
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { BastionError } from '../errors.ts';
import { GatewaySession, type GatewayDeps, type SessionOptions } from '../mcp/session.ts';
import { ArgumentValidator } from '../mcp/validate.ts';
import { PathGuard } from '../policy/paths.ts';
import { PolicyEngine } from '../policy/engine.ts';
import { ToolMetaIndex } from '../policy/tool-meta.ts';
import { PastedSecrets } from '../vault/pasted.ts';
import { Vault } from '../vault/vault.ts';
import type { Kek } from '../vault/kek.ts';
import { kekKeyProtector } from '../vault/key-protector.ts';
import { AbilityRunner } from '../abilities/runner.ts';
import { EgressGuard } from '../egress/guard.ts';
import type { Lookup } from '../egress/ssrf-classify.ts';
import { IdentityKeys } from '../identity/keys.ts';
import { RequestSigner } from '../identity/signer.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/store.ts';
import { randomToken, sha256Hex } from '../util/crypto.ts';
import { AuditStep, type AuditFailure } from '../door/audit-step.ts';
import { KeyIndex } from '../door/authenticate.ts';
import { UserVerifier, type UserIdentity } from '../door/user.ts';
import { RequestStateSealer } from '../mcp/request-state.ts';
import { PinGate } from '../mcp/pins.ts';
import type { AdminAlert } from '../alerts/notifier.ts';
import { AccessTokenVerifier } from '../door/oauth-resource.ts';
import { aeadTokenSealer, pendingAuthorizationsOn, UserOAuth, userTokensOn, type OAuthEvent, type OAuthProviderConfig } from '../oauth/index.ts';
import { deny as denyDecision, allow as allowDecision } from '../decision.ts';
import { openNonceStore, type NonceStore } from '../store/nonces.ts';
import { DEFAULTS } from '../defaults.ts';

/** A key generated on first start for an agent whose configured keys did not resolve. Shown once. */
export interface GeneratedKey {
  readonly agent: string;
  /** The clear key: print it once, never store or log it. */
  readonly key: string;
}

/** Prefix of keys Bastion generates, so they are recognizable in a leak scan. */
export const GENERATED_KEY_PREFIX = 'bst_ak_';

export class Gateway {
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly deps: GatewayDeps;
  /** The identity keys (signing, JWKS). */
  readonly identity: IdentityKeys;
  /** Signs requests to abilities and signed upstreams, and mints per-call tokens. */
  readonly signer: RequestSigner;
  /** Agents by the digests of their keys (the kernel's authentication looks keys up here). */
  readonly agentKeys: KeyIndex;
  /** The admin keys (`admin.keys`), principal `admin`. */
  readonly adminKeys: KeyIndex;
  /** Verifies end users' tokens (`users.token`); privilege needs a verified user when configured. */
  readonly users: UserVerifier;
  /** The kernel's audit step: durable or batched records, failures counted and reported. */
  readonly auditStep: AuditStep;
  /** The vault, when the gateway was opened with a KEK; without one, everything that needs it fails closed. */
  readonly vault: Vault | undefined;
  /** End users' pasted secrets (`<<SECRET_…>>`), shared by the model, tool and network doors; with the vault. */
  readonly pasted: PastedSecrets | undefined;
  /** The egress guard (network policy, SSRF, address pinning) shared by the network door and abilities. */
  readonly guard: EgressGuard;
  /** Runs ability calls through the guard with the vault's bound secrets; with the vault. */
  readonly abilities: AbilityRunner | undefined;
  /** Verifies OAuth bearer tokens at `/mcp` (config `oauth.resourceServer`); undefined: agent keys only. */
  readonly accessTokens: AccessTokenVerifier | undefined;
  /** Nonces of sealed request states (opened on first use). */
  readonly #nonces: NonceStore;

  private constructor(
    config: ResolvedConfig,
    store: Store,
    audit: AuditLog,
    deps: GatewayDeps & { signer: RequestSigner; nonces: NonceStore },
    identity: IdentityKeys,
    agentKeys: KeyIndex,
    auditStep: AuditStep,
    secrets: { vault?: Vault; pasted?: PastedSecrets; abilities?: AbilityRunner; guard: EgressGuard },
  ) {
    this.config = config;
    this.identity = identity;
    this.signer = deps.signer;
    this.#nonces = deps.nonces;
    const rs = config.oauth.resourceServer;
    this.accessTokens = rs === undefined ? undefined : new AccessTokenVerifier(rs);
    this.store = store;
    this.audit = audit;
    this.deps = deps;
    this.agentKeys = agentKeys;
    this.adminKeys = new KeyIndex();
    for (const k of config.adminKeys) this.adminKeys.add(sha256Hex(k.reveal()), 'admin');
    this.users = new UserVerifier(config.users);
    this.auditStep = auditStep;
    this.vault = secrets.vault;
    this.pasted = secrets.pasted;
    this.guard = secrets.guard;
    this.abilities = secrets.abilities;
  }

  /**
   * The composition root: opens, in one pass, the store, the audit log and its
   * witness, policy, approvals, agent authentication, identity keys, and (with
   * `opts.kek`) the vault, pasted secrets and the ability runner, over one egress
   * guard; each door is then built from the narrow parts it uses. Nothing is
   * attached afterwards. For agents whose keys all failed to resolve and who have
   * no stored key yet, generates one (stored as a SHA-256 digest only) and returns
   * it in `generated` so the caller can show it once.
   * The KEK (or `opts.keyProtector` alone, for tools that need no vault) seals the
   * audit and identity signing keys at rest; the first identity key is created here
   * when the store has none. Without a KEK there is no vault: `vault:NAME`
   * environments, pasted secrets and abilities fail closed.
   * @throws BastionError `ERR_POLICY_INVALID`, `ERR_STORE`, `ERR_CONFIG_INVALID` (two agents share a key),
   *   `ERR_VAULT_KEY` / `ERR_VAULT_DECRYPT` (a sealed key and no or the wrong KEK).
   */
  static async open(
    config: ResolvedConfig,
    opts: {
      store?: Store;
      kek?: Kek;
      keyProtector?: KeyProtector;
      onAuditFailure?: (failure: AuditFailure) => void;
      /** DNS resolver of the egress guard (default: the system's). */
      lookup?: Lookup;
      /** Extra CA certificates (PEM) trusted for destinations (abilities and the network door). */
      upstreamCa?: readonly string[];
      /** Admin alerts raised while serving (pinned tool definitions that changed); without it they are only audited. */
      alerts?: { notify(alert: AdminAlert): void };
    } = {},
  ): Promise<{ gateway: Gateway; generated: GeneratedKey[] }> {
    const policy = PolicyEngine.compile(config);
    const paths = PathGuard.compile(config.paths);
    const store = opts.store ?? (await openSqliteStore(config.storePath));
    const keyProtector = opts.kek ? kekKeyProtector(opts.kek) : opts.keyProtector;
    try {
      const witness = await openWitness(config.audit.witness);
      const onWitnessFailure = (err: BastionError, count: number): void =>
        opts.onAuditFailure?.({ door: 'system', method: 'audit.witness', durability: 'batched', code: err.code, count });
      const audit = await AuditLog.open(store, {
        checkpointEvery: config.audit.checkpointEvery,
        chainOffThread: true,
        ...(keyProtector ? { keyProtector } : {}),
        ...(witness ? { witness, ...(opts.onAuditFailure ? { onWitnessFailure } : {}) } : {}),
      });
      const approvals = new ApprovalQueue(store, { timeoutMs: config.approvals.timeoutMs, reuseTtlMs: config.approvals.reuseTtlMs, progressMs: config.approvals.progressMs });
      const agentKeys = new KeyIndex();
      const generated: GeneratedKey[] = [];
      const addKey = (agent: string, digest: string): void => {
        try {
          agentKeys.add(digest, agent);
        } catch (err) {
          throw new BastionError('ERR_CONFIG_INVALID', `agents ${(err as Error).message}; every agent needs its own`);
        }
      };
      for (const agent of config.agents.values()) {
        for (const k of agent.keys) addKey(agent.name, sha256Hex(k.reveal()));
        const stored = await store.agentKeyDigests(agent.name);
        for (const d of stored) addKey(agent.name, d);
        if (agent.keys.length === 0 && agent.unresolvedKeyRefs.length > 0 && stored.length === 0) {
          const key = GENERATED_KEY_PREFIX + randomToken(32);
          const digest = sha256Hex(key);
          await store.addAgentKeyDigest(agent.name, digest, Date.now());
          addKey(agent.name, digest);
          generated.push({ agent: agent.name, key });
        }
      }
      const identity = await IdentityKeys.open(store, { rotationGraceMs: config.identity.rotationGraceMs, ...(keyProtector ? { protector: keyProtector } : {}) });
      const signer = new RequestSigner(identity, config.identity);
      const vault = opts.kek ? await Vault.open(store, opts.kek, { rotationGraceMs: config.vault.rotationGraceMs }) : undefined;
      const pasted = vault ? new PastedSecrets(store, vault) : undefined;
      const guard = new EgressGuard(config, policy, opts.lookup ? { lookup: opts.lookup } : {});
      const userOAuth = vault && config.oauth.redirectUri !== undefined && config.oauth.providers.size > 0 ? openUserOAuth(config, store, vault, auditOAuthEvents(audit)) : undefined;
      const abilities = vault ? new AbilityRunner({ config, guard, vault, signer, ...(userOAuth ? { userTokens: userOAuth } : {}), ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}) }) : undefined;
      const placeholder = (agent: string, secret: string): Promise<string> =>
        vault ? vault.placeholder(secret, agent) : Promise.reject(new BastionError('ERR_VAULT_KEY', 'no vault is open'));
      // Single-use nonces of sealed request states: in the store file (or Redis), so every instance sees every use.
      const nonces = lazyNonceStore(() =>
        openNonceStore(
          { kind: config.redis !== undefined ? 'redis' : 'store', storePath: config.storePath, namespace: 'mcp', ...(config.redis !== undefined ? { redis: config.redis } : {}) },
          { redisTimeoutMs: DEFAULTS.a2aRedisTimeoutMs },
        ),
      );
      const requestStates = new RequestStateSealer({ keys: () => identity.derivationSecrets(), nonces, ttlMs: config.approvals.timeoutMs });
      const deps: GatewayDeps & { signer: RequestSigner; nonces: NonceStore } = {
        config,
        requestStates,
        nonces,
        ...(userOAuth ? { userOAuth } : {}),
        signer,
        policy,
        paths,
        audit,
        approvals,
        validator: new ArgumentValidator(),
        placeholder,
        ...(pasted ? { pasted } : {}),
        ...(abilities ? { abilities } : {}),
        toolMeta: new ToolMetaIndex(config.tools),
        labels: new LabelIndex(config.tools, config.agents.values()),
        provenance: new ProvenanceTracker(config.provenance),
        pins: new PinGate({ store, config: config.pinning, audit: (e) => audit.append(e), alerts: opts.alerts }),
      };
      const auditStep = new AuditStep(audit, opts.onAuditFailure ? { onFailure: opts.onAuditFailure } : {});
      const gateway = new Gateway(config, store, audit, deps, identity, agentKeys, auditStep, { ...(vault ? { vault } : {}), ...(pasted ? { pasted } : {}), ...(abilities ? { abilities } : {}), guard });
      return { gateway, generated };
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  /** The agent a presented key belongs to, or undefined (constant-time over the keys' SHA-256 digests). */
  agentForKey(key: string): string | undefined {
    return this.agentKeys.lookup(key);
  }

  /** True when `key` is one of the configured admin keys (constant-time over digests). */
  isAdminKey(key: string): boolean {
    return this.adminKeys.lookup(key) !== undefined;
  }

  /** A new session for an agent (HTTP or stdio), acting for end user `user` (asserted id, or an identity from the kernel's user step) in `conversation` when named. */
  newSession(agentName: string, user: UserIdentity | string | null = null, conversation: string | null = null, opts: SessionOptions = {}): GatewaySession {
    const agent = this.config.agents.get(agentName);
    if (!agent) throw new BastionError('ERR_AUTH_INVALID', `no agent ${agentName}`);
    return new GatewaySession(this.deps, agent, user, conversation, opts);
  }

  /** Writes an audit event; resolves when durable. */
  record(event: AuditEvent): Promise<unknown> {
    return this.audit.append(event);
  }

  /** Closes the ability runner's connections, flushes the vault's pending last-used times and the audit log, writes the final checkpoint, closes the store. */
  async close(): Promise<void> {
    await this.abilities?.close();
    await this.#nonces.close();
    await this.vault?.flush();
    await this.audit.close();
    await this.store.close();
  }
}

/**
 * A nonce store opened on first use (most gateways never see a stateless held
 * call), closed with the gateway. A failed open is retried on the next use; until
 * it succeeds every `remember` rejects, and the caller refuses (fail closed).
 */
function lazyNonceStore(open: () => Promise<NonceStore>): NonceStore {
  let opening: Promise<NonceStore> | undefined;
  let closed = false;
  const get = (): Promise<NonceStore> => {
    opening ??= open().catch((err: unknown) => {
      opening = undefined;
      throw err;
    });
    return opening;
  };
  return {
    remember: async (key, ttlMs) => {
      if (closed) throw new BastionError('ERR_STORE', 'nonce store closed');
      return (await get()).remember(key, ttlMs);
    },
    close: async () => {
      closed = true;
      if (opening) await (await opening.catch(() => undefined))?.close();
    },
  };
}

/** Pending authorizations kept at once (each a few hundred bytes; a flood is refused with `oauth.pending_limit`). */
const MAX_PENDING_AUTHORIZATIONS = 10_000;

/**
 * Bastion as each end user's OAuth client (config `oauth.providers`): tokens and
 * pending authorizations in the store, sealed under a key the vault derives for
 * them alone. `onEvent` receives every sign-in, refresh and revocation (values never).
 * @throws BastionError `ERR_CONFIG_INVALID` for a provider the OAuth client refuses (the field named).
 */
export function openUserOAuth(config: ResolvedConfig, store: Store, vault: Vault, onEvent?: (e: OAuthEvent) => void): UserOAuth {
  const sealer = aeadTokenSealer(vault.derivedKey('oauth/tokens'));
  const redirectUri = config.oauth.redirectUri as string;
  const providers: OAuthProviderConfig[] = [...config.oauth.providers.values()].map((p) => ({
    name: p.name,
    issuer: p.issuer,
    clientId: p.clientId,
    ...(p.clientSecret !== undefined ? { clientSecret: p.clientSecret } : {}),
    clientAuth: p.clientAuth,
    scopes: p.scopes,
    ...(p.resource !== undefined ? { resource: p.resource } : {}),
    redirectUri,
  }));
  // Config admits plain http only for loopback issuers (tests); the client then must too.
  const unsafeAllowHttp = providers.some((p) => p.issuer.startsWith('http:'));
  return new UserOAuth({
    providers,
    pending: pendingAuthorizationsOn(store, { maxPending: MAX_PENDING_AUTHORIZATIONS, sealer }),
    tokens: userTokensOn(store),
    sealer,
    ...(onEvent ? { onEvent } : {}),
    ...(unsafeAllowHttp ? { unsafeAllowHttp } : {}),
  });
}

/** Every OAuth event worth a record, appended to the audit chain (door `tool`, method `oauth.<op>`). */
function auditOAuthEvents(audit: AuditLog): (e: OAuthEvent) => void {
  return (e: OAuthEvent): void => {
    // Every upstream request asks for a token: only refusals are worth a record. A callback is recorded by its route.
    if ((e.op === 'access_token' && e.outcome === 'ok') || e.op === 'complete') return;
    void audit
      .append({
        time: new Date().toISOString(),
        door: 'tool',
        agent: null,
        ...(e.user !== undefined ? { user: e.user } : {}),
        session: null,
        method: `oauth.${e.op}`,
        target: e.provider,
        decision: e.outcome === 'ok' ? allowDecision(`oauth.${e.op}`, `oauth.providers.${e.provider}`) : denyDecision(e.outcome, `oauth.providers.${e.provider}`),
        outcome: e.outcome === 'ok' ? 'ok' : 'denied',
        durationMs: 0,
        detail: e.cause !== undefined ? { cause: e.cause.slice(0, 64) } : {},
      })
      .catch(() => undefined);
  };
}
