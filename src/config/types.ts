/**
 * The resolved, immutable runtime form of the config that `loadConfig` returns.
 * Secret references are resolved to {@link Secret}s, paths are absolute, and
 * defaults are filled in. Requests never look at the raw YAML again.
 */
import type { Secret } from '../util/secret.ts';
import type { RawConfig } from './schema.ts';
import type { ResolvedAnomalies } from '../anomaly/config.ts';
import type { ResolvedAgentSandbox, ResolvedSandbox } from '../sandbox/config.ts';

export interface ResolvedServer {
  readonly host: string;
  readonly port: number;
  /** Accepted Host header values, lower-case, each `host:port` (and `host` alone for default-port clients). */
  readonly allowedHosts: readonly string[];
  /** Accepted Origin header values (exact, lower-case, no trailing slash). */
  readonly allowedOrigins: readonly string[];
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
  readonly sessionIdleMs: number;
  readonly maxSessions: number;
  /** Per-agent limits of the tool door (`server.sessions`); `maxPerAgent` is already capped by `maxSessions`. */
  readonly sessions: {
    /** Most MCP sessions one agent may hold. */
    readonly maxPerAgent: number;
    /** Most tool-door requests of one agent in flight at once. */
    readonly maxConcurrentCallsPerAgent: number;
    /** Sustained request rate of one agent, per second. */
    readonly requestsPerSecondPerAgent: number;
    /** Token bucket size, in requests. */
    readonly burstPerAgent: number;
  };
  /** Longest a client may take to send a request head, in ms. */
  readonly headersTimeoutMs: number;
  /** Longest a client may take to send a whole request, in ms; 0: unbounded (the body timeout still applies). */
  readonly requestTimeoutMs: number;
  /** `ttlMs` of cacheable results to MCP 2026-07-28 clients, in ms (`cacheScope` is always private). */
  readonly cacheTtlMs: number;
  /** The egress proxy's listen address; undefined when `server.egress` is `false`. */
  readonly egress: { readonly host: string; readonly port: number } | undefined;
}

/** One egress allowlist entry, normalized. `id` is its config path (`agents.demo.network[0]`). */
export interface ResolvedNetworkRule {
  readonly id: string;
  /** Normalized host pattern (lower case, IPv6 without brackets). */
  readonly host: string;
  readonly ports: readonly number[];
  /** Undefined: any method. */
  readonly methods?: readonly string[];
  /** Undefined: any path. */
  readonly paths?: readonly string[];
}

/** An agent's SSRF-guard exceptions (`unsafeAllowPrivate`). */
export interface ResolvedPrivateAllowance {
  readonly hosts: readonly string[];
  /** CIDR ranges, as written (validated). */
  readonly ranges: readonly string[];
}

/** A vault secret's config metadata. */
export interface ResolvedSecretMeta {
  readonly name: string;
  /** Undefined: only the hosts stored with the value apply. */
  readonly hosts?: readonly string[];
  /** Config `unsafeAllowSharedSuffix`: exact hosts under a PRIVATE-section suffix accepted (src/vault/host-binding.ts). */
  readonly unsafeAllowSharedSuffix?: true;
  /** Config `ports`: undefined, any port. */
  readonly ports?: readonly number[];
  /** Config `swapIn`: undefined, the release rule's default (src/vault/release.ts). */
  readonly swapIn?: readonly ('header' | 'query' | 'path' | 'body')[];
  readonly description?: string;
}

