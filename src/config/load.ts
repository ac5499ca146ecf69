/**
 * Loads `bastion.yaml`: read → parse YAML (with positions) → validate strictly
 * against {@link ConfigSchema} → semantic checks zod cannot express → resolve
 * secret references, paths and defaults → deep-freeze.
 *
 * Every problem is reported as `file:line:col: config.path: message`, and all
 * problems of a stage are reported together in one {@link BastionError}:
 *
 * - `ERR_CONFIG_NOT_FOUND`: the file does not exist or is not a readable file.
 * - `ERR_CONFIG_INVALID`: YAML syntax, schema or semantic errors, or a `policies`
 *   entry that matches no file; `detail.issues` holds `{path, line, col, message}`.
 * - `ERR_CONFIG_SECRET_REF`: a secret reference that does not resolve (strict
 *   mode, and for agent and admin keys whenever `keys` is strict), or, in both modes, a resolved value that
 *   cannot be used: a key shorter than 16 characters or holding whitespace, a
 *   header value with a line break. Messages name the reference (`env:NAME`,
 *   `file:PATH`), never its value.
 *
 * This is the only module that reads the environment, and it reads it only
 * through the `env` it is given.
 */
import { parseRetention, type RetentionPolicy } from '../audit/retention.ts';
import { globSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import picomatch from 'picomatch';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { abilityDefinitionProblems, abilityOrigin } from '../abilities/definition.ts';
import { DEFAULTS } from '../defaults.ts';
import { resolveAnomalies } from '../anomaly/config.ts';
import { resolveAgentSandbox, resolveSandbox } from '../sandbox/config.ts';
import { hostMatchesAny, normalizeHost, splitHostPort } from '../egress/host-pattern.ts';
import { BastionError, type BastionErrorCode } from '../errors.ts';
import { Secret } from '../util/secret.ts';
import { checkHostBinding, HOST_BINDING_REFUSALS, hostBindingMessage } from '../vault/host-binding.ts';
import { ConfigSchema, HostPattern, ListenAddress, type RawAbility, type RawAgent, type RawCallToken, type RawConfig, type RawNetworkRule } from './schema.ts';
import type {
  CedarFile,
  GuardFallback,
  ResolvedGuard,
  ResolvedAbility,
  ResolvedAgent,
  ResolvedCallToken,
  ResolvedConfig,
  ResolvedUsers,
  ResolvedNetworkRule,
  ResolvedSecretMeta,
  ResolvedServer,
  ResolvedUpstream,
} from './types.ts';

/** Largest config or Cedar policy file read, in bytes. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
/** Largest `file:` secret read, in bytes. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;
/** Most alias expansions in one YAML document ("billion laughs" guard). */
const MAX_YAML_ALIAS_COUNT = 100;
/** Shortest key (agent or admin) accepted, in characters. */
const MIN_KEY_CHARS = 16;

/** One problem in a config file, located in its YAML source (1-based line and column). */
export interface ConfigIssue {
  /** The config path, e.g. `agents.demo.tools[1]`; empty for YAML syntax errors. */
  readonly path: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** What {@link loadConfig} returns. */
export interface LoadResult {
  readonly config: ResolvedConfig;
  /** Non-fatal findings, formatted like issues (unresolved references in lenient mode, unresolved agent keys). */
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  /** The environment `env:NAME` references resolve against. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * `strict` (default): an unresolvable secret reference is `ERR_CONFIG_SECRET_REF`.
   * `lenient` (`config check`, `policy explain`): it becomes a warning.
   */
  readonly secrets?: 'strict' | 'lenient';
  /**
   * Key references (`agents.X.keys`, `admin.keys`): `strict`, an unresolvable one is
   * `ERR_CONFIG_SECRET_REF` naming the field and the reference (`serve`, `config check`);
   * `lenient`, a warning, listed in `ResolvedAgent.unresolvedKeyRefs` (tools that
   * only read the store). Default: the `secrets` mode.
   */
  readonly keys?: 'strict' | 'lenient';
  /**
   * Listen addresses that replace the file's `server.listen` / `server.egress`
   * (`bastion serve --listen`, `BASTION_LISTEN`; `--egress-listen`,
   * `BASTION_EGRESS_LISTEN`, `false` for off), validated like the file's own:
   * a bad one is `ERR_CONFIG_INVALID` naming `source` (the flag or variable).
   */
  readonly listen?: { readonly main?: { readonly value: string; readonly source: string }; readonly egress?: { readonly value: string | false; readonly source: string } };
}

type PathKey = string | number;

/** A parsed, validated config with the means to point into its source. */
interface Parsed {
  /** The file as named by the caller, for messages. */
  readonly file: string;
  readonly raw: RawConfig;
  readonly issueAt: (path: readonly PathKey[], message: string, at?: 'key' | 'value') => ConfigIssue;
}

/**
 * Parses and validates config text (no file-system access: `policies` globs and
 * secret references are not looked at). `file` names the source in messages.
 * Throws `ERR_CONFIG_INVALID` listing every issue.
 */
export function parseConfigText(text: string, file: string): RawConfig {
  return parseAndValidate(text, file).raw;
}

/**
 * Reads, validates and resolves the config file `file` (relative to the process
 * working directory when not absolute). Returns the deeply frozen runtime form.
 */
export async function loadConfig(file: string, opts: LoadOptions): Promise<LoadResult> {
  const abs = resolve(file);
  const text = await readConfigFile(abs, file);
  const parsed = parseAndValidate(text, file, opts.listen);
  const dir = dirname(abs);
  const policies = await readPolicies(parsed, dir);
  const userJwks = await readUsersJwks(parsed, dir);
  const warnings: string[] = [];
  for (const o of secretHostIssues(parsed.raw, parsed.issueAt).overridden) warnings.push(formatIssue(parsed.file, o));
  for (const w of labelPatternIssues(parsed.raw, parsed.issueAt)) warnings.push(formatIssue(parsed.file, w));
  const secrets = await resolveSecrets(parsed, dir, opts.env, opts.secrets ?? 'strict', warnings, opts.keys ?? opts.secrets ?? 'strict');
  const config = buildResolved(parsed.raw, abs, dir, policies, secrets, userJwks);
  return deepFreeze({ config, warnings });
}

/**
 * The parsed file with `server.listen` / `server.egress` replaced by the
 * overrides, each checked first (an error names the flag or variable, not a
 * line of the file).
 */
function withListen(value: unknown, listen: NonNullable<LoadOptions['listen']>, file: string): unknown {
  const problems: string[] = [];
  const check = (o: { value: string | false; source: string } | undefined): void => {
    if (o === undefined || o.value === false) return;
    const r = ListenAddress.safeParse(o.value);
    if (!r.success) problems.push(`${o.source}: ${r.error.issues[0]?.message ?? 'must be host:port'}`);
  };
  check(listen.main);
  check(listen.egress);
  // Not a line of the file: the message names the flag or variable (and the file it would apply to).
  if (problems.length > 0) throw new BastionError('ERR_CONFIG_INVALID', problems.join('\n'), { detail: { file, overrides: problems } });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  const server = v.server !== null && typeof v.server === 'object' && !Array.isArray(v.server) ? (v.server as Record<string, unknown>) : {};
  return {
    ...v,
    server: {
      ...server,
      ...(listen.main !== undefined ? { listen: listen.main.value } : {}),
      ...(listen.egress !== undefined ? { egress: listen.egress.value } : {}),
    },
  };
}

// ---------------------------------------------------------------------------
// Reading

async function readConfigFile(abs: string, shown: string): Promise<string> {
  let size: number;
  try {
    const st = await stat(abs);
    if (!st.isFile()) throw new BastionError('ERR_CONFIG_NOT_FOUND', `config file ${shown} is not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof BastionError) throw err;
    throw new BastionError('ERR_CONFIG_NOT_FOUND', `config file ${shown} not found (${errnoOf(err)})`, { cause: err, detail: { file: abs } });
  }
  if (size > MAX_CONFIG_FILE_BYTES) {
    throw configInvalid(shown, [{ path: '', line: 1, col: 1, message: `file is larger than ${MAX_CONFIG_FILE_BYTES} bytes` }]);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (err) {
    throw new BastionError('ERR_CONFIG_NOT_FOUND', `config file ${shown} could not be read (${errnoOf(err)})`, { cause: err, detail: { file: abs } });
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw configInvalid(shown, [{ path: '', line: 1, col: 1, message: 'file is not valid UTF-8' }]);
  }
}

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

// ---------------------------------------------------------------------------
// Parsing and validation

function parseAndValidate(text: string, file: string, listen?: LoadOptions['listen']): Parsed {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, merge: false, logLevel: 'error' });
  const pos = (offset: number): { line: number; col: number } => lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
  const issueAt = (path: readonly PathKey[], message: string, at: 'key' | 'value' = 'value'): ConfigIssue => {
    const { line, col } = pos(locate(doc, path, at));
    return { path: renderPath(path), line, col, message };
  };

  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    throw configInvalid(
      file,
      yamlProblems.map((e) => ({ path: '', ...pos(e.pos[0]), message: `${e.message} (YAML ${e.code})` })),
    );
  }
  // A key that is a collection or an alias would be stringified by toJS; the schema has only plain keys.
  const badKeys: ConfigIssue[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key)) badKeys.push({ path: '', ...pos(rangeStart(pair.key) ?? 0), message: 'a key must be a plain scalar' });
    },
  });
  if (badKeys.length > 0) throw configInvalid(file, badKeys);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (err) {
    // yaml throws for excessive alias expansion; anything else is malformed input too.
    const message = err instanceof Error && /alias/i.test(err.message) ? err.message : 'YAML could not be read';
    throw configInvalid(file, [{ path: '', line: 1, col: 1, message }]);
  }

  const issues: ConfigIssue[] = [];
  const reserved = findReservedKeys(value, [], 0);
  for (const path of reserved) issues.push(issueAt(path, 'reserved key "__proto__" is not allowed', 'key'));

  if (value === null || value === undefined) {
    throw configInvalid(file, [...issues, { path: '', line: 1, col: 1, message: 'the config is empty; it needs at least `version: 1`' }]);
  }

  if (listen !== undefined) value = withListen(value, listen, file);
  const result = ConfigSchema.safeParse(value);
  if (!result.success) {
    const seen = new Set<string>();
    for (const zi of result.error.issues) {
      const base = zi.path.filter((k): k is PathKey => typeof k !== 'symbol');
      if (zi.code === 'unrecognized_keys') {
        for (const key of zi.keys) {
          if (key === '__proto__') continue; // already reported above
          issues.push(issueAt([...base, key], 'unknown key', 'key'));
        }
        continue;
      }
      // One message per value: after a failed format check, the refinements that follow are noise.
      const at = renderPath(base);
      if (seen.has(at)) continue;
      seen.add(at);
      if (zi.code === 'invalid_key') {
        const inner = zi.issues[0]?.message ?? zi.message;
        issues.push(issueAt(base, `bad name: ${inner}`, 'key'));
      } else if (valueAt(value, base) === undefined && (zi.code === 'invalid_type' || zi.code === 'invalid_value')) {
        issues.push(issueAt(base, `missing required key (${zi.message})`));
      } else {
        issues.push(issueAt(base, zi.message));
      }
    }
    throw configInvalid(file, issues);
  }
  const raw = result.data;
  issues.push(...semanticIssues(raw, issueAt));
  if (issues.length > 0) throw configInvalid(file, issues);
  return { file, raw, issueAt };
}

/** Checks zod cannot express. Each returns located issues; none throws. */
/** The sandbox's cross-checks: `env` secrets declared and granted, the `sandbox` tool prefix free. */
function sandboxIssues(raw: RawConfig, issueAt: Parsed['issueAt']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (raw.sandbox.enabled && Object.hasOwn(raw.upstreams, 'sandbox')) {
    issues.push(issueAt(['upstreams', 'sandbox'], 'the name sandbox is taken by the built-in sandbox tools while sandbox.enabled is true'));
  }
  for (const [name, a] of Object.entries(raw.agents)) {
    for (const [k, ref] of Object.entries(a.sandbox?.env ?? {})) {
      const secret = ref.slice('vault:'.length);
      if (!Object.hasOwn(raw.secrets, secret)) issues.push(issueAt(['agents', name, 'sandbox', 'env', k], `unknown secret ${secret}: declare it under secrets`));
      else if (!a.secrets.includes(secret)) issues.push(issueAt(['agents', name, 'sandbox', 'env', k], `agent ${name} is not granted secret ${secret}: add it to agents.${name}.secrets`));
    }
  }
  return issues;
}

function semanticIssues(raw: RawConfig, issueAt: Parsed['issueAt']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const list of ['allow', 'deny'] as const) {
    raw.paths[list].forEach((glob, i) => {
      const why = pathGlobProblem(glob);
      if (why !== undefined) issues.push(issueAt(['paths', list, i], `bad glob: ${why}`));
    });
  }
  raw.server.allowedHosts?.forEach((h, i) => {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(h)) {
      issues.push(issueAt(['server', 'allowedHosts', i], 'must be a Host header value, host or host:port'));
    }
  });
  raw.server.allowedOrigins?.forEach((o, i) => {
    const why = originProblem(o);
    if (why !== undefined) issues.push(issueAt(['server', 'allowedOrigins', i], why));
  });
  for (const [name, agent] of Object.entries(raw.agents)) {
    for (const key of ['model', 'supervisor'] as const) {
      const ref = agent[key]?.secret;
      if (ref !== undefined && !Object.hasOwn(raw.secrets, ref)) issues.push(issueAt(['agents', name, key, 'secret'], `unknown secret ${ref}: declare it under secrets`));
    }
    agent.secrets.forEach((secret, i) => {
      if (!Object.hasOwn(raw.secrets, secret)) issues.push(issueAt(['agents', name, 'secrets', i], `unknown secret ${secret}: declare it under secrets`));
    });
    agent.network.forEach((rule, i) => {
      if (typeof rule !== 'string') return;
      const hp = splitHostPort(rule);
      if (hp === undefined || !HostPattern.safeParse(hp.host).success) {
        issues.push(issueAt(['agents', name, 'network', i], 'must be host, *.domain, host:port or [v6]:port (ports 1-65535)'));
      }
    });
    agent.unsafeAllowPrivate?.ranges.forEach((r, i) => {
      if (!isCidr(r)) issues.push(issueAt(['agents', name, 'unsafeAllowPrivate', 'ranges', i], 'must be a CIDR range, e.g. 10.1.0.0/16 or fd00:1::/64'));
    });
    if (agent.unsafeAllowPrivate && agent.unsafeAllowPrivate.hosts.length === 0 && agent.unsafeAllowPrivate.ranges.length === 0) {
      issues.push(issueAt(['agents', name, 'unsafeAllowPrivate'], 'name at least one host or range'));
    }
  }
  if (raw.server.egress !== false && raw.server.egress === raw.server.listen && !raw.server.listen.endsWith(':0')) {
    issues.push(issueAt(['server', 'egress'], 'must differ from server.listen'));
  }
  issues.push(...sandboxIssues(raw, issueAt));
  issues.push(...identityIssues(raw, issueAt));
  issues.push(...secretHostIssues(raw, issueAt).issues);
  for (const [name, up] of Object.entries(raw.upstreams)) {
    if (up.url === undefined && (up.signContext || (up.token !== undefined && up.token !== false))) {
      issues.push(issueAt(['upstreams', name, up.signContext ? 'signContext' : 'token'], 'signed context and per-call tokens are for HTTP upstreams (url)'));
    }
    for (const [k, ref] of Object.entries(up.env)) {
      if (!ref.startsWith('vault:')) continue;
      if (up.command === undefined) issues.push(issueAt(['upstreams', name, 'env', k], 'vault: references are for stdio upstreams (command)'));
      else if (!Object.hasOwn(raw.secrets, ref.slice(6))) issues.push(issueAt(['upstreams', name, 'env', k], `unknown secret ${ref.slice(6)}: declare it under secrets`));
    }
    if (up.url === undefined) continue;
    const url = new URL(up.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      issues.push(issueAt(['upstreams', name, 'url'], 'must be an http: or https: URL'));
    }
    if (url.username !== '' || url.password !== '') {
      issues.push(issueAt(['upstreams', name, 'url'], 'must not hold credentials; send them with headers, as secret references'));
    }
  }
  return issues;
}

/**
 * Checks of abilities, skillsets and agent-to-agent settings: every name they
 * use exists, a bound secret serves exactly one ability on that ability's host
 * and no agent holds it too, and each ability's own definition is sound.
 */
function identityIssues(raw: RawConfig, issueAt: Parsed['issueAt']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const boundBy = new Map<string, string>();
  for (const [name, a] of Object.entries(raw.abilities)) {
    for (const p of abilityDefinitionProblems(a)) issues.push(issueAt(['abilities', name, ...p.path], p.message));
    if (a.secret === undefined) continue;
    if (!Object.hasOwn(raw.secrets, a.secret)) {
      issues.push(issueAt(['abilities', name, 'secret'], `unknown secret ${a.secret}: declare it under secrets`));
      continue;
    }
    const other = boundBy.get(a.secret);
    if (other !== undefined) issues.push(issueAt(['abilities', name, 'secret'], `secret ${a.secret} is already bound to ability ${other}; a bound secret serves one ability`));
    boundBy.set(a.secret, name);
    const origin = abilityOrigin(a.url);
    const hosts = raw.secrets[a.secret]?.hosts;
    if (origin !== undefined && hosts !== undefined && !hostMatchesAny(hosts.map(normalizeHost), normalizeHost(new URL(origin).hostname))) {
      issues.push(issueAt(['abilities', name, 'secret'], `secret ${a.secret}'s hosts do not cover ${new URL(origin).hostname}`));
    }
  }
  for (const [name, agent] of Object.entries(raw.agents)) {
    agent.secrets.forEach((secret, i) => {
      const ability = boundBy.get(secret);
      if (ability !== undefined) issues.push(issueAt(['agents', name, 'secrets', i], `secret ${secret} is bound to ability ${ability} and usable only by it`));
    });
    agent.skillsets.forEach((set, i) => {
      if (!Object.hasOwn(raw.skillsets, set)) issues.push(issueAt(['agents', name, 'skillsets', i], `unknown skillset ${set}: declare it under skillsets`));
    });
  }
  for (const [name, list] of Object.entries(raw.skillsets)) {
    list.forEach((ability, i) => {
      if (!Object.hasOwn(raw.abilities, ability)) issues.push(issueAt(['skillsets', name, i], `unknown ability ${ability}: declare it under abilities`));
    });
  }
  for (const name of Object.keys(raw.a2a?.agents ?? {})) {
    if (!Object.hasOwn(raw.agents, name)) issues.push(issueAt(['a2a', 'agents', name], `unknown agent ${name}: declare it under agents`));
  }
  for (const [name, agent] of Object.entries(raw.agents)) {
    agent.oauth.forEach((p, i) => {
      if (!Object.hasOwn(raw.oauth.providers, p)) issues.push(issueAt(['agents', name, 'oauth', i], `unknown provider ${p}: declare it under oauth.providers`));
    });
  }
  for (const [name, a] of Object.entries(raw.abilities)) {
    if (a.oauth === undefined) continue;
    if (!Object.hasOwn(raw.oauth.providers, a.oauth)) issues.push(issueAt(['abilities', name, 'oauth'], `unknown provider ${a.oauth}: declare it under oauth.providers`));
    if (a.secret !== undefined) issues.push(issueAt(['abilities', name, 'oauth'], 'give secret or oauth, not both'));
  }
  for (const [name, u] of Object.entries(raw.upstreams)) {
    if (u.oauth === undefined) continue;
    if (!Object.hasOwn(raw.oauth.providers, u.oauth)) issues.push(issueAt(['upstreams', name, 'oauth'], `unknown provider ${u.oauth}: declare it under oauth.providers`));
    if (u.url === undefined) issues.push(issueAt(['upstreams', name, 'oauth'], 'per-user OAuth needs an HTTP upstream (url)'));
  }
  for (const [name, p] of Object.entries(raw.oauth.providers)) {
    const issuer = new URL(p.issuer);
    if (issuer.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname)) issues.push(issueAt(['oauth', 'providers', name, 'issuer'], 'must be https (plain http only on loopback, for tests)'));
    if (p.clientAuth !== undefined && p.clientAuth !== 'none' && p.clientSecret === undefined) issues.push(issueAt(['oauth', 'providers', name, 'clientSecret'], `is required with clientAuth ${p.clientAuth}`));
  }
  for (const [client, agent] of Object.entries(raw.oauth.resourceServer?.agents ?? {})) {
    if (!Object.hasOwn(raw.agents, agent)) issues.push(issueAt(['oauth', 'resourceServer', 'agents', client], `unknown agent ${agent}: declare it under agents`));
  }
  if (raw.a2a?.nonceStore === 'redis' && raw.redis === undefined) issues.push(issueAt(['a2a', 'nonceStore'], 'redis needs the top-level redis setting'));
  return issues;
}

/**
 * Every `secrets.NAME.hosts` entry through the one host-binding check
 * (src/vault/host-binding.ts, Public Suffix List): refusals are issues; hosts
 * accepted only by `unsafeAllowSharedSuffix` are returned to be reported as warnings.
 */
function secretHostIssues(raw: RawConfig, issueAt: Parsed['issueAt']): { issues: ConfigIssue[]; overridden: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const overridden: ConfigIssue[] = [];
  for (const [name, meta] of Object.entries(raw.secrets)) {
    meta.hosts?.forEach((h, i) => {
      const c = checkHostBinding(h, { unsafeAllowSharedSuffix: meta.unsafeAllowSharedSuffix });
      if (!c.ok) issues.push(issueAt(['secrets', name, 'hosts', i], `refused: ${hostBindingMessage(c, h)}`));
      else if (c.overridden !== undefined) overridden.push(issueAt(['secrets', name, 'hosts', i], `accepted by unsafeAllowSharedSuffix: ${JSON.stringify(h)} ${HOST_BINDING_REFUSALS[c.overridden]} (${c.overridden})`));
    });
  }
  return { issues, overridden };
}

/** Why `glob` is not a usable path glob, or undefined when it is. */
function pathGlobProblem(glob: string): string | undefined {
  if (glob.startsWith('!')) return 'negation is not supported (list the path under paths.deny)';
  let square = 0;
  let curly = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') square++;
    else if (c === ']') square--;
    else if (c === '{') curly++;
    else if (c === '}') curly--;
    if (square < 0) return 'unbalanced "]"';
    if (curly < 0) return 'unbalanced "}"';
  }
  if (square !== 0) return 'unbalanced "["';
  if (curly !== 0) return 'unbalanced "{"';
  try {
    picomatch.makeRe(glob, { strictBrackets: true });
  } catch (err) {
    return err instanceof Error ? err.message : 'does not compile';
  }
  return undefined;
}

