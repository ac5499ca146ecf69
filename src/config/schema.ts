/**
 * The schema of `bastion.yaml`, in code. Every object is strict: an unknown key
 * is an error naming its path. The JSON Schema (`schema/bastion.schema.json`)
 * and the reference (`docs/config-reference.md`) are generated from this file by
 * `npm run generate`, and a test fails when the committed copies drift.
 *
 * Values here are the *raw* config: secret references (`env:NAME`, `file:PATH`)
 * are still strings and relative paths are not yet resolved. `loadConfig`
 * (./load.ts) turns it into the resolved runtime form.
 */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.ts';
import { AnomaliesSchema } from '../anomaly/config.ts';
import { AgentSandboxSchema, SandboxSchema } from '../sandbox/config.ts';

/** A reference to a secret held outside the config: `env:NAME` or `file:PATH`. */
export const SecretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, {
    message: 'must be a secret reference, env:NAME or file:PATH (secrets never appear literally in config)',
  })
  .describe('A secret reference: `env:NAME` (environment variable) or `file:PATH` (file contents, trailing newline trimmed; relative to the config file).');

/** `vault:NAME`: in a stdio upstream's environment, the calling agent's placeholder for vault secret NAME. */
export const VaultPlaceholderRef = z
  .string()
  .regex(/^vault:[A-Za-z0-9_-]{1,64}$/, { message: 'must be vault:NAME (a secret under secrets)' })
  .describe('`vault:NAME`: the session agent\'s placeholder for vault secret NAME, swapped for the value only by the network door on the secret\'s hosts.');

/** A tool, prompt or upstream-qualified name pattern: letters, digits, `_`, `-`, `.`, `/` and `*` as the only wildcard. */
export const NamePattern = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9_.\-/*]+$/, {
    message: 'bad glob: a name pattern may hold letters, digits, _ - . / and * (the only wildcard)',
  })
  .describe('A name pattern. `*` matches any run of characters; nothing else is special.');

/** What a tool's call does, for provenance-aware policy (docs/labels.md). */
export const TOOL_EFFECTS = ['read', 'write', 'send', 'pay', 'share', 'delete', 'egress'] as const;

const SourceLabel = z.enum(['trusted', 'untrusted']).describe('`untrusted`: its results carry third-party content (email, web pages, files others wrote, messages, search results). `trusted`: they do not.');
const EffectLabels = z
  .array(z.enum(TOOL_EFFECTS))
  .min(1)
  .max(TOOL_EFFECTS.length)
  .describe('What a call does: `read`; `write`; `send` (communication leaving the organization); `pay`; `share` (access given to others); `delete`; `egress` (its arguments name URLs or hosts to contact).');

/** Where an argument's value came from, as provenance-aware policy reads it (docs/injection-defense.md). */
export const ORIGINS = ['user', 'config', 'trusted', 'untrusted', 'model'] as const;

const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1).max(32)]);

/** A short-form policy condition (`agents.X.approveWhen` / `denyWhen`): every key given must hold. */
const GuardSchema = z
  .strictObject({
    tool: oneOrMany(z.lazy(() => NamePattern)).optional().describe('Only tools whose exposed name matches one of these patterns.'),
    effect: oneOrMany(z.enum(TOOL_EFFECTS)).optional().describe('Only tools with at least one of these effects (their labels, tightened by annotations).'),
    source: SourceLabel.optional().describe('Only tools whose results have this source label.'),
    argsFrom: oneOrMany(z.enum(ORIGINS))
      .optional()
      .describe('Some argument value\'s provenance is one of these: `user` (the end user said it, at the model door), `config` (matches `trustedValues`, an enum of the tool\'s schema or the agent\'s network allowlist), `trusted` (a trusted tool returned it), `untrusted` (an untrusted tool returned it), `model` (seen nowhere: the model produced it). Each argument counts once, by the first of user, config, untrusted, trusted, model that applies.'),
    tainted: z.boolean().optional().describe('`true`: only when the conversation has read an untrusted result; `false`: only when it has not.'),
    flagged: z.boolean().optional().describe('`true`: only when a result in the conversation was flagged by the injection detector or the hidden-character check (a stronger taint).'),
    hostNotIn: z.array(z.lazy(() => HostPattern)).max(256).optional().describe('Some URL or host named in the arguments is not matched by these host patterns (`*.example.com`).'),
    recipientNotIn: z
      .array(z.string().min(1).max(320))
      .max(256)
      .optional()
      .describe('Some email address in the arguments matches none of these patterns (`*@example.com`; `*` matches any run of characters, case-insensitive).'),
    fallback: z.enum(['deny', 'approve', 'error']).optional().describe('What happens when the condition holds: `deny` (refused like a forbidden call), `approve` (held for an admin), `error` (refused with a tool error that tells the model why, so it can ask the user). Default: `approve` under approveWhen, `deny` under denyWhen.'),
  })
  .describe('A condition on a tools/call, compiled to a Cedar `forbid` annotated with its fallback.');

/** A per-conversation budget for the tools matching `tool`. */
const ConversationLimitSchema = z
  .strictObject({
    tool: z.lazy(() => NamePattern).describe('Exposed-name pattern of the tools the budget covers (together).'),
    calls: z.number().int().positive().max(1_000_000).optional().describe('Most calls per conversation.'),
    bytes: z.number().int().positive().max(1 << 30).optional().describe('Most bytes of arguments (canonical JSON) per conversation.'),
    fallback: z.enum(['deny', 'approve', 'error']).default('error').describe('What happens to a call over the budget (see approveWhen.fallback).'),
  })
  .describe('A per-conversation call and volume limit.');

/** Per-agent labels: the same `source` / `effect`, checked before the global `tools` patterns. */
const AgentLabelSchema = z.strictObject({ source: SourceLabel.optional(), effect: EffectLabels.optional() }).describe('Labels of the tools matching the pattern, for this agent.');

