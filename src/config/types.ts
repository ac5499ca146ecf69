/**
 * The resolved, immutable runtime form of the config that `loadConfig` returns.
 * Secret references are resolved to {@link Secret}s, paths are absolute, and
 * defaults are filled in. Requests never look at the raw YAML again.
 */
import type { Secret } from '../util/secret.ts';
import type { RawConfig } from './schema.ts';

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
}

export interface ResolvedAgent {
  readonly name: string;
  /** Keys that resolved. */
  readonly keys: readonly Secret[];
  /** References that did not resolve (env unset): the demo-key flow may generate a key for such an agent. */
  readonly unresolvedKeyRefs: readonly string[];
  readonly tools: readonly string[];
  readonly deny: readonly string[];
  readonly approve: readonly string[];
  readonly resources: readonly string[];
  readonly prompts: readonly string[];
}

export interface ResolvedUpstream {
  readonly name: string;
  readonly kind: 'stdio' | 'http';
  readonly command?: string;
  readonly args: readonly string[];
  /** Working directory of a stdio upstream: the config file's folder. */
  readonly cwd: string;
  readonly env: Readonly<Record<string, Secret>>;
  readonly url?: URL;
  readonly headers: Readonly<Record<string, Secret>>;
  readonly prefix: boolean;
  /** Absolute folder that relative path arguments to this upstream's tools resolve against; undefined: they are refused. */
  readonly workspace?: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
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

export interface ResolvedConfig {
  /** Absolute path of the config file. */
  readonly file: string;
  /** Its folder: relative paths in the config resolve against it. */
  readonly dir: string;
  /** The validated raw config (secret references unresolved). */
  readonly raw: RawConfig;
  readonly server: ResolvedServer;
  /** Absolute path of the SQLite database. */
  readonly storePath: string;
  readonly agents: ReadonlyMap<string, ResolvedAgent>;
  readonly upstreams: ReadonlyMap<string, ResolvedUpstream>;
  readonly paths: ResolvedPaths;
  readonly approvals: { readonly timeoutMs: number; readonly reuseTtlMs: number; readonly progressMs: number };
  readonly audit: { readonly checkpointEvery: number; readonly recordArguments: 'none' | 'redacted' };
  readonly output: { readonly maxResultBytes: number; readonly redactSecrets: boolean };
  readonly adminKeys: readonly Secret[];
  /** Hand-written Cedar policy files, read. */
  readonly policies: readonly CedarFile[];
}
