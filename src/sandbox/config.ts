/**
 * Config of the sandbox (`sandbox:` and `agents.<name>.sandbox:` in bastion.yaml,
 * docs/sandbox.md): the zod schemas, and the resolved form the sandbox service
 * (./service.ts) and the policy engine (src/policy/engine.ts, `sandbox/exec`) use.
 *
 * The top-level section turns the sandbox on and sets its defaults; an agent's
 * section says which commands it may run (short forms compiled to Cedar), which
 * interpreters `sandbox__run_code` may start for it, which of its vault
 * placeholders are in the sandbox's environment, and its own limits.
 */
import { z } from 'zod';
import { DEFAULT_SANDBOX_LIMITS, type SandboxLimits } from './runner.ts';

/** Names a command short form may hold: a program name or absolute path, then words (`git push --force`). */
const COMMAND_PATTERN = /^[A-Za-z0-9_.+/-]+( [A-Za-z0-9_.+=:@/-]+){0,7}$/;

/** The languages `sandbox__run_code` runs, and the program each starts. */
export const SANDBOX_LANGUAGES = ['python', 'node', 'sh'] as const;
export type SandboxLanguage = (typeof SANDBOX_LANGUAGES)[number];

const CommandShortForm = z
  .string()
  .min(1)
  .max(256)
  .regex(COMMAND_PATTERN, 'must be a program name or absolute path, optionally followed by words (`git`, `git push`, `/usr/bin/make test`)')
  .describe('A program (`git`: looked up in the sandbox\'s PATH; `/usr/bin/git`: that file) optionally followed by words every one of which must be among its arguments (`git push --force`).');

const LimitsSchema = z
  .strictObject({
    wallMs: z.number().int().positive().max(3_600_000).optional().describe('Wall-clock time of one run, ms; the whole process tree is killed past it.'),
    cpuMs: z.number().int().positive().max(3_600_000).optional().describe('CPU time of each process, ms (RLIMIT_CPU, rounded up to whole seconds).'),
    memoryBytes: z.number().int().min(16 * 1024 * 1024).max(64 * 1024 ** 3).optional().describe('Memory of the whole run, bytes (cgroup memory limit; RLIMIT_AS per process where no cgroup can be made).'),
    processes: z.number().int().min(4).max(4096).optional().describe('Processes and threads of the whole run (cgroup pids.max; RLIMIT_NPROC where no cgroup can be made).'),
    openFiles: z.number().int().min(16).max(65_536).optional().describe('Open files per process (RLIMIT_NOFILE).'),
    outputBytes: z.number().int().min(1024).max(64 * 1024 * 1024).optional().describe('stdout and stderr together, bytes; the run is killed past it and what came before is returned.'),
    fileBytes: z.number().int().min(1024).max(64 * 1024 ** 3).optional().describe('Largest file a process may write, bytes (RLIMIT_FSIZE).'),
  })
  .describe('Limits of one run; each unset one takes the default (docs/sandbox.md).');

const CommandsSchema = z
  .strictObject({
    allow: z.array(CommandShortForm).max(256).default([]).describe('Programs the agent may run (a `permit` on `sandbox/exec`). Nothing else runs.'),
    deny: z.array(CommandShortForm).max(256).default([]).describe('Programs (or programs with these words among their arguments) never run; deny overrides every allow. A command whose arguments are not all known before it runs (`git $(cat x)`) matches every deny and approve form of its program.'),
    approve: z.array(CommandShortForm).max(256).default([]).describe('Programs (or programs with these words) held for an admin\'s approval before the call runs (`git push`).'),
  })
  .describe('Which commands the agent may run in the sandbox, as short forms compiled to Cedar (`sandbox/exec`); hand-written policy files may add to them.');

/** `agents.<name>.sandbox`. */
export const AgentSandboxSchema = z
  .strictObject({
    commands: CommandsSchema.default({ allow: [], deny: [], approve: [] }),
    languages: z.array(z.enum(SANDBOX_LANGUAGES)).max(3).default([...SANDBOX_LANGUAGES]).describe('Languages `sandbox__run_code` runs for this agent. `python` and `node` start `python3` and `node`, which `commands` must allow too; an `sh` script\'s commands are each decided like a shell line\'s.'),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().regex(/^vault:[A-Za-z0-9_-]{1,64}$/, { message: 'must be vault:NAME (a secret under secrets)' }))
      .default({})
      .describe('Environment variables set in the sandbox to the agent\'s placeholder of a vault secret (`GITHUB_TOKEN: vault:github`): code sends the placeholder, the network door swaps it for the value on the secret\'s hosts only. The agent must be granted the secret.'),
    limits: LimitsSchema.optional(),
  })
  .describe('What this agent may do in the sandbox (docs/sandbox.md).');