/** A `host:port` listen address. */
export const ListenAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$/, { message: 'must be host:port, e.g. 127.0.0.1:8790' })
  .refine((s) => {
    const port = Number(s.slice(s.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be 0-65535');

const positiveMs = z.number().int().positive().max(24 * 3600_000);

const ServerSchema = z
  .strictObject({
    listen: ListenAddress.default(DEFAULTS.listen).describe('Address of the HTTP listener (MCP at /mcp, admin API at /api).'),
    allowedHosts: z
      .array(z.string().min(1))
      .optional()
      .describe('Host header values accepted (DNS-rebinding protection). Default: the listen host, localhost, 127.0.0.1 and [::1], with the listen port.'),
    allowedOrigins: z
      .array(z.string().url())
      .optional()
      .describe('Origin header values accepted when a request carries one. Default: http:// origins of the allowed hosts.'),
    maxBodyBytes: z.number().int().positive().max(64 * 1024 * 1024).default(DEFAULTS.maxBodyBytes).describe('Largest request body in bytes, counted as streamed.'),
    bodyTimeoutMs: positiveMs.default(DEFAULTS.bodyTimeoutMs).describe('Longest a client may take to send a request body (ms); slower is answered 408 (bounds slow-body attacks; response streams are not limited).'),
    sessionIdleMs: positiveMs.default(DEFAULTS.sessionIdleMs).describe('An MCP session idle this long (ms) is closed with its upstream connections.'),
    maxSessions: z.number().int().positive().max(100_000).default(DEFAULTS.maxSessions).describe('Most concurrent MCP sessions; at the cap the least recently used idle session of the agent holding the most is closed, and only when none is idle is a new one refused with 503. MCP 2026-07-28 requests are served by a pool of at most as many cached sessions, one per agent, end user and conversation.'),
    sessions: z
      .strictObject({
        maxPerAgent: z.number().int().positive().max(100_000).default(DEFAULTS.maxSessionsPerAgent).describe('Most MCP sessions one agent may hold (capped by `maxSessions`); at the cap its own least recently used idle session is closed, and only when all of its sessions are busy is a new one refused with 429.'),
        maxConcurrentCallsPerAgent: z.number().int().positive().max(100_000).default(DEFAULTS.maxConcurrentCallsPerAgent).describe('Most tool-door requests (POST /mcp) of one agent in flight at once; more are refused with 429 and Retry-After.'),
        requestsPerSecondPerAgent: z.number().positive().max(1_000_000).default(DEFAULTS.requestsPerSecondPerAgent).describe('Sustained tool-door request rate of one agent, per second, per instance; faster is refused with 429 and Retry-After.'),
        burstPerAgent: z.number().int().positive().max(1_000_000).default(DEFAULTS.requestBurstPerAgent).describe('Requests one agent may send at once above its rate (token bucket size).'),
      })
      .default({ maxPerAgent: DEFAULTS.maxSessionsPerAgent, maxConcurrentCallsPerAgent: DEFAULTS.maxConcurrentCallsPerAgent, requestsPerSecondPerAgent: DEFAULTS.requestsPerSecondPerAgent, burstPerAgent: DEFAULTS.requestBurstPerAgent })
      .describe('Per-agent limits of the tool door (docs/tool-door.md, "Limits"), so that one agent cannot lock the others out.'),
    console: z
      .strictObject({
        listen: ListenAddress.optional().describe('Also serve the console on this address (its own listener, console only; Host and Origin checked against the bound address and the loopback names). The main listener serves it at `/console` either way.'),
        sessionTtlMs: positiveMs.default(8 * 3600_000).describe('Longest a console sign-in lasts (ms), however active.'),
        sessionIdleMs: positiveMs.default(30 * 60_000).describe('A console session unused this long (ms) ends.'),
      })
      .default({ sessionTtlMs: 8 * 3600_000, sessionIdleMs: 30 * 60_000 })
      .describe('The operator\'s console at `/console` (docs/console.md); on only when `admin.keys` is set. Sessions are held in memory by the instance that signed the admin in.'),
    headersTimeoutMs: positiveMs.default(DEFAULTS.headersTimeoutMs).describe('Longest a client may take to send a request head (ms; slowloris bound); enforced within a second, answered 408 and audited.'),
    requestTimeoutMs: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600_000)
      .default(DEFAULTS.requestTimeoutMs)
      .describe('Longest a client may take to send a whole request, head and body (ms); 0: no bound beyond `bodyTimeoutMs`. Response streams (SSE) are not limited. Must be 0 or at least `headersTimeoutMs`.'),
    cacheTtlMs: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600_000)
      .default(DEFAULTS.cacheTtlMs)
      .describe('`ttlMs` Bastion puts on cacheable results for MCP 2026-07-28 clients (tool, prompt and resource lists, resources/read, server/discover), in ms; always with `cacheScope: private`, since every agent and end user sees its own catalogue.'),
    egress: z
      .union([ListenAddress, z.literal(false)])
      .default(DEFAULTS.egressListen)
      .describe('Address of the egress proxy (the network door: HTTP forward proxy with CONNECT). `false` turns it off.'),
  })
  .refine((s) => s.requestTimeoutMs === 0 || s.requestTimeoutMs >= s.headersTimeoutMs, { message: 'must be 0 or at least headersTimeoutMs', path: ['requestTimeoutMs'] })
  .describe('The HTTP listener.');

/** Names of vault secrets. */
export const SECRET_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A PostgreSQL connection URL, or a secret reference holding one. */
export const PostgresRef = z
  .string()
  .regex(/^(postgres(ql)?:\/\/\S+|env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, {
    message: 'must be a postgres:// or postgresql:// URL, or a secret reference env:NAME or file:PATH holding one',
  })
  .describe('A `postgres://` or `postgresql://` connection URL, or a secret reference (`env:NAME`, `file:PATH`) holding one; use a reference when the URL carries a password.');

const StoreSchema = z
  .strictObject({
    sqlite: z.string().min(1).optional().describe('Path of the embedded SQLite database (created with its folder if missing; relative to the config file).'),
    postgres: PostgresRef.optional().describe('PostgreSQL database shared by every instance (docs/store.md): a connection URL or a secret reference holding one. Tables are created in the first schema of the search path.'),
  })
  .refine((s) => (s.sqlite === undefined) !== (s.postgres === undefined), { message: 'give exactly one of sqlite and postgres' })
  .describe('Where Bastion keeps state: audit chain, approvals, keys. Exactly one of `sqlite` and `postgres`.');

/** A host pattern: a DNS name (`api.github.com`), a wildcard over subdomains (`*.slack.com`) or an IP literal. */
export const HostPattern = z
  .string()
  .min(1)
  .max(253)
  .regex(/^((\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]+)$/, {
    message: 'must be a host name, *.domain (any subdomain, not the domain itself) or an IP literal',
  })
  .describe('A host: `api.github.com`, `*.slack.com` (any subdomain of slack.com, not slack.com itself), or an IP literal.');

const Port = z.number().int().min(1).max(65535);
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const NetworkRuleSchema = z
  .union([
    z
      .string()
      .min(1)
      .max(260)
      .describe('Shorthand: `host` or `host:port` (any method and path; without a port, 80 and 443).'),
    z
      .strictObject({
        host: HostPattern,
        ports: z.array(Port).min(1).max(64).optional().describe('Ports allowed. Default: 80 and 443.'),
        methods: z.array(z.enum(HTTP_METHODS)).min(1).optional().describe('Methods allowed. Default: any. Restricting methods makes HTTPS to this host intercepted (the local CA must be trusted).'),
        paths: z
          .array(z.string().regex(/^\/[^*?#\s]*$/, { message: 'a path prefix starts with / and holds no *, ?, # or spaces' }))
          .min(1)
          .optional()
          .describe('Path prefixes allowed (`/repos/` allows `/repos/...`; matched against the normalized path). Default: any. Restricting paths makes HTTPS to this host intercepted.'),
      })
      .describe('An egress rule with optional ports, methods and path prefixes.'),
  ])
  .describe('An egress allowlist entry.');

const UnsafeAllowPrivateSchema = z
  .strictObject({
    hosts: z.array(HostPattern).default([]).describe('Host names whose private addresses may be reached.'),
    ranges: z.array(z.string().min(1).max(64)).default([]).describe('Address ranges (CIDR, e.g. 10.1.0.0/16) that may be reached.'),
  })
  .describe('Exceptions to the SSRF guard, audited on every use. When both lists are set, both must match (the host and its address). Cloud-metadata addresses are never reachable.');

const ModelUpstreamSchema = z
  .strictObject({
    provider: z.enum(['openai', 'anthropic']).describe('The provider\'s wire format: `openai` (`/v1/chat/completions`) or `anthropic` (`/v1/messages`).'),
    baseUrl: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'must be an http(s) URL')
      .describe('The provider\'s API base as its SDK takes it: `https://api.openai.com/v1` (OpenAI: Bastion appends `/chat/completions`, `/models`) or `https://api.anthropic.com` (Anthropic: Bastion appends `/v1/messages`, `/v1/models`).'),
    secret: z
      .string()
      .regex(SECRET_NAME)
      .optional()
      .describe('The vault secret holding the provider API key (declared under `secrets`; its hosts must cover `baseUrl`). The agent never holds it. Omit for a keyless local provider.'),
    timeoutMs: positiveMs.default(DEFAULTS.modelTimeoutMs).describe('Longest the provider may take to start answering, and then between streamed chunks (ms); longer is a provider-shaped 504.'),
  })
  .describe('The model provider this agent\'s `/v1/chat/completions` or `/v1/messages` requests are forwarded to.');

const SupervisorSchema = z
  .strictObject({
    baseUrl: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL').describe('An OpenAI-compatible API base (`.../v1`) of the supervisor (judge) model.'),
    model: z.string().min(1).max(256).describe('The supervisor model name.'),
    secret: z.string().regex(SECRET_NAME).optional().describe('Vault secret holding the supervisor\'s API key (declared under `secrets`; its hosts must cover `baseUrl`).'),
    mode: z
      .enum(['flag', 'correct'])
      .default('flag')
      .describe('On a hallucination verdict: `flag` returns the answer and alerts admins; `correct` re-runs the request once with a corrective note and returns the corrected answer.'),
    timeoutMs: positiveMs.default(DEFAULTS.supervisorTimeoutMs).describe('Longest the supervisor may take (ms). A supervisor that fails or times out fails closed: the answer is withheld (502).'),
  })
  .describe('A supervisor model that checks non-streamed answers against the conversation and tool results.');

const AgentSchema = z
  .strictObject({
    keys: z.array(SecretRef).max(16).default([]).describe('API keys the agent authenticates with (`Authorization: Bearer <key>`), as secret references; one that does not resolve is an error. When none is listed, `bastion serve` generates one on first start, stores it hashed and prints it once.'),
    tools: z.array(NamePattern).default([]).describe('Tools the agent may call (exposed names, e.g. `files__*`). Nothing else is listed or callable.'),
    skillsets: z
      .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/))
      .default([])
      .describe('Skillsets (names under `skillsets`) whose abilities the agent may call, as if their names were listed in `tools`.'),
    deny: z.array(NamePattern).default([]).describe('Tools the agent may never call; deny overrides every allow.'),
    approve: z.array(NamePattern).default([]).describe('Tools whose calls are held for an admin decision before they run.'),
    resources: z.array(z.string().min(1).max(2048)).default([]).describe('Resource URIs the agent may list and read; `*` matches any run of characters.'),
    prompts: z.array(NamePattern).default([]).describe('Prompts (exposed names) the agent may list and get.'),
    secrets: z.array(z.string().regex(SECRET_NAME)).default([]).describe('Vault secrets (names under `secrets`) whose placeholders this agent may use; swapped only on the secret\'s hosts.'),
    labels: z
      .record(NamePattern, AgentLabelSchema)
      .default({})
      .describe('Tool labels for this agent by exposed-name pattern (first match wins), checked before the global `tools` patterns.'),
    approveWhen: z.array(GuardSchema).max(64).default([]).describe('Calls held for an admin when a condition holds (short forms compiled to Cedar; docs/injection-defense.md). Only calls the agent is otherwise allowed to make.'),
    denyWhen: z.array(GuardSchema).max(64).default([]).describe('Calls refused when a condition holds (short forms compiled to Cedar).'),
    limits: z.array(ConversationLimitSchema).max(64).default([]).describe('Per-conversation call and volume limits.'),
    trustedValues: z
      .array(z.string().min(1).max(1024))
      .max(10_000)
      .default([])
      .describe('Values the organization trusts (an own IBAN, `*@example.com`): an argument matching one has provenance `config`. `*` matches any run of characters; compared case-insensitively after the same normalization as provenance.'),
    oauth: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/))
      .max(32)
      .default([])
      .describe('`oauth.providers` whose per-user token this agent\'s requests through the network door may carry: `Authorization: <<OAUTH_name>>` becomes `Bearer <the end user\'s token>` on the provider\'s `hosts` only, for the end user the request names (`Bastion-User`).'),
    network: z.array(NetworkRuleSchema).default([]).describe('Egress allowlist: where the agent may connect through the network door. Empty: nowhere (default deny).'),
    unsafeAllowPrivate: UnsafeAllowPrivateSchema.optional(),
    scope: z
      .enum(['external', 'internal'])
      .default('external')
      .describe('`external`: the agent talks to outside users and never sees tools marked `scope: internal` (under `tools`). `internal`: it may (the allowlists still apply).'),
    isolateUsers: z
      .boolean()
      .default(true)
      .describe('Hide tools marked `crossUser: true` (under `tools`: tools that read other users\' conversations or data) from this agent, in both doors.'),
    model: ModelUpstreamSchema.optional(),
    supervisor: SupervisorSchema.optional(),
    sandbox: AgentSandboxSchema.optional(),
  })
  .describe('An agent: a principal with its keys and what it may use.');

const SecretMetaSchema = z
  .strictObject({
    hosts: z
      .array(HostPattern)
      .min(1)
      .optional()
      .describe('Hosts the secret may be sent to. Both these and the hosts given to `bastion secret add --hosts` must match the destination. Checked against the Public Suffix List (ICANN and PRIVATE sections): a public suffix (`com`, `co.uk`), a wildcard anyone can create names under (`*.com`, `*.github.io`, `*.s3.amazonaws.com`, `*.amazonaws.com`) and a host under a shared suffix (`someone.github.io`) are refused.'),
    unsafeAllowSharedSuffix: z
      .boolean()
      .optional()
      .describe('Accept exact hosts in `hosts` that are, or lie under, a shared suffix of the Public Suffix List\'s PRIVATE section (`mystore.myshopify.com`, `mybucket.s3.amazonaws.com`): names another tenant may come to hold. Only for hosts you control; wildcards over such suffixes stay refused. Listed as warnings by `bastion config check`.'),
    ports: z.array(Port).min(1).max(64).optional().describe('Ports the secret may be sent to. Default: any port the network allowlist lets the agent reach on the secret\'s hosts.'),
    swapIn: z
      .array(z.enum(['header', 'query', 'path', 'body']))
      .min(1)
      .max(4)
      .optional()
      .describe('Where in a request the network door may swap the secret\'s placeholder for its value. Default `[header]`: a secret stored with `--header` goes into that header only, one stored without a header into any header. `query`, `path` and `body` are opt-in: an API that stores what it is sent can hand the value back (see docs/vault.md, "The release rule").'),
    description: z.string().max(200).optional().describe('What the secret is for (shown by `bastion secret list`).'),
  })
  .describe('Metadata of a vault secret. Its value is stored with `bastion secret add NAME` (never in config).');

const VaultSchema = z
  .strictObject({
    keyFile: z
      .string()
      .min(1)
      .default(DEFAULTS.vaultKeyFile)
      .describe('Key file of the key-encryption key, created on first run with mode 0600 when `BASTION_MASTER_KEY` is unset (relative to the config file). Losing it loses every secret.'),
    rotationGraceMs: positiveMs.default(DEFAULTS.vaultRotationGraceMs).describe('After `bastion secret rotate`, the old value (and its placeholder) stays valid this long (ms).'),
  })
  .describe('The vault: encrypted secrets and the key that protects them.');

const EgressSchema = z
  .strictObject({
    intercept: z
      .enum(['auto', 'all'])
      .default('auto')
      .describe('`auto`: intercept TLS only for hosts with a bound secret or a method/path rule (others are tunnelled). `all`: intercept every HTTPS connection (hand-written `network/request` policies then apply everywhere).'),
    maxBodyBytes: z.number().int().positive().max(1024 * 1024 * 1024).default(DEFAULTS.egressMaxBodyBytes).describe('Largest request body of an inspected (plain HTTP or intercepted) request, in bytes; larger is answered 413.'),
    maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(DEFAULTS.egressMaxHeaderBytes).describe('Largest request head (request line and headers), in bytes; larger is answered 431.'),
    headersTimeoutMs: positiveMs.default(DEFAULTS.egressHeadersTimeoutMs).describe('Longest a client may take to send a request head (ms; slowloris bound).'),
    bodyTimeoutMs: positiveMs.default(DEFAULTS.bodyTimeoutMs).describe('Longest a client may take to send a request body (ms).'),
    idleTimeoutMs: positiveMs.default(DEFAULTS.egressIdleTimeoutMs).describe('A client or tunnel connection idle this long (ms) is closed.'),
    connectTimeoutMs: positiveMs.default(DEFAULTS.egressConnectTimeoutMs).describe('Longest connecting to a destination may take (ms).'),
    upstreamTimeoutMs: positiveMs.default(DEFAULTS.egressUpstreamTimeoutMs).describe('Longest a destination may take to answer (ms; headers, then between body chunks).'),
    staticHosts: z
      .record(
        z.string().regex(/^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'must be a host name'),
        z.array(z.union([z.ipv4(), z.ipv6()])).min(1).max(16),
      )
      .default({})
      .describe('Fixed addresses for host names, used instead of DNS (like curl --resolve). The addresses still pass the SSRF guard: a private one needs `unsafeAllowPrivate`.'),
    dnsCacheMs: z.number().int().min(0).max(3600_000).default(DEFAULTS.egressDnsCacheMs).describe('How long a checked DNS answer is reused (ms); the connection always goes to the checked address.'),
  })
  .describe('The network door (egress proxy) limits and interception.');

/** A per-call token (JWT) setting: `true` for the defaults, or the details. */
const CallTokenSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      lifetimeS: z.number().int().min(1).max(3600).default(DEFAULTS.callTokenLifetimeS).describe('Token lifetime in seconds.'),
      audience: z.string().min(1).max(512).optional().describe('The `aud` claim. Default: the tool\'s name for abilities, the upstream\'s URL origin for MCP upstreams.'),
      header: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/)
        .default('Authorization')
        .describe('Header the token is sent in: `Authorization` (as `Bearer <jwt>`) or another header (the bare JWT).'),
    }),
  ])
  .describe('Mint a JWT for each call (jose, EdDSA with the identity key): `iss` the identity issuer, `sub` the end user, `act.sub` the agent (RFC 8693 actor claim), `aud`, `scope` the tool name, `jti`, `iat`/`exp`. Verify with `verifyCallToken` from `bastion/verify`.');

