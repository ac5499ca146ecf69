/**
 * Assembles a running gateway from a resolved config: store, audit log, policy
 * engine, path guard, approval queue and agent authentication. Both `bastion
 * serve` (HTTP) and `bastion stdio` build one of these; tests do too.
 */
import type { SandboxService } from '../sandbox/service.ts';
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
import { LazyJsEvaluator } from '../sandbox/quickjs.ts';
import { EgressGuard } from '../egress/guard.ts';
import type { Lookup } from '../egress/ssrf-classify.ts';
import { IdentityKeys } from '../identity/keys.ts';
import { RequestSigner } from '../identity/signer.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { randomToken, sha256Hex } from '../util/crypto.ts';
import { AuditStep, type AuditFailure } from '../door/audit-step.ts';
import { KeyIndex } from '../door/authenticate.ts';
import { UserVerifier, type UserIdentity } from '../door/user.ts';
import { RequestStateSealer } from '../mcp/request-state.ts';
import { PinGate } from '../mcp/pins.ts';
import type { AdminAlert } from '../alerts/notifier.ts';
import type { Notifier } from '../notify/notifier.ts';
import { openNotifier, type NotifierTuning } from '../notify/open.ts';
import { AccessTokenVerifier } from '../door/oauth-resource.ts';
import { aeadTokenSealer, pendingAuthorizationsOn, UserOAuth, userTokensOn, type OAuthEvent, type OAuthProviderConfig } from '../oauth/index.ts';
import { deny as denyDecision, allow as allowDecision } from '../decision.ts';
import { openNonceStore, type NonceStore } from '../store/nonces.ts';
import { DEFAULTS } from '../defaults.ts';
import { Readiness } from '../observe/health.ts';
import { Observer, type ObserverOptions } from '../observe/observer.ts';
import { LocalBus, type ClusterBus } from '../cluster/bus.ts';
import { RedisBus } from '../cluster/redis-bus.ts';
import { listInstances } from '../cluster/registry.ts';
import { Isolations, type IncidentAlert } from '../incidents/isolation.ts';

/** A key generated on first start for an agent with no keys listed (`agents.X.keys` empty). Shown once. */
export interface GeneratedKey {
  readonly agent: string;
  /** The clear key: print it once, never store or log it. */
  readonly key: string;
}

/** Prefix of keys Bastion generates, so they are recognizable in a leak scan. */
export const GENERATED_KEY_PREFIX = 'bst_ak_';

/** True when agent `name` lists no keys in the file (`agents.X.keys` empty): `bastion serve` generates one on first start. */
export function keylessAgent(config: ResolvedConfig, name: string): boolean {
  return (config.raw.agents[name]?.keys.length ?? 0) === 0;
}

/**
 * One compiled config: what {@link Gateway.prepare} builds and {@link Gateway.commit}
 * swaps in on a reload (src/server/reload.ts). Sessions take `deps` when they start,
 * so a session in flight finishes on the generation it started with.
 */
export interface GatewayGeneration {
  /** 1 for the config the gateway opened with, then +1 per committed reload. */
  readonly number: number;
  readonly config: ResolvedConfig;
  readonly deps: GatewayDeps & { signer: RequestSigner; nonces: NonceStore };
  readonly agentKeys: KeyIndex;
  readonly adminKeys: KeyIndex;
  readonly users: UserVerifier;
  readonly guard: EgressGuard;
  readonly abilities: AbilityRunner | undefined;
  /** Keys generated while compiling it (agents that list none and had none stored): show once. */
  readonly generated: readonly GeneratedKey[];
}

/** What every generation shares: opened once, for the life of the process. */
interface GatewayShared {
  readonly store: Store;
  readonly audit: AuditLog;
  /** The kernel's audit step over `audit`: the tool door's sessions write through it too. */
  readonly auditStep: AuditStep;
  readonly approvals: ApprovalQueue;
  readonly signer: RequestSigner;
  readonly nonces: NonceStore;
  readonly requestStates: RequestStateSealer;
  readonly vault: Vault | undefined;
  readonly pasted: PastedSecrets | undefined;
  readonly userOAuth: UserOAuth | undefined;
  readonly placeholder: GatewayDeps['placeholder'];
  readonly validator: ArgumentValidator;
  readonly provenance: ProvenanceTracker;
  readonly pins: PinGate;
  readonly lookup: Lookup | undefined;
  readonly upstreamCa: readonly string[] | undefined;
  /** Admin notifications (config `alerts`, src/notify/). */
  readonly notifications: Notifier;
  /** Isolated agents (incident response): every generation's agent keys refuse them. */
  readonly isolations: Isolations;
  /** The JavaScript sandbox for abilities' `response.js`: started on its first use, so a gateway without one never starts a worker. */
  readonly js: LazyJsEvaluator;
  /** The sandbox service, attached by `bastion serve` once the network door is open ({@link Gateway.attachSandbox}). */
  sandbox?: SandboxService;
}

