/**
 * The secret-release rule (src/vault/release.ts): one vector per reason, the
 * order the reasons are checked in, what is inserted (the format literally),
 * and properties over random secrets and destinations: an allow always means
 * a granted use, a declared host and port, https (or loopback http), and a
 * permitted location; every deny carries a reason of the closed set.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { randomKeyBytes } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';
import { kekFromBytes } from '../../src/vault/kek.ts';
import {
  DEFAULT_SWAP_IN,
  namedSecret,
  pastedSecret,
  RELEASE_DENIALS,
  release,
  SWAP_LOCATIONS,
  type NamedSecret,
  type PastedSecret,
  type ReleaseDestination,
  type ReleaseLocation,
  type ReleaseRequest,
  type ReleasableSecret,
  type SwapLocation,
  userTokenSecret,
} from '../../src/vault/release.ts';
import { Vault } from '../../src/vault/vault.ts';

const VALUE = 'ghp_' + 'V4lue'.repeat(7) + 'x';

function named(over: Partial<NamedSecret> = {}): NamedSecret {
  return { kind: 'named', name: 'github', hosts: ['api.github.com'], value: new Secret(VALUE), ...over };
}

function pasted(over: Partial<PastedSecret> = {}): PastedSecret {
  return { kind: 'pasted', owner: { agent: 'coder', user: 'alice' }, hosts: ['api.github.com'], value: new Secret(VALUE), ...over };
}

function dest(over: Partial<ReleaseDestination> = {}): ReleaseDestination {
  return { scheme: 'https', host: 'api.github.com', port: 443, location: 'header:authorization', ...over };
}

function ask(secret: ReleasableSecret, destination: Partial<ReleaseDestination> = {}, over: Partial<ReleaseRequest> = {}): ReturnType<typeof release> {
  return release({ secret, agent: 'coder', granted: true, user: 'alice', destination: dest(destination), ...over });
}

function reasonOf(d: ReturnType<typeof release>): string {
  return d.reason;
}

test('a granted named secret without a declared header goes into any header of a request to its host over https', () => {
  const d = ask(named(), { location: 'header:x-token' });
  assert.equal(d.effect, 'allow');
  assert.equal(d.effect === 'allow' && d.value.reveal(), VALUE);
  assert.deepEqual(DEFAULT_SWAP_IN, ['header']);
});

test('one vector per denial reason', () => {
  const cases: [string, ReturnType<typeof release>][] = [
    ['release.not_granted', ask(named(), {}, { granted: false })],
    ['release.no_hosts', ask(named({ hosts: [] }))],
    ['release.no_hosts', ask(named({ configHosts: [] }))],
    ['release.foreign_host', ask(named(), { host: 'evil.example.net' })],
    // The config declares no hosts: the stored hosts alone decide, and a foreign host is still foreign (issue 11 §4).
    ['release.foreign_host', ask(named({ configHosts: undefined }), { host: 'evil.example.net' })],
    ['release.foreign_host', ask(named({ configHosts: ['uploads.github.com'] }))],
    ['release.foreign_port', ask(named({ ports: [8443] }))],
    // Plain HTTP to the secret's own host (issue 11 §4).
    ['release.insecure_scheme', ask(named(), { scheme: 'http', port: 80 })],
    ['release.insecure_scheme', ask(named(), { scheme: 'ftp' })],
    ['release.location', ask(named({ header: 'Authorization' }), { location: 'header:x-token' })],
    ['release.location', ask(named({ header: 'Authorization' }), { location: 'body' })],
    ['release.location', ask(named(), { location: 'query' })],
    ['release.location', ask(named(), { location: 'path' })],
    ['release.location', ask(named(), { location: 'arguments' })],
    ['release.location', ask(named({ swapIn: ['body'] }), { location: 'header:x-token' })],
    ['release.format', ask(named({ header: 'Authorization', format: 'no slot' }), { whole: true })],
    ['release.foreign_user', ask(pasted(), {}, { user: 'bob' })],
    ['release.foreign_user', ask(pasted(), {}, { user: null })],
    ['release.foreign_user', ask(pasted(), {}, { agent: 'other' })],
    ['release.unbound', ask(pasted({ hosts: [] }))],
    ['release.foreign_host', ask(pasted(), { host: 'evil.example.net' })],
    ['release.insecure_scheme', ask(pasted(), { scheme: 'http' })],
    ['release.location', ask(pasted(), { location: 'body' })],
  ];
  for (const [reason, d] of cases) {
    assert.equal(d.effect, 'deny', reason);
    assert.equal(reasonOf(d), reason);
  }
  assert.deepEqual(new Set(cases.map(([r]) => r)), new Set(RELEASE_DENIALS), 'every reason of the closed set has a vector');
});

test('each decision names the config path that decided it (the audit record\'s rule)', () => {
  const rules: [string, ReturnType<typeof release>][] = [
    ['secrets.github.grant', ask(named(), {}, { granted: false })],
    ['secrets.github.hosts', ask(named({ hosts: [] }))],
    ['secrets.github.hosts', ask(named(), { host: 'evil.example.net' })],
    ['secrets.github.ports', ask(named({ ports: [8443] }))],
    ['secrets.github.scheme', ask(named(), { scheme: 'http', port: 80 })],
    ['secrets.github.swapIn', ask(named(), { location: 'query' })],
    ['secrets.github.swapIn', ask(named({ header: 'Authorization' }), { location: 'header:x-token' })],
    ['secrets.github.format', ask(named({ header: 'Authorization', format: 'no slot' }), { whole: true })],
    ['secrets.github.swapIn', ask(named())],
    ['pasted.owner', ask(pasted(), {}, { user: 'bob' })],
    ['pasted.hosts', ask(pasted({ hosts: [] }))],
    ['pasted.scheme', ask(pasted(), { scheme: 'http' })],
    ['pasted.swapIn', ask(pasted(), { location: 'body' })],
    ['pasted.hosts', ask(pasted())],
  ];
  for (const [rule, d] of rules) assert.equal(d.rule, rule, `${d.reason} ${rule}`);
  // A pasted secret of this agent but another user, or of this user but another agent, is another owner's.
  assert.equal(ask(pasted({ owner: { agent: 'coder', user: 'bob' } })).reason, 'release.foreign_user');
  assert.equal(ask(pasted({ owner: { agent: 'other', user: 'alice' } })).reason, 'release.foreign_user');
  assert.equal(ask(pasted()).effect, 'allow');
  // The host is compared normalized (case, trailing dot); an empty host never matches.
  assert.equal(ask(named(), { host: 'API.GitHub.com.' }).effect, 'allow');
  assert.equal(ask(named({ hosts: ['*'] }), { host: '' }).reason, 'release.foreign_host');
  // Loopback literals over http are the one plain-http exception; a loopback name is not.
  assert.equal(ask(named({ hosts: ['127.0.0.1'] }), { scheme: 'http', host: '127.0.0.1', port: 8080 }).effect, 'allow');
  assert.equal(ask(named({ hosts: ['localhost'] }), { scheme: 'http', host: 'localhost', port: 8080 }).reason, 'release.insecure_scheme');
  assert.equal(ask(named({ hosts: ['127.0.0.1'] }), { scheme: 'HTTP', host: '127.0.0.1', port: 8080 }).effect, 'allow');
});

test('the order of the checks: who, declared hosts, host, port, scheme, location', () => {
  const worst = { scheme: 'http', host: 'evil.example.net', port: 1, location: 'body' } as const;
  assert.equal(reasonOf(ask(named({ hosts: [], ports: [443] }), worst, { granted: false })), 'release.not_granted');
  assert.equal(reasonOf(ask(named({ hosts: [], ports: [443] }), worst)), 'release.no_hosts');
  assert.equal(reasonOf(ask(named({ ports: [443] }), worst)), 'release.foreign_host');
  assert.equal(reasonOf(ask(named({ ports: [443] }), { ...worst, host: 'api.github.com' })), 'release.foreign_port');
  assert.equal(reasonOf(ask(named({ ports: [443] }), { ...worst, host: 'api.github.com', port: 443 })), 'release.insecure_scheme');
  assert.equal(reasonOf(ask(named({ ports: [443] }), { ...worst, host: 'api.github.com', port: 443, scheme: 'https' })), 'release.location');
  assert.equal(reasonOf(ask(pasted({ hosts: [] }), worst, { user: 'bob' })), 'release.foreign_user');
});

test('a declared header: only that header (any case), formatted only when the placeholder is its whole value, the format inserted literally', () => {
  const s = named({ header: 'Authorization', format: 'token {}' });
  const whole = ask(s, { location: 'header:authorization', whole: true });
  assert.equal(whole.effect === 'allow' && whole.value.reveal(), `token ${VALUE}`);
  const upper = ask(s, { location: 'header:AUTHORIZATION', whole: true });
  assert.equal(upper.effect, 'allow');
  const inside = ask(s, { location: 'header:authorization', whole: false });
  assert.equal(inside.effect === 'allow' && inside.value.reveal(), VALUE, 'written into a longer value: the value alone');
  const dollars = "sk_$&_$'_$`_$$_";
  const lit = ask(named({ header: 'Authorization', format: '$& {} $1', value: new Secret(dollars) }), { whole: true });
  assert.equal(lit.effect === 'allow' && lit.value.reveal(), `$& ${dollars} $1`);
});

test('swapIn opts a secret in to query, path and body; a declared header still admits no other header', () => {
  const s = named({ header: 'X-Api-Key', swapIn: ['header', 'query', 'path', 'body'] });
  for (const location of ['header:x-api-key', 'query', 'path', 'body'] as const) assert.equal(ask(s, { location }).effect, 'allow', location);
  assert.equal(reasonOf(ask(s, { location: 'header:authorization' })), 'release.location');
  assert.equal(reasonOf(ask(s, { location: 'arguments' })), 'release.location', 'named secrets never go into tool arguments');
});

test('plain HTTP only to a loopback IP literal in canonical form, never to a name', () => {
  for (const host of ['127.0.0.1', '127.9.9.9', '::1', '[::1]']) {
    assert.equal(ask(named({ hosts: ['127.0.0.1', '127.9.9.9', '::1'] }), { scheme: 'http', host }).effect, 'allow', host);
  }
  for (const host of ['localhost', '127.1', '::ffff:127.0.0.1', '10.0.0.1', '0:0:0:0:0:0:0:1']) {
    const d = ask(named({ hosts: [host, 'localhost', '127.1', '::ffff:127.0.0.1', '10.0.0.1', '0:0:0:0:0:0:0:1'] }), { scheme: 'http', host });
    assert.equal(reasonOf(d), 'release.insecure_scheme', host);
  }
});

test('hosts: wildcards cover subdomains only; comparison ignores case, a trailing dot and IPv6 brackets', () => {
  const s = named({ hosts: ['*.slack.com', '2001:db8::1'] });
  assert.equal(ask(s, { host: 'hooks.slack.com' }).effect, 'allow');
  assert.equal(ask(s, { host: 'A.B.Slack.Com.' }).effect, 'allow');
  assert.equal(ask(s, { host: '[2001:db8::1]' }).effect, 'allow');
  assert.equal(reasonOf(ask(s, { host: 'slack.com' })), 'release.foreign_host');
  assert.equal(reasonOf(ask(s, { host: 'evilslack.com' })), 'release.foreign_host');
  assert.equal(reasonOf(ask(s, { host: '' })), 'release.foreign_host');
});

test('pasted: the owner pair only, into a header or tool arguments', () => {
  assert.equal(ask(pasted(), { location: 'header:authorization' }).effect, 'allow');
  assert.equal(ask(pasted(), { location: 'arguments' }).effect, 'allow');
  for (const location of ['query', 'path', 'body'] as const) assert.equal(reasonOf(ask(pasted(), { location })), 'release.location', location);
  assert.equal(reasonOf(ask(pasted(), {}, { granted: true, user: 'bob' })), 'release.foreign_user', 'a grant does not stand in for ownership');
});

test('a user\'s OAuth token: granted use, its own user only, its hosts, https, the whole Authorization header as Bearer', () => {
  const token = userTokenSecret('acme', 'alice', ['API.acme.example'], 'tok-123');
  const ok = ask(token, { host: 'api.acme.example', whole: true });
  assert.equal(ok.effect, 'allow');
  assert.equal(ok.effect === 'allow' ? ok.value.reveal() : '', 'Bearer tok-123');
  assert.equal(reasonOf(ask(token, { host: 'api.acme.example', whole: true }, { granted: false })), 'release.not_granted');
  assert.equal(reasonOf(ask(token, { host: 'api.acme.example', whole: true }, { user: 'bob' })), 'release.foreign_user', 'another user never gets it');
  assert.equal(reasonOf(ask(token, { host: 'api.acme.example', whole: true }, { user: null })), 'release.foreign_user', 'nor a request with no end user');
  assert.equal(reasonOf(ask(token, { host: 'evil.example.net', whole: true })), 'release.foreign_host');
  assert.equal(reasonOf(ask(token, { host: 'api.acme.example', scheme: 'http', whole: true })), 'release.insecure_scheme');
  assert.equal(reasonOf(ask(token, { host: 'api.acme.example' })), 'release.location', 'only as the whole header');
  for (const location of ['header:x-token', 'query', 'path', 'body', 'arguments'] as const) {
    assert.equal(reasonOf(ask(token, { host: 'api.acme.example', location, whole: true })), 'release.location', location);
  }
  assert.equal(reasonOf(ask(userTokenSecret('acme', 'alice', [], 'tok'), { host: 'api.acme.example', whole: true })), 'release.no_hosts');
  assert.equal(ask(userTokenSecret('acme', 'alice', ['127.0.0.1'], 'tok'), { host: '127.0.0.1', scheme: 'http', port: 8080, whole: true }).effect, 'allow', 'loopback http, as for every kind');
});

test('namedSecret and pastedSecret build the rule\'s input from vault and config metadata', () => {
  const v = new Secret(VALUE);
  assert.deepEqual(
    { ...namedSecret({ name: 'gh', hosts: ['api.github.com'], header: 'Authorization', format: 'Bearer {}' }, v, { hosts: ['api.github.com'], ports: [443], swapIn: ['header', 'body'] }), value: null },
    { kind: 'named', name: 'gh', hosts: ['api.github.com'], configHosts: ['api.github.com'], ports: [443], header: 'Authorization', format: 'Bearer {}', swapIn: ['header', 'body'], value: null },
  );
  assert.deepEqual({ ...namedSecret({ name: 'gh', hosts: ['x.example'] }, v), value: null }, { kind: 'named', name: 'gh', hosts: ['x.example'], value: null });
  assert.deepEqual({ ...pastedSecret({ agent: 'a', user: 'u', hosts: ['h.example'] }, v), value: null }, { kind: 'pasted', owner: { agent: 'a', user: 'u' }, hosts: ['h.example'], value: null });
});

test('fail closed at the edges: an empty host matches no pattern, not even an empty one; a non-http scheme is refused even to loopback', () => {
  assert.equal(reasonOf(ask(named({ hosts: [''] }), { host: '' })), 'release.foreign_host');
  assert.equal(reasonOf(ask(pasted({ hosts: [''] }), { host: '' })), 'release.foreign_host');
  for (const scheme of ['ftp', 'ws', 'file']) {
    assert.equal(reasonOf(ask(named({ hosts: ['127.0.0.1'] }), { scheme, host: '127.0.0.1' })), 'release.insecure_scheme', scheme);
  }
});

test('a format whose slot opens it ({} first) still inserts the value', () => {
  for (const [format, want] of [['{}', VALUE], ['{} suffix', `${VALUE} suffix`], ['Bearer {}', `Bearer ${VALUE}`]] as const) {
    const d = ask(named({ header: 'Authorization', format }), { whole: true });
    assert.equal(d.effect === 'allow' && d.value.reveal(), want, format);
  }
});

test('a named secret never goes into tool arguments, even when a malformed swapIn names them', () => {
  const s = named({ swapIn: ['header', 'arguments'] as unknown as SwapLocation[] });
  assert.equal(reasonOf(ask(s, { location: 'arguments' })), 'release.location');
  assert.equal(ask(s, { location: 'arguments' }).rule, 'secrets.github.swapIn');
});

// ---------------------------------------------------------------------------
// Properties.

const HOST_POOL = ['api.github.com', 'uploads.github.com', '*.github.com', 'hooks.slack.com', '*.slack.com', 'evil.example.net', '127.0.0.1', '::1', '10.0.0.1'];
const DEST_HOSTS = [...HOST_POOL.filter((h) => !h.startsWith('*')), 'a.b.slack.com', 'slack.com', 'github.com', 'API.GITHUB.COM', '[::1]', 'localhost', 'api.github.com.', 'evilgithub.com'];

/** An independent oracle for host patterns: exact, or `*.d` for names strictly below `d`. */
function oracleMatches(patterns: readonly string[], host: string): boolean {
  let h = host.toLowerCase();
  if (h.startsWith('[')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return patterns.some((p) => (p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : p === h));
}

/** The first value most of the time (so allows are common), else any of the others. */
function likely<T>(first: T, ...rest: T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: fc.constant(first), weight: 3 }, { arbitrary: fc.constantFrom(...rest), weight: 1 });
}