export interface ResolvedAgent {
  readonly name: string;
  /** Keys that resolved. */
  readonly keys: readonly Secret[];
  /** References that did not resolve (env unset); only when keys are loaded leniently (tools that read the store), else that is an error. */
  readonly unresolvedKeyRefs: readonly string[];
  /** Tool patterns the agent may call, with the abilities of its `skillsets` appended by name. */
  readonly tools: readonly string[];
  /** Skillset names, as configured (their abilities are already in `tools`). */
  readonly skillsets: readonly string[];
  readonly deny: readonly string[];
  readonly approve: readonly string[];
  readonly resources: readonly string[];
  readonly prompts: readonly string[];
  /** Vault secrets whose placeholders the agent may use. */
  readonly secrets: readonly string[];
  /** Tool labels for this agent by pattern, before the global `tools` ones. */
  readonly labels: readonly ResolvedAgentLabel[];
  /** Short-form conditions (`approveWhen`, then `denyWhen`), in config order, each with its fallback resolved. */
  readonly guards: readonly ResolvedGuard[];
  /** Per-conversation limits. */
  readonly limits: readonly ResolvedConversationLimit[];
  /** `trustedValues` patterns, as configured. */
  readonly trustedValues: readonly string[];
  /** `oauth.providers` whose per-user token the agent's egress requests may carry (`<<OAUTH_name>>`). */
  readonly oauth: readonly string[];
  readonly network: readonly ResolvedNetworkRule[];
  readonly unsafeAllowPrivate?: ResolvedPrivateAllowance;
  /** `external` agents never see internal-scope tools. */
  readonly scope: 'external' | 'internal';
  /** Cross-user tools are hidden when true. */
  readonly isolateUsers: boolean;
  /** The model provider of the model door; undefined: the agent has no model door. */
  readonly model?: ResolvedModelUpstream;
  readonly supervisor?: ResolvedSupervisor;
  /** What the agent may do in the sandbox (`agents.X.sandbox` over `sandbox`); present for every agent. */
  readonly sandbox?: ResolvedAgentSandbox;
}

/** An agent's model provider (`agents.X.model`). */
export interface ResolvedModelUpstream {
  readonly provider: 'openai' | 'anthropic';
  /** The API base as the provider's SDK takes it (no trailing slash). */
  readonly baseUrl: URL;
  /** Vault secret holding the API key; undefined for a keyless provider. */
  readonly secret?: string;
  readonly timeoutMs: number;
}

/** An agent's supervisor model (`agents.X.supervisor`); OpenAI-compatible. */
export interface ResolvedSupervisor {
  readonly baseUrl: URL;
  readonly model: string;
  readonly secret?: string;
  readonly mode: 'flag' | 'correct';
  readonly timeoutMs: number;
}

/** Metadata of tools matching `pattern` (config `tools`). */
export interface ResolvedToolMeta {
  readonly pattern: string;
  readonly scope: 'external' | 'internal';
  readonly crossUser: boolean;
  /** Labels (src/policy/labels.ts); undefined: not declared by this pattern. */
  readonly source?: 'trusted' | 'untrusted';
  readonly effect?: readonly ToolEffect[];
}

/** What a tool's call does (config `tools.P.effect`, `agents.X.labels.P.effect`). */
export type ToolEffect = 'read' | 'write' | 'send' | 'pay' | 'share' | 'delete' | 'egress';

/** An argument value's provenance (src/provenance/). */
export type Origin = 'user' | 'config' | 'trusted' | 'untrusted' | 'model';

/** What a short-form condition does when it holds. */
export type GuardFallback = 'deny' | 'approve' | 'error';

/** One `agents.X.approveWhen[i]` / `denyWhen[i]` condition (every field given must hold). */
export interface ResolvedGuard {
  /** Its config path, e.g. `agents.demo.approveWhen[0]`: the Cedar policy id. */
  readonly id: string;
  readonly tool?: readonly string[];
  readonly effect?: readonly ToolEffect[];
  readonly source?: 'trusted' | 'untrusted';
  readonly argsFrom?: readonly Origin[];
  readonly tainted?: boolean;
  readonly flagged?: boolean;
  readonly hostNotIn?: readonly string[];
  readonly recipientNotIn?: readonly string[];
  readonly fallback: GuardFallback;
}

/** One `agents.X.limits[i]`. */
export interface ResolvedConversationLimit {
  readonly id: string;
  readonly tool: string;
  readonly calls?: number;
  readonly bytes?: number;
  readonly fallback: GuardFallback;
}

/** A per-agent label pattern (`agents.X.labels`), in config order. */
export interface ResolvedAgentLabel {
  readonly pattern: string;
  readonly source?: 'trusted' | 'untrusted';
  readonly effect?: readonly ToolEffect[];
}

export interface WindowLimitConfig {
  readonly points: number;
  readonly windowS: number;
}

export interface ScopeLimitsConfig {
  readonly requests?: WindowLimitConfig;
  readonly tokens?: WindowLimitConfig;
}

/** The model door's settings (`modelDoor`). */
export interface ResolvedModelDoor {
  readonly admins: readonly string[];
  readonly requireUser: boolean;
  readonly maxBodyBytes: number;
  readonly vaultPastedSecrets: boolean;
  readonly rateLimits: { readonly perUser: ScopeLimitsConfig; readonly perAgent: ScopeLimitsConfig };
  readonly extraction: 'ban' | 'flag';
  readonly bans: { readonly durationsMs: readonly number[]; readonly forgetAfterMs: number };
  readonly hardening: { readonly enabled: boolean; readonly text: string };
  /** Answer-side check for a leaked system prompt (word shingles). */
  readonly promptLeak: { readonly enabled: boolean; readonly shingleWords: number; readonly minShingles: number };
}