const HeaderName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, { message: 'must be an HTTP header name (letters, digits, -)' });

const AbilitySchema = z
  .strictObject({
    description: z.string().min(1).max(2048).describe('What the ability does, shown to the model as the tool description.'),
    method: z.enum(HTTP_METHODS).default('GET').describe('HTTP method.'),
    url: z
      .string()
      .min(8)
      .max(2048)
      .describe('URL template (RFC 6570, levels 1-3): `https://api.github.com/repos/{owner}/{repo}/issues{?state,per_page}`. Scheme, host and port are literal; parameters fill the path and query only, one path segment each (a value holding `/`, `\\`, `..`, `@` or an encoded slash is refused). Operators: `{x}`, `{/x}`, `{.x}`, `{;x}`, `{?x}`, `{&x}`; reserved `{+x}` and fragment `{#x}` expansion (they pass `/` and `?` through) and level-4 modifiers are refused.'),
    params: z
      .record(z.string(), z.unknown())
      .default({ type: 'object', properties: {} })
      .describe('JSON Schema (an object schema) of the parameters the model provides; the tool\'s input schema. Unknown properties are refused (`additionalProperties: false` is enforced).'),
    headers: z
      .record(HeaderName, z.string().max(4096))
      .default({})
      .describe('Fixed request headers. Headers Bastion sets (`Host`, `Content-Length`, `Content-Digest`, `Signature`, `Signature-Input`, `Bastion-Context`, and the secret\'s or token\'s header) cannot be set here.'),
    body: z
      .unknown()
      .optional()
      .describe('JSON body template: any string that is exactly `{name}` becomes parameter `name` (with its JSON type); other values are literal. Sent as `application/json`.'),
    secret: z
      .string()
      .regex(SECRET_NAME)
      .optional()
      .describe('The vault secret this ability sends (declared under `secrets`, added with `--header`): usable only by this ability and only on its URL\'s host. No agent may also be granted it.'),
    oauth: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/)
      .optional()
      .describe('An `oauth.providers` name instead of `secret`: the call carries the end user\'s own access token (`Authorization: Bearer`), only for that user and only to this ability\'s host; a user who has not connected gets a link to connect.'),
    signContext: z.boolean().default(true).describe('Sign each request (RFC 9421) with the `Bastion-Context` header, like an upstream with `signContext: true`.'),
    token: CallTokenSchema.optional(),
    response: z
      .strictObject({
        select: z
          .array(z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, { message: 'a field path: names joined by dots, e.g. user.login' }))
          .min(1)
          .max(64)
          .optional()
          .describe('Fields kept from a JSON response (dotted paths; applied to each item of an array). Default: the whole response.'),
        js: z
          .string()
          .min(1)
          .max(4096)
          .optional()
          .describe('A JavaScript expression over `response` (the JSON body after `select`; the text of a non-JSON body) whose JSON value is what the model gets. Runs in the QuickJS sandbox (no host access; 100 ms, 32 MiB); a failure fails the call (`ERR_JS_*`). Not applied to an HTTP error answer.'),
        maxBytes: z.number().int().positive().max(1024 * 1024).default(DEFAULTS.abilityMaxResultBytes).describe('Largest result given to the model, in bytes; longer is cut and marked truncated.'),
      })
      .default({ maxBytes: DEFAULTS.abilityMaxResultBytes })
      .describe('What the model gets back.'),
    timeoutMs: positiveMs.default(DEFAULTS.upstreamTimeoutMs).describe('Longest the API may take to answer (ms).'),
  })
  .describe('An ability: one declarative HTTP action on one API, offered to agents as a tool.');