/**
 * Compiles `config` over the shared parts: policy, path guard, labels, tool
 * metadata, the egress guard, the ability runner, agent and admin keys (with the
 * stored digests; with `generateKeys`, a new key for each agent that lists none
 * and has none stored). Nothing is swapped in: the caller commits it.
 * @throws BastionError `ERR_POLICY_INVALID`, `ERR_CONFIG_INVALID` (two agents share a key), `ERR_STORE`.
 */
async function compileGeneration(config: ResolvedConfig, shared: GatewayShared, number: number, generateKeys: boolean): Promise<GatewayGeneration> {
  const policy = PolicyEngine.compile(config);
  const paths = PathGuard.compile(config.paths);
  const { store, vault } = shared;
  // The kernel's authentication refuses an isolated agent's keys and tokens (src/incidents/isolation.ts).
  const agentKeys = new KeyIndex({ isolated: (agent) => shared.isolations.isIsolated(agent) });
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
    if (generateKeys && keylessAgent(config, agent.name) && stored.length === 0) {
      const key = GENERATED_KEY_PREFIX + randomToken(32);
      const digest = sha256Hex(key);
      await store.addAgentKeyDigest(agent.name, digest, Date.now());
      addKey(agent.name, digest);
      generated.push({ agent: agent.name, key });
    }
  }
  const adminKeys = new KeyIndex();
  for (const [i, k] of config.adminKeys.entries()) {
    // The principal is the admin's name (config admin.keys[].id), `admin` for an unnamed key.
    try {
      adminKeys.add(sha256Hex(k.reveal()), config.adminKeyIds[i] ?? 'admin');
    } catch (err) {
      throw new BastionError('ERR_CONFIG_INVALID', `admin.keys: ${(err as Error).message}; every admin needs their own key`);
    }
  }
  const guard = new EgressGuard(config, policy, shared.lookup ? { lookup: shared.lookup } : {});
  const abilities = vault
    ? new AbilityRunner({ config, guard, vault, signer: shared.signer, js: shared.js, ...(shared.userOAuth ? { userTokens: shared.userOAuth } : {}), ...(shared.upstreamCa ? { upstreamCa: shared.upstreamCa } : {}) })
    : undefined;
  const deps: GatewayDeps & { signer: RequestSigner; nonces: NonceStore } = {
    config,
    requestStates: shared.requestStates,
    nonces: shared.nonces,
    ...(shared.userOAuth ? { userOAuth: shared.userOAuth } : {}),
    signer: shared.signer,
    policy,
    paths,
    audit: shared.audit,
    auditStep: shared.auditStep,
    approvals: shared.approvals,
    validator: shared.validator,
    placeholder: shared.placeholder,
    ...(shared.pasted ? { pasted: shared.pasted } : {}),
    ...(abilities ? { abilities } : {}),
    toolMeta: new ToolMetaIndex(config.tools),
    labels: new LabelIndex(config.tools, config.agents.values()),
    provenance: shared.provenance,
    pins: shared.pins,
    // Read when a session starts: the service is attached after the first generation is built.
    get sandbox() {
      return shared.sandbox;
    },
  };
  return { number, config, deps, agentKeys, adminKeys, users: new UserVerifier(config.users), guard, abilities, generated };
}

export class Gateway {
  readonly store: Store;
  readonly audit: AuditLog;
  /** The identity keys (signing, JWKS). */
  readonly identity: IdentityKeys;
  /** Signs requests to abilities and signed upstreams, and mints per-call tokens. */
  readonly signer: RequestSigner;
  /** The kernel's audit step: durable or batched records, failures counted and reported. */
  readonly auditStep: AuditStep;
  /** The vault, when the gateway was opened with a KEK; without one, everything that needs it fails closed. */
  readonly vault: Vault | undefined;
  /** End users' pasted secrets (`<<SECRET_…>>`), shared by the model, tool and network doors; with the vault. */
  readonly pasted: PastedSecrets | undefined;
  /** Verifies OAuth bearer tokens at `/mcp` (config `oauth.resourceServer`); undefined: agent keys only. */
  readonly accessTokens: AccessTokenVerifier | undefined;
  /** Nonces of sealed request states (opened on first use). */
  readonly #nonces: NonceStore;
  /** What `/readyz` reports: every component a request may need registers a check here. */
  readonly readiness = new Readiness();
  /** The bus the instances of this deployment share (a {@link LocalBus} when alone). */
  readonly bus: ClusterBus;
  /** Isolated agents (incident response, src/incidents/isolation.ts): refused by every door's authentication. */
  readonly isolations: Isolations;
  /** Metrics, access log and request spans, fed from the audit log (src/observe/observer.ts); set by {@link Gateway.open}. */
  #observer!: Observer;
  readonly #shared: GatewayShared;
  /** The current generation: read per request, swapped by {@link commit}. */
  #gen: GatewayGeneration;
  /** Ability runners of replaced generations: sessions in flight may still use them; closed with the gateway. */
  readonly #retired: AbilityRunner[] = [];

