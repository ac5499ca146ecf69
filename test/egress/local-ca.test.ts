/**
 * The local CA and its leaf issuer, checked by independent parsers and real
 * clients: node's X509Certificate and `openssl x509 -text` read the fields,
 * `openssl verify -x509_strict` validates the chain, and node's TLS client and
 * curl complete real handshakes against a server whose SNICallback asks the
 * issuer for its context. No assertion message holds key material.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import {
  createLocalCa,
  LeafIssuer,
  normalizeLeafHost,
  type LocalCaMaterial,
} from '../../src/egress/local-ca.ts';
import { isBastionError } from '../../src/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { assertLinear } from '../helpers/complexity.ts';

const run = promisify(execFile);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let dir: string;
let ca: LocalCaMaterial;
let issuer: LeafIssuer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bastion-local-ca-'));
  ca = await createLocalCa();
  issuer = await LeafIssuer.open(ca);
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `openssl x509 -noout -text` of a PEM certificate. */
async function opensslText(pem: string): Promise<string> {
  const file = join(dir, `text-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(file, pem);
  const { stdout } = await run('openssl', ['x509', '-noout', '-text', '-in', file]);
  return stdout;
}

/** The hex value on the line after `label` in openssl's text output. */
function extensionValue(text: string, label: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.includes(label));
  assert.ok(i >= 0, `${label} present`);
  return (lines[i + 1] ?? '').trim();
}

/** The base64 body of a PEM: what must never show up in an error. */
function pemBody(pem: string): string {
  return pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----')).join('');
}

/** A BastionError with `code`, whose message does not contain `keyPem`'s body. */
function isCaError(keyPem?: Secret) {
  return (err: unknown): boolean => {
    assert.ok(isBastionError(err, 'ERR_CA'), 'a BastionError with code ERR_CA');
    if (keyPem !== undefined) {
      const body = pemBody(keyPem.reveal());
      for (let i = 0; i + 16 <= body.length; i += 16) {
        assert.ok(!err.message.includes(body.slice(i, i + 16)), 'the message holds no key material');
      }
    }
    return true;
  };
}

describe('createLocalCa', () => {
  test('a self-signed P-256 CA: cA true pathLen 0 critical, keyCertSign + cRLSign critical, SKI', async () => {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, cert.issuer, 'self-issued');
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
    assert.ok(cert.checkIssued(cert));
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.match(cert.subject, /^CN=Bastion local CA [0-9a-f]{8}\nO=Bastion$/);
    const text = await opensslText(ca.certPem);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    assert.match(extensionValue(text, 'X509v3 Subject Key Identifier'), /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  });

  test('the key is PKCS#8 PEM in a Secret that prints redacted', () => {
    assert.ok(ca.keyPem instanceof Secret);
    assert.match(ca.keyPem.reveal(), /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n?$/);
    assert.equal(String(ca.keyPem), '[redacted]');
    assert.ok(!JSON.stringify(ca).includes(pemBody(ca.keyPem.reveal()).slice(0, 24)), 'JSON of the material holds no key');
  });

  test('validity: notBefore one hour back, ten years by default, or validityDays', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const a = new X509Certificate((await createLocalCa({ now })).certPem);
    assert.equal(a.validFromDate.getTime(), now - HOUR);
    assert.equal(a.validToDate.getTime(), now + 3650 * DAY);
    const b = new X509Certificate((await createLocalCa({ now, validityDays: 30, commonName: 'Test CA' })).certPem);
    assert.equal(b.validToDate.getTime(), now + 30 * DAY);
    assert.equal(b.subject, 'CN=Test CA\nO=Bastion');
  });

  test('two installs are distinguishable: different CN, serial and key', async () => {
    const other = new X509Certificate((await createLocalCa()).certPem);
    const mine = new X509Certificate(ca.certPem);
    assert.notEqual(other.subject, mine.subject);
    assert.notEqual(other.serialNumber, mine.serialNumber);
    assert.notEqual(other.fingerprint256, mine.fingerprint256);
  });

  test('serials are random, positive and at most 128 bits', async () => {
    const serials = new Set<bigint>();
    for (let i = 0; i < 8; i++) {
      // X509Certificate.serialNumber is the hex of the DER INTEGER, so a leading sign octet would show as "00".
      const hex = new X509Certificate((await createLocalCa()).certPem).serialNumber;
      const serial = BigInt(`0x${hex}`);
      assert.ok(serial > 0n && serial < 2n ** 128n, 'a positive 128-bit serial');
      serials.add(serial);
    }
    assert.equal(serials.size, 8);
  });

  test('bad options are TypeError/RangeError', async () => {
    await assert.rejects(createLocalCa({ validityDays: 0 }), RangeError);
    await assert.rejects(createLocalCa({ validityDays: 1.5 }), TypeError);
    await assert.rejects(createLocalCa({ now: Number.NaN }), TypeError);
    await assert.rejects(createLocalCa({ commonName: '' }), RangeError);
    await assert.rejects(createLocalCa({ commonName: 'x'.repeat(65) }), RangeError);
    await assert.rejects(createLocalCa({ commonName: 'a\nb' }), RangeError);
  });
});

describe('LeafIssuer: the leaf certificate', () => {
  test('DNS name: SAN, CN, EKU serverAuth, KU digitalSignature, AKI = CA SKI, signed by the CA', async () => {
    const leaf = await issuer.issueLeaf('api.github.com');
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    assert.equal(cert.subject, 'CN=api.github.com');
    assert.equal(cert.subjectAltName, 'DNS:api.github.com');
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(cert.issuer, caCert.subject);
    assert.ok(cert.verify(caCert.publicKey), 'signed by the CA key');
    assert.ok(cert.checkIssued(caCert));
    assert.ok(!cert.verify(new X509Certificate((await createLocalCa()).certPem).publicKey), 'not verifiable under another CA');
    assert.equal(cert.checkHost('api.github.com'), 'api.github.com');
    assert.equal(cert.checkHost('API.GitHub.com'), 'api.github.com');
    assert.equal(cert.checkHost('github.com'), undefined);
    assert.equal(cert.checkHost('evil.api.github.com'), undefined);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.notEqual(cert.publicKey.export({ type: 'spki', format: 'pem' }), caCert.publicKey.export({ type: 'spki', format: 'pem' }));

    const text = await opensslText(leaf.certPem);
    const caText = await opensslText(ca.certPem);
    assert.equal(extensionValue(text, 'X509v3 Authority Key Identifier'), extensionValue(caText, 'X509v3 Subject Key Identifier'));
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
  });

  test('the chain is leaf then CA; the key is a redacted PKCS#8 Secret', async () => {
    const leaf = await issuer.issueLeaf('example.com');
    assert.ok(leaf.chainPem.startsWith(leaf.certPem));
    assert.ok(leaf.chainPem.includes(ca.certPem.trim()));
    assert.ok(leaf.keyPem instanceof Secret);
    assert.equal(`${leaf.keyPem}`, '[redacted]');
    assert.match(leaf.keyPem.reveal(), /^-----BEGIN PRIVATE KEY-----\n/);
  });

  test('validity: notBefore one hour back, seven days by default, or leafValidityDays; capped at the CA notAfter', async () => {
    const now = Date.parse('2030-06-01T12:00:00Z');
    const material = await createLocalCa({ now: now - DAY, validityDays: 30 });
    const a = await LeafIssuer.open(material, { now: () => now });
    const leaf = new X509Certificate((await a.issueLeaf('a.example')).certPem);
    assert.equal(leaf.validFromDate.getTime(), now - HOUR);
    assert.equal(leaf.validToDate.getTime(), now + 7 * DAY);
    const b = await LeafIssuer.open(material, { now: () => now, leafValidityDays: 397 });
    const capped = await b.issueLeaf('a.example');
    assert.equal(capped.notAfterMs, now + 29 * DAY, 'never outlives the CA');
    assert.equal(new X509Certificate(capped.certPem).validToDate.getTime(), now + 29 * DAY);
  });

  test('openssl verify -x509_strict -purpose sslserver accepts the chain; another CA does not', async () => {
    const leafFile = join(dir, 'leaf.pem');
    const ipFile = join(dir, 'ip.pem');
    writeFileSync(leafFile, (await issuer.issueLeaf('api.github.com')).certPem);
    writeFileSync(ipFile, (await issuer.issueLeaf('2001:db8::1')).certPem);
    const { stdout } = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), leafFile, ipFile]);
    assert.equal(stdout, `${leafFile}: OK\n${ipFile}: OK\n`);
    const otherFile = join(dir, 'other-ca.pem');
    writeFileSync(otherFile, (await createLocalCa()).certPem);
    await assert.rejects(run('openssl', ['verify', '-CAfile', otherFile, leafFile]));
  });

  test('IP literals: iPAddress SAN (IPv4, IPv6 with or without brackets, IPv4-mapped IPv6)', async () => {
    const v4 = new X509Certificate((await issuer.issueLeaf('127.0.0.1')).certPem);
    assert.equal(v4.subjectAltName, 'IP Address:127.0.0.1');
    assert.equal(v4.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(v4.checkIP('127.0.0.2'), undefined);
    assert.equal(v4.checkHost('127.0.0.1', { subject: 'never' }), undefined, 'not a dNSName');
    const v6 = new X509Certificate((await issuer.issueLeaf('[2001:DB8:0::1]')).certPem);
    assert.equal(v6.checkIP('2001:db8::1'), '2001:db8::1');
    assert.equal(v6.subject, 'CN=2001:db8::1');
    const mapped = new X509Certificate((await issuer.issueLeaf('::ffff:192.0.2.7')).certPem);
    assert.ok(mapped.checkIP('::ffff:c000:207') !== undefined);
  });

  test('issuance time per leaf (the proxy issues on the first connect to a host)', async (t) => {
    const n = 50;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await issuer.issueLeaf(`timing-${i}.example`);
    const perLeafMs = (performance.now() - t0) / n;
    t.diagnostic(`leaf issuance: ${perLeafMs.toFixed(2)} ms each`);
    assert.ok(perLeafMs < 100, `leaf issuance took ${perLeafMs.toFixed(1)} ms`);
  });
});

describe('LeafIssuer: hosts', () => {
  test('normalizes names and IP literals', () => {
    assert.deepEqual(normalizeLeafHost('API.GitHub.com.'), { kind: 'dns', host: 'api.github.com', sanValue: 'api.github.com' });
    assert.equal(normalizeLeafHost('localhost').host, 'localhost');
    assert.equal(normalizeLeafHost('xn--mnchen-3ya.de').host, 'xn--mnchen-3ya.de');
    assert.equal(normalizeLeafHost('a-b.c0').host, 'a-b.c0');
    assert.deepEqual(normalizeLeafHost('[::1]'), { kind: 'ip', host: '::1', sanValue: '0:0:0:0:0:0:0:1' });
    assert.equal(normalizeLeafHost('2001:DB8:0:0::1').host, '2001:db8::1');
    assert.equal(normalizeLeafHost('10.0.0.1').kind, 'ip');
    assert.equal(normalizeLeafHost(`${'a'.repeat(63)}.example`).kind, 'dns');
  });

  const invalid = [
    '',
    '.',
    'a..b',
    '.a.b',
    '-a.example',
    'a-.example',
    '*.example.com',
    'exa mple.com',
    'a_b.example',
    'münchen.de',
    'api.github.com:443',
    '[api.github.com]',
    '[127.0.0.1]',
    '1.2.3.4.5',
    '127.1',
    '0x7f.0.0.1',
    '010.0.0.1',
    'example.123',
    'fe80::1%eth0',
    '2001:db8::1::2',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(127)}ab`,
    'a'.repeat(1_000_000),
  ];
  for (const host of invalid) {
    test(`rejects ${JSON.stringify(host.length > 40 ? `${host.slice(0, 20)}…(${host.length})` : host)} with TypeError`, async () => {
      assert.throws(() => normalizeLeafHost(host), TypeError);
      assert.throws(() => issuer.issueLeaf(host), TypeError);
      assert.throws(() => issuer.secureContext(host), TypeError);
    });
  }

  test('non-strings are TypeError', () => {
    assert.throws(() => normalizeLeafHost(42 as unknown as string), TypeError);
    assert.throws(() => issuer.secureContext(undefined as unknown as string), TypeError);
  });

  test('complexity: host validation stays linear', () => {
    const reject = (s: string): void => {
      try {
        normalizeLeafHost(s);
      } catch {
        // expected for the invalid shapes
      }
    };
    assertLinear('labels', reject, `${'a-'.repeat(15)}a.`.repeat(2), `${'a-'.repeat(15)}a.`.repeat(7));
    assertLinear('long label', reject, `${'a'.repeat(30)}_`, `${'a'.repeat(120)}_`);
  });
});

