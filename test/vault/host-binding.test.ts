/**
 * Issue 11, class 2: "No secret is bound to a namespace anyone can register in."
 * The one host-binding check (src/vault/host-binding.ts) against the Public
 * Suffix List's ICANN and PRIVATE sections, and its users: Vault.add
 * (normalizeSecretMeta), config load, the hosts a detector rule proposes for a
 * pasted credential, PastedSecrets.bind, and the runtime filter of hosts
 * stored before the check. Before this change every refused pattern below was
 * accepted (`*.github.io`, `*.amazonaws.com`, `com` ...).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { getPublicSuffix } from 'tldts';
import { loadConfig } from '../../src/config/load.ts';
import { SECRET_RULE_TABLE } from '../../src/detect/secret-rules.ts';
import { isBastionError } from '../../src/errors.ts';
import { hostMatches } from '../../src/net/host-pattern.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { randomKeyBytes } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';
import {
  bindableHosts,
  buildIndex,
  checkHostBinding,
  hostBindingMessage,
  HOST_BINDING_REFUSALS,
  isUsableStoredHost,
  OVERRIDABLE_REFUSALS,
  publicSuffixRules,
  type HostBindingRefusal,
} from '../../src/vault/host-binding.ts';
import { kekFromBytes } from '../../src/vault/kek.ts';
import { PastedSecrets } from '../../src/vault/pasted.ts';
import { pastedSecret, release } from '../../src/vault/release.ts';
import { normalizeSecretMeta, Vault } from '../../src/vault/vault.ts';
import { tempDir } from '../audit/fixtures.ts';

const tmp = tempDir('bastion-host-binding-');
after(tmp.cleanup);
let n = 0;

/** [pattern, verdict without override, verdict with unsafeAllowSharedSuffix]. */
const TABLE: readonly [string, HostBindingRefusal | 'ok', HostBindingRefusal | 'ok'][] = [
  // Ordinary registrable names and wildcards below them.
  ['api.github.com', 'ok', 'ok'],
  ['*.slack.com', 'ok', 'ok'],
  ['*.github.com', 'ok', 'ok'],
  ['huggingface.co', 'ok', 'ok'],
  ['bbc.co.uk', 'ok', 'ok'],
  ['*.bbc.co.uk', 'ok', 'ok'],
  ['amazonaws.com', 'ok', 'ok'],
  // Upper case and one trailing dot are normalized before the check.
  ['API.GitHub.COM.', 'ok', 'ok'],
  ['*.GitHub.IO', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.github.io.', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['CO.UK.', 'host.public_suffix', 'host.public_suffix'],
  // ICANN section.
  ['com', 'host.public_suffix', 'host.public_suffix'],
  ['co.uk', 'host.public_suffix', 'host.public_suffix'],
  ['cafe', 'host.public_suffix', 'host.public_suffix'],
  ['*.com', 'wildcard.public_suffix', 'wildcard.public_suffix'],
  ['*.co.uk', 'wildcard.public_suffix', 'wildcard.public_suffix'],
  ['*.uk', 'wildcard.public_suffix', 'wildcard.public_suffix'],
  // PRIVATE section: wildcards over shared suffixes.
  ['*.s3.amazonaws.com', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.myshopify.com', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.hf.space', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.github.io', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.herokuapp.com', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.vercel.app', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.githubusercontent.com', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.googleapis.com', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.compute.amazonaws.com', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  // A wildcard whose base is no suffix but which covers one below it.
  ['*.amazonaws.com', 'wildcard.covers_suffix', 'wildcard.covers_suffix'],
  ['*.amazonaws.com.cn', 'wildcard.covers_suffix', 'wildcard.covers_suffix'],
  // A wildcard under one tenant's name under a shared suffix (bucket names may hold dots).
  ['*.mybucket.s3.amazonaws.com', 'wildcard.under_shared_suffix', 'wildcard.under_shared_suffix'],
  ['*.someone.github.io', 'wildcard.under_shared_suffix', 'wildcard.under_shared_suffix'],
  // Exact hosts that are or lie under a shared suffix: refused, unless the admin overrides.
  ['github.io', 'host.shared_suffix', 'ok'],
  ['s3.amazonaws.com', 'host.shared_suffix', 'ok'],
  ['someone.github.io', 'host.under_shared_suffix', 'ok'],
  ['mybucket.s3.amazonaws.com', 'host.under_shared_suffix', 'ok'],
  ['mystore.myshopify.com', 'host.under_shared_suffix', 'ok'],
  ['myapp.herokuapp.com', 'host.under_shared_suffix', 'ok'],
  ['generativelanguage.googleapis.com', 'host.under_shared_suffix', 'ok'],
  // IDN, as punycode (the schema is ASCII): xn--3e0b707e is 한국 (.kr's IDN TLD); xn--p1acf is .рус.
  ['*.xn--3e0b707e', 'wildcard.public_suffix', 'wildcard.public_suffix'],
  ['xn--3e0b707e', 'host.public_suffix', 'host.public_suffix'],
  ['xn--80ak6aa92e.xn--3e0b707e', 'ok', 'ok'],
  ['*.xn--41a.xn--p1acf', 'wildcard.shared_suffix', 'wildcard.shared_suffix'],
  ['*.한국', 'host.invalid', 'host.invalid'],
  ['bücher.example', 'host.invalid', 'host.invalid'],
  // Malformed.
  ['', 'host.invalid', 'host.invalid'],
  ['*', 'host.invalid', 'host.invalid'],
  ['*.', 'host.invalid', 'host.invalid'],
  ['a..b', 'host.invalid', 'host.invalid'],
  ['*.*.example.com', 'host.invalid', 'host.invalid'],
  ['https://api.github.com/', 'host.invalid', 'host.invalid'],
  // Unchanged: IP literals and names under TLDs the list does not know (not a public namespace).
  ['127.0.0.1', 'ok', 'ok'],
  ['10.1.2.3', 'ok', 'ok'],
  ['::1', 'ok', 'ok'],
  ['[fd00::1]', 'ok', 'ok'],
  ['localhost', 'ok', 'ok'],
  ['*.localhost', 'ok', 'ok'],
  ['myhost', 'ok', 'ok'],
  ['api.internal', 'ok', 'ok'],
  ['*.internal', 'ok', 'ok'],
  ['*.corp.lan', 'ok', 'ok'],
  ['a.example', 'ok', 'ok'],
  ['api.acme.test', 'ok', 'ok'],
];

/** Rules of the PRIVATE section without wildcard labels, for generators. */
function privateSuffixes(): string[] {
  const rules = publicSuffixRules();
  assert.ok(rules, 'the suffix data is readable');
  return [...rules].filter(([r, kind]) => kind === 'private' && !r.includes('*')).map(([r]) => r);
}

/** A DNS label that is not a suffix by itself in any rule position (lower case, starts with a letter). */
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}[a-z0-9]$/);

