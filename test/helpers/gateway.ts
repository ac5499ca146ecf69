/**
 * Starts a real gateway (config file on disk, SQLite store, HTTP on an
 * ephemeral loopback port) for end-to-end tests, and an official SDK client
 * connected to it.
 */
import { mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { loadConfig } from '../../src/config/load.ts';
import type { ResolvedConfig } from '../../src/config/types.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import type { Kek } from '../../src/vault/kek.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const NODE = process.execPath;

export interface TestGateway {
  readonly dir: string;
  readonly configFile: string;
  readonly gateway: Gateway;
  readonly running: RunningServer;
  readonly url: URL;
  close(): Promise<void>;
}

const created: string[] = [];
// Removed when the test process exits (each test file runs in its own process).
process.once('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh temp folder with the given files, inside the repo's git-ignored `.bastion/`
 * so that `npx <package>` in a config there resolves the repo's installed packages,
 * exactly as the quickstart does (outside the repo npx would go to the registry).
 */
export function tempDir(files: Record<string, string> = {}): string {
  const base = join(ROOT, '.bastion', 'test-tmp');
  mkdirSync(base, { recursive: true });
  const dir = realpathSync(mkdtempSync(join(base, 'gw-')));
  created.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
  }
  return dir;
}

/** Writes `yaml` as `dir/bastion.yaml` and loads it strictly, with `env` over `process.env`. */
export async function writeAndLoadConfig(dir: string, yaml: string, env: Record<string, string>): Promise<{ configFile: string; config: ResolvedConfig }> {
  const configFile = join(dir, 'bastion.yaml');
  writeFileSync(configFile, yaml);
  const { config } = await loadConfig(configFile, { env: { ...process.env, ...env }, secrets: 'strict' });
  return { configFile, config };
}

/**
 * Writes `yaml` as `dir/bastion.yaml`, loads it strictly with `env`, opens the gateway (with the vault
 * when `opts.kek` is given) and listens on 127.0.0.1:`opts.port` (default 0: any free port).
 */
export async function startGateway(dir: string, yaml: string, env: Record<string, string>, opts: { port?: number; kek?: Kek } = {}): Promise<TestGateway> {
  const { configFile, config } = await writeAndLoadConfig(dir, yaml, env);
  const { gateway } = await Gateway.open(config, opts.kek ? { kek: opts.kek } : {});
  const running = await startHttpServer(gateway, { host: '127.0.0.1', port: opts.port ?? 0 });
  return {
    dir,
    configFile,
    gateway,
    running,
    url: running.url,
    close: async () => {
      await running.close();
      await gateway.close();
    },
  };
}

/** The official SDK client over Streamable HTTP with a bearer key. */
export async function connect(url: URL, key: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'bastion-test', version: '1.0.0' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  return client;
}

/**
 * The `upstreams:` block for the deliberately misbehaving fixture (test/fixtures/bad-upstream.ts),
 * as upstream `bad`, ready to end a test config.
 */
export const BAD_UPSTREAM_YAML = `upstreams:
  bad:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(join(ROOT, 'test/fixtures/bad-upstream.ts'))}]
`;

/** A key long enough to be accepted. */
export const TEST_KEY = 'test-key-0123456789abcdef-agent';
export const OTHER_KEY = 'test-key-0123456789abcdef-other';

/**
 * A config with two agents on the bad upstream: `a` (key `env:T_KEY`; tools `bad__echo`, `bad__hang`)
 * and `b` (key `env:O_KEY`; tool `bad__echo`), a SQLite store, and `server` lines (each indented two
 * spaces) after `listen: 127.0.0.1:0`. Start it with `{ T_KEY: TEST_KEY, O_KEY: OTHER_KEY }`.
 */
export function twoAgentsYaml(server: string): string {
  return `version: 1
server:
  listen: 127.0.0.1:0
${server}
store:
  sqlite: ./bastion.db
agents:
  a:
    keys: [env:T_KEY]
    tools: ["bad__echo", "bad__hang"]
  b:
    keys: [env:O_KEY]
    tools: ["bad__echo"]
${BAD_UPSTREAM_YAML}`;
}