/** Metrics, logs and traces (`observability`), secret references resolved. See docs/observability.md. */
export interface ResolvedObservability {
  readonly metrics: { readonly enabled: boolean; readonly access: 'auto' | 'admin-key'; readonly listen?: string };
  readonly logs: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'; readonly format: 'auto' | 'json' | 'pretty'; readonly access: boolean };
  /** OTLP/HTTP export; undefined: off (unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set when serving). */
  readonly otlp?: { readonly endpoint: string; readonly headers: Readonly<Record<string, Secret>>; readonly serviceName: string };
}

/** Where admin alerts go (`alerts`), secret references resolved. */
export interface ResolvedAlerts {
  readonly minSeverity: 'info' | 'warning' | 'critical';
  /** Base URL of notification links (`<publicUrl>/console/#/...`); undefined: links are paths. */
  readonly publicUrl?: string;
  /** Signed JSON webhook; `events` undefined: every kind. */
  readonly webhook?: { readonly url: string; readonly headers: Readonly<Record<string, Secret>>; readonly events?: readonly ('approval.pending' | 'alert' | 'incident')[] };
  /** Slack-compatible incoming webhook; the URL is a secret. */
  readonly slack?: { readonly url: Secret; readonly events?: readonly ('approval.pending' | 'alert' | 'incident')[] };
  readonly email?: {
    readonly events?: readonly ('approval.pending' | 'alert' | 'incident')[];
    readonly host: string;
    readonly port: number;
    readonly secure?: boolean;
    readonly user?: string;
    readonly password?: Secret;
    readonly from: string;
    readonly to: readonly string[];
  };
}

export interface ResolvedUpstream {
  readonly name: string;
  readonly kind: 'stdio' | 'http';
  readonly command?: string;
  readonly args: readonly string[];
  /** Working directory of a stdio upstream: the config file's folder. */
  readonly cwd: string;
  readonly env: Readonly<Record<string, Secret>>;
  /** Environment variables that get the session agent's placeholder for a vault secret: variable → secret name. */
  readonly placeholderEnv: Readonly<Record<string, string>>;
  readonly url?: URL;
  readonly headers: Readonly<Record<string, Secret>>;
  readonly prefix: boolean;
  /** Sign each HTTP request (RFC 9421) with the signed user context. Only for `http` upstreams. */
  readonly signContext: boolean;
  /** Mint a per-call JWT for each HTTP request; undefined: none. */
  readonly token?: ResolvedCallToken;
  /** Hosts the upstream's tools send credentials to (pasted-secret swaps); default the url's host, none for stdio. */
  readonly secretHosts: readonly string[];
  /** Absolute folder that relative path arguments to this upstream's tools resolve against; undefined: they are refused. */
  readonly workspace?: string;
  /** Which string arguments the path guard checks (see src/policy/paths.ts); undefined: `strict` with a workspace, else `named`. */
  readonly pathGuard?: 'strict' | 'named';
  /** Tool name pattern → JSON Pointer pattern → argument kind, for the path guard; undefined: none. */
  readonly argumentKinds?: Readonly<Record<string, Readonly<Record<string, 'path' | 'not-path'>>>>;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** MCP revision spoken to the upstream (src/mcp/revision/upstream.ts). */
  readonly revision: 'auto' | '2025-11-25' | '2026-07-28';
  /** The `oauth.providers` entry whose per-user token every request carries; undefined: none. */
  readonly oauth?: string;
}

/** A per-call token setting, resolved (`true` became the defaults). */
export interface ResolvedCallToken {
  /** Lifetime in seconds. */
  readonly lifetimeS: number;
  /** `aud`; undefined: the tool's name (abilities) or the upstream's URL origin (MCP upstreams). */
  readonly audience?: string;
  /** Header it is sent in; `Authorization` gets `Bearer <jwt>`. */
  readonly header: string;
}