const IdentitySchema = z
  .strictObject({
    issuer: z.string().min(1).max(512).default('bastion').describe('This instance\'s name: `iss` of per-call tokens and the sender id of its agent-to-agent messages. Use a URL peers know you by.'),
    platform: z.string().min(1).max(128).default('bastion').describe('The `platform` field of the signed user context (the product the end user came through).'),
    signatureTtlS: z.number().int().min(1).max(3600).default(DEFAULTS.signatureTtlS).describe('A request signature expires this many seconds after `created`.'),
    rotationGraceMs: positiveMs.max(365 * 86400_000).default(DEFAULTS.identityRotationGraceMs).describe('After `bastion keys rotate`, the previous key stays published in the JWKS this long (ms), so requests and tokens signed before the rotation still verify.'),
  })
  .describe('Bastion\'s identity: the Ed25519 keys (in the store, sealed by the vault key) that sign requests to tools, per-call tokens and agent-to-agent messages.');

const A2aSchema = z
  .strictObject({
    maxAgeS: z.number().int().min(1).max(86400).default(DEFAULTS.a2aMaxAgeS).describe('Inbound messages whose timestamp is further than this from now (seconds) are rejected as stale; nonces are remembered this long.'),
    maxMessageBytes: z.number().int().positive().max(16 * 1024 * 1024).default(DEFAULTS.a2aMaxMessageBytes).describe('Largest message, in bytes.'),
    agents: z
      .record(
        z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
        z.strictObject({
          peers: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).default([]).describe('Peers (registered with `bastion peers add`) this agent may send to with `POST /a2a/send`.'),
          receiveFrom: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).default([]).describe('Peers whose messages are delivered to this agent.'),
          deliver: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL').optional().describe('Where inbound messages for this agent are POSTed (the agent\'s own endpoint). Without it, inbound messages are refused.'),
        }),
      )
      .default({})
      .describe('Agent-to-agent messaging per local agent.'),
    nonceStore: z.enum(['store', 'redis', 'memory']).optional().describe('Where seen nonces are kept: `store` (a table in the store, the SQLite file or the PostgreSQL database: a message accepted before a restart is still a replay after it), `redis` (shared by every instance on that Redis), `memory` (lost at restart: a message can be accepted again after one; for tests). Default: `redis` when `redis` is set, else `store`.'),
  })
  .describe('Agent-to-agent messages (JWS, Ed25519) between Bastion instances. Peers are registered by an admin with `bastion peers add`.');