describe('LeafIssuer: cache', () => {
  test('the same host twice (in any spelling) returns the same context; another host a different one', async () => {
    const a = await issuer.secureContext('cache.example');
    assert.equal(await issuer.secureContext('cache.example'), a);
    assert.equal(await issuer.secureContext('CACHE.example.'), a);
    assert.notEqual(await issuer.secureContext('other.cache.example'), a);
  });

  test('concurrent calls for one host share one issuance', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => issuer.secureContext('concurrent.example')));
    for (const ctx of all) assert.equal(ctx, all[0]);
  });

  test('least recently used hosts are evicted past cacheSize', async () => {
    const small = await LeafIssuer.open(ca, { cacheSize: 2 });
    const a = await small.secureContext('a.example');
    const b = await small.secureContext('b.example');
    assert.equal(await small.secureContext('a.example'), a, 'a is now the most recent');
    await small.secureContext('c.example');
    assert.equal(await small.secureContext('a.example'), a, 'a stayed');
    assert.notEqual(await small.secureContext('b.example'), b, 'b was evicted and issued anew');
  });

  test('a leaf within one day of its notAfter is issued anew', async () => {
    let now = Date.now();
    const clocked = await LeafIssuer.open(ca, { now: () => now });
    const first = await clocked.secureContext('renew.example');
    now += 5 * DAY;
    assert.equal(await clocked.secureContext('renew.example'), first, 'two days left: kept');
    now += DAY + HOUR;
    const second = await clocked.secureContext('renew.example');
    assert.notEqual(second, first, 'under a day left: issued anew');
    assert.equal(await clocked.secureContext('renew.example'), second);
  });

  test('an expired CA issues nothing (ERR_CA), and the failure is not cached', async () => {
    let now = Date.now();
    const shortCa = await createLocalCa({ now, validityDays: 3 });
    const clocked = await LeafIssuer.open(shortCa, { now: () => now });
    await clocked.secureContext('exp.example');
    now += 4 * DAY;
    await assert.rejects(clocked.secureContext('exp.example'), isCaError());
    await assert.rejects(clocked.issueLeaf('exp.example'), isCaError());
    await assert.rejects(clocked.secureContext('exp.example'), isCaError());
  });
});

