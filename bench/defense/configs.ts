/**
 * The three Bastion configurations the attack suite compares, as functions from the run's
 * context to a bastion.yaml object (written as YAML by the runner), so they can be tuned here:
 *
 * - `open`: every tool allowed, nothing else (the undefended baseline through Bastion).
 * - `static`: the best least-privilege config without provenance: every tool with a side effect
 *   (any effect but `read`) held for approval, reads open.
 * - `taint`: the tools' labels plus the provenance short forms (src/config/schema.ts GuardSchema):
 *   `trustedValues`, `approveWhen`, `denyWhen`.
 *
 * All three share the same base: the environments as upstreams, one agent `bench` with
 * `tools: ["*"]` and a keyless model upstream (the fake provider), the tools' labels under
 * global `tools`, an admin key for the scripted human, approvals, first-use pinning.
 */
import type { Environment } from './types.ts';

/** The names of the configurations, in report order. */
export const CONFIG_NAMES = ['open', 'static', 'taint'] as const;
/** One of {@link CONFIG_NAMES}. */
export type ConfigName = (typeof CONFIG_NAMES)[number];

/** What a configuration is built from. */
export interface ConfigContext {
  readonly envs: readonly Environment[];
  /** Each environment's MCP endpoint, by environment name. */
  readonly upstreamUrls: Readonly<Record<string, string>>;
  /** The fake provider's base URL without `/v1`. */
  readonly providerUrl: string;
  /** Absolute path of the SQLite store. */
  readonly storePath: string;
  /** How long a held call waits for the scripted human, in ms. */
  readonly approvalTimeoutMs: number;
  /** Environment variable names holding the agent key and the admin key (`env:` secret references). */
  readonly agentKeyEnv: string;
  readonly adminKeyEnv: string;
}

/** A bastion.yaml as a plain object. */
export type BastionConfig = Record<string, unknown>;
type Agent = Record<string, unknown>;

const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/;

/**
 * The hosts the environments' `trustedValues` name (`*@company.example` → `company.example` and
 * `*.company.example`; `https://www.company.example/*` → `www.company.example`; a host pattern as
 * it is), sorted and de-duplicated: the `hostNotIn` list of the `taint` variant's egress rule.
 */
export function trustedHosts(envs: readonly Environment[]): string[] {
  const out = new Set<string>();
  for (const v of envs.flatMap((e) => e.trustedValues)) {
    let s = v.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
    if (s.includes('@')) s = s.slice(s.lastIndexOf('@') + 1);
    s = s.split(/[/:?#]/)[0] ?? '';
    if (s.startsWith('*.') && HOST.test(s)) out.add(s);
    else if (HOST.test(s)) {
      out.add(s);
      if (v.includes('@')) out.add(`*.${s}`);
    }
  }
  return [...out].sort();
}

/** The exposed name of an environment's tool. */
export const exposedName = (env: Environment, tool: string): string => `${env.name}__${tool}`;

/** The agent every configuration starts from: all tools, the fake model. */
function baseAgent(ctx: ConfigContext): Agent {
  return {
    keys: [`env:${ctx.agentKeyEnv}`],
    tools: ['*'],
    model: { provider: 'openai', baseUrl: `${ctx.providerUrl}/v1`, timeoutMs: 10_000 },
  };
}

/** Everything but the agent: upstreams, labels, approvals, pinning, admin key, store. */
function base(ctx: ConfigContext, agent: Agent): BastionConfig {
  const big = 1_000_000_000;
  return {
    version: 1,
    server: { listen: '127.0.0.1:0', egress: false },
    store: { sqlite: ctx.storePath },
    admin: { keys: [`env:${ctx.adminKeyEnv}`] },
    agents: { bench: agent },
    upstreams: Object.fromEntries(
      ctx.envs.map((e) => {
        const url = ctx.upstreamUrls[e.name];
        if (url === undefined) throw new Error(`no upstream URL for environment ${e.name}`);
        // The environments' files and folders are simulated, not on this disk: no argument is a path.
        return [e.name, { url, revision: '2025-11-25', argumentKinds: { '*': { '': 'not-path' } } }];
      }),
    ),
    tools: Object.fromEntries(ctx.envs.flatMap((e) => e.tools.map((t) => [exposedName(e, t.name), { source: t.labels.source, effect: [...t.labels.effect] }]))),
    approvals: { timeoutMs: ctx.approvalTimeoutMs },
    pinning: { mode: 'first-use' },
    // Far above the bench's load (one end user per run; the agent makes every run's request).
    modelDoor: { rateLimits: { perUser: { requests: { points: big, windowS: 60 } }, perAgent: { requests: { points: big, windowS: 60 } } } },
  };
}

/** `open`: everything allowed, nothing else. */
export function openConfig(ctx: ConfigContext): BastionConfig {
  return base(ctx, baseAgent(ctx));
}

/** `static`: every tool with an effect other than `read` held for approval; reads open. */
export function staticConfig(ctx: ConfigContext): BastionConfig {
  const approve = ctx.envs.flatMap((e) => e.tools.filter((t) => t.labels.effect.some((x) => x !== 'read')).map((t) => exposedName(e, t.name)));
  return base(ctx, { ...baseAgent(ctx), approve });
}

/**
 * `taint`: labels plus the provenance short forms. A side effect whose arguments came from
 * third-party content is held for a human; in a conversation a detector flagged, a send, payment or
 * share with arguments the model made up is held too; egress in a tainted conversation to a host the
 * organization does not know, with a URL the model made up (where data could be smuggled), is refused.
 * Following a link as a third party wrote it only reads more untrusted content (tainting further).
 */
export function taintConfig(ctx: ConfigContext): BastionConfig {
  const trustedValues = [...new Set(ctx.envs.flatMap((e) => e.trustedValues))];
  return base(ctx, {
    ...baseAgent(ctx),
    trustedValues,
    approveWhen: [
      { effect: ['send', 'pay', 'share', 'delete', 'write'], argsFrom: ['untrusted'] },
      { effect: ['send', 'pay', 'share'], argsFrom: ['model'], flagged: true },
    ],
    denyWhen: [{ effect: 'egress', hostNotIn: trustedHosts(ctx.envs), tainted: true, argsFrom: ['model'] }],
  });
}

/** The configurations by name. */
export const CONFIGS: Readonly<Record<ConfigName, (ctx: ConfigContext) => BastionConfig>> = {
  open: openConfig,
  static: staticConfig,
  taint: taintConfig,
};