/** Why `value` is not a bare http(s) origin, or undefined when it is. */
function originProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an origin, e.g. http://localhost:8790';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http: or https: origin';
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    return 'must be an origin (scheme://host[:port]) with no path, query or fragment';
  }
  return undefined;
}

/** Paths of every `__proto__` key: zod drops such record entries silently, so they are rejected. */
function findReservedKeys(value: unknown, path: PathKey[], depth: number): PathKey[][] {
  // The schema is at most five levels deep; nothing below this needs looking at.
  if (depth > 32 || value === null || typeof value !== 'object') return [];
  const out: PathKey[][] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => out.push(...findReservedKeys(v, [...path, i], depth + 1)));
    return out;
  }
  for (const key of Object.keys(value)) {
    if (key === '__proto__') out.push([...path, key]);
    else out.push(...findReservedKeys((value as Record<string, unknown>)[key], [...path, key], depth + 1));
  }
  return out;
}

function valueAt(value: unknown, path: readonly PathKey[]): unknown {
  let v = value;
  for (const k of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<PathKey, unknown>)[k];
  }
  return v;
}

/**
 * The source offset of the node at `path`: the key itself when `at` is `key`,
 * otherwise its value. Where the path leaves the document (a missing key), the
 * deepest node reached: the parent.
 */