const UpstreamSchema = z
  .strictObject({
    command: z.string().min(1).optional().describe('Executable of a stdio MCP server (started by Bastion, one process per session).'),
    args: z.array(z.string()).default([]).describe('Arguments of `command`. Relative paths resolve against the config folder (the process runs there).'),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([SecretRef, VaultPlaceholderRef])).default({}).describe('Environment added for `command`: secret references, or `vault:NAME` for the session agent\'s placeholder of vault secret NAME (never its value; the agent must be granted NAME). The process inherits only HOME, LOGNAME, PATH, SHELL, TERM and USER from Bastion\'s environment.'),
    url: z.string().url().optional().describe('URL of a Streamable HTTP MCP server.'),
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), SecretRef).default({}).describe('Headers sent to `url`, as secret references.'),
    workspace: z
      .string()
      .min(1)
      .optional()
      .describe('The folder this upstream resolves relative path arguments against (e.g. the directory a filesystem server serves); relative to the config file. Without it, relative path arguments to its tools are refused, since Bastion cannot know what the upstream would resolve them against.'),
    pathGuard: z
      .enum(['strict', 'named'])
      .optional()
      .describe('Which string arguments of this upstream\'s tools the path guard checks (see docs/tool-door.md, "Path arguments"). `strict`: every string, at any depth (and every key of a free-form object), is checked as a path unless `argumentKinds` or the tool\'s input schema classifies it `not-path` (fail closed). `named`: only strings classified as paths (names like `path`, `paths.argumentNames`, schema `format: path`, `x-bastion-kind: path`, `argumentKinds`) and `file:` URIs. Default: `strict` when `workspace` is set, else `named`.'),
    argumentKinds: z
      .record(
        z.string().min(1).max(256).describe('A tool name as this upstream lists it (without the prefix); `*` matches any run of characters.'),
        z.record(
          z
            .string()
            .max(1024)
            .regex(/^(\/([^/~]|~[01])*)*$/, 'must be an RFC 6901 JSON Pointer (`/edits/*/oldText`; `*` matches one segment)'),
          z.enum(['path', 'not-path']),
        ),
      )
      .default({})
      .describe('Classifies tool arguments for the path guard: tool name pattern → JSON Pointer (RFC 6901; a `*` segment matches any key or index) → `path` or `not-path`. A classification covers everything below its pointer; the deepest one wins, `path` when two at the same depth disagree. It overrides the tool\'s schema. A `file:` URI is checked as a path whatever its classification.'),
    secretHosts: z
      .array(HostPattern)
      .max(64)
      .optional()
      .describe('Hosts this upstream\'s tools send the credentials they are given to. A `<<SECRET_…>>` placeholder (a credential the end user pasted to the model) in a call\'s arguments is swapped for its value only for that user and only when the secret\'s hosts cover every one of these. Default: the host of `url`; none for a stdio upstream (placeholders are refused).'),
    signContext: z
      .boolean()
      .default(false)
      .describe('Sign every HTTP request to `url` (RFC 9421, Ed25519) over the method, target URI, `Content-Digest` (RFC 9530) and a `Bastion-Context` header naming the agent, end user, conversation, platform and request: context the model cannot forge. Verify with `bastion/verify`.'),
    token: CallTokenSchema.optional(),
    prefix: z.boolean().default(true).describe('Expose names as `<upstream>__<name>`. `false` exposes them as they are; a name two upstreams both expose is then hidden and audited.'),
    timeoutMs: positiveMs.default(DEFAULTS.upstreamTimeoutMs).describe('Longest an upstream request may take (ms); longer is a tool error.'),
    connectTimeoutMs: positiveMs.default(DEFAULTS.upstreamConnectTimeoutMs).describe('Longest connecting and initializing may take (ms).'),
    oauth: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/)
      .optional()
      .describe('An `oauth.providers` name: each end user connects their own account, and every request to this (HTTP) upstream carries that user\'s access token, never another user\'s. Calls without a connected account get a link to connect it.'),
    revision: z
      .enum(['auto', '2025-11-25', '2026-07-28'])
      .default('auto')
      .describe('MCP revision spoken to this upstream: `auto` asks `server/discover` first and falls back to the 2025-11-25 handshake; a pinned revision refuses an upstream that does not speak it.'),
  })
  .refine((u) => (u.command === undefined) !== (u.url === undefined), {
    message: 'an upstream needs exactly one of command (stdio) or url (Streamable HTTP)',
  })
  .describe('An MCP server Bastion fronts.');

/** A file glob (picomatch syntax): `**`, `*`, `?`, `{a,b}`, `[...]`. Validated when compiled. */
export const PathGlob = z.string().min(1).max(1024).describe('A path glob (`**`, `*`, `?`, `{a,b}`, `[abc]`); relative globs resolve against the config folder.');

const PathsSchema = z
  .strictObject({
    allow: z.array(PathGlob).default([]).describe('Paths tool arguments may name. No match: denied.'),
    deny: z.array(PathGlob).default([]).describe('Paths never allowed, even inside `allow`; deny wins.'),
    argumentNames: z
      .array(z.string().min(1))
      .default([])
      .describe('Extra argument property names that hold paths, beside the built-in ones (path, paths, source, destination, file, filename, directory, dir, root, cwd, and `format: uri-reference`-less string properties ending in Path).'),
  })
  .describe('File-path arguments: every argument naming a file is resolved (realpath) and checked against these globs.');

const ApprovalsSchema = z
  .strictObject({
    timeoutMs: positiveMs.default(DEFAULTS.approvalTimeoutMs).describe('How long a held call waits for a decision (ms); then it is denied.'),
    reuseTtlMs: positiveMs.default(DEFAULTS.approvalReuseTtlMs).describe('An approval the client did not wait for stays claimable this long (ms), once, by the same agent, tool and arguments.'),
    progressMs: positiveMs.default(DEFAULTS.approvalProgressMs).describe('While a call is held, a progress notification is sent this often (ms) when the client gave a progress token.'),
  })
  .describe('The human approval queue.');

/** An audit retention duration: a positive integer of at most 6 digits and `d` (days) or `h` (hours); parsed by src/audit/retention.ts `parseRetention`. */
const RetentionDuration = z.string().regex(/^[1-9][0-9]{0,5}[hd]$/, 'must be a duration like 30d or 12h');

const AuditSchema = z
  .strictObject({
    checkpointEvery: z.number().int().positive().max(1_000_000).default(DEFAULTS.auditCheckpointEvery).describe('Write a signed checkpoint after this many records (and on shutdown).'),
    recordArguments: z.enum(['none', 'redacted']).default('none').describe('`none`: records hold only the argument digest. `redacted`: also the arguments with credentials redacted.'),
    witness: z
      .strictObject({
        file: z.string().min(1).optional().describe('Append every signed checkpoint, one JSON line each, to this file (opened O_APPEND, fdatasync after each write; relative to the config file). Keep it where the store\'s writer cannot rewrite it. `bastion audit verify --witness FILE` compares it with the store.'),
        webhook: z
          .strictObject({
            url: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL'),
            timeoutMs: positiveMs.default(5_000).describe('Longest one POST may take (ms); a failure is counted, alerted and retried with the next checkpoint.'),
          })
          .optional()
          .describe('POST every signed checkpoint as JSON `{checkpoints: [...]}` to this URL.'),
      })
      .optional()
      .describe('Where checkpoints are also written, outside the store, so a cut, emptied or re-chained store is detected. Never blocks a request: a failed write is counted, alerted and retried. See docs/audit.md.'),
    retention: z
      .strictObject({
        system: RetentionDuration.optional().describe('Records of door `system` (start, stop, config, audit markers).'),
        admin: RetentionDuration.optional().describe('Records of door `admin` (admin API and CLI changes).'),
        denials: RetentionDuration.optional().describe('Refused requests (effect `deny` or outcome `denied`).'),
        approvals: RetentionDuration.optional().describe('Requests held for approval (effect `approve` or outcome `held`).'),
        errors: RetentionDuration.optional().describe('Requests that failed (outcome `error` or `timeout`).'),
        allows: RetentionDuration.optional().describe('Every other request (allowed, answered).'),
        default: RetentionDuration.optional().describe('Classes not named above; without it they are kept forever.'),
      })
      .optional()
      .describe('How long audit records are kept, per class, as `<n>d` or `<n>h`. When set, `bastion serve` prunes at start and once a day (`bastion audit prune` on demand), keeping the chain verifiable: a signed prune manifest vouches for what was removed. See docs/audit.md "Retention and pruning".'),
  })
  .describe('The hash-chained audit log.');