const swapInArb = fc.option(fc.uniqueArray(fc.constantFrom<SwapLocation>(...SWAP_LOCATIONS), { minLength: 1, maxLength: 4 }), { nil: undefined });
const hostsArb = fc.uniqueArray(likely('api.github.com', ...HOST_POOL.slice(1)), { maxLength: 3 });
const namedArb = fc.record({
  kind: fc.constant('named' as const),
  name: fc.constantFrom('github', 'slack'),
  hosts: hostsArb,
  configHosts: fc.option(hostsArb, { nil: undefined }),
  ports: fc.option(fc.uniqueArray(fc.constantFrom<number>(443, 8443, 80), { minLength: 1, maxLength: 2 }), { nil: undefined }),
  header: fc.option(fc.constantFrom('Authorization', 'X-Api-Key'), { nil: undefined }),
  format: fc.option(fc.constantFrom('Bearer {}', '{}', 'token {} end', '$& {}'), { nil: undefined }),
  swapIn: swapInArb,
  value: fc.string({ minLength: 1, maxLength: 20 }).map((s) => new Secret(s)),
});
const pastedArb = fc.record({
  kind: fc.constant('pasted' as const),
  owner: fc.record({ agent: likely('coder', 'other'), user: likely('alice', 'bob') }),
  hosts: hostsArb,
  value: fc.string({ minLength: 1, maxLength: 20 }).map((s) => new Secret(s)),
});
const locationArb = fc.constantFrom<ReleaseLocation>('header:authorization', 'header:Authorization', 'header:x-api-key', 'header:x-token', 'query', 'path', 'body', 'arguments');
const requestArb = fc.record({
  secret: fc.oneof(namedArb, pastedArb),
  agent: likely('coder', 'other'),
  granted: likely(true, false),
  user: likely<string | null>('alice', 'bob', null),
  destination: fc.record({
    scheme: likely('https', 'http', 'HTTPS', 'ftp'),
    host: likely('api.github.com', ...DEST_HOSTS),
    port: likely<number>(443, 8443, 80, 1),
    location: locationArb,
    whole: fc.boolean(),
  }),
});