function locate(doc: Document, path: readonly PathKey[], at: 'key' | 'value'): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (pair === undefined) break;
      const keyStart = rangeStart(pair.key) ?? offset;
      if (i === path.length - 1 && at === 'key') return keyStart;
      node = pair.value;
      const valueStart = rangeStart(node);
      if (valueStart === undefined) return keyStart;
      offset = valueStart;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      const start = rangeStart(item);
      if (start === undefined) break;
      node = item;
      offset = start;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: unknown } | null | undefined)?.range;
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : undefined;
}

/** `agents.demo.tools[1]`; keys other than plain words are quoted: `agents["a b"]`. */
function renderPath(path: readonly PathKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** `file:line:col: path: message`, the shape of every config message. */
function formatIssue(file: string, i: ConfigIssue): string {
  return `${file}:${i.line}:${i.col}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

function configInvalid(file: string, issues: readonly ConfigIssue[]): BastionError {
  return issuesError('ERR_CONFIG_INVALID', file, issues);
}

/** One error for all `issues`, one message line each, in source order; `detail.issues` holds them structured. */
function issuesError(code: BastionErrorCode, file: string, issues: readonly ConfigIssue[]): BastionError {
  const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
  return new BastionError(code, sorted.map((i) => formatIssue(file, i)).join('\n'), { detail: { file, issues: sorted } });
}


// ---------------------------------------------------------------------------
// Policies

/** Expands each `policies` glob against `dir` and reads the files, in sorted order, each once. */
async function readPolicies(parsed: Parsed, dir: string): Promise<CedarFile[]> {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  const files: CedarFile[] = [];
  for (const [i, entry] of parsed.raw.policies.entries()) {
    let matches: string[];
    try {
      matches = globSync(entry, { cwd: dir }).map((p) => resolve(dir, p)).sort();
    } catch {
      issues.push(parsed.issueAt(['policies', i], `bad glob: ${JSON.stringify(entry)}`));
      continue;
    }
    let found = 0;
    for (const path of matches) {
      try {
        const st = await stat(path);
        if (!st.isFile()) continue;
        found++;
        if (seen.has(path)) continue;
        seen.add(path);
        if (st.size > MAX_CONFIG_FILE_BYTES) {
          issues.push(parsed.issueAt(['policies', i], `${path} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`));
          continue;
        }
        files.push({ path, text: new TextDecoder('utf-8', { fatal: true }).decode(await readFile(path)) });
      } catch (err) {
        issues.push(parsed.issueAt(['policies', i], `${path} could not be read (${err instanceof TypeError ? 'not UTF-8' : errnoOf(err)})`));
      }
    }
    if (found === 0) issues.push(parsed.issueAt(['policies', i], `no file matches ${JSON.stringify(entry)}`));
  }
  if (issues.length > 0) throw configInvalid(parsed.file, issues);
  return files;
}

/**
 * Reads `users.token.jwksFile` (a JWK Set, RFC 7517 §5): JSON with a `keys`
 * array of public keys. A private key in it is refused: the file is for verifying.
 */
async function readUsersJwks(parsed: Parsed, dir: string): Promise<{ keys: Record<string, unknown>[] } | undefined> {
  const file = parsed.raw.users.token?.jwksFile;
  if (file === undefined) return undefined;
  const at = ['users', 'token', 'jwksFile'];
  const path = resolve(dir, file);
  let doc: unknown;
  try {
    const st = await stat(path);
    if (st.size > MAX_CONFIG_FILE_BYTES) throw configInvalid(parsed.file, [parsed.issueAt(at, `${path} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`)]);
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if (err instanceof BastionError) throw err;
    throw configInvalid(parsed.file, [parsed.issueAt(at, `${path} could not be read as JSON (${err instanceof SyntaxError ? 'not JSON' : errnoOf(err)})`)]);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) {
    throw configInvalid(parsed.file, [parsed.issueAt(at, `${path} is not a JWK Set: it needs a non-empty "keys" array of objects`)]);
  }
  if (keys.some((k: Record<string, unknown>) => 'd' in k || 'k' in k)) {
    throw configInvalid(parsed.file, [parsed.issueAt(at, `${path} holds a private or symmetric key: publish only public keys`)]);
  }
  return { keys: keys as Record<string, unknown>[] };
}

// ---------------------------------------------------------------------------
// Secret references

interface ResolvedSecrets {
  readonly agentKeys: Map<string, { keys: Secret[]; unresolved: string[] }>;
  readonly adminKeys: Secret[];
  /** The admin each of `adminKeys` belongs to (`admin` for an unnamed key), index for index. */
  readonly adminKeyIds: string[];
  readonly upstreamEnv: Map<string, Record<string, Secret>>;
  readonly upstreamHeaders: Map<string, Record<string, Secret>>;
  alertHeaders: Record<string, Secret>;
  smtpPassword?: Secret;
  /** `alerts.slack.url`, resolved: the URL carries a token. */
  slackUrl?: Secret;
  otlpHeaders: Record<string, Secret>;
  redisUrl?: Secret;
  /** `store.postgres`, resolved (a literal URL or the value of its reference). */
  postgresUrl?: Secret;
  /** `introspection:<issuer index>` and `provider:<name>` client secrets of `oauth`. */
  readonly oauthSecrets: Map<string, Secret>;
}

type RefUse = 'agent-key' | 'admin-key' | 'env' | 'header';
type RefOutcome = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly why: string };

/**
 * Resolves every secret reference. Unresolvable references are errors in strict
 * mode and warnings in lenient mode; key references (agent and admin keys) follow
 * `keyMode` instead, and unresolved agent keys are also collected. A resolved value
 * that cannot be used (a short key, a line break in a header) is an error in both
 * modes. Messages name the field and the reference only.
 */
async function resolveSecrets(
  parsed: Parsed,
  dir: string,
  env: Readonly<Record<string, string | undefined>>,
  mode: 'strict' | 'lenient',
  warnings: string[],
  keyMode: 'strict' | 'lenient' = mode,
): Promise<ResolvedSecrets> {
  const { raw } = parsed;
  const errors: ConfigIssue[] = [];
  const out: ResolvedSecrets = { agentKeys: new Map(), adminKeys: [], adminKeyIds: [], upstreamEnv: new Map(), upstreamHeaders: new Map(), alertHeaders: {}, otlpHeaders: {}, oauthSecrets: new Map() };

  const use = async (path: PathKey[], ref: string, kind: RefUse, unresolved?: string[]): Promise<Secret | undefined> => {
    const r = await resolveRef(ref, dir, env);
    if (!r.ok) {
      const lenient = kind === 'agent-key' || kind === 'admin-key' ? keyMode === 'lenient' : mode === 'lenient';
      if (lenient && unresolved !== undefined) {
        unresolved.push(ref);
        warnings.push(formatIssue(parsed.file, parsed.issueAt(path, `${r.why}; key ignored`)));
      } else if (lenient) {
        warnings.push(formatIssue(parsed.file, parsed.issueAt(path, r.why)));
      } else {
        errors.push(parsed.issueAt(path, r.why));
      }
      return undefined;
    }
    const why = unusableValue(ref, r.value, kind);
    if (why !== undefined) {
      errors.push(parsed.issueAt(path, why));
      return undefined;
    }
    return new Secret(r.value);
  };

  for (const [name, agent] of Object.entries(raw.agents)) {
    const keys: Secret[] = [];
    const unresolved: string[] = [];
    for (const [i, ref] of agent.keys.entries()) {
      const s = await use(['agents', name, 'keys', i], ref, 'agent-key', unresolved);
      if (s !== undefined) keys.push(s);
    }
    out.agentKeys.set(name, { keys, unresolved });
  }
  for (const [i, entry] of raw.admin.keys.entries()) {
    const named = typeof entry === 'string' ? undefined : entry;
    const s = await use(named === undefined ? ['admin', 'keys', i] : ['admin', 'keys', i, 'key'], named?.key ?? (entry as string), 'admin-key');
    if (s !== undefined) {
      out.adminKeys.push(s);
      out.adminKeyIds.push(named?.id ?? 'admin');
    }
  }
  for (const [name, up] of Object.entries(raw.upstreams)) {
    const envOut: [string, Secret][] = [];
    for (const [k, ref] of Object.entries(up.env)) {
      // vault:NAME is the session agent's placeholder, filled in when the session starts the upstream.
      if (ref.startsWith('vault:')) continue;
      const s = await use(['upstreams', name, 'env', k], ref, 'env');
      if (s !== undefined) envOut.push([k, s]);
    }
    const headersOut: [string, Secret][] = [];
    for (const [k, ref] of Object.entries(up.headers)) {
      const s = await use(['upstreams', name, 'headers', k], ref, 'header');
      if (s !== undefined) headersOut.push([k, s]);
    }
    out.upstreamEnv.set(name, Object.fromEntries(envOut));
    out.upstreamHeaders.set(name, Object.fromEntries(headersOut));
  }
  const alertHeaders: [string, Secret][] = [];
  for (const [k, ref] of Object.entries(raw.alerts.webhook?.headers ?? {})) {
    const s = await use(['alerts', 'webhook', 'headers', k], ref, 'header');
    if (s !== undefined) alertHeaders.push([k, s]);
  }
  out.alertHeaders = Object.fromEntries(alertHeaders);
  for (const [k, ref] of Object.entries(raw.observability.otlp?.headers ?? {})) {
    const s = await use(['observability', 'otlp', 'headers', k], ref, 'header');
    if (s !== undefined) out.otlpHeaders[k] = s;
  }
  if (raw.alerts.slack !== undefined) {
    const s = await use(['alerts', 'slack', 'url'], raw.alerts.slack.url, 'env');
    if (s !== undefined && !/^https?:\/\/[^\s@/]+\/\S*$/.test(s.reveal())) errors.push(parsed.issueAt(['alerts', 'slack', 'url'], `${raw.alerts.slack.url} does not resolve to an http(s) URL`));
    else if (s !== undefined) out.slackUrl = s;
  }
  if (raw.alerts.email?.password !== undefined) {
    const s = await use(['alerts', 'email', 'password'], raw.alerts.email.password, 'env');
    if (s !== undefined) out.smtpPassword = s;
  }
  if (raw.redis) {
    const ref = raw.redis.url;
    if (/^rediss?:\/\//.test(ref)) out.redisUrl = new Secret(ref);
    else {
      const s = await use(['redis', 'url'], ref, 'env');
      if (s !== undefined && !/^rediss?:\/\/\S+$/.test(s.reveal())) errors.push(parsed.issueAt(['redis', 'url'], `${ref} does not resolve to a redis:// or rediss:// URL`));
      else if (s !== undefined) out.redisUrl = s;
    }
  }
  if (raw.store.postgres !== undefined) {
    const ref = raw.store.postgres;
    if (/^postgres(ql)?:\/\//.test(ref)) out.postgresUrl = new Secret(ref);
    else {
      const s = await use(['store', 'postgres'], ref, 'env');
      if (s !== undefined && !/^postgres(ql)?:\/\/\S+$/.test(s.reveal())) errors.push(parsed.issueAt(['store', 'postgres'], `${ref} does not resolve to a postgres:// or postgresql:// URL`));
      else if (s !== undefined) out.postgresUrl = s;
    }
  }
  for (const [i, iss] of (raw.oauth.resourceServer?.issuers ?? []).entries()) {
    if (iss.introspection === undefined) continue;
    const s = await use(['oauth', 'resourceServer', 'issuers', i, 'introspection', 'clientSecret'], iss.introspection.clientSecret, 'env');
    if (s !== undefined) out.oauthSecrets.set(`introspection:${i}`, s);
  }
  for (const [name, p] of Object.entries(raw.oauth.providers)) {
    if (p.clientSecret === undefined) continue;
    const s = await use(['oauth', 'providers', name, 'clientSecret'], p.clientSecret, 'env');
    if (s !== undefined) out.oauthSecrets.set(`provider:${name}`, s);
  }
  if (errors.length > 0) throw issuesError('ERR_CONFIG_SECRET_REF', parsed.file, errors);
  return out;
}

