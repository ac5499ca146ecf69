/**
 * SSRF inputs through the network door, shared by the owned vectors
 * (test/egress/ssrf-vectors.test.ts) and the third-party corpus
 * (test/corpora/ssrf-door.corpus.ts): `bastion egress check` run in-process,
 * and the proxy asked over a raw socket by an agent with an empty allowlist.
 */
import { egressCheck } from '../../src/cli/commands/egress-check.ts';
import type { CliIO } from '../../src/cli/io.ts';
import { toTargetUrl } from '../../src/egress/ssrf-classify.ts';
import { proxyAuth, rawExchange, reasonOf, startEgress, statusOf, type TestEgress } from './egress.ts';

/** A CliIO that keeps stdout in `out` and drops stderr, with an empty env, run in `cwd`. */
export function capturingIo(cwd: string): CliIO & { out: string[] } {
  const out: string[] = [];
  return { out, stdout: (t) => out.push(t), stderr: () => undefined, env: {}, cwd };
}

/**
 * Runs `bastion egress check <input> --json` in-process in `cwd`. Resolves with
 * the exit code, effect and reason, and whether that agrees with `expected`:
 * the same verdict (`block` for any refusal), exit 0 for allow and 1 for a
 * refusal, and a refusal's reason starting `ssrf.`.
 */
export async function egressCheckAgrees(input: string, expected: 'allow' | 'block', cwd: string): Promise<{ ok: boolean; code: number; effect: string; reason: string }> {
  const cli = capturingIo(cwd);
  const code = await egressCheck([input, '--json'], cli);
  const { effect, reason } = JSON.parse(cli.out.join('')) as { effect: string; reason: string };
  const got = effect === 'allow' ? 'allow' : 'block';
  const ok = got === expected && code === (got === 'allow' ? 0 : 1) && (got === 'allow' || reason.startsWith('ssrf.'));
  return { ok, code, effect, reason };
}

/** A gateway (network door on an ephemeral port) whose one agent, key EGRESS_KEY, has an empty allowlist: nothing it asks for is permitted by policy. */
function startEmptyAllowlistEgress(): Promise<TestEgress> {
  return startEgress(`version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
agents:
  demo:
    keys: [env:EGRESS_KEY]
`);
}

/** The request a client would send the proxy for an SSRF input: CONNECT for https, absolute-form otherwise (an unparsable target as written, minus line breaks a socket cannot carry). */
export function proxyRequestFor(input: string): string {
  const text = toTargetUrl(input);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  const auth = `Proxy-Authorization: ${proxyAuth()}\r\n`;
  if (url?.protocol === 'https:') return `CONNECT ${url.hostname}:${url.port || 443} HTTP/1.1\r\n${auth}\r\n`;
  return `GET ${url?.href ?? text.replace(/[\r\n]/g, '')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}\r\n`;
}

/**
 * Starts a gateway whose one agent has an empty allowlist, sends each input's
 * request to its proxy, 16 sockets at a time (each answer closes or is read
 * within 1.5 s), closes it, and reads each answer as the SSRF guard's verdict:
 * `allow` when it passed the guard and met the empty allowlist (403
 * `policy.no_permit`), `block` when the guard refused it (403 `ssrf.…`) or it
 * was malformed (400), `other` otherwise. Nothing connects anywhere.
 */
export async function proxyVerdicts(inputs: readonly string[]): Promise<{ verdict: 'allow' | 'block' | 'other'; status: number; reason: string }[]> {
  const eg = await startEmptyAllowlistEgress();
  const raws: string[] = [];
  try {
    const port = Number(eg.proxyUrl.port);
    for (let i = 0; i < inputs.length; i += 16) {
      raws.push(...(await Promise.all(inputs.slice(i, i + 16).map((input) => rawExchange(port, [proxyRequestFor(input)], { timeoutMs: 1_500 })))));
    }
  } finally {
    await eg.close();
  }
  return raws.map((raw) => {
    const status = statusOf(raw);
    const reason = reasonOf(raw) ?? '';
    const verdict = status === 403 && reason === 'policy.no_permit' ? 'allow' : (status === 403 && reason.startsWith('ssrf.')) || status === 400 ? 'block' : 'other';
    return { verdict, status, reason };
  });
}