  private constructor(shared: GatewayShared, gen: GatewayGeneration, identity: IdentityKeys, auditStep: AuditStep, bus: ClusterBus) {
    const { config } = gen;
    this.#shared = shared;
    this.#gen = gen;
    this.bus = bus;
    this.isolations = shared.isolations;
    this.identity = identity;
    this.signer = shared.signer;
    this.#nonces = shared.nonces;
    const rs = config.oauth.resourceServer;
    this.accessTokens = rs === undefined ? undefined : new AccessTokenVerifier(rs);
    this.store = shared.store;
    this.audit = shared.audit;
    this.auditStep = auditStep;
    this.vault = shared.vault;
    this.pasted = shared.pasted;
  }

  /** The current config (the latest committed generation's). */
  get config(): ResolvedConfig {
    return this.#gen.config;
  }

  /** What new sessions are built from (the current generation's); a session keeps the one it started with. */
  get deps(): GatewayDeps {
    return this.#gen.deps;
  }

  /** Agents by the digests of their keys (the kernel's authentication looks keys up here). */
  get agentKeys(): KeyIndex {
    return this.#gen.agentKeys;
  }

  /** The admin keys (`admin.keys`), principal `admin`. */
  get adminKeys(): KeyIndex {
    return this.#gen.adminKeys;
  }

  /** Verifies end users' tokens (`users.token`); privilege needs a verified user when configured. */
  get users(): UserVerifier {
    return this.#gen.users;
  }

  /** The egress guard (network policy, SSRF, address pinning) shared by the network door and abilities. */
  get guard(): EgressGuard {
    return this.#gen.guard;
  }

  /** Runs ability calls through the guard with the vault's bound secrets; with the vault. */
  get abilities(): AbilityRunner | undefined {
    return this.#gen.abilities;
  }

  /** The current generation's number (1 at open, +1 per committed reload). */
  get generation(): number {
    return this.#gen.number;
  }