/** Resolves one `env:NAME` or `file:PATH` reference; `why` names the reference, never a value. */
async function resolveRef(ref: string, dir: string, env: Readonly<Record<string, string | undefined>>): Promise<RefOutcome> {
  if (ref.startsWith('env:')) {
    const name = ref.slice('env:'.length);
    const value = Object.hasOwn(env, name) ? env[name] : undefined;
    return typeof value === 'string' ? { ok: true, value } : { ok: false, why: `${ref} is not set` };
  }
  const path = resolve(dir, ref.slice('file:'.length));
  try {
    const st = await stat(path);
    if (!st.isFile()) return { ok: false, why: `${ref} is not a file` };
    if (st.size > MAX_SECRET_FILE_BYTES) return { ok: false, why: `${ref} is larger than ${MAX_SECRET_FILE_BYTES} bytes` };
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(path));
    return { ok: true, value: text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text };
  } catch (err) {
    return { ok: false, why: `${ref} could not be read (${err instanceof TypeError ? 'not UTF-8' : errnoOf(err)})` };
  }
}

/** Why a resolved value cannot serve as `kind`, or undefined. Never includes the value. */
function unusableValue(ref: string, value: string, kind: RefUse): string | undefined {
  if (kind === 'agent-key' || kind === 'admin-key') {
    if ([...value].length < MIN_KEY_CHARS) return `${ref} resolves to a key shorter than ${MIN_KEY_CHARS} characters`;
    if (/[\u0000-\u0020\u007f]/.test(value)) return `${ref} resolves to a key holding whitespace or control characters`;
  }
  if (kind === 'header' && /[\r\n\u0000]/.test(value)) return `${ref} resolves to a value holding a line break or NUL`;
  if (kind === 'env' && value.includes('\u0000')) return `${ref} resolves to a value holding NUL`;
  return undefined;
}