/** The top-level `sandbox` section. */
export const SandboxSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Offer `sandbox__run` and `sandbox__run_code` in the tool door. `bastion serve` refuses to start when bubblewrap cannot run here, and says why.'),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/).default('nobody').describe('The unprivileged host user runs execute as when Bastion runs as root (never root inside).'),
    workspaces: z.string().min(1).optional().describe('Folder holding the per-session workspaces (relative: to the config file). The sandbox user must be able to reach it (every folder above it searchable by that user); `serve` checks. Default: `bastion-workspaces-<hash of the config path>` in the system\'s temporary folder.'),
    keepWorkspaces: z.boolean().default(false).describe('Keep a session\'s workspace when the session ends (for forensics); otherwise it is deleted. An isolated agent\'s workspaces are always kept.'),
    workspaceIdleMs: z.number().int().positive().max(7 * 24 * 3600_000).default(3600_000).describe('A workspace unused this long is deleted (sessions that never close: stateless clients).'),
    maxConcurrent: z.number().int().min(1).max(256).default(4).describe('Runs at once over all agents; a call past it is refused (`ERR_SANDBOX_BUSY`).'),
    network: z.boolean().default(true).describe('Give runs a way out through the network door (a Unix socket and a forwarder inside, `HTTPS_PROXY` set), where the agent\'s `network` rules apply. `false`: no network at all.'),
    limits: LimitsSchema.optional(),
  })
  .default({ enabled: false, user: 'nobody', keepWorkspaces: false, workspaceIdleMs: 3600_000, maxConcurrent: 4, network: true })
  .describe('Sandboxed code execution (bubblewrap; docs/sandbox.md).');

export type RawSandbox = z.infer<typeof SandboxSchema>;
export type RawAgentSandbox = z.infer<typeof AgentSandboxSchema>;

/** Limits of one run (all set: defaults filled in); the runner's {@link SandboxLimits}. */
export type ResolvedSandboxLimits = Readonly<SandboxLimits>;

/** The defaults every unset limit takes (the runner's). */
export const DEFAULT_LIMITS: ResolvedSandboxLimits = DEFAULT_SANDBOX_LIMITS;

/** `sandbox` resolved: limits filled in, the workspace folder absolute. */
export interface ResolvedSandbox {
  readonly enabled: boolean;
  readonly user: string;
  /** Absolute folder of the per-session workspaces. */
  readonly workspaces: string;
  readonly keepWorkspaces: boolean;
  readonly workspaceIdleMs: number;
  readonly maxConcurrent: number;
  readonly network: boolean;
  readonly limits: ResolvedSandboxLimits;
}

/** An agent's `sandbox` resolved. */
export interface ResolvedAgentSandbox {
  readonly commands: { readonly allow: readonly string[]; readonly deny: readonly string[]; readonly approve: readonly string[] };
  readonly languages: readonly SandboxLanguage[];
  /** Variable → vault secret name. */
  readonly env: Readonly<Record<string, string>>;
  /** The agent's limits over the section's. */
  readonly limits: ResolvedSandboxLimits;
}

function limitsOver(base: ResolvedSandboxLimits, raw: RawSandbox['limits']): ResolvedSandboxLimits {
  return Object.freeze({ ...base, ...Object.fromEntries(Object.entries(raw ?? {}).filter(([, v]) => v !== undefined)) });
}

/** Resolves the top-level section; `workspaces` is the absolute folder chosen by the loader. */
export function resolveSandbox(raw: RawSandbox, workspaces: string): ResolvedSandbox {
  return Object.freeze({
    enabled: raw.enabled,
    user: raw.user,
    workspaces,
    keepWorkspaces: raw.keepWorkspaces,
    workspaceIdleMs: raw.workspaceIdleMs,
    maxConcurrent: raw.maxConcurrent,
    network: raw.network,
    limits: limitsOver(DEFAULT_LIMITS, raw.limits),
  });
}

/** Resolves an agent's section over the top-level one (an absent section: nothing allowed, the section's limits). */
export function resolveAgentSandbox(raw: RawAgentSandbox | undefined, section: ResolvedSandbox): ResolvedAgentSandbox {
  return Object.freeze({
    commands: Object.freeze({ allow: raw?.commands.allow ?? [], deny: raw?.commands.deny ?? [], approve: raw?.commands.approve ?? [] }),
    languages: raw?.languages ?? [...SANDBOX_LANGUAGES],
    env: Object.freeze(Object.fromEntries(Object.entries(raw?.env ?? {}).map(([k, ref]) => [k, ref.slice('vault:'.length)]))),
    limits: limitsOver(section.limits, raw?.limits),
  });
}

/** The program `sandbox__run_code` starts for each language, looked up in the sandbox's PATH. */
export const LANGUAGE_PROGRAM: Readonly<Record<SandboxLanguage, string>> = Object.freeze({ python: 'python3', node: 'node', sh: 'bash' });
