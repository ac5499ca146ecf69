/**
 * The sandbox service: what the tool door calls for `sandbox__run` and
 * `sandbox__run_code` (src/sandbox/stages.ts). It owns the per-session
 * workspaces, the run slots, and everything a run is given: its argv, the
 * agent's placeholders in the environment (`agents.X.sandbox.env`), a Unix
 * socket into the network door bound to the agent and session (no key in the
 * sandbox), the local CA, and the limits. The isolation itself is
 * ./runner.ts (bubblewrap); the command policy is ./policy.ts.
 *
 * Workspaces: one folder per (agent, session) under `sandbox.workspaces`,
 * created on first use (owned by the sandbox user), persisting between the
 * session's calls, deleted when the session ends or after
 * `sandbox.workspaceIdleMs` without a run — unless `sandbox.keepWorkspaces`
 * or the agent is isolated (kept for forensics). A call without a session or
 * conversation gets a workspace of its own, deleted after the run.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedAgent, ResolvedPaths } from '../config/types.ts';
import { deny, type Decision } from '../decision.ts';
import type { PolicyDecision, PolicyRequest } from '../policy/engine.ts';
import { PathGuard } from '../policy/paths.ts';
import { LANGUAGE_PROGRAM, type ResolvedSandbox, type ResolvedSandboxLimits } from './config.ts';
import { decideRun, type RunSpec, type RunVerdict } from './policy.ts';
import { createWorkspace, removeWorkspace, runSandboxed, type SandboxProbe, type SandboxResult } from './runner.ts';
import { parseShellLine } from './shell.ts';

/** A Unix socket into the network door whose connections are one principal (src/egress/proxy.ts). */
export type AttachPrincipalSocket = (path: string, principal: { agent: string; session: string; user?: string | null; owner?: { uid: number; gid: number } }) => Promise<{ readonly path: string; close(): Promise<void> }>;

/** What the service is built from. */
export interface SandboxServiceDeps {
  readonly config: ResolvedSandbox;
  readonly paths: Pick<ResolvedPaths, 'deny' | 'argumentNames' | 'base'>;
  /** The policy engine's `authorize` (read per call: a reload swaps the engine). */
  authorize(req: PolicyRequest): PolicyDecision;
  /** The probe's answer (./runner.ts `probeSandbox`). */
  readonly probe: SandboxProbe;
  /** The agent's placeholder of a vault secret; absent: a run whose agent maps one fails closed. */
  readonly placeholder?: (agent: string, secret: string) => Promise<string>;
  /** The network door's principal sockets; absent (or `sandbox.network: false`): runs have no network. */
  readonly attachSocket?: AttachPrincipalSocket;
  /** The local CA's certificate (PEM), trusted inside for intercepted TLS. */
  readonly caPem?: string;
  /** Whether an agent is isolated (its workspaces are then kept). */
  readonly isIsolated?: (agent: string) => boolean;
}

/** One call's request. `session`: the MCP session id, else the conversation, else null (a workspace of its own). */
export interface SandboxCall {
  readonly agent: Pick<ResolvedAgent, 'name' | 'sandbox'>;
  readonly user: string | null;
  readonly session: string | null;
  readonly spec: RunSpec;
  readonly stdin?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What a run came to: refused before it started, or ran (whatever its exit). */
export type SandboxOutcome =
  | { readonly kind: 'refused'; readonly decision: Decision; readonly text: string }
  | { readonly kind: 'failed'; readonly code: 'ERR_SANDBOX_START' | 'ERR_INTERNAL'; readonly text: string }
  | { readonly kind: 'ran'; readonly result: SandboxResult; readonly workspace: string; readonly network: boolean; readonly limits: ResolvedSandboxLimits };

interface Workspace {
  readonly path: string;
  readonly agent: string;
  lastUsed: number;
  busy: number;
}

/** The sandbox service (see the module docs). */
export class SandboxService {
  readonly #deps: SandboxServiceDeps;
  readonly #guard: PathGuard;
  readonly #workspaces = new Map<string, Workspace>();
  readonly #creating = new Map<string, Promise<Workspace>>();
  #running = 0;
  /** The runs in progress by agent, to stop an isolated agent's at once. */
  readonly #runs = new Map<string, Set<AbortController>>();
  #sweeper: NodeJS.Timeout | undefined;
  #runtime: Promise<{ dir: string; caFile: string | undefined }> | undefined;
  #closed = false;

  constructor(deps: SandboxServiceDeps) {
    this.#deps = deps;
    this.#guard = PathGuard.compile({ allow: [`${deps.config.workspaces}/**`], deny: deps.paths.deny, argumentNames: deps.paths.argumentNames, base: deps.paths.base });
    const every = Math.min(60_000, Math.max(1000, Math.floor(deps.config.workspaceIdleMs / 4)));
    this.#sweeper = setInterval(() => void this.#sweep(), every);
    this.#sweeper.unref();
  }