function isLoopbackLiteral(host: string): boolean {
  return ['127.0.0.1', '::1', '[::1]'].includes(host);
}

test('property: an allow means a granted use, declared hosts, a matching host and port, https or loopback http, a permitted location', () => {
  let allowed = 0;
  fc.assert(
    fc.property(requestArb, (req) => {
      const d = release(req);
      if (d.effect !== 'allow') return;
      allowed++;
      const { secret, destination: to } = req;
      if (secret.kind === 'named') assert.ok(req.granted);
      else assert.ok(secret.owner.agent === req.agent && secret.owner.user === req.user);
      assert.ok(secret.hosts.length > 0);
      assert.ok(oracleMatches(secret.hosts, to.host));
      if (secret.kind === 'named' && secret.configHosts !== undefined) assert.ok(oracleMatches(secret.configHosts, to.host));
      if (secret.kind === 'named' && secret.ports !== undefined) assert.ok(secret.ports.includes(to.port));
      assert.ok(to.scheme.toLowerCase() === 'https' || (to.scheme === 'http' && isLoopbackLiteral(to.host)));
      if (secret.kind === 'pasted') {
        assert.ok(to.location === 'arguments' || to.location.startsWith('header:'));
      } else {
        assert.notEqual(to.location, 'arguments');
        const swapIn = secret.swapIn ?? ['header'];
        const kind = to.location.startsWith('header:') ? 'header' : to.location;
        assert.ok((swapIn as string[]).includes(kind));
        if (kind === 'header' && secret.header !== undefined) assert.equal(to.location.slice(7).toLowerCase(), secret.header.toLowerCase());
      }
    }),
    { numRuns: 3000 },
  );
  assert.ok(allowed > 100, `the generator reaches allows (${allowed} of 3000)`);
});

