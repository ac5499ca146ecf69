/**
 * Per-user OAuth at the network door, over real sockets: curl through the
 * proxy to an HTTPS origin (its own certificate, reached as `api.acct.test`)
 * with `Authorization: <<OAUTH_acct>>`, an authorization server on loopback
 * (oidc-provider) issuing each end user's token. The placeholder becomes the
 * request's end user's token only for an agent that holds the provider, only
 * on the provider's hosts, only as the whole Authorization header; the answer
 * is redacted of it; a user who has not connected gets a sign-in link.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import type { AuditRecord } from '../../src/audit/types.ts';
import { curlRaw, EGRESS_KEY, makeCert, OTHER_EGRESS_KEY, startEgress, startOrigin, type TestEgress } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';

const SECRET = 'bastion-client-secret-0123456789';
const REDIRECT = 'http://127.0.0.1:9/oauth/callback';

function lastStatus(out: string): number {
  return [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1])).at(-1) ?? 0;
}
function lastReason(out: string): string | undefined {
  return [...out.matchAll(/\r\nbastion-reason: ([^\r\n]+)/gi)].map((m) => m[1]).at(-1);
}
function bodyOf(out: string): string {
  return out.slice(out.lastIndexOf('\r\n\r\n') + 4);
}

describe('network door: an end user\'s OAuth token for <<OAUTH_provider>>', { timeout: 120_000 }, () => {
  const certDir = tempDir();
  const acctCert = makeCert(certDir, ['api.acct.test', 'other.acct.test'], 'acct');
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let as: OidcServer;
  let eg: TestEgress;
  let proxy: string;
  let otherProxy: string;
  const via = (p: string, ...args: string[]): Promise<string> => curlRaw(['-x', p, '--cacert', eg.caFile, ...args]);
  const records = async (): Promise<AuditRecord[]> => {
    await eg.gateway.audit.flush();
    return eg.gateway.store.readAudit(1, 100_000);
  };

  before(async () => {
    origin = await startOrigin(acctCert);
    as = await startOidcServer({ clients: [{ client_id: 'bastion', client_secret: SECRET, redirect_uris: [REDIRECT] }], resources: [{ indicator: 'https://api.acct.test/', scope: 'acct' }] });
    eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
egress:
  staticHosts: { api.acct.test: [127.0.0.1], other.acct.test: [127.0.0.1] }
oauth:
  callbackBase: http://127.0.0.1:9
  providers:
    acct:
      issuer: ${as.issuer}
      clientId: bastion
      clientSecret: env:T_OAUTH_SECRET
      scopes: [acct]
      resource: https://api.acct.test/
      hosts: [api.acct.test]
agents:
  demo:
    keys: [env:EGRESS_KEY]
    oauth: [acct]
    # other.acct.test has a methods rule, so it is intercepted and a placeholder sent there is seen.
    network: ["api.acct.test:${origin.port}", { host: other.acct.test, ports: [${origin.port}], methods: [GET] }]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
  other:
    keys: [env:OTHER_EGRESS_KEY]
    network: ["api.acct.test:${origin.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
      { upstreamCa: [acctCert.cert], env: { T_OAUTH_SECRET: SECRET } },
    );
    proxy = `http://demo:${EGRESS_KEY}@${eg.proxyUrl.host}`;
    otherProxy = `http://other:${OTHER_EGRESS_KEY}@${eg.proxyUrl.host}`;
  });

  after(async () => {
    await eg?.close();
    await origin?.close();
    await as?.close();
  });

  const acct = (path: string): string => `https://api.acct.test:${origin.port}${path}`;

  test('not connected: refused with ERR_OAUTH_CONSENT and a sign-in link; nothing sent', async () => {
    const before = origin.received.length;
    const out = await via(proxy, '-H', 'Bastion-User: alice', '-H', 'Authorization: <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastStatus(out), 401);
    assert.equal(lastReason(out), 'oauth.consent_required');
    const link = (JSON.parse(bodyOf(out)) as { error: { code: string; link: string } }).error;
    assert.equal(link.code, 'ERR_OAUTH_CONSENT');
    assert.ok(link.link.startsWith(as.issuer));
    assert.equal(origin.received.length, before);
    // Alice connects through the link (the provider redirects to Bastion's callback; completed here directly).
    const callback = await as.authorize(link.link, { account: 'alice' });
    const done = await eg.gateway.deps.userOAuth?.completeAuthorization(callback);
    assert.ok(done?.ok, JSON.stringify(done));
  });

  test('connected: the request carries alice\'s own token as Bearer, and the echoed answer is redacted of it', async () => {
    const out = await via(proxy, '-H', 'Bastion-User: alice', '-H', 'Authorization: <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastStatus(out), 200);
    const sent = origin.received.at(-1)?.headers.authorization ?? '';
    assert.match(sent, /^Bearer /);
    assert.equal(decodeJwt(sent.slice(7)).sub, 'alice');
    assert.ok(!bodyOf(out).includes(sent.slice(7)), 'the token echoed back is redacted');
    const rec = (await records()).findLast((r) => r.outcome === 'ok' && Array.isArray(r.detail?.secrets));
    assert.deepEqual(rec?.detail?.secrets, ['oauth:acct'], 'the record names the provider, never the token');
    assert.ok(!JSON.stringify(await records()).includes(sent.slice(7)), 'no token in the audit chain');
  });

  test('refused: another user, no user, another host, another header, an agent without the provider', async () => {
    const before = origin.received.length;
    const bob = await via(proxy, '-H', 'Bastion-User: bob', '-H', 'Authorization: <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastReason(bob), 'oauth.consent_required', 'bob has no token of his own; alice\'s is never his');
    const nobody = await via(proxy, '-H', 'Authorization: <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastReason(nobody), 'release.foreign_user');
    const elsewhere = await via(proxy, '-H', 'Bastion-User: alice', '-H', 'Authorization: <<OAUTH_acct>>', `https://other.acct.test:${origin.port}/echo`);
    assert.equal(lastReason(elsewhere), 'release.foreign_host');
    const inQuery = await via(proxy, '-H', 'Bastion-User: alice', '-H', 'X-Token: <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastReason(inQuery), 'release.location');
    const notWhole = await via(proxy, '-H', 'Bastion-User: alice', '-H', 'Authorization: Bearer <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastReason(notWhole), 'release.location');
    const otherAgent = await via(otherProxy, '-H', 'Bastion-User: alice', '-H', 'Authorization: <<OAUTH_acct>>', acct('/echo'));
    assert.equal(lastReason(otherAgent), 'release.not_granted');
    assert.equal(origin.received.length, before, 'none of them reached the origin');
  });
});