  /** The probe this service runs on. */
  get probe(): SandboxProbe {
    return this.#deps.probe;
  }

  /** Runs in progress. */
  get running(): number {
    return this.#running;
  }

  /** The key of a call's workspace (agent and session), or null for a call of its own. */
  static workspaceKey(agent: string, session: string | null): string | null {
    return session === null || session === '' ? null : `${agent}\u0000${session}`;
  }

  /**
   * The command policy's verdict on a run (./policy.ts), for the call's
   * workspace (relative paths and workspace programs resolve in it). Never throws.
   */
  async decide(call: Pick<SandboxCall, 'agent' | 'session' | 'spec'>): Promise<RunVerdict> {
    if (call.spec.kind === 'code' && !(call.agent.sandbox?.languages ?? []).includes(call.spec.language)) {
      return { decision: deny('policy.no_permit', `agents.${call.agent.name}.sandbox.languages`), commands: [] };
    }
    const key = SandboxService.workspaceKey(call.agent.name, call.session);
    const workspace = key === null ? join(this.#deps.config.workspaces, '.none') : this.#pathOf(call.agent.name, key);
    try {
      return await decideRun(call.spec, {
        agent: call.agent.name,
        session: call.session ?? '',
        authorize: (req) => this.#deps.authorize(req),
        parse: parseShellLine,
        checkHostPath: (p) => this.#guard.check(p),
        workspace,
      });
    } catch {
      return { decision: deny('policy.error', 'sandbox'), commands: [] };
    }
  }

  /**
   * Runs a call already decided (policy, approval) in a new sandbox. Never
   * throws: refusals (`sandbox.unavailable`, `sandbox.busy`, a placeholder
   * that cannot be made) and start failures come back as outcomes.
   */
  async run(call: SandboxCall): Promise<SandboxOutcome> {
    const probe = this.#deps.probe;
    if (this.#closed || !probe.available) return { kind: 'refused', decision: deny('sandbox.unavailable', 'sandbox'), text: 'Bastion refused this call: the sandbox is unavailable' };
    if (this.#running >= this.#deps.config.maxConcurrent) return { kind: 'refused', decision: deny('sandbox.busy', 'sandbox.maxConcurrent'), text: 'Bastion refused this call: every sandbox is busy; try again shortly' };
    this.#running++;
    const key = SandboxService.workspaceKey(call.agent.name, call.session);
    let ws: Workspace | undefined;
    let socket: { close(): Promise<void> } | undefined;
    let controller: AbortController | undefined;
    try {
      const env: Record<string, string> = {};
      for (const [variable, secret] of Object.entries(call.agent.sandbox?.env ?? {})) {
        if (this.#deps.placeholder === undefined) return { kind: 'refused', decision: deny('vault.unavailable', `agents.${call.agent.name}.sandbox.env.${variable}`), text: 'Bastion refused this call: no vault is open for the sandbox\'s environment' };
        try {
          env[variable] = await this.#deps.placeholder(call.agent.name, secret);
        } catch {
          return { kind: 'refused', decision: deny('vault.error', `agents.${call.agent.name}.sandbox.env.${variable}`), text: 'Bastion refused this call: a placeholder for the sandbox\'s environment could not be made' };
        }
      }
      ws = await this.#acquire(call.agent.name, key);
      const runtime = await this.#runtimeDir();
      const network = this.#deps.config.network && this.#deps.attachSocket !== undefined;
      let egressSocket: string | undefined;
      if (network) {
        const path = join(runtime.dir, `${randomUUID()}.sock`);
        socket = await (this.#deps.attachSocket as AttachPrincipalSocket)(path, { agent: call.agent.name, session: call.session ?? `run:${randomUUID()}`, user: call.user, owner: probe.user });
        egressSocket = path;
      }
      const stop = new AbortController();
      if (call.signal !== undefined) {
        if (call.signal.aborted) stop.abort();
        else call.signal.addEventListener('abort', () => stop.abort(), { once: true });
      }
      let mine = this.#runs.get(call.agent.name);
      if (mine === undefined) this.#runs.set(call.agent.name, (mine = new Set()));
      mine.add(stop);
      controller = stop;
      const base = call.agent.sandbox?.limits ?? this.#deps.config.limits;
      const limits = call.timeoutMs !== undefined ? { ...base, wallMs: Math.min(base.wallMs, call.timeoutMs) } : base;
      const result = await runSandboxed(
        {
          argv: argvOf(call.spec),
          workspace: ws.path,
          env,
          ...(call.stdin !== undefined ? { stdin: call.stdin } : {}),
          limits,
          ...(egressSocket !== undefined ? { egressSocket } : {}),
          ...(egressSocket !== undefined && runtime.caFile !== undefined ? { caFile: runtime.caFile } : {}),
          signal: stop.signal,
        },
        probe,
      );
      return { kind: 'ran', result, workspace: ws.path, network, limits };
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      return { kind: 'failed', code: code === 'ERR_SANDBOX_START' ? 'ERR_SANDBOX_START' : 'ERR_INTERNAL', text: 'The sandbox could not start the run' };
    } finally {
      this.#running--;
      if (controller !== undefined) {
        const mine = this.#runs.get(call.agent.name);
        mine?.delete(controller);
        if (mine?.size === 0) this.#runs.delete(call.agent.name);
      }
      await socket?.close().catch(() => undefined);
      if (ws !== undefined) {
        ws.busy--;
        ws.lastUsed = Date.now();
        if (key === null) await this.#remove(null, ws);
      }
    }
  }

  /** Stops every run of `agent` in progress (it was isolated); their workspaces are kept. */
  stopAgent(agent: string): void {
    for (const c of this.#runs.get(agent) ?? []) c.abort();
  }

  /** The session ended: its workspaces go (unless kept). Never throws. */
  async endSession(agent: string, session: string | null): Promise<void> {
    const key = SandboxService.workspaceKey(agent, session);
    if (key === null) return;
    const ws = this.#workspaces.get(key);
    if (ws !== undefined && ws.busy === 0) await this.#remove(key, ws);
  }

  /** Stops the sweeper and deletes the workspaces not kept. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    await Promise.all([...this.#workspaces.entries()].map(([k, ws]) => this.#remove(k, ws)));
    const runtime = await this.#runtime?.catch(() => undefined);
    if (runtime !== undefined) await rm(runtime.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  #pathOf(agent: string, key: string): string {
    const digest = createHash('sha256').update(key).digest('hex').slice(0, 24);
    return join(this.#deps.config.workspaces, `${agent}-${digest}`);
  }

  async #acquire(agent: string, key: string | null): Promise<Workspace> {
    if (key === null) return { path: await this.#create(`${agent}-run-${randomUUID()}`), agent, lastUsed: Date.now(), busy: 1 };
    const hit = this.#workspaces.get(key);
    if (hit !== undefined) {
      hit.busy++;
      return hit;
    }
    // Concurrent first calls of one session create it once.
    let pending = this.#creating.get(key);
    if (pending === undefined) {
      pending = this.#create(this.#pathOf(agent, key).slice(this.#deps.config.workspaces.length + 1)).then((path) => {
        const ws: Workspace = { path, agent, lastUsed: Date.now(), busy: 0 };
        this.#workspaces.set(key, ws);
        return ws;
      });
      this.#creating.set(key, pending);
      void pending.finally(() => this.#creating.delete(key)).catch(() => undefined);
    }
    const ws = await pending;
    ws.busy++;
    return ws;
  }

  async #create(name: string): Promise<string> {
    await mkdir(this.#deps.config.workspaces, { recursive: true, mode: 0o711 });
    return createWorkspace(this.#deps.config.workspaces, name, this.#deps.probe);
  }

  async #remove(key: string | null, ws: Workspace): Promise<void> {
    if (key !== null) this.#workspaces.delete(key);
    if (this.#deps.config.keepWorkspaces || this.#deps.isIsolated?.(ws.agent) === true) return;
    await removeWorkspace(ws.path).catch(() => undefined);
  }

  async #sweep(): Promise<void> {
    const now = Date.now();
    for (const [key, ws] of this.#workspaces) {
      if (ws.busy === 0 && now - ws.lastUsed >= this.#deps.config.workspaceIdleMs) await this.#remove(key, ws);
    }
  }

  /** A private folder for the runs' sockets and the CA file, made once. */
  #runtimeDir(): Promise<{ dir: string; caFile: string | undefined }> {
    this.#runtime ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bastion-sandbox-'));
      // The sandbox user binds the sockets from here: it may pass through, not list.
      const { chmod } = await import('node:fs/promises');
      await chmod(dir, 0o711);
      let caFile: string | undefined;
      if (this.#deps.caPem !== undefined) {
        caFile = join(dir, 'ca.pem');
        await writeFile(caFile, this.#deps.caPem, { mode: 0o644 });
      }
      return { dir, caFile };
    })();
    return this.#runtime;
  }
}

/** The argv a run starts inside the sandbox: an argv as given; a shell line or `sh` code under bash; code under its interpreter. */
export function argvOf(spec: RunSpec): string[] {
  if (spec.kind === 'argv') return [...spec.argv];
  if (spec.kind === 'shell') return ['/bin/bash', '--noprofile', '--norc', '-c', spec.line];
  if (spec.language === 'python') return [LANGUAGE_PROGRAM.python, '-c', spec.code];
  if (spec.language === 'node') return [LANGUAGE_PROGRAM.node, '-e', spec.code];
  return ['/bin/bash', '--noprofile', '--norc', '-c', spec.code];
}