// ---------------------------------------------------------------------------
// Resolution

function buildResolved(raw: RawConfig, file: string, dir: string, policies: CedarFile[], secrets: ResolvedSecrets, userJwks?: { keys: Record<string, unknown>[] }): ResolvedConfig {
  const sandbox = resolveSandbox(
    raw.sandbox,
    // Default: under the system's temporary folder, which the sandbox's unprivileged user can reach
    // (a store folder is private to Bastion), one folder per config file.
    raw.sandbox.workspaces !== undefined ? resolve(dir, raw.sandbox.workspaces) : join(tmpdir(), `bastion-workspaces-${createHash('sha256').update(file).digest('hex').slice(0, 12)}`),
  );
  const agents = new Map<string, ResolvedAgent>();
  for (const [name, a] of Object.entries(raw.agents)) {
    const k = secrets.agentKeys.get(name);
    agents.set(name, {
      name,
      keys: k?.keys ?? [],
      unresolvedKeyRefs: k?.unresolved ?? [],
      tools: unique([...a.tools, ...a.skillsets.flatMap((set) => raw.skillsets[set] ?? [])]),
      skillsets: [...a.skillsets],
      deny: [...a.deny],
      approve: [...a.approve],
      resources: [...a.resources],
      prompts: [...a.prompts],
      secrets: [...a.secrets],
      oauth: [...a.oauth],
      labels: Object.entries(a.labels).map(([pattern, l]) => ({ pattern, ...(l.source !== undefined ? { source: l.source } : {}), ...(l.effect !== undefined ? { effect: [...new Set(l.effect)] } : {}) })),
      guards: [
        ...a.approveWhen.map((g, i) => resolveGuard(`agents.${name}.approveWhen[${i}]`, g, 'approve')),
        ...a.denyWhen.map((g, i) => resolveGuard(`agents.${name}.denyWhen[${i}]`, g, 'deny')),
      ],
      limits: a.limits.map((l, i) => ({ id: `agents.${name}.limits[${i}]`, tool: l.tool, ...(l.calls !== undefined ? { calls: l.calls } : {}), ...(l.bytes !== undefined ? { bytes: l.bytes } : {}), fallback: l.fallback })),
      trustedValues: [...a.trustedValues],
      network: a.network.map((rule, i) => resolveNetworkRule(`agents.${name}.network[${i}]`, rule)),
      ...(a.unsafeAllowPrivate ? { unsafeAllowPrivate: { hosts: a.unsafeAllowPrivate.hosts.map(normalizeHost), ranges: [...a.unsafeAllowPrivate.ranges] } } : {}),
      scope: a.scope,
      isolateUsers: a.isolateUsers,
      sandbox: resolveAgentSandbox(a.sandbox, sandbox),
      ...(a.model
        ? {
            model: {
              provider: a.model.provider,
              baseUrl: new URL(a.model.baseUrl.replace(/\/+$/, '')),
              ...(a.model.secret !== undefined ? { secret: a.model.secret } : {}),
              timeoutMs: a.model.timeoutMs,
            },
          }
        : {}),
      ...(a.supervisor
        ? {
            supervisor: {
              baseUrl: new URL(a.supervisor.baseUrl.replace(/\/+$/, '')),
              model: a.supervisor.model,
              ...(a.supervisor.secret !== undefined ? { secret: a.supervisor.secret } : {}),
              mode: a.supervisor.mode,
              timeoutMs: a.supervisor.timeoutMs,
            },
          }
        : {}),
    });
  }
  const secretMeta = new Map<string, ResolvedSecretMeta>();
  for (const [name, m] of Object.entries(raw.secrets)) {
    secretMeta.set(name, {
      name,
      ...(m.hosts !== undefined ? { hosts: m.hosts.map(normalizeHost) } : {}),
      ...(m.unsafeAllowSharedSuffix === true ? { unsafeAllowSharedSuffix: true as const } : {}),
      ...(m.ports !== undefined ? { ports: [...m.ports] } : {}),
      ...(m.swapIn !== undefined ? { swapIn: [...new Set(m.swapIn)] } : {}),
      ...(m.description !== undefined ? { description: m.description } : {}),
    });
  }
  const upstreams = new Map<string, ResolvedUpstream>();
  for (const [name, u] of Object.entries(raw.upstreams)) {
    upstreams.set(name, {
      name,
      kind: u.command !== undefined ? 'stdio' : 'http',
      ...(u.command !== undefined ? { command: u.command } : {}),
      args: [...u.args],
      cwd: dir,
      env: secrets.upstreamEnv.get(name) ?? {},
      placeholderEnv: Object.fromEntries(Object.entries(u.env).filter(([, ref]) => ref.startsWith('vault:')).map(([k, ref]) => [k, ref.slice('vault:'.length)])),
      ...(u.url !== undefined ? { url: new URL(u.url) } : {}),
      headers: secrets.upstreamHeaders.get(name) ?? {},
      prefix: u.prefix,
      signContext: u.signContext,
      ...(u.token !== undefined && u.token !== false ? { token: resolveCallToken(u.token) } : {}),
      secretHosts: u.secretHosts !== undefined ? u.secretHosts.map(normalizeHost) : u.url !== undefined ? [normalizeHost(new URL(u.url).hostname)] : [],
      ...(u.workspace !== undefined ? { workspace: resolve(dir, u.workspace) } : {}),
      pathGuard: u.pathGuard ?? (u.workspace !== undefined ? 'strict' : 'named'),
      ...(Object.keys(u.argumentKinds).length > 0 ? { argumentKinds: u.argumentKinds } : {}),
      timeoutMs: u.timeoutMs,
      connectTimeoutMs: u.connectTimeoutMs,
      revision: u.revision,
      ...(u.oauth !== undefined ? { oauth: u.oauth } : {}),
    });
  }
  return {
    file,
    dir,
    raw,
    server: resolveServer(raw.server),
    store:
      raw.store.sqlite !== undefined
        ? { kind: 'sqlite', path: resolve(dir, raw.store.sqlite) }
        : { kind: 'postgres', url: secrets.postgresUrl, ref: /^postgres(ql)?:\/\//.test(raw.store.postgres ?? '') ? 'store.postgres' : (raw.store.postgres ?? '') },
    storePath: raw.store.sqlite !== undefined ? resolve(dir, raw.store.sqlite) : undefined,
    agents,
    upstreams,
    paths: {
      allow: raw.paths.allow.map((g) => resolveGlob(dir, g)),
      deny: raw.paths.deny.map((g) => resolveGlob(dir, g)),
      argumentNames: [...raw.paths.argumentNames],
      base: dir,
    },
    approvals: { timeoutMs: raw.approvals.timeoutMs, reuseTtlMs: raw.approvals.reuseTtlMs, progressMs: raw.approvals.progressMs },
    audit: {
      checkpointEvery: raw.audit.checkpointEvery,
      recordArguments: raw.audit.recordArguments,
      ...(raw.audit.retention === undefined ? {} : { retention: resolveRetention(raw.audit.retention) }),
      ...(raw.audit.witness === undefined
        ? {}
        : {
            witness: {
              ...(raw.audit.witness.file === undefined ? {} : { file: resolve(dir, raw.audit.witness.file) }),
              ...(raw.audit.witness.webhook === undefined ? {} : { webhook: raw.audit.witness.webhook }),
            },
          }),
    },
    output: { maxResultBytes: raw.output.maxResultBytes, redactSecrets: raw.output.redactSecrets },
    adminKeys: secrets.adminKeys,
    adminKeyIds: secrets.adminKeyIds,
    policies,
    secrets: secretMeta,
    vault: { keyFile: resolve(dir, raw.vault.keyFile), rotationGraceMs: raw.vault.rotationGraceMs },
    tools: Object.entries(raw.tools).map(([pattern, m]) => ({
      pattern,
      scope: m.scope,
      crossUser: m.crossUser,
      ...(m.source !== undefined ? { source: m.source } : {}),
      ...(m.effect !== undefined ? { effect: [...new Set(m.effect)] } : {}),
    })),
    modelDoor: raw.modelDoor,
    ...(raw.redis && secrets.redisUrl ? { redis: { url: secrets.redisUrl, keyPrefix: raw.redis.keyPrefix } } : {}),
    alerts: {
      minSeverity: raw.alerts.minSeverity,
      ...(raw.alerts.publicUrl !== undefined ? { publicUrl: raw.alerts.publicUrl } : {}),
      ...(raw.alerts.webhook ? { webhook: { url: raw.alerts.webhook.url, headers: secrets.alertHeaders, ...(raw.alerts.webhook.events ? { events: [...raw.alerts.webhook.events] } : {}) } } : {}),
      ...(raw.alerts.slack && secrets.slackUrl ? { slack: { url: secrets.slackUrl, ...(raw.alerts.slack.events ? { events: [...raw.alerts.slack.events] } : {}) } } : {}),
      ...(raw.alerts.email
        ? {
            email: {
              host: raw.alerts.email.host,
              port: raw.alerts.email.port,
              ...(raw.alerts.email.secure !== undefined ? { secure: raw.alerts.email.secure } : {}),
              ...(raw.alerts.email.user !== undefined ? { user: raw.alerts.email.user } : {}),
              ...(secrets.smtpPassword ? { password: secrets.smtpPassword } : {}),
              from: raw.alerts.email.from,
              to: [...raw.alerts.email.to],
              ...(raw.alerts.email.events ? { events: [...raw.alerts.email.events] } : {}),
            },
          }
        : {}),
    },
    observability: {
      metrics: { ...raw.observability.metrics },
      logs: { ...raw.observability.logs },
      ...(raw.observability.otlp ? { otlp: { endpoint: raw.observability.otlp.endpoint, headers: secrets.otlpHeaders, serviceName: raw.observability.otlp.serviceName } } : {}),
    },
    egress: {
      ...raw.egress,
      staticHosts: Object.fromEntries(Object.entries(raw.egress.staticHosts).map(([h, a]) => [normalizeHost(h), a.map((x) => normalizeHost(x))])),
    },
    abilities: new Map(Object.entries(raw.abilities).map(([name, a]) => [name, resolveAbility(name, a)])),
    skillsets: new Map(Object.entries(raw.skillsets).map(([name, list]) => [name, [...list]])),
    pinning: { ...raw.pinning },
    anomalies: resolveAnomalies(raw.anomalies),
    sandbox,
    provenance: { ...raw.provenance },
    identity: { ...raw.identity },
    users: resolveUsers(raw.users, userJwks),
    oauth: resolveOAuth(raw.oauth, secrets.oauthSecrets),
    ...(raw.a2a
      ? {
          a2a: {
            maxAgeS: raw.a2a.maxAgeS,
            maxMessageBytes: raw.a2a.maxMessageBytes,
            agents: new Map(
              Object.entries(raw.a2a.agents).map(([name, a]) => [
                name,
                { peers: [...a.peers], receiveFrom: [...a.receiveFrom], ...(a.deliver !== undefined ? { deliver: new URL(a.deliver) } : {}) },
              ]),
            ),
            nonceStore: raw.a2a.nonceStore ?? (raw.redis ? 'redis' : 'store'),
          },
        }
      : {}),
  };
}

function resolveCallToken(t: RawCallToken): ResolvedCallToken {
  if (t === true || t === false) return { lifetimeS: DEFAULTS.callTokenLifetimeS, header: 'Authorization' };
  return { lifetimeS: t.lifetimeS, header: t.header, ...(t.audience !== undefined ? { audience: t.audience } : {}) };
}

function resolveAbility(name: string, a: RawAbility): ResolvedAbility {
  const origin = abilityOrigin(a.url) as string; // checked in semanticIssues
  return {
    name,
    description: a.description,
    method: a.method,
    url: a.url,
    origin,
    host: normalizeHost(new URL(origin).hostname),
    params: { ...a.params, additionalProperties: false },
    headers: { ...a.headers },
    ...(a.body !== undefined ? { body: a.body } : {}),
    ...(a.secret !== undefined ? { secret: a.secret } : {}),
    ...(a.oauth !== undefined ? { oauth: a.oauth } : {}),
    signContext: a.signContext,
    ...(a.token !== undefined && a.token !== false ? { token: resolveCallToken(a.token) } : {}),
    response: { ...(a.response.select ? { select: [...a.response.select] } : {}), ...(a.response.js !== undefined ? { js: a.response.js } : {}), maxBytes: a.response.maxBytes },
    timeoutMs: a.timeoutMs,
  };
}


/** `agents.X.approveWhen[i]` / `denyWhen[i]` as resolved: lists for one-or-many keys, host patterns normalized, the fallback defaulted. */
function resolveGuard(id: string, g: RawAgent['approveWhen'][number], fallback: GuardFallback): ResolvedGuard {
  const list = <T>(v: T | readonly T[] | undefined): readonly T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? [...new Set(v as readonly T[])] : [v as T]);
  const tool = list(g.tool);
  const effect = list(g.effect);
  const argsFrom = list(g.argsFrom);
  return {
    id,
    ...(tool !== undefined ? { tool } : {}),
    ...(effect !== undefined ? { effect } : {}),
    ...(g.source !== undefined ? { source: g.source } : {}),
    ...(argsFrom !== undefined ? { argsFrom } : {}),
    ...(g.tainted !== undefined ? { tainted: g.tainted } : {}),
    ...(g.flagged !== undefined ? { flagged: g.flagged } : {}),
    ...(g.hostNotIn !== undefined ? { hostNotIn: g.hostNotIn.map((h) => h.toLowerCase()) } : {}),
    ...(g.recipientNotIn !== undefined ? { recipientNotIn: g.recipientNotIn.map((r) => r.toLowerCase()) } : {}),
    fallback: g.fallback ?? fallback,
  };
}

