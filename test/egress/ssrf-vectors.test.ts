/**
 * The project's own SSRF vectors (test/egress/ssrf-vectors.json) through the
 * network door, as test/corpora/ssrf-door.corpus.ts does with the third-party
 * corpus: every vector decidable without DNS gets its decision and exit code from
 * `bastion egress check` (in-process), and the proxy refuses blocked ones with an
 * `ssrf.` reason (or 400) while allowed ones pass the guard and meet the empty
 * allowlist (`policy.no_permit`), over a raw socket. Nothing connects anywhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { egressCheck } from '../../src/cli/commands/egress-check.ts';
import type { CliIO } from '../../src/cli/io.ts';
import { toTargetUrl } from '../../src/egress/ssrf-classify.ts';
import { proxyAuth, rawExchange, reasonOf, startEgress, statusOf, type TestEgress } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';
import VECTORS_JSON from './ssrf-vectors.json' with { type: 'json' };

interface Vector {
  input: string;
  kind: 'url' | 'host' | 'ip';
  expect: 'allow' | 'block' | 'resolve';
  why: string;
}
/** Names are decided after DNS: never resolved here. */
const DECIDABLE = (VECTORS_JSON as Vector[]).filter((v) => v.expect !== 'resolve');

function io(cwd: string): CliIO & { out: string[] } {
  const out: string[] = [];
  return { out, stdout: (t) => out.push(t), stderr: () => undefined, env: {}, cwd };
}

describe('owned SSRF vectors through the network door', () => {
  const cwd = tempDir();

  test('bastion egress check: every vector gets its decision, exit code and an ssrf. reason when refused', async () => {
    assert.ok(DECIDABLE.length >= 50);
    const wrong: string[] = [];
    for (const v of DECIDABLE) {
      const cli = io(cwd);
      const code = await egressCheck([v.input, '--json'], cli);
      const result = JSON.parse(cli.out.join('')) as { effect: string; reason: string };
      const got = result.effect === 'allow' ? 'allow' : 'block';
      if (got !== v.expect || code !== (got === 'allow' ? 0 : 1) || (got === 'block' && !result.reason.startsWith('ssrf.'))) {
        wrong.push(`${JSON.stringify(v.input)} (${v.why}): ${result.effect} ${result.reason} (exit ${code})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  describe('the proxy', () => {
    let eg: TestEgress;
    before(async () => {
      eg = await startEgress(`version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
agents:
  demo:
    keys: [env:EGRESS_KEY]
`);
    });
    after(async () => {
      await eg?.close();
    });

    /** The request a client would send: CONNECT for https, absolute-form otherwise. */
    function requestFor(v: Vector): string {
      const text = toTargetUrl(v.input);
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

    test('blocked vectors are refused by the SSRF guard or as malformed; allowed ones pass it and meet the empty allowlist', async () => {
      const port = Number(eg.proxyUrl.port);
      const wrong: string[] = [];
      for (let i = 0; i < DECIDABLE.length; i += 16) {
        await Promise.all(
          DECIDABLE.slice(i, i + 16).map(async (v) => {
            const raw = await rawExchange(port, [requestFor(v)], { timeoutMs: 1_500 });
            const status = statusOf(raw);
            const reason = reasonOf(raw) ?? '';
            const passedGuard = status === 403 && reason === 'policy.no_permit';
            const blocked = (status === 403 && reason.startsWith('ssrf.')) || status === 400;
            if (v.expect === 'allow' ? !passedGuard : !blocked) wrong.push(`${JSON.stringify(v.input)} (${v.why}): ${status} ${reason}`);
          }),
        );
      }
      assert.deepEqual(wrong, []);
    });
  });
});