const OutputSchema = z
  .strictObject({
    maxResultBytes: z.number().int().positive().max(64 * 1024 * 1024).default(DEFAULTS.maxResultBytes).describe('Largest result (bytes of its JSON) returned to the agent; larger is replaced by a tool error.'),
    redactSecrets: z.boolean().default(true).describe('Redact credential-looking strings in results before the agent sees them.'),
  })
  .describe('What happens to tool results on the way back.');

const AdminSchema = z
  .strictObject({
    keys: z
      .array(
        z.union([
          SecretRef,
          z
            .strictObject({
              id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'must be 1-64 letters, digits, `_`, `.` or `-`' }).describe('The admin\'s name, recorded on every action taken with the key (`admin:<id>`).'),
              key: SecretRef,
            })
            .describe('A named admin key: `{id: alice, key: env:ALICE_ADMIN_KEY}`.'),
        ]),
      )
      .max(16)
      .default([])
      .describe('Keys for the admin HTTP API (`/api`) and the console (`/console`): a secret reference (the admin is recorded as `admin`) or `{id, key}` (recorded as `admin:<id>`). None: the admin API and console are off (the CLI works on the store directly).'),
  })
  .describe('Administrators.');

const ToolMetaSchema = z
  .strictObject({
    scope: z.enum(['external', 'internal']).default('external').describe('`internal`: hidden from agents with `scope: external`.'),
    crossUser: z.boolean().default(false).describe('The tool reads other users\' conversations or data: hidden from agents with `isolateUsers: true`.'),
    source: SourceLabel.optional(),
    effect: EffectLabels.optional(),
  })
  .describe('What a tool reaches, for per-user filtering in both doors, and its labels (`source`, `effect`): a tool without both is read strictly (untrusted results, every side effect).');


const WindowLimitSchema = z
  .strictObject({
    points: z.number().int().positive().max(1_000_000_000).describe('Requests (or tokens) allowed per window.'),
    windowS: z.number().int().positive().max(30 * 86400).describe('The window, in seconds.'),
  })
  .describe('A fixed-window limit.');

const ScopeLimitsSchema = z
  .strictObject({
    requests: WindowLimitSchema.optional(),
    tokens: WindowLimitSchema.optional().describe('Prompt plus completion tokens, as the provider reports them.'),
  })
  .describe('Limits of one scope.');

const ModelDoorSchema = z
  .strictObject({
    admins: z.array(z.string().min(1).max(256)).default([]).describe('End users (ids as sent in `Bastion-User` or `user`) exempt from bans and from the hardening note.'),
    requireUser: z.boolean().default(true).describe('Refuse model requests that name no end user (400 `ERR_USER_REQUIRED`). `false`: they count as user `anonymous`.'),
    maxBodyBytes: z.number().int().positive().max(64 * 1024 * 1024).default(DEFAULTS.modelMaxBodyBytes).describe('Largest model request body, in bytes; larger is answered 413 in the provider\'s error shape.'),
    vaultPastedSecrets: z.boolean().default(true).describe('Vault credentials found in user messages and show the model `<<SECRET_…>>` placeholders instead.'),
    rateLimits: z
      .strictObject({
        perUser: ScopeLimitsSchema.default({ requests: { points: 60, windowS: 60 }, tokens: { points: 200_000, windowS: 3600 } }),
        perAgent: ScopeLimitsSchema.default({ requests: { points: 1200, windowS: 60 } }),
      })
      .default({ perUser: { requests: { points: 60, windowS: 60 }, tokens: { points: 200_000, windowS: 3600 } }, perAgent: { requests: { points: 1200, windowS: 60 } } })
      .describe('Rate limits, answered with 429 and Retry-After. Counters live in Redis when `redis` is set, else in memory.'),
    extraction: z
      .enum(['ban', 'flag'])
      .default('ban')
      .describe('On a prompt-extraction attempt by a non-admin user: `ban` refuses the request, bans the user (escalating) and alerts; `flag` only audits and alerts.'),
    bans: z
      .strictObject({
        durationsMs: z.array(z.number().int().positive().max(365 * 86400_000)).min(1).max(16).default([...DEFAULTS.banDurationsMs]).describe('Ban length for the 1st, 2nd, ... offence (ms); the last repeats.'),
        forgetAfterMs: z.number().int().positive().max(365 * 86400_000).default(DEFAULTS.banForgetAfterMs).describe('Offences older than this (ms) no longer escalate.'),
      })
      .default({ durationsMs: [...DEFAULTS.banDurationsMs], forgetAfterMs: DEFAULTS.banForgetAfterMs })
      .describe('Temporary bans (listed and lifted with `bastion bans`).'),
    hardening: z
      .strictObject({
        enabled: z.boolean().default(true),
        text: z.string().min(1).max(8192).default(DEFAULTS.hardeningText).describe('The instruction block added to the system prompt for non-admin users.'),
      })
      .default({ enabled: true, text: DEFAULTS.hardeningText })
      .describe('Prompt hardening: one layer, not a boundary.'),
    promptLeak: z
      .strictObject({
        enabled: z.boolean().default(true),
        shingleWords: z.number().int().min(3).max(64).default(8).describe('Words per shingle: a run of this many consecutive words of the system prompt counts as one match.'),
        minShingles: z.number().int().min(1).max(10_000).default(3).describe('An answer leaks the system prompt when it holds this many of its shingles (or all of them, for a shorter prompt). Default: 10 consecutive words.'),
      })
      .default({ enabled: true, shingleWords: 8, minShingles: 3 })
      .describe('Answers (streamed too) are compared with the request\'s system and developer texts by word shingles; a leak by a non-admin user is handled like an extraction attempt (`extraction`: `ban` cuts the answer, bans and alerts; `flag` alerts).'),
  })
  .describe('The model door: the OpenAI/Anthropic-compatible proxy.');

/** The event kinds a notification channel may subscribe to (src/notify/events.ts). */
const NotificationEvents = z
  .array(z.enum(['approval.pending', 'alert', 'incident']))
  .min(1)
  .optional()
  .describe('The event kinds this channel gets: `approval.pending` (a call held for approval), `alert` (admin alerts), `incident` (isolate, restore, rotate). Default: all.');