test('property: the inserted text is the value, or its format around it for a whole declared header; every deny reason is in the closed set', () => {
  fc.assert(
    fc.property(requestArb, (req) => {
      const d = release(req);
      if (d.effect === 'deny') {
        assert.ok((RELEASE_DENIALS as readonly string[]).includes(d.reason), d.reason);
        assert.equal('value' in d, false, 'a denial carries no value');
        return;
      }
      assert.equal(d.reason, 'release.allowed');
      const clear = req.secret.value.reveal();
      const s = req.secret;
      if (s.kind === 'named' && s.header !== undefined && s.format !== undefined && req.destination.whole === true && req.destination.location.startsWith('header:')) {
        const [pre, post] = s.format.split('{}') as [string, string];
        assert.equal(d.value.reveal(), pre + clear + post);
      } else {
        assert.equal(d.value.reveal(), clear);
      }
    }),
    { numRuns: 3000 },
  );
});

test('property: taking away a grant, a host or a swapIn location never turns a deny into an allow', () => {
  fc.assert(
    fc.property(requestArb, fc.nat(), (req, pick) => {
      const before = release(req);
      const s = req.secret;
      let narrowed: ReleaseRequest;
      if (s.kind === 'named' && pick % 3 === 0) narrowed = { ...req, granted: false };
      else if (pick % 3 === 1) narrowed = { ...req, secret: { ...s, hosts: s.hosts.slice(1) } as ReleasableSecret };
      else if (s.kind === 'named' && s.swapIn !== undefined) narrowed = { ...req, secret: { ...s, swapIn: s.swapIn.slice(1) } };
      else narrowed = req;
      const after = release(narrowed);
      if (before.effect === 'deny') assert.equal(after.effect, 'deny');
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------
// The response half: what the network door redacts from a secret's host.

test('Vault.valuesForHost: every live value of every secret bound to the host, rotated-out versions until their grace ends, none after revocation', async () => {
  const store = await openSqliteStore(':memory:');
  let now = 1_000_000;
  const vault = await Vault.open(store, kekFromBytes(randomKeyBytes(32)), { rotationGraceMs: 1000, now: () => now });
  try {
    await vault.add('gh', new Secret('gh-one'), { hosts: ['api.github.com'], header: 'Authorization' });
    await vault.add('slack', new Secret('slack-one'), { hosts: ['*.slack.com'] });
    await vault.add('both', new Secret('both-one'), { hosts: ['api.github.com', 'hooks.slack.com'] });
    const of = async (host: string): Promise<string[]> => (await vault.valuesForHost(host)).map((s) => s.reveal()).sort();
    assert.deepEqual(await of('api.github.com'), ['both-one', 'gh-one']);
    assert.deepEqual(await of('API.GitHub.com.'), ['both-one', 'gh-one'], 'normalized');
    assert.deepEqual(await of('hooks.slack.com'), ['both-one', 'slack-one']);
    assert.deepEqual(await of('slack.com'), [], 'a wildcard covers subdomains only');
    assert.deepEqual(await of('evil.example.net'), []);
    await vault.rotate('gh', new Secret('gh-two'));
    assert.deepEqual(await of('api.github.com'), ['both-one', 'gh-one', 'gh-two'], 'the old version in its grace');
    now += 1001;
    assert.deepEqual(await of('api.github.com'), ['both-one', 'gh-two'], 'past its grace, from the cache too');
    await vault.revoke('both');
    assert.deepEqual(await of('api.github.com'), ['gh-two']);
  } finally {
    await store.close();
  }
});

/** Counts the store's vault generation reads from now on. */
function countGenerationReads(store: { vaultGeneration(): Promise<number> }): { readonly reads: number } {
  const counter = { reads: 0 };
  const real = store.vaultGeneration.bind(store);
  store.vaultGeneration = async () => {
    counter.reads++;
    return real();
  };
  return counter;
}

test('Vault.view: one generation read per view; its lookups answer from that generation, a later view sees a revoke', async () => {
  const store = await openSqliteStore(':memory:');
  const vault = await Vault.open(store, kekFromBytes(randomKeyBytes(32)), { rotationGraceMs: 1000 });
  try {
    await vault.add('gh', new Secret('gh-one'), { hosts: ['api.github.com'], header: 'Authorization' });
    const ph = await vault.placeholder('gh', 'agent-a');
    const counter = countGenerationReads(store);
    const view = await vault.view();
    assert.equal(counter.reads, 1);
    assert.equal(view.resolve('agent-a', ph)?.value.reveal(), 'gh-one');
    assert.equal(view.resolve('agent-b', ph), undefined, 'another agent');
    assert.equal(view.current('gh')?.value.reveal(), 'gh-one');
    const live = view.valuesForHost('api.github.com');
    assert.deepEqual(live.map((s) => s.reveal()), ['gh-one']);
    assert.equal(view.valuesForHost('api.github.com'), live, 'the same array while the generation holds');
    assert.ok(live.includes(view.resolve('agent-a', ph)!.value), 'the same Secret object as the released one');
    assert.equal(counter.reads, 1, 'lookups on a view read nothing');
    await vault.revoke('gh');
    assert.equal(view.resolve('agent-a', ph)?.value.reveal(), 'gh-one', 'a view is one generation');
    const after = await vault.view();
    assert.equal(after.resolve('agent-a', ph), undefined, 'the next view sees the revoke');
    assert.deepEqual(after.valuesForHost('api.github.com'), []);
  } finally {
    await store.close();
  }
});

test('Vault.view: views of one turn share one generation read; another connection\'s revoke is seen from the next turn, this vault\'s own at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-view-'));
  const kek = kekFromBytes(randomKeyBytes(32));
  const store = await openSqliteStore(join(dir, 'b.db'));
  const other = await openSqliteStore(join(dir, 'b.db'));
  try {
    const vault = await Vault.open(store, kek, { rotationGraceMs: 1000 });
    const cli = await Vault.open(other, kek, { rotationGraceMs: 1000 });
    await vault.add('gh', new Secret('gh-one'), { hosts: ['api.github.com'], header: 'Authorization' });
    const ph = await vault.placeholder('gh', 'agent-a');
    const counter = countGenerationReads(store);
    await new Promise((r) => setImmediate(r));
    const views = await Promise.all([vault.view(), vault.view(), vault.view()]);
    assert.equal(counter.reads, 1, 'three requests of one turn: one read');
    // The CLI (another connection) revokes within the turn: this turn's views are as of before it ...
    await cli.revoke('gh');
    assert.equal((await vault.view()).resolve('agent-a', ph)?.value.reveal(), 'gh-one');
    assert.equal(counter.reads, 1);
    for (const v of views) assert.equal(v.resolve('agent-a', ph)?.value.reveal(), 'gh-one');
    // ... and the next turn reads again and sees it.
    await new Promise((r) => setImmediate(r));
    assert.equal((await vault.view()).resolve('agent-a', ph), undefined, 'revoked from the next turn on');
    assert.equal(counter.reads, 2);
    // This vault's own change drops the shared read: the next view, in the same turn, sees it.
    await vault.add('gh', new Secret('gh-two'), { hosts: ['api.github.com'], header: 'Authorization' });
    const ph2 = await vault.placeholder('gh', 'agent-a');
    assert.equal((await vault.view()).resolve('agent-a', ph2)?.value.reveal(), 'gh-two');
    await vault.rotate('gh', new Secret('gh-three'));
    assert.equal((await vault.view()).current('gh')?.value.reveal(), 'gh-three');
    await vault.revoke('gh');
    assert.equal((await vault.view()).current('gh'), undefined);
    // The direct lookups read on every call, whatever the turn.
    await cli.add('gh', new Secret('gh-four'), { hosts: ['api.github.com'], header: 'Authorization' });
    assert.equal((await vault.current('gh'))?.value.reveal(), 'gh-four');
  } finally {
    await other.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Vault.view: a store failure rejects with ERR_STORE (the door refuses)', async () => {
  const store = await openSqliteStore(':memory:');
  const vault = await Vault.open(store, kekFromBytes(randomKeyBytes(32)), { rotationGraceMs: 1000 });
  await store.close();
  await assert.rejects(vault.view(), (e: unknown) => (e as { code?: string }).code === 'ERR_STORE');
});