describe('checkHostBinding', () => {
  test('table: refused and accepted patterns, with and without the override', () => {
    for (const [pattern, plain, overridden] of TABLE) {
      const a = checkHostBinding(pattern);
      assert.equal(a.ok ? 'ok' : a.reason, plain, `${pattern}`);
      const b = checkHostBinding(pattern, { unsafeAllowSharedSuffix: true });
      assert.equal(b.ok ? 'ok' : b.reason, overridden, `${pattern} with override`);
      if (b.ok) assert.equal(b.overridden, plain === 'ok' ? undefined : plain, `${pattern}: the override is reported`);
    }
  });

  test('reasons form a closed set, each explained; only exact-host reasons are overridable', () => {
    assert.deepEqual([...OVERRIDABLE_REFUSALS].sort(), ['host.shared_suffix', 'host.under_shared_suffix']);
    for (const [, plain] of TABLE) if (plain !== 'ok') assert.ok(Object.hasOwn(HOST_BINDING_REFUSALS, plain));
    assert.deepEqual(checkHostBinding(42), { ok: false, host: '', reason: 'host.invalid' });
  });

  test('property: every wildcard over, under or covering a PRIVATE-section suffix is refused, with or without the override', () => {
    const suffixes = privateSuffixes();
    assert.ok(suffixes.length > 1000, `${suffixes.length} private rules`);
    fc.assert(
      fc.property(fc.constantFrom(...suffixes), fc.array(label, { maxLength: 3 }), fc.boolean(), (suffix, labels, override) => {
        const base = [...labels, suffix].join('.');
        const r = checkHostBinding(`*.${base}`, { unsafeAllowSharedSuffix: override });
        assert.equal(r.ok, false, `*.${base}`);
        // And every ancestor of the suffix, as a wildcard base, covers it.
        const parts = suffix.split('.');
        for (let i = 1; i < parts.length; i++) {
          const ancestor = parts.slice(i).join('.');
          assert.equal(checkHostBinding(`*.${ancestor}`, { unsafeAllowSharedSuffix: override }).ok, false, `*.${ancestor}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('property: an exact host under or at a PRIVATE-section suffix is refused without the override and accepted with it', () => {
    const suffixes = privateSuffixes();
    fc.assert(
      fc.property(fc.constantFrom(...suffixes), fc.array(label, { maxLength: 2 }), (suffix, labels) => {
        const host = [...labels, suffix].join('.');
        const plain = checkHostBinding(host);
        assert.equal(plain.ok, false, host);
        assert.ok(plain.ok || OVERRIDABLE_REFUSALS.has(plain.reason), `${host}: ${plain.ok ? '' : plain.reason}`);
        assert.equal(checkHostBinding(host, { unsafeAllowSharedSuffix: true }).ok, true, host);
      }),
      { numRuns: 2000 },
    );
  });

  test('property: no accepted wildcard matches a name the list makes public (a suffix or a name under a PRIVATE suffix)', () => {
    const suffixes = privateSuffixes();
    fc.assert(
      fc.property(fc.constantFrom(...suffixes), label, fc.integer({ min: 0, max: 4 }), (suffix, tenant, cut) => {
        // Any wildcard built from a tail of `tenant.suffix` that matches it.
        const parts = `${tenant}.${suffix}`.split('.');
        const base = parts.slice(Math.min(cut + 1, parts.length - 1)).join('.');
        const pattern = `*.${base}`;
        if (hostMatches(pattern, `${tenant}.${suffix}`)) assert.equal(checkHostBinding(pattern).ok, false, pattern);
      }),
      { numRuns: 2000 },
    );
  });

  test('the suffix data read from tldts agrees with tldts\'s own lookup for every plain rule', () => {
    const rules = publicSuffixRules();
    assert.ok(rules);
    let checked = 0;
    for (const [rule, kind] of rules) {
      if (rule.includes('*')) continue;
      const answer = getPublicSuffix(`probe-label.${rule}`, { allowPrivateDomains: kind === 'private' || undefined });
      // Another, longer rule may answer for the probe (a wildcard below this one); it must end with this rule.
      assert.ok(answer === rule || (answer ?? '').endsWith(`.${rule}`), `${rule} (${kind}) → ${answer}`);
      checked++;
    }
    assert.ok(checked > 9000, `${checked} rules`);
  });

  test('bindableHosts: what a detector rule proposes for a pasted credential, minus what the check refuses', () => {
    const byRule = new Map(SECRET_RULE_TABLE.map((r) => [r.id, bindableHosts(r.hosts ?? [])]));
    assert.deepEqual(byRule.get('shopify-token'), [], 'Shopify tokens work on any *.myshopify.com store: unbound until an admin binds');
    assert.deepEqual(byRule.get('github-token'), ['github.com', '*.github.com', 'ghcr.io']);
    assert.deepEqual(byRule.get('huggingface-token'), ['huggingface.co', '*.huggingface.co']);
    assert.deepEqual(byRule.get('aws-access-key-id'), ['*.api.aws']);
    assert.deepEqual(byRule.get('google-api-key'), ['*.firebaseio.com']);
    assert.deepEqual(byRule.get('openai-api-key'), ['api.openai.com']);
    for (const [id, hosts] of byRule) for (const h of hosts) assert.equal(checkHostBinding(h).ok, true, `${id}: ${h}`);
    assert.deepEqual(bindableHosts(['API.Example.COM.', 'api.example.com', '*.github.io', 'not a host']), ['api.example.com']);
  });

  test('isUsableStoredHost: stored hosts no override could accept are not used; overridable ones are', () => {
    assert.equal(isUsableStoredHost('*.github.io'), false);
    assert.equal(isUsableStoredHost('*.amazonaws.com'), false);
    assert.equal(isUsableStoredHost('com'), false);
    assert.equal(isUsableStoredHost('mystore.myshopify.com'), true);
    assert.equal(isUsableStoredHost('api.github.com'), true);
  });
});

describe('messages', () => {
  test('each explanation continues the sentence after the quoted pattern; the override hint only where an override applies', () => {
    for (const [reason, text] of Object.entries(HOST_BINDING_REFUSALS)) assert.match(text, /^(is|not|cannot) [a-z]/, reason);
    const wild = checkHostBinding('*.github.io');
    assert.ok(!wild.ok);
    assert.equal(hostBindingMessage(wild), `"*.github.io" ${HOST_BINDING_REFUSALS['wildcard.shared_suffix']} (wildcard.shared_suffix)`);
    const exact = checkHostBinding('someone.github.io');
    assert.ok(!exact.ok);
    assert.match(hostBindingMessage(exact), /\(host\.under_shared_suffix\); bind the exact host only if you control it, with unsafeAllowSharedSuffix \(--unsafe-allow-shared-suffix\)$/);
  });

  test('the pattern shown is cut to 256 characters', () => {
    const long = `${'a'.repeat(300)}.com`;
    assert.equal(hostBindingMessage({ ok: false, host: 'x', reason: 'host.invalid' }, long), `${JSON.stringify('a'.repeat(256))} ${HOST_BINDING_REFUSALS['host.invalid']} (host.invalid)`);
  });
});

describe('reading the suffix data: anything of another shape fails closed, loudly', () => {
  const real = createRequire(import.meta.url)('tldts/dist/cjs/src/data/trie.js') as Record<string, unknown> & { nodeFlags: Uint8Array; edgeStart: Uint16Array; edgeLength: Uint8Array; edgeChild: Uint16Array; labelText: string; rulesRoot: number };

  test('the shipped data reads as the rules publicSuffixRules answers, IDN rules in punycode', () => {
    const index = buildIndex(real);
    assert.deepEqual(index.rules, publicSuffixRules());
    assert.equal(index.rules.get('xn--3e0b707e'), 'icann', '한국 as punycode');
    assert.ok([...index.rules.keys()].every((r) => /^[\x21-\x7e]+$/.test(r)), 'every rule is ASCII');
    assert.ok(index.ancestors.has('amazonaws.com') && !index.ancestors.has('s3.amazonaws.com.x'));
  });

  test('a field missing or of another type is TypeError', () => {
    const wrong: Record<string, unknown>[] = [
      { nodeFlags: Array.from(real.nodeFlags) },
      { edgeStart: Array.from(real.edgeStart) },
      { edgeLength: Array.from(real.edgeLength) },
      { edgeChild: Array.from(real.edgeChild) },
      { labelText: [real.labelText] },
      { rulesRoot: String(real.rulesRoot) },
      { edgeStart: real.edgeStart.subarray(0, -1) },
      { edgeChild: real.edgeChild.subarray(0, -1) },
    ];
    for (const over of wrong) assert.throws(() => buildIndex({ ...real, ...over }), (err: unknown) => err instanceof TypeError && err.message === 'unexpected tldts trie shape', Object.keys(over)[0]);
  });

  test('a walk that leaves the nodes, loops, or grows past its bound is RangeError, naming why', () => {
    for (const rulesRoot of [-1, real.nodeFlags.length]) {
      assert.throws(() => buildIndex({ ...real, rulesRoot }), /^RangeError: tldts trie misread: an edge leads outside the nodes$/, String(rulesRoot));
    }
    // A node whose edge leads back to itself.
    const loop = { nodeFlags: new Uint8Array([0, 1]), edgeStart: new Uint16Array([0, 1, 2]), edgeLength: new Uint8Array([1, 1]), edgeChild: new Uint16Array([1, 1]), labelText: 'ab', rulesRoot: 0 };
    assert.throws(() => buildIndex(loop), /^RangeError: tldts trie misread: a rule of more than 64 labels$/);
    // 21 levels of two edges to the same next node: 2^21 paths of at most 21 labels.
    const levels = 21;
    const wide = {
      nodeFlags: new Uint8Array(levels + 1),
      edgeStart: new Uint16Array([...Array.from({ length: levels + 1 }, (_, i) => 2 * i), 2 * levels]),
      edgeLength: new Uint8Array(2 * levels).fill(1),
      edgeChild: new Uint16Array(Array.from({ length: 2 * levels }, (_, e) => (e >> 1) + 1)),
      labelText: 'a'.repeat(2 * levels),
      rulesRoot: 0,
    };
    assert.throws(() => buildIndex(wide), /^RangeError: tldts trie misread: more than 1,000,000 visits$/);
  });

  test('data that misses a rule every list holds, or holds it in the other section, is RangeError', () => {
    // The node a rule ends at, found by walking its labels right to left from the root.
    const offsets: number[] = [];
    for (let e = 0, off = 0; e < real.edgeLength.length; e++) {
      offsets.push(off);
      off += real.edgeLength[e]!;
    }
    const nodeOf = (rule: string): number => {
      let node = real.rulesRoot;
      for (const label of rule.split('.').reverse()) {
        let next = -1;
        for (let e = real.edgeStart[node]!; e < real.edgeStart[node + 1]!; e++) {
          if (real.labelText.slice(offsets[e]!, offsets[e]! + real.edgeLength[e]!) === label) next = real.edgeChild[e]!;
        }
        assert.ok(next >= 0, `${rule}: ${label}`);
        node = next;
      }
      return node;
    };
    for (const [rule, flag] of [['com', 2], ['co.uk', 0], ['github.io', 1], ['s3.amazonaws.com', 1]] as const) {
      const nodeFlags = Uint8Array.from(real.nodeFlags);
      nodeFlags[nodeOf(rule)] = flag;
      assert.throws(() => buildIndex({ ...real, nodeFlags }), /^RangeError: tldts trie misread: rules every list holds are missing$/, rule);
    }
  });
});

describe('the check in the vault', () => {
  async function open(): Promise<{ vault: Vault; store: Awaited<ReturnType<typeof openSqliteStore>> }> {
    const store = await openSqliteStore(':memory:');
    const vault = await Vault.open(store, kekFromBytes(randomKeyBytes(32)), { rotationGraceMs: 1000 });
    return { vault, store };
  }

  test('normalizeSecretMeta and Vault.add refuse a host anyone can register names under, naming host and reason', async () => {
    assert.throws(() => normalizeSecretMeta({ hosts: ['api.github.com', '*.GitHub.io'] }), /hosts: "\*\.GitHub\.io" is a wildcard over a shared suffix .*\(wildcard\.shared_suffix\)/);
    assert.throws(() => normalizeSecretMeta({ hosts: ['*.amazonaws.com'] }), /\(wildcard\.covers_suffix\)/);
    assert.throws(() => normalizeSecretMeta({ hosts: ['mystore.myshopify.com'] }), /\(host\.under_shared_suffix\).*--unsafe-allow-shared-suffix/);
    assert.deepEqual(normalizeSecretMeta({ hosts: ['MyStore.myshopify.com'], unsafeAllowSharedSuffix: true }).hosts, ['mystore.myshopify.com']);
    assert.throws(() => normalizeSecretMeta({ hosts: ['*.myshopify.com'], unsafeAllowSharedSuffix: true }), RangeError);
    const { vault, store } = await open();
    try {
      await assert.rejects(vault.add('s', new Secret('v4lue-0123456789'), { hosts: ['*.s3.amazonaws.com'] }), (err: unknown) => err instanceof RangeError && /wildcard\.shared_suffix/.test(err.message) && !err.message.includes('v4lue'));
      assert.deepEqual(await vault.list(), [], 'nothing was stored');
    } finally {
      await store.close();
    }
  });

  test('a secret stored before the check with a refused wildcard is not sent there: the runtime index drops the host', async () => {
    const path = join(tmp.dir, `legacy${n++}.db`);
    const kek = kekFromBytes(randomKeyBytes(32));
    const first = await openSqliteStore(path);
    await (await Vault.open(first, kek, { rotationGraceMs: 1000 })).add('legacy', new Secret('legacy-value-0123456789'), { hosts: ['api.github.com'] });
    await first.close();
    // The hosts an older Bastion could have stored.
    const raw = new DatabaseSync(path);
    raw.prepare('UPDATE secrets SET hosts = ?').run(JSON.stringify(['*.github.io', 'api.github.com', 'mystore.myshopify.com', '*.amazonaws.com']));
    raw.close();
    const store = await openSqliteStore(path);
    try {
      const vault = await Vault.open(store, kek, { rotationGraceMs: 1000 });
      assert.deepEqual((await vault.current('legacy'))?.secret.hosts, ['api.github.com', 'mystore.myshopify.com']);
      const ph = await vault.placeholder('legacy', 'agent');
      assert.deepEqual((await vault.resolve('agent', ph))?.secret.hosts, ['api.github.com', 'mystore.myshopify.com']);
    } finally {
      await store.close();
    }
  });

  test('pasted secrets: a Shopify token is vaulted unbound; bind checks hosts; the override binds one store', async () => {
    const { vault, store } = await open();
    try {
      const pasted = new PastedSecrets(store, vault);
      const hostsOf = async (token: string): Promise<readonly string[] | undefined> => (await store.getPastedSecretByToken(token))?.hosts;
      const shop = await pasted.vault('agent', 'alice', new Secret(`shpat_${'0123456789abcdef'.repeat(2)}`), 'shopify-token');
      const token = shop.secret.token;
      assert.deepEqual(await hostsOf(token), [], 'stored unbound (the doors refuse it: test/vault/pasted-bind.test.ts)');
      await assert.rejects(pasted.bind(token, ['*.myshopify.com']), /wildcard\.shared_suffix/);
      await assert.rejects(pasted.bind(token, ['*.myshopify.com'], { unsafeAllowSharedSuffix: true }), /wildcard\.shared_suffix/);
      await assert.rejects(pasted.bind(token, ['mystore.myshopify.com']), /host\.under_shared_suffix/);
      await assert.rejects(pasted.bind(token, ['api.example.com', 'com']), /host\.public_suffix/);
      await assert.rejects(pasted.bind(token, []), RangeError);
      assert.deepEqual(await hostsOf(token), [], 'a refused bind changed nothing');
      assert.equal(await pasted.bind(token, ['MyStore.myshopify.com', 'mystore.myshopify.com.'], { unsafeAllowSharedSuffix: true }), true);
      assert.deepEqual(await hostsOf(token), ['mystore.myshopify.com']);
      assert.equal(await pasted.bind('aaaaaaaaaaaa', ['api.example.com']), false, 'unknown token');
      // A GitHub token keeps the hosts that pass: github.com, *.github.com, ghcr.io (not *.githubusercontent.com).
      const gh = await pasted.vault('agent', 'alice', new Secret(`ghp_${'Zx9'.repeat(12)}`), 'github-token');
      assert.deepEqual(gh.secret.hosts, ['github.com', '*.github.com', 'ghcr.io']);
    } finally {
      await store.close();
    }
  });
});

describe('pasted rows stored before the check', () => {
  test('find() drops hosts no override could accept, so the release rule sees the secret unbound', async () => {
    const store = await openSqliteStore(':memory:');
    try {
      const vault = await Vault.open(store, kekFromBytes(randomKeyBytes(32)), { rotationGraceMs: 1000 });
      const pasted = new PastedSecrets(store, vault);
      const v = await pasted.vault('agent', 'alice', new Secret(`shpat_${'0123456789abcdef'.repeat(2)}`), 'shopify-token');
      // What an older Bastion stored for this rule, and what an override could have bound.
      await store.setPastedSecretHosts(v.secret.id, ['*.myshopify.com']);
      const legacy = await pasted.find(v.secret.token);
      assert.deepEqual(legacy?.secret.hosts, []);
      const to = (host: string) => release({ secret: pastedSecret(legacy!.secret, legacy!.value), agent: 'agent', granted: false, user: 'alice', destination: { scheme: 'https', host, port: 443, location: 'header:x-shopify-access-token' } });
      assert.equal(to('evil.myshopify.com').reason, 'release.unbound');
      await store.setPastedSecretHosts(v.secret.id, ['*.myshopify.com', 'mystore.myshopify.com']);
      const mixed = await pasted.find(v.secret.token);
      assert.deepEqual(mixed?.secret.hosts, ['mystore.myshopify.com']);
    } finally {
      await store.close();
    }
  });
});

describe('who may bind', () => {
  test('pasted-secret hosts are set only by PastedSecrets.bind, and bind is called only by the CLI (admin-only)', () => {
    const src = join(import.meta.dirname, '..', '..', 'src');
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => f.split(sep).join('/'));
    const setters = files.filter((f) => readFileSync(join(src, f), 'utf8').includes('.setPastedSecretHosts('));
    assert.deepEqual(setters.filter((f) => !f.startsWith('store/')), ['vault/pasted.ts']);
    const binders = files.filter((f) => /\bPastedSecrets\([^)]*\)\.bind\(|\bpasted\??\.bind\(/.test(readFileSync(join(src, f), 'utf8')));
    assert.deepEqual(binders, ['cli/commands/secret-pasted.ts']);
  });
});

describe('the check at config load', () => {
  function write(yaml: string): string {
    const file = join(tmp.dir, `c${n++}.yaml`);
    writeFileSync(file, yaml);
    return file;
  }

  test('a refused host is ERR_CONFIG_INVALID naming the file, line, config path and reason', async () => {
    const file = write(`version: 1
secrets:
  shop:
    hosts: [api.example.com, "*.myshopify.com"]
  aws:
    hosts:
      - "*.amazonaws.com"
  bad:
    hosts: [co.uk]
  mine:
    hosts: [mystore.myshopify.com]
`);
    await assert.rejects(loadConfig(file, { env: {}, secrets: 'lenient' }), (err: unknown) => {
      assert.ok(isBastionError(err, 'ERR_CONFIG_INVALID'), String(err));
      const lines = err.message.split('\n');
      assert.equal(lines.length, 4, err.message);
      assert.ok(lines[0]!.startsWith(`${file}:4:`), lines[0]);
      assert.match(lines[0]!, /secrets\.shop\.hosts\[1\]: refused: "\*\.myshopify\.com" is a wildcard over a shared suffix .*\(wildcard\.shared_suffix\)/);
      assert.match(lines[1]!, /:7:\d+: secrets\.aws\.hosts\[0\]: refused: .*\(wildcard\.covers_suffix\)/);
      assert.match(lines[2]!, /:9:\d+: secrets\.bad\.hosts\[0\]: refused: .*\(host\.public_suffix\)/);
      assert.match(lines[3]!, /:11:\d+: secrets\.mine\.hosts\[0\]: refused: .*\(host\.under_shared_suffix\).*unsafeAllowSharedSuffix/);
      return true;
    });
  });

  test('unsafeAllowSharedSuffix accepts exact hosts only, resolves, and is reported as a warning on every load', async () => {
    const ok = write(`version: 1
secrets:
  mine:
    hosts: [MyStore.myshopify.com, api.example.com]
    unsafeAllowSharedSuffix: true
`);
    const { config, warnings } = await loadConfig(ok, { env: {}, secrets: 'lenient' });
    assert.deepEqual(config.secrets.get('mine'), { name: 'mine', hosts: ['mystore.myshopify.com', 'api.example.com'], unsafeAllowSharedSuffix: true });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /:4:\d+: secrets\.mine\.hosts\[0\]: accepted by unsafeAllowSharedSuffix: "MyStore\.myshopify\.com" .*\(host\.under_shared_suffix\)/);
    const wild = write(`version: 1
secrets:
  mine:
    hosts: ["*.myshopify.com"]
    unsafeAllowSharedSuffix: true
`);
    await assert.rejects(loadConfig(wild, { env: {}, secrets: 'lenient' }), (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && /secrets\.mine\.hosts\[0\]: refused: .*wildcard\.shared_suffix/.test(err.message));
    const typo = write(`version: 1
secrets:
  mine:
    hosts: [api.example.com]
    unsafeAllowSharedSuffix: yes-please
`);
    await assert.rejects(loadConfig(typo, { env: {}, secrets: 'lenient' }), (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && /secrets\.mine\.unsafeAllowSharedSuffix/.test(err.message));
  });
});