/** An ability: one declarative HTTP action, exposed as a tool named `name`. */
export interface ResolvedAbility {
  readonly name: string;
  readonly description: string;
  readonly method: string;
  /** The RFC 6570 URL template as configured (scheme, host and port literal). */
  readonly url: string;
  /** Scheme, host and port of `url` (`https://api.github.com`): every expansion must keep it. */
  readonly origin: string;
  /** Normalized host name of `url` (the bound secret's hosts must cover it). */
  readonly host: string;
  /** JSON Schema of the parameters, with `additionalProperties: false` enforced. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON body template; undefined: no body. */
  readonly body?: unknown;
  /** Bound vault secret name. */
  readonly secret?: string;
  /** The `oauth.providers` entry whose per-user token the call carries, instead of a secret. */
  readonly oauth?: string;
  readonly signContext: boolean;
  readonly token?: ResolvedCallToken;
  /** `js`: a JavaScript expression over `response`, evaluated in the sandbox after `select` (src/sandbox/quickjs.ts). */
  readonly response: { readonly select?: readonly string[]; readonly js?: string; readonly maxBytes: number };
  readonly timeoutMs: number;
}

/** Agent-to-agent settings of one local agent. */
export interface ResolvedA2aAgent {
  readonly peers: readonly string[];
  readonly receiveFrom: readonly string[];
  readonly deliver?: URL;
}

export interface ResolvedPaths {
  /** Absolute globs (or globs beginning with `**`, which match at any depth). */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly argumentNames: readonly string[];
  /** The folder relative path arguments resolve against: the config file's folder. */
  readonly base: string;
}

export interface CedarFile {
  readonly path: string;
  readonly text: string;
}

/**
 * The `store` setting, resolved: an absolute SQLite path, or a PostgreSQL URL.
 * `url` is undefined only when the config was loaded leniently and the secret
 * reference `ref` did not resolve; opening the store then fails (`ERR_CONFIG_SECRET_REF`).
 * `ref` names the setting for messages (`env:NAME`, `file:PATH`, or `store.postgres` for a literal URL), never the URL.
 */
export type ResolvedStore =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: Secret | undefined; readonly ref: string };

export interface ResolvedConfig {
  /** Absolute path of the config file. */
  readonly file: string;
  /** Its folder: relative paths in the config resolve against it. */
  readonly dir: string;
  /** The validated raw config (secret references unresolved). */
  readonly raw: RawConfig;
  readonly server: ResolvedServer;
  /** Where the store lives (`store`): the SQLite file or the PostgreSQL database (src/store/open.ts opens either). */
  readonly store: ResolvedStore;
  /** Absolute path of the SQLite database; undefined when the store is PostgreSQL. */
  readonly storePath: string | undefined;
  readonly agents: ReadonlyMap<string, ResolvedAgent>;
  readonly upstreams: ReadonlyMap<string, ResolvedUpstream>;
  readonly paths: ResolvedPaths;
  readonly approvals: { readonly timeoutMs: number; readonly reuseTtlMs: number; readonly progressMs: number };
  readonly audit: {
    readonly checkpointEvery: number;
    readonly recordArguments: 'none' | 'redacted';
    /** Checkpoints also written outside the store (audit/witness.ts); `file` is absolute. */
    readonly witness?: { readonly file?: string; readonly webhook?: { readonly url: string; readonly timeoutMs: number } };
    /** `audit.retention` in ms per class (src/audit/retention.ts); undefined: nothing is pruned. */
    readonly retention?: Readonly<Partial<Record<'system' | 'admin' | 'denials' | 'approvals' | 'errors' | 'allows' | 'default', number>>>;
  };
  readonly output: { readonly maxResultBytes: number; readonly redactSecrets: boolean };
  readonly adminKeys: readonly Secret[];
  /** The admin each of `adminKeys` belongs to (config `admin.keys[].id`; `admin` for an unnamed key), index for index. */
  readonly adminKeyIds: readonly string[];
  /** Hand-written Cedar policy files, read. */
  readonly policies: readonly CedarFile[];
  readonly secrets: ReadonlyMap<string, ResolvedSecretMeta>;
  /** `keyFile` is absolute. */
  readonly vault: { readonly keyFile: string; readonly rotationGraceMs: number };
  readonly egress: {
    readonly intercept: 'auto' | 'all';
    readonly maxBodyBytes: number;
    readonly maxHeaderBytes: number;
    readonly headersTimeoutMs: number;
    readonly bodyTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly connectTimeoutMs: number;
    readonly upstreamTimeoutMs: number;
    readonly dnsCacheMs: number;
    /** Normalized host name → addresses, used instead of DNS. */
    readonly staticHosts: Readonly<Record<string, readonly string[]>>;
  };
  /** Tool metadata patterns, in config order (the first match wins). */
  readonly tools: readonly ResolvedToolMeta[];
  readonly modelDoor: ResolvedModelDoor;
  /** Shared counters; undefined: in memory. The URL may hold a password: a Secret. */
  readonly redis?: { readonly url: Secret; readonly keyPrefix: string };
  readonly alerts: ResolvedAlerts;
  /** Anomaly rules over the audit stream, defaults included (src/anomaly/, docs/anomalies.md). */
  readonly anomalies: ResolvedAnomalies;
  /** The sandbox (src/sandbox/, docs/sandbox.md). */
  readonly sandbox: ResolvedSandbox;
  /** Metrics, logs and traces (config `observability`). */
  readonly observability: ResolvedObservability;
  /** Abilities by exposed tool name, in config order. */
  readonly abilities: ReadonlyMap<string, ResolvedAbility>;
  /** Skillset name → ability names. */
  readonly skillsets: ReadonlyMap<string, readonly string[]>;
  /** Pinned tool definitions (src/mcp/pins.ts). */
  readonly pinning: { readonly mode: 'first-use' | 'manual' | 'off'; readonly scanDescriptions: boolean };
  /** Per-conversation taint and provenance bounds (src/provenance/). */
  readonly provenance: { readonly maxValues: number; readonly maxTotalValues: number; readonly ttlMs: number; readonly maxConversations: number };
  readonly identity: { readonly issuer: string; readonly platform: string; readonly signatureTtlS: number; readonly rotationGraceMs: number };
  /** End-user identity (config `users`). */
  readonly users: ResolvedUsers;
  /** OAuth resource server and per-user providers (config `oauth`). */
  readonly oauth: ResolvedOAuth;
  /** Agent-to-agent messaging; undefined: off (no /a2a routes). */
  readonly a2a?: {
    readonly maxAgeS: number;
    readonly maxMessageBytes: number;
    readonly agents: ReadonlyMap<string, ResolvedA2aAgent>;
    /** Where inbound nonces are kept (src/store/nonces.ts): the SQLite store (default without Redis), Redis, or memory. */
    readonly nonceStore: 'store' | 'redis' | 'memory';
  };
}