/** Default ports of an allowlist entry that names none: HTTP and HTTPS. */
const DEFAULT_EGRESS_PORTS: readonly number[] = [80, 443];

function resolveNetworkRule(id: string, rule: RawNetworkRule): ResolvedNetworkRule {
  if (typeof rule === 'string') {
    // Validated in semanticIssues.
    const hp = splitHostPort(rule) as { host: string; port?: number };
    return { id, host: normalizeHost(hp.host), ports: hp.port !== undefined ? [hp.port] : DEFAULT_EGRESS_PORTS };
  }
  return {
    id,
    host: normalizeHost(rule.host),
    ports: rule.ports !== undefined ? unique(rule.ports) : DEFAULT_EGRESS_PORTS,
    ...(rule.methods !== undefined ? { methods: unique(rule.methods) } : {}),
    ...(rule.paths !== undefined ? { paths: unique(rule.paths) } : {}),
  };
}

function isCidr(text: string): boolean {
  try {
    ipaddr.parseCIDR(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * `listen` split into host (IPv6 without brackets) and port, with the Host and
 * Origin allowlists (DNS-rebinding protection) defaulted from it.
 */
function resolveServer(s: RawConfig['server']): ResolvedServer {
  const colon = s.listen.lastIndexOf(':');
  const hostPart = s.listen.slice(0, colon).toLowerCase();
  const { host, port } = splitListen(s.listen);
  const defaultHosts = [hostPart, 'localhost', '127.0.0.1', '[::1]'];
  // Clients omit the port from Host when it is the scheme's default (RFC 9110 §7.2).
  const defaults = [...defaultHosts.map((h) => `${h}:${port}`), ...(port === 80 ? defaultHosts : [])];
  const allowedHosts = unique((s.allowedHosts ?? defaults).map((h) => h.toLowerCase()));
  const allowedOrigins = unique(s.allowedOrigins !== undefined ? s.allowedOrigins.map((o) => new URL(o).origin) : allowedHosts.map((h) => `http://${h}`));
  return {
    host,
    port,
    allowedHosts,
    allowedOrigins,
    maxBodyBytes: s.maxBodyBytes,
    bodyTimeoutMs: s.bodyTimeoutMs,
    sessionIdleMs: s.sessionIdleMs,
    maxSessions: s.maxSessions,
    sessions: { ...s.sessions, maxPerAgent: Math.min(s.sessions.maxPerAgent, s.maxSessions) },
    headersTimeoutMs: s.headersTimeoutMs,
    requestTimeoutMs: s.requestTimeoutMs,
    cacheTtlMs: s.cacheTtlMs,
    egress: s.egress === false ? undefined : splitListen(s.egress),
  };
}

/** A validated `host:port` listen address split; IPv6 hosts without brackets. */
function splitListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  const hostPart = listen.slice(0, colon).toLowerCase();
  return { host: hostPart.startsWith('[') ? hostPart.slice(1, -1) : hostPart, port: Number(listen.slice(colon + 1)) };
}

/**
 * A relative path glob made absolute against `dir`; absolute globs and globs
 * starting with `**` (any depth) are kept. `dir` is escaped so that glob
 * characters in the folder name match literally.
 */
function resolveGlob(dir: string, glob: string): string {
  if (glob.startsWith('**') || isAbsolute(glob)) return glob;
  // Leading ../ segments climb from dir; the rest is kept as a glob.
  let rest = posix.normalize(glob);
  let base = process.platform === 'win32' ? dir.replaceAll('\\', '/') : dir;
  while (rest === '..' || rest.startsWith('../')) {
    rest = rest.slice(3);
    base = posix.dirname(base);
  }
  const escaped = base.replace(/[\\*?[\]{}()!+@|]/g, '\\$&');
  if (rest === '' || rest === '.') return escaped;
  return escaped.endsWith('/') ? `${escaped}${rest}` : `${escaped}/${rest}`;
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

// ---------------------------------------------------------------------------
// Freezing

function immutable(): never {
  throw new TypeError('the resolved config is immutable');
}

/**
 * Freezes `value` and everything reachable through plain objects, arrays and
 * Maps. A Map's mutators are replaced by ones that throw, since `Object.freeze`
 * alone leaves `set` working. Secrets and URLs are frozen shallowly.
 */
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
    Object.defineProperties(value, { set: { value: immutable }, delete: { value: immutable }, clear: { value: immutable } });
  } else if (!(value instanceof Secret) && !(value instanceof URL)) {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return Object.freeze(value);
}

/**
 * Label patterns (`tools.P` with `source`/`effect`, `agents.X.labels.P`) that can
 * name no tool: their fixed start is no ability's name and no prefixed
 * upstream's `<name>__`. Probably a typo, and then the tools it meant stay
 * strictly labelled: warned. (With an unprefixed upstream any name may exist: no warning.)
 */
function labelPatternIssues(raw: RawConfig, issueAt: (path: PathKey[], message: string) => ConfigIssue): ConfigIssue[] {
  if (Object.values(raw.upstreams).some((u) => !u.prefix)) return [];
  const known = [...Object.keys(raw.abilities), ...Object.keys(raw.upstreams).map((n) => `${n}__`)];
  const plausible = (pattern: string): boolean => {
    const fixed = pattern.split('*')[0] as string;
    return pattern.includes('*') ? known.some((k) => k.startsWith(fixed) || fixed.startsWith(k)) : known.some((k) => pattern === k || (k.endsWith('__') && pattern.startsWith(k)));
  };
  const out: ConfigIssue[] = [];
  for (const [pattern, m] of Object.entries(raw.tools)) {
    if ((m.source !== undefined || m.effect !== undefined) && !plausible(pattern)) out.push(issueAt(['tools', pattern], `label pattern ${pattern} names no upstream (<name>__) or ability: the tools it meant stay strictly labelled`));
  }
  for (const [agent, a] of Object.entries(raw.agents)) {
    for (const pattern of Object.keys(a.labels)) {
      if (!plausible(pattern)) out.push(issueAt(['agents', agent, 'labels', pattern], `label pattern ${pattern} names no upstream (<name>__) or ability: the tools it meant stay strictly labelled`));
    }
  }
  return out;
}

/** The runtime form of `oauth`: secrets resolved, the redirect URI fixed. */
function resolveOAuth(raw: RawConfig['oauth'], secrets: ReadonlyMap<string, Secret>): ResolvedConfig['oauth'] {
  const rs = raw.resourceServer;
  const providers = new Map(
    Object.entries(raw.providers).map(([name, p]) => {
      const secret = secrets.get(`provider:${name}`);
      return [
        name,
        {
          name,
          issuer: p.issuer,
          clientId: p.clientId,
          ...(secret !== undefined ? { clientSecret: secret } : {}),
          clientAuth: p.clientAuth ?? (p.clientSecret !== undefined ? 'client_secret_basic' : 'none'),
          scopes: [...p.scopes],
          ...(p.resource !== undefined ? { resource: p.resource } : {}),
          hosts: p.hosts.map(normalizeHost),
        } as const,
      ];
    }),
  );
  return {
    ...(rs !== undefined
      ? {
          resourceServer: {
            resource: rs.resource,
            ...(rs.resourceName !== undefined ? { resourceName: rs.resourceName } : {}),
            ...(rs.scopesSupported !== undefined ? { scopesSupported: [...rs.scopesSupported] } : {}),
            requiredScopes: [...rs.requiredScopes],
            agentClaim: rs.agentClaim,
            agents: { ...rs.agents },
            userClaim: rs.userClaim,
            issuers: rs.issuers.map((iss, i) => {
              const secret = secrets.get(`introspection:${i}`);
              return {
                issuer: iss.issuer,
                ...(iss.jwksUri !== undefined ? { jwksUri: iss.jwksUri } : {}),
                ...(iss.audience !== undefined ? { audience: iss.audience } : {}),
                ...(iss.introspection !== undefined && secret !== undefined ? { introspection: { endpoint: iss.introspection.endpoint, clientId: iss.introspection.clientId, clientSecret: secret } } : {}),
              };
            }),
          },
        }
      : {}),
    ...(raw.callbackBase !== undefined ? { redirectUri: new URL('/oauth/callback', raw.callbackBase).href } : {}),
    providers,
  };
}

/** The runtime form of `users`. */
function resolveUsers(raw: RawConfig['users'], jwksFile: { keys: Record<string, unknown>[] } | undefined): ResolvedUsers {
  const t = raw.token;
  if (t === undefined) return { require: raw.require };
  const jwks = t.jwksUrl !== undefined ? { url: t.jwksUrl } : { keys: jwksFile ?? { keys: [] } };
  return {
    require: raw.require,
    token: {
      header: t.header.toLowerCase(),
      issuer: t.issuer,
      audience: typeof t.audience === 'string' ? t.audience : [...t.audience],
      jwks,
      algorithms: [...t.algorithms],
      claim: t.claim,
      clockToleranceS: t.clockToleranceS,
      ...(t.maxAgeS !== undefined ? { maxAgeS: t.maxAgeS } : {}),
    },
  };
}

/** `audit.retention` in ms per class (the schema has checked each duration's form). */
function resolveRetention(raw: Readonly<Record<string, string | undefined>>): RetentionPolicy {
  const out: Record<string, number> = {};
  for (const [cls, text] of Object.entries(raw)) if (text !== undefined) out[cls] = parseRetention(text, `audit.retention.${cls}`);
  return out;
}