  /**
   * Compiles `config` into the next generation over this gateway's store, audit log,
   * approvals, vault and identity, as {@link open} does (policy, path guard, labels,
   * guard, abilities, keys); keys are generated for agents that list none and have
   * none stored. Nothing changes until {@link commit}. Fields that need a restart
   * are the caller's to refuse (src/server/reload.ts).
   * @throws BastionError `ERR_POLICY_INVALID`, `ERR_CONFIG_INVALID`, `ERR_STORE`.
   */
  prepare(config: ResolvedConfig): Promise<GatewayGeneration> {
    return compileGeneration(config, this.#shared, this.#gen.number + 1, true);
  }

  /** Swaps `next` in: new sessions and every later request use it; sessions in flight keep theirs. */
  commit(next: GatewayGeneration): void {
    const old = this.#gen;
    this.#gen = { ...next, number: Math.max(next.number, old.number + 1) };
    if (old.abilities !== undefined) this.#retired.push(old.abilities);
  }

  /**
   * The composition root: opens, in one pass, the store, the audit log and its
   * witness, policy, approvals, agent authentication, identity keys, and (with
   * `opts.kek`) the vault, pasted secrets and the ability runner, over one egress
   * guard; each door is then built from the narrow parts it uses. Nothing is
   * attached afterwards. With `opts.generateKeys`, for agents that list no keys and
   * have no stored key yet, generates one (stored as a SHA-256 digest only) and returns
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
      /** The cluster bus (default: a {@link LocalBus}); closed with the gateway. */
      bus?: ClusterBus;
      /** Admin alerts of incident response (an agent isolated or restored through this gateway), besides the notifier's `incident` notices. */
      incidentAlert?: IncidentAlert;
      /** Generate a key for each agent with no keys listed and none stored (`bastion serve`, which shows it once). Default false. */
      generateKeys?: boolean;
      /**
       * Write this instance's audit markers (`audit.open`/`audit.close`, with the bus's instance id) and, after an
       * unclean shutdown, an `audit.recovery` record (`bastion serve` sets it; docs/audit.md "Crash recovery").
       */
      auditMarkers?: boolean;
      /** Access log and OTLP export of the observer (default: metrics only). */
      observe?: Pick<ObserverOptions, 'logger' | 'accessLog' | 'telemetry' | 'defaultMetrics'>;
      /** The notifier's failure lines and timing overrides (src/notify/open.ts). */
      notify?: NotifierTuning;
    } = {},
  ): Promise<{ gateway: Gateway; generated: GeneratedKey[] }> {
    // Compiled before the store opens, so a bad policy opens nothing (compiled again with the generation).
    PolicyEngine.compile(config);
    PathGuard.compile(config.paths);
    const store = opts.store ?? (await openStore(config.store));
    const keyProtector = opts.kek ? kekKeyProtector(opts.kek) : opts.keyProtector;
    const bus = opts.bus ?? new LocalBus();
    let isolationsOpened: Isolations | undefined;
    try {
      const witness = await openWitness(config.audit.witness);
      const onWitnessFailure = (err: BastionError, count: number): void =>
        opts.onAuditFailure?.({ door: 'system', method: 'audit.witness', durability: 'batched', code: err.code, count });
      const audit = await AuditLog.open(store, {
        checkpointEvery: config.audit.checkpointEvery,
        chainOffThread: true,
        ...(opts.auditMarkers === true ? { instance: bus.instanceId } : {}),
        // Instances in the Redis registry are running, not crashed, whatever host they are on.
        ...(bus instanceof RedisBus ? { liveInstances: async () => new Set((await listInstances(bus.commands, bus.keyPrefix)).map((i) => i.id)) } : {}),
        ...(keyProtector ? { keyProtector } : {}),
        ...(witness ? { witness, ...(opts.onAuditFailure ? { onWitnessFailure } : {}) } : {}),
      });
      // The notifier needs the identity key and the audit step, opened below; no approval can be created before then.
      const late: { notifications?: Notifier } = {};
      // A shared bus carries decisions between instances: the store poll is then only the fallback for a lost message.
      const approvals = new ApprovalQueue(store, {
        onCreated: (a) => late.notifications?.approvalPending(a),
        timeoutMs: config.approvals.timeoutMs,
        reuseTtlMs: config.approvals.reuseTtlMs,
        progressMs: config.approvals.progressMs,
        bus,
        pollMs: bus instanceof LocalBus ? DEFAULTS.approvalPollMs : DEFAULTS.approvalFallbackPollMs,
      });
      const identity = await IdentityKeys.open(store, { rotationGraceMs: config.identity.rotationGraceMs, ...(keyProtector ? { protector: keyProtector } : {}) });
      const signer = new RequestSigner(identity, config.identity);
      const vault = opts.kek ? await Vault.open(store, opts.kek, { rotationGraceMs: config.vault.rotationGraceMs }) : undefined;
      const pasted = vault ? new PastedSecrets(store, vault) : undefined;
      const userOAuth = vault && config.oauth.redirectUri !== undefined && config.oauth.providers.size > 0 ? openUserOAuth(config, store, vault, auditOAuthEvents(audit)) : undefined;
      // Read per generation: the config a request runs under names the agents that can be isolated.
      let currentConfig = (): ResolvedConfig => config;
      const isolations = await Isolations.open({
        store,
        bus,
        isAgent: (agent) => currentConfig().agents.has(agent),
        approvals,
        reuseTtlMs: config.approvals.reuseTtlMs,
        notify: (n) => late.notifications?.incident(n),
        ...(opts.incidentAlert ? { alert: opts.incidentAlert } : {}),
      });
      isolationsOpened = isolations;
      // An isolated agent's placeholders are dead everywhere (its requests are refused before this too).
      const placeholder = (agent: string, secret: string): Promise<string> =>
        isolations.isIsolated(agent)
          ? Promise.reject(new BastionError('ERR_AGENT_ISOLATED', `agent ${agent} is isolated`))
          : vault
            ? vault.placeholder(secret, agent)
            : Promise.reject(new BastionError('ERR_VAULT_KEY', 'no vault is open'));
      // Single-use nonces of sealed request states: in the store file (or Redis), so every instance sees every use.
      // Set once the gateway (and its observer) exists: the store opens lazily, after that.
      let countRedisError: ((code: string) => void) | undefined;
      const nonces = lazyNonceStore(() =>
        openNonceStore(
          { kind: config.redis !== undefined ? 'redis' : 'store', storePath: config.storePath, store: config.store, namespace: 'mcp', ...(config.redis !== undefined ? { redis: config.redis } : {}) },
          { redisTimeoutMs: DEFAULTS.a2aRedisTimeoutMs, onRedisError: (code) => countRedisError?.(code) },
        ),
      );
      const requestStates = new RequestStateSealer({ keys: () => identity.derivationSecrets(), nonces, ttlMs: config.approvals.timeoutMs });
      const auditStep = new AuditStep(audit, opts.onAuditFailure ? { onFailure: opts.onAuditFailure } : {});
      const notifications = (late.notifications = openNotifier(config.alerts, { identity, audit: (e) => auditStep.batched(e), publicUrl: () => config.alerts.publicUrl }, opts.notify));
      const shared: GatewayShared = {
        store,
        audit,
        auditStep,
        approvals,
        signer,
        nonces,
        requestStates,
        vault,
        pasted,
        userOAuth,
        placeholder,
        validator: new ArgumentValidator(),
        provenance: new ProvenanceTracker(config.provenance),
        pins: new PinGate({ store, config: config.pinning, audit: (e) => audit.append(e), alerts: opts.alerts, bus }),
        lookup: opts.lookup,
        upstreamCa: opts.upstreamCa,
        notifications,
        isolations,
        js: new LazyJsEvaluator({ workers: 1 }),
      };
      const gen = await compileGeneration(config, shared, 1, opts.generateKeys === true);
      const gateway = new Gateway(shared, gen, identity, auditStep, bus);
      currentConfig = () => gateway.config;
      gateway.#observe(opts.observe ?? {});
      countRedisError = (code) => gateway.observer.metrics.countError('redis', code);
      return { gateway, generated: [...gen.generated] };
    } catch (err) {
      isolationsOpened?.close();
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Admin notifications (config `alerts`; docs/notifications.md): `notify(alert)`, `approvalPending(approval)`
   * (the approval queue calls it), `incident({agent, action, reason, by, detail})`. Each returns at once.
   */
  get notifications(): Notifier {
    return this.#shared.notifications;
  }

  /** Metrics (`/metrics`), access log and request spans of this gateway. */
  get observer(): Observer {
    return this.#observer;
  }

  /**
   * Creates the observer, attaches it to the audit log (every request's record
   * passes there) and registers the `store` readiness check (a bounded read of
   * the newest audit record).
   */
  #observe(opts: Pick<ObserverOptions, 'logger' | 'accessLog' | 'telemetry' | 'defaultMetrics'>): void {
    const store = this.store;
    const observer = new Observer({
      ...opts,
      isAgent: (name) => this.config.agents.has(name),
      sources: {
        auditQueued: () => this.audit.backlog,
        auditCapacity: () => this.audit.maxPendingRecords,
        auditFailures: () => this.auditStep.failures,
        approvalsPending: async () => (await store.listApprovals({ status: 'pending', limit: 10_000 })).length,
        readiness: () => this.readiness.report(),
      },
    });
    this.#observer = observer;
    this.audit.observe(observer);
    this.readiness.register('store', async () => {
      try {
        await store.lastAudit();
        return { ok: true };
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        observer.metrics.countError('store', typeof code === 'string' ? code : 'error');
        return { ok: false, detail: typeof code === 'string' ? code : 'error' };
      }
    });
  }

  /** The agent a presented key belongs to, or undefined (constant-time over the keys' SHA-256 digests). */
  agentForKey(key: string): string | undefined {
    return this.agentKeys.lookup(key);
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

  /**
   * Attaches the sandbox service (src/sandbox/service.ts): sessions started from now on list and
   * run the sandbox's tools (when `sandbox.enabled`). The gateway closes it.
   */
  attachSandbox(service: SandboxService): void {
    this.#shared.sandbox = service;
  }

  /** The attached sandbox service, if any. */
  get sandbox(): SandboxService | undefined {
    return this.#shared.sandbox;
  }

  /** Closes the ability runner's connections, flushes the vault's pending last-used times and the audit log, writes the final checkpoint, closes the store. */
  async close(): Promise<void> {
    await this.abilities?.close();
    await this.#shared.sandbox?.close();
    for (const r of this.#retired.splice(0)) await r.close().catch(() => undefined);
    await this.#shared.js.close();
    await this.#nonces.close();
    await this.vault?.flush();
    // Before the audit log closes: the last delivery outcomes are audited.
    await this.#shared.notifications.close();
    await this.audit.close();
    await this.#observer.close();
    this.isolations.close();
    await this.bus.close();
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