/** OAuth (config `oauth`): the tool door as a resource server, and per-user providers. */
export interface ResolvedOAuth {
  /** Bearer access tokens accepted at `/mcp`; undefined: agent keys only. */
  readonly resourceServer?: {
    readonly resource: string;
    readonly resourceName?: string;
    readonly scopesSupported?: readonly string[];
    readonly requiredScopes: readonly string[];
    readonly agentClaim: string;
    readonly agents: Readonly<Record<string, string>>;
    readonly userClaim: string;
    readonly issuers: readonly {
      readonly issuer: string;
      readonly jwksUri?: string;
      readonly audience?: string;
      readonly introspection?: { readonly endpoint: string; readonly clientId: string; readonly clientSecret: Secret };
    }[];
  };
  /** `<callbackBase>/oauth/callback`; undefined without providers. */
  readonly redirectUri?: string;
  /** Providers by name. */
  readonly providers: ReadonlyMap<string, {
    readonly name: string;
    readonly issuer: string;
    readonly clientId: string;
    readonly clientSecret?: Secret;
    readonly clientAuth: 'none' | 'client_secret_basic' | 'client_secret_post';
    readonly scopes: readonly string[];
    readonly resource?: string;
    /** Normalized egress host patterns where the user's token may go (`<<OAUTH_name>>`). */
    readonly hosts: readonly string[];
  }>;
}

/** How end users are verified (config `users`). */
export interface ResolvedUsers {
  /** Token verification; undefined: user ids are only asserted. */
  readonly token?: {
    /** Lowercase header name. */
    readonly header: string;
    readonly issuer: string;
    readonly audience: string | readonly string[];
    /** The JWKS: a URL to fetch, or the parsed keys of `jwksFile`. */
    readonly jwks: { readonly url: string } | { readonly keys: { readonly keys: readonly Record<string, unknown>[] } };
    readonly algorithms: readonly string[];
    readonly claim: string;
    readonly clockToleranceS: number;
    readonly maxAgeS?: number;
  };
  /** `privileged`: privilege needs a verified user; `always`: every named user must be verified. */
  readonly require: 'privileged' | 'always';
}
