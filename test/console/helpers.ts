/**
 * Shared setup of the console tests: a gateway with named and unnamed admin
 * keys, an agent whose `bad__echo` calls are held for approval, and a small
 * client for `/console/api/` that keeps the session cookie and CSRF token.
 */
import { BAD_UPSTREAM_YAML } from '../helpers/gateway.ts';

export const ADMIN_KEY = 'admin-key-0123456789abcdefghij';
export const ALICE_KEY = 'alice-key-0123456789abcdefghij';

/**
 * The config: admin keys (plain, and `alice`), agent `demo` with `bad__echo` held for approval
 * (`demo`: the agent's permission lines, each indented four spaces); `extra` appended (top-level YAML).
 */
export function consoleYaml(server: string[] = [], extra = '', demo: string[] = ['approve: ["bad__echo"]']): string {
  return `version: 1
server:
  listen: 127.0.0.1:0
${server.map((l) => `  ${l}\n`).join('')}store:
  sqlite: ./bastion.db
admin:
  keys:
    - env:T_ADMIN
    - id: alice
      key: env:T_ALICE
agents:
  demo:
    keys: [env:T_KEY]
${demo.map((l) => `    ${l}\n`).join('')}${BAD_UPSTREAM_YAML}approvals:
  timeoutMs: 30000
${extra}`;
}

/** A signed-in console client: the cookie and CSRF token of one session. */
export interface ConsoleClient {
  readonly cookie: string;
  readonly csrf: string;
  readonly setCookie: string;
  readonly admin: string;
  get(path: string): Promise<Response>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

/** Signs in with `key`; throws when sign-in does not answer 200. */
export async function signIn(base: URL, key: string, headers: Record<string, string> = {}): Promise<ConsoleClient> {
  const res = await fetch(new URL('/console/api/sign-in', base), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ key }) });
  if (res.status !== 200) throw new Error(`sign-in answered ${res.status}`);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  const body = (await res.json()) as { csrf: string; admin: string };
  return {
    cookie,
    csrf: body.csrf,
    setCookie,
    admin: body.admin,
    get: (path) => fetch(new URL(path, base), { headers: { cookie } }),
    post: (path, b = {}, h = {}) =>
      fetch(new URL(path, base), { method: 'POST', headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': body.csrf, ...h }, body: JSON.stringify(b) }),
  };
}
