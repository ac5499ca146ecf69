/**
 * Every row of the third-party SSRF corpus (`npm run test:corpora`) that its README marks decidable without
 * DNS (`resolution` literal or special-name) gets Bastion's expected decision
 * (the corpus verdict, except the divergences documented in README and
 * test/helpers/ssrf-corpus.ts) from `bastion egress check` and from the proxy.
 *
 * `egress check` is run in-process for every row through its command function
 * (the same code the binary runs), and as a real process for a sample. The
 * proxy gets every row over a raw socket, as a client that skipped its own URL
 * parsing would send it; the agent has an empty allowlist, so a row that passes
 * the SSRF guard is refused by policy (`policy.no_permit`) and nothing connects.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { egressCheck } from '../../src/cli/commands/egress-check.ts';
import type { CliIO } from '../../src/cli/io.ts';
import { toTargetUrl } from '../../src/egress/ssrf-classify.ts';
import { proxyAuth, rawExchange, reasonOf, startEgress, statusOf, type TestEgress } from '../helpers/egress.ts';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { bastionExpects, DECIDABLE_ROWS, type SsrfRow } from '../helpers/ssrf-corpus.ts';

const run = promisify(execFile);

function io(cwd: string): CliIO & { out: string[] } {
  const out: string[] = [];
  return { out, stdout: (t) => out.push(t), stderr: () => undefined, env: {}, cwd };
}

describe('SSRF corpus through the network door', () => {
  assert.ok(DECIDABLE_ROWS.length > 600, `decidable rows: ${DECIDABLE_ROWS.length}`);
  const cwd = tempDir();

  test('bastion egress check: every decidable row gets the expected decision and exit code', async () => {
    const wrong: string[] = [];
    for (const r of DECIDABLE_ROWS) {
      const cli = io(cwd);
      const code = await egressCheck([r.input, '--json'], cli);
      const result = JSON.parse(cli.out.join('')) as { effect: string; reason: string };
      const got = result.effect === 'allow' ? 'allow' : 'block';
      // An allowed literal never needs DNS; a refusal names an SSRF or URL reason.
      if (got !== bastionExpects(r) || code !== (got === 'allow' ? 0 : 1) || (got === 'block' && !result.reason.startsWith('ssrf.'))) {
        wrong.push(`${r.id} ${JSON.stringify(r.input)}: ${result.effect} ${result.reason} (exit ${code})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('the real binary agrees on a sample, with exit 0 for allow and 1 for deny', async () => {
    const sample = [...DECIDABLE_ROWS.filter((r) => r.expect === 'allow' && !r.input.includes('%')).slice(0, 3), ...DECIDABLE_ROWS.filter((r) => r.expect === 'block').slice(0, 3)];
    for (const r of sample) {
      let code = 0;
      let stdout = '';
      try {
        stdout = (await run(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'egress', 'check', r.input], { cwd, encoding: 'utf8' })).stdout;
      } catch (err) {
        code = (err as { code: number }).code;
        stdout = (err as { stdout: string }).stdout;
      }
      assert.equal(code, bastionExpects(r) === 'allow' ? 0 : 1, `${r.id} ${r.input}\n${stdout}`);
      assert.match(stdout, /^decision: (allow|deny)\nreason:/);
    }
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

    /** The request a client would send for a row: CONNECT for https, absolute-form otherwise. */
    function requestFor(r: SsrfRow): string {
      const text = toTargetUrl(r.input);
      let url: URL | undefined;
      try {
        url = new URL(text);
      } catch {
        url = undefined;
      }
      const auth = `Proxy-Authorization: ${proxyAuth()}\r\n`;
      if (url?.protocol === 'https:') return `CONNECT ${url.hostname}:${url.port || 443} HTTP/1.1\r\n${auth}\r\n`;
      // Unparsable or exotic targets go on the wire as written (minus line breaks a socket cannot carry).
      return `GET ${url?.href ?? text.replace(/[\r\n]/g, '')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}\r\n`;
    }

    test('every decidable row: blocked rows are refused by the SSRF guard or as malformed, allowed rows pass it (and meet the empty allowlist)', async () => {
      const wrong: string[] = [];
      const port = Number(eg.proxyUrl.port);
      const rows = [...DECIDABLE_ROWS];
      const results = new Map<string, string>();
      // A few sockets at a time: each answer closes or is read within the timeout.
      for (let i = 0; i < rows.length; i += 16) {
        await Promise.all(
          rows.slice(i, i + 16).map(async (r) => {
            results.set(r.id, await rawExchange(port, [requestFor(r)], { timeoutMs: 1_500 }));
          }),
        );
      }
      for (const r of rows) {
        const raw = results.get(r.id) ?? '';
        const status = statusOf(raw);
        const reason = reasonOf(raw) ?? '';
        const passedGuard = status === 403 && reason === 'policy.no_permit';
        const blocked = (status === 403 && reason.startsWith('ssrf.')) || status === 400;
        const expected = bastionExpects(r);
        if (expected === 'allow' ? !passedGuard : !blocked) wrong.push(`${r.id} ${JSON.stringify(r.input)}: ${status} ${reason}`);
      }
      assert.deepEqual(wrong, []);
    });
  });
});