const AlertsSchema = z
  .strictObject({
    minSeverity: z.enum(['info', 'warning', 'critical']).default('warning').describe('Alerts below this severity are only audited (approval and incident notifications are always sent).'),
    publicUrl: z
      .string()
      .url()
      .regex(/^https?:\/\/[^?#]*$/, 'must be an http(s) URL without query or fragment')
      .optional()
      .describe('Bastion\'s base URL as admins reach it (e.g. `https://bastion.example.com`): notification links are `<publicUrl>/console/#/...`. Unset: links are paths (`/console/#/...`).'),
    webhook: z
      .strictObject({
        url: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL'),
        headers: z
          .record(
            z
              .string()
              .regex(/^[A-Za-z0-9-]+$/)
              .refine((h) => !['host', 'content-type', 'content-length', 'transfer-encoding', 'connection', 'bastion-signature'].includes(h.toLowerCase()), 'Bastion sets this header itself'),
            SecretRef,
          )
          .default({})
          .describe('Headers sent with each alert (e.g. Authorization), as secret references.'),
        events: NotificationEvents,
      })
      .optional()
      .describe('POST each notification as JSON to this URL, signed with the identity key (`Bastion-Signature`, docs/notifications.md).'),
    slack: z
      .strictObject({
        url: SecretRef.describe('The Slack-compatible incoming-webhook URL, as a secret reference (its path is a token): `env:NAME` or `file:PATH`.'),
        events: NotificationEvents,
      })
      .optional()
      .describe('POST each notification as a Slack-compatible incoming-webhook message (`{text, blocks}`).'),
    email: z
      .strictObject({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535).default(587),
        secure: z.boolean().optional().describe('TLS from the first byte. Default: true on port 465, else false (then STARTTLS is required whenever a password is sent).'),
        user: z.string().min(1).optional(),
        password: SecretRef.optional(),
        from: z.string().min(3),
        to: z.array(z.string().min(3)).min(1),
        events: NotificationEvents,
      })
      .refine((e) => (e.user === undefined) === (e.password === undefined), { message: 'user and password go together: set both or neither' })
      .optional()
      .describe('Mail each notification over SMTP.'),
  })
  .describe('Where admin notifications go: pending approvals, alerts (bans, supervisor flags, exfiltration attempts) and incidents (docs/notifications.md). Deliveries are retried and audited.');

/** Metrics, logs and traces of `bastion serve` (docs/observability.md). */
const ObservabilitySchema = z
  .strictObject({
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Serve Prometheus metrics at `/metrics`.'),
        access: z
          .enum(['auto', 'admin-key'])
          .default('auto')
          .describe('Who may read `/metrics` on the main listener: `auto`: anyone when the listener is bound to a loopback address, else an admin key (`Authorization: Bearer`); `admin-key`: always an admin key.'),
        listen: ListenAddress.optional().describe('A separate listener serving only `/metrics`, without a key (bind it to a private address). When set, the main listener does not serve `/metrics`.'),
      })
      .default({ enabled: true, access: 'auto' })
      .describe('Prometheus metrics.'),
    logs: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Least severe level written (env `BASTION_LOG_LEVEL` wins).'),
        format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('`auto`: human-readable on a terminal, JSON lines otherwise.'),
        access: z.boolean().default(true).describe('One access line per request (door, method, agent, outcome, decision, duration).'),
      })
      .default({ level: 'info', format: 'auto', access: true })
      .describe('Structured logs, written to stderr.'),
    otlp: z
      .strictObject({
        endpoint: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL').describe('OTLP/HTTP base URL (traces go to `/v1/traces`, logs to `/v1/logs`); env `OTEL_EXPORTER_OTLP_ENDPOINT` is used when unset.'),
        headers: z
          .record(z.string().regex(/^[A-Za-z0-9-]+$/), SecretRef)
          .default({})
          .describe('Headers sent with each export (e.g. Authorization), as secret references.'),
        serviceName: z.string().min(1).max(128).default('bastion').describe('`service.name` of the resource.'),
      })
      .optional()
      .describe('Export a span per request (a child per stage) and the log records over OTLP/HTTP JSON.'),
  })
  .describe('Metrics, logs and traces (docs/observability.md).');

/** End-user identity: how an end user is proven, and what needs the proof. */
const UsersSchema = z
  .strictObject({
    token: z
      .strictObject({
        header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).default('Bastion-User-Token').describe('Request header carrying the end user\'s token (a compact JWS).'),
        issuer: z.string().url().describe('Expected `iss` (RFC 7519 §4.1.1); tokens from any other issuer are refused.'),
        audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(16)]).describe('Expected `aud` (RFC 7519 §4.1.3): one value or a list, one of which must match.'),
        jwksUrl: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL').optional().describe('Where the issuer publishes its JWKS (RFC 7517); fetched and cached by jose, refetched on an unknown `kid`. Plain http only for loopback issuers in tests: use https.'),
        jwksFile: z.string().min(1).optional().describe('A JWKS file instead of `jwksUrl` (relative to the config file).'),
        algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1).default(['RS256', 'ES256', 'EdDSA']).describe('Accepted `alg` values; `none` and HMAC are never accepted.'),
        claim: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default('sub').describe('The claim that holds the end user\'s id.'),
        clockToleranceS: z.number().int().min(0).max(300).default(30).describe('Allowed clock skew for `exp`/`nbf`/`iat`, in seconds.'),
        maxAgeS: z.number().int().positive().max(30 * 86400).optional().describe('Refuse tokens whose `iat` is older than this, in seconds.'),
      })
      .refine((t) => (t.jwksUrl === undefined) !== (t.jwksFile === undefined), { message: 'give exactly one of jwksUrl and jwksFile' })
      .optional()
      .describe('Verify end users by a signed token (JWT, RFC 7519) checked against an issuer, audience and JWKS, with jose.'),
    require: z
      .enum(['privileged', 'always'])
      .default('privileged')
      .describe('With `token`: `privileged` accepts asserted user ids (`Bastion-User`, the request\'s `user` field) for attribution but grants privilege (admin, exemption from bans, use of pasted secrets, approvals) only to a verified user; `always` refuses every request that names a user without a valid token.'),
  })
  .describe('End-user identity: asserted by the agent (`Bastion-User`, `user`) or proven by a signed token.');

const HttpUrl = z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL');
const ScopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/, 'a scope token (RFC 6749 §3.3)');

/** The tool door as an OAuth 2.1 resource server (MCP authorization). */
const OAuthResourceServerSchema = z
  .strictObject({
    resource: HttpUrl.describe('This `/mcp` endpoint\'s URL as clients reach it: the resource indicator (RFC 8707) tokens must name in `aud`, and the `resource` of the metadata Bastion serves at `/.well-known/oauth-protected-resource/…` (RFC 9728).'),
    resourceName: z.string().min(1).max(128).optional().describe('Human-readable name in the resource metadata.'),
    scopesSupported: z.array(ScopeToken).max(64).optional().describe('`scopes_supported` of the resource metadata.'),
    requiredScopes: z.array(ScopeToken).max(64).default([]).describe('Scopes every token must carry; a token without them is refused 403 `insufficient_scope`.'),
    agentClaim: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default('client_id').describe('The token claim that names the agent (RFC 9068 `client_id`, or `azp`).'),
    agents: z.record(z.string().min(1).max(256), z.string().regex(/^[A-Za-z0-9_-]{1,64}$/)).describe('Agent by value of `agentClaim`: the OAuth client id of each MCP client, and the agent it acts as. A token whose client is not listed is refused.'),
    userClaim: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default('sub').describe('The token claim that names the end user (a verified user: the authorization server proved it).'),
    issuers: z
      .array(
        z.strictObject({
          issuer: HttpUrl.describe('Issuer identifier (RFC 8414 §2), compared exactly with `iss`.'),
          jwksUri: HttpUrl.optional().describe('Its JWKS. Default: from its RFC 8414 / OpenID metadata.'),
          audience: z.string().min(1).optional().describe('Expected `aud`. Default: `resource`.'),
          introspection: z
            .strictObject({ endpoint: HttpUrl, clientId: z.string().min(1), clientSecret: SecretRef })
            .optional()
            .describe('Ask the issuer about each token (RFC 7662) instead of verifying a JWT locally: for opaque tokens, or to see revocations at once.'),
        }),
      )
      .min(1)
      .max(8)
      .describe('Authorization servers whose tokens are accepted. Plain http only on loopback (tests).'),
  })
  .describe('Accept OAuth 2.1 bearer access tokens at `/mcp` besides agent keys (MCP authorization): tokens are verified for issuer, audience, expiry and signature, mapped to an agent and end user, and never passed to upstreams.');