describe('LeafIssuer.open: bad material is ERR_CA', () => {
  test('a certificate with the key of another CA', async () => {
    const other = await createLocalCa();
    await assert.rejects(LeafIssuer.open({ certPem: ca.certPem, keyPem: other.keyPem }), isCaError(other.keyPem));
  });

  test('a certificate that is not a CA (a leaf with its own key)', async () => {
    const leaf = await issuer.issueLeaf('leaf.example');
    await assert.rejects(LeafIssuer.open({ certPem: leaf.certPem, keyPem: leaf.keyPem }), isCaError(leaf.keyPem));
  });

  test('garbage certificate PEM, two certificates, a key where the certificate goes', async () => {
    const bad = ['', 'garbage', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', `${ca.certPem}\n${ca.certPem}`];
    for (const certPem of bad) await assert.rejects(LeafIssuer.open({ certPem, keyPem: ca.keyPem }), isCaError(ca.keyPem));
  });

  test('garbage key PEM, a certificate where the key goes, a P-384 key', async () => {
    const { stdout: p384 } = await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    const bad = [
      new Secret(''),
      new Secret('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
      new Secret(ca.certPem),
      new Secret(p384),
    ];
    for (const keyPem of bad) await assert.rejects(LeafIssuer.open({ certPem: ca.certPem, keyPem }), isCaError(keyPem));
  });

  test('an expired or not yet valid CA', async () => {
    const now = Date.now();
    await assert.rejects(LeafIssuer.open(ca, { now: () => now + 3651 * DAY }), isCaError(ca.keyPem));
    await assert.rejects(LeafIssuer.open(ca, { now: () => now - 2 * HOUR }), isCaError(ca.keyPem));
  });

  test('a malformed argument or option is TypeError/RangeError', async () => {
    await assert.rejects(LeafIssuer.open({ certPem: ca.certPem, keyPem: ca.keyPem.reveal() as unknown as Secret }), TypeError);
    await assert.rejects(LeafIssuer.open(null as unknown as LocalCaMaterial), TypeError);
    await assert.rejects(LeafIssuer.open(ca, { cacheSize: 0 }), RangeError);
    await assert.rejects(LeafIssuer.open(ca, { leafValidityDays: 398 }), RangeError);
    await assert.rejects(LeafIssuer.open(ca, { leafValidityDays: 1 }), RangeError);
  });

  test('caCertPem is the CA certificate', () => {
    assert.equal(new X509Certificate(issuer.caCertPem).fingerprint256, new X509Certificate(ca.certPem).fingerprint256);
  });
});

describe('real TLS handshakes', () => {
  let server: HttpsServer;
  let port: number;
  const served: string[] = [];

  before(async () => {
    server = createHttpsServer(
      {
        SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
          served.push(servername);
          issuer.secureContext(servername).then(
            (ctx) => cb(null, ctx),
            (err: unknown) => cb(err instanceof Error ? err : new Error('issuance failed')),
          );
        },
      },
      (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
        res.end(`intercepted ${req.headers.host}`);
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('node tls.connect with the CA as its only trust anchor is authorized', async () => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'api.github.com', ca: issuer.caCertPem });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    try {
      assert.equal(socket.authorized, true, String(socket.authorizationError));
      const peer = socket.getPeerX509Certificate();
      assert.equal(peer?.subjectAltName, 'DNS:api.github.com');
      assert.ok(peer?.checkIssued(new X509Certificate(ca.certPem)), 'served leaf issued by the CA');
      assert.ok(served.includes('api.github.com'));
    } finally {
      socket.destroy();
    }
  });

  test('node tls.connect without the CA is not trusted', async () => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'api.github.com' });
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      }),
      (err: NodeJS.ErrnoException) => err.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || err.code === 'SELF_SIGNED_CERT_IN_CHAIN',
    );
    socket.destroy();
  });

  test('curl --cacert ca.pem succeeds; curl without it fails certificate verification', async () => {
    const url = `https://api.github.com:${port}/`;
    const resolve = `api.github.com:${port}:127.0.0.1`;
    const { stdout } = await run('curl', ['-sS', '--max-time', '20', '--cacert', join(dir, 'ca.pem'), '--resolve', resolve, url]);
    assert.equal(stdout, `intercepted api.github.com:${port}`);
    await assert.rejects(run('curl', ['-sS', '--max-time', '20', '--resolve', resolve, url]), (err: { code?: number }) => {
      assert.equal(err.code, 60, 'curl exit 60: peer certificate cannot be authenticated');
      return true;
    });
  });

  test('an IP-literal leaf serves clients that connect by address (no SNI): node and curl', async () => {
    const leaf = await issuer.issueLeaf('127.0.0.1');
    const ipServer = createHttpsServer({ cert: leaf.chainPem, key: leaf.keyPem.reveal() }, (_req, res) => res.end('by address'));
    await new Promise<void>((r) => ipServer.listen(0, '127.0.0.1', () => r()));
    const ipPort = (ipServer.address() as AddressInfo).port;
    try {
      const socket = connect({ host: '127.0.0.1', port: ipPort, ca: issuer.caCertPem });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      assert.equal(socket.authorized, true, String(socket.authorizationError));
      socket.destroy();
      const { stdout } = await run('curl', ['-sS', '--max-time', '20', '--cacert', join(dir, 'ca.pem'), `https://127.0.0.1:${ipPort}/`]);
      assert.equal(stdout, 'by address');
    } finally {
      ipServer.closeAllConnections();
      await new Promise<void>((r) => ipServer.close(() => r()));
    }
  });
});