/** Bastion as the OAuth client of each end user ("personal secrets"). */
const OAuthProviderSchema = z
  .strictObject({
    issuer: HttpUrl.describe('The authorization server (RFC 8414 issuer); its metadata is discovered.'),
    clientId: z.string().min(1).max(2048).describe('Bastion\'s client id there: pre-registered, or the https URL of a client ID metadata document.'),
    clientSecret: SecretRef.optional().describe('Client secret (a secret reference), for a confidential pre-registered client.'),
    clientAuth: z.enum(['none', 'client_secret_basic', 'client_secret_post']).optional().describe('Token endpoint authentication. Default: `client_secret_basic` with a secret, else `none`.'),
    scopes: z.array(ScopeToken).max(64).default([]).describe('Scopes requested.'),
    resource: HttpUrl.optional().describe('RFC 8707 resource indicator requested (e.g. the upstream MCP server\'s URL).'),
    hosts: z.array(HostPattern).max(64).default([]).describe('Hosts the end user\'s token may be sent to through the network door (`<<OAUTH_name>>`, agents with `oauth`). Empty: never there (upstreams and abilities use their own host).'),
  })
  .describe('An OAuth provider Bastion signs end users in to, keeping each user\'s tokens sealed in the vault.');

const OAuthSchema = z
  .strictObject({
    resourceServer: OAuthResourceServerSchema.optional(),
    callbackBase: HttpUrl.optional().describe('Bastion\'s own base URL as the user\'s browser reaches it; the redirect URI registered at providers is `<callbackBase>/oauth/callback`. Required with `providers`.'),
    providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'provider names are 1-64 of a-z 0-9 _ . - starting with a letter or digit'), OAuthProviderSchema).default({}),
  })
  .refine((o) => Object.keys(o.providers).length === 0 || o.callbackBase !== undefined, { message: 'callbackBase is required when providers are configured', path: ['callbackBase'] })
  .describe('OAuth: MCP clients with bearer tokens (`resourceServer`), and per-user sign-in to providers for upstreams (`providers`).');

/** The whole of `bastion.yaml`. */
export const ConfigSchema = z
  .strictObject({
    version: z.literal(1).describe('Config format version. Only 1 exists.'),
    server: ServerSchema.default(ServerSchema.parse({})),
    store: StoreSchema.default({ sqlite: './.bastion/bastion.db' }),
    agents: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'agent names are 1-64 of A-Z a-z 0-9 _ -'), AgentSchema).default({}).describe('Agents by name.'),
    upstreams: z
      .record(z.string().regex(/^[A-Za-z0-9-]{1,32}$/, 'upstream names are 1-32 of A-Z a-z 0-9 - (no _, so the __ separator stays unambiguous)'), UpstreamSchema)
      .default({})
      .describe('MCP servers by name; the name prefixes their tools, resources and prompts.'),
    paths: PathsSchema.default(PathsSchema.parse({})),
    approvals: ApprovalsSchema.default(ApprovalsSchema.parse({})),
    audit: AuditSchema.default(AuditSchema.parse({})),
    output: OutputSchema.default(OutputSchema.parse({})),
    admin: AdminSchema.default(AdminSchema.parse({})),
    secrets: z
      .record(z.string().regex(SECRET_NAME, 'secret names are 1-64 of A-Z a-z 0-9 _ -'), SecretMetaSchema)
      .default({})
      .describe('Vault secrets agents may use, by name (values are added with `bastion secret add`).'),
    vault: VaultSchema.default(VaultSchema.parse({})),
    egress: EgressSchema.default(EgressSchema.parse({})),
    tools: z.record(NamePattern, ToolMetaSchema).default({}).describe('Tool metadata by exposed-name pattern (`crm__search_all`, `admin__*`): scope and cross-user reach. The first matching pattern wins; unlisted tools are external and not cross-user.'),
    modelDoor: ModelDoorSchema.default(ModelDoorSchema.parse({})),
    redis: z
      .strictObject({
        url: z
          .string()
          .regex(/^(rediss?:\/\/\S+|env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a redis:// or rediss:// URL, or a secret reference env:NAME or file:PATH holding one')
          .describe('Redis URL, or a secret reference (`env:NAME`, `file:PATH`) holding one; use a reference when the URL carries a password.'),
        keyPrefix: z.string().max(64).default('bastion:'),
      })
      .optional()
      .describe('What several instances share (docs/cluster.md): rate-limit counters, replay nonces, the cluster bus (approval wake-ups, pin and config changes) and the instance registry. Without it they live in this process.'),
    alerts: AlertsSchema.default(AlertsSchema.parse({})),
    anomalies: AnomaliesSchema,
    sandbox: SandboxSchema,
    observability: ObservabilitySchema.default(ObservabilitySchema.parse({})),
    users: UsersSchema.default(UsersSchema.parse({})),
    policies: z.array(z.string().min(1)).default([]).describe('Hand-written Cedar policy files (globs allowed), validated against the published Cedar schema.'),
    abilities: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'ability names are 1-64 of A-Z a-z 0-9 _ . - (e.g. github__issues_list)'), AbilitySchema)
      .default({})
      .describe('Abilities (declarative HTTP tools) by exposed tool name. They appear in agents\' catalogues beside MCP tools, under the same policy, approvals and audit.'),
    skillsets: z
      .record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).min(1))
      .default({})
      .describe('Named groups of abilities (`support: [kb__search, tickets__create]`) that agents take with `skillsets`.'),
    identity: IdentitySchema.default(IdentitySchema.parse({})),
    a2a: A2aSchema.optional(),
    oauth: OAuthSchema.default(OAuthSchema.parse({})),
    pinning: z
      .strictObject({
        mode: z
          .enum(['first-use', 'manual', 'off'])
          .default('first-use')
          .describe('`first-use`: a tool definition is pinned (by content hash) the first time an agent\'s catalogue lists it; `manual`: only `bastion tools approve` pins, unpinned tools are withheld; `off`: no pinning. A pinned tool whose definition changed is withheld until re-approved (`bastion tools diff|approve`).'),
        scanDescriptions: z.boolean().default(true).describe('Scan tool descriptions for hidden instructions (the injection detector, hidden characters) before first pinning; a flagged tool is withheld until approved.'),
      })
      .default({ mode: 'first-use', scanDescriptions: true })
      .describe('Pinned tool definitions (rug-pull protection).'),
    provenance: z
      .strictObject({
        maxValues: z.number().int().positive().max(10_000_000).default(50_000).describe('Most value hashes kept per conversation; the oldest are evicted beyond (the conversation stays tainted).'),
        maxTotalValues: z.number().int().positive().max(100_000_000).default(1_000_000).describe('Most value hashes kept over all conversations (about 100 bytes each); the least recently active conversation gives up its oldest first.'),
        ttlMs: positiveMs.default(24 * 3600_000).describe('How long a conversation\'s taint and values are kept after its last activity.'),
        maxConversations: z.number().int().positive().max(10_000_000).default(10_000).describe('Most conversations tracked at once; the least recently active is dropped beyond.'),
      })
      .default({ maxValues: 50_000, maxTotalValues: 1_000_000, ttlMs: 24 * 3600_000, maxConversations: 10_000 })
      .describe('Per-conversation taint and provenance tracking (in memory, values as keyed hashes).'),
  })
  .describe('bastion.yaml');

/** The raw config after schema validation (secret references unresolved, paths relative). */
export type RawConfig = z.infer<typeof ConfigSchema>;
export type RawAgent = z.infer<typeof AgentSchema>;
export type RawUpstream = z.infer<typeof UpstreamSchema>;
export type RawNetworkRule = z.infer<typeof NetworkRuleSchema>;
export type RawModelDoor = z.infer<typeof ModelDoorSchema>;
export type RawAlerts = z.infer<typeof AlertsSchema>;
export type RawAbility = z.infer<typeof AbilitySchema>;
export type RawCallToken = z.infer<typeof CallTokenSchema>;
export type RawA2a = z.infer<typeof A2aSchema>;
