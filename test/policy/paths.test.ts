import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { isBastionError } from '../../src/errors.ts';
import { MAX_PATH_ARGS_DEPTH, PathGuard, pathAuditDetail, pathRefusalText, type PathScope } from '../../src/policy/paths.ts';

// A real folder tree:
//   root/
//     outside/secret.txt, outside/sub/
//     ws/            (the workspace, also paths.base)
//       a/b/file.txt, .env, keys/id_rsa
//       link-out   -> ../outside          (symlink escaping the workspace)
//       link-in    -> a/b                 (symlink staying inside)
//       dangling   -> ../outside/new.txt  (dangling, escaping)
//       env-alias  -> .env                (innocent name, denied target)
//       sub-out    -> ../outside/sub      (for the `link/..` trick)
//       loop1 -> loop2, loop2 -> loop1
const root = realpathSync(mkdtempSync(join(tmpdir(), 'bastion-paths-')));
after(() => rmSync(root, { recursive: true, force: true }));
const ws = join(root, 'ws');
const outside = join(root, 'outside');
mkdirSync(join(outside, 'sub'), { recursive: true });
writeFileSync(join(outside, 'secret.txt'), 'x');
mkdirSync(join(ws, 'a', 'b'), { recursive: true });
mkdirSync(join(ws, 'keys'));
writeFileSync(join(ws, 'a', 'b', 'file.txt'), 'x');
writeFileSync(join(ws, '.env'), 'x');
writeFileSync(join(ws, 'keys', 'id_rsa'), 'x');
writeFileSync(join(ws, 'x'), 'x');
symlinkSync('../outside', join(ws, 'link-out'));
symlinkSync('a/b', join(ws, 'link-in'));
symlinkSync('../outside/new.txt', join(ws, 'dangling'));
symlinkSync('.env', join(ws, 'env-alias'));
symlinkSync('../outside/sub', join(ws, 'sub-out'));
symlinkSync('loop2', join(ws, 'loop1'));
symlinkSync('loop1', join(ws, 'loop2'));
// Absolute targets (issue 11 §4: the restart at `/` for an absolute link target had no test).
symlinkSync(outside, join(ws, 'abs-out'));
symlinkSync(join(outside, 'new.txt'), join(ws, 'abs-dangling'));
// Named in NFC (composed é), escaping: a normalization-insensitive file system opens it for the NFD name too.
symlinkSync('../outside', join(ws, 'lien-\u00e9'));
// And one named in NFD (as macOS writes names), for the composed spelling.
symlinkSync('../outside', join(ws, 'nfd-lien-e\u0301'));

const guard = PathGuard.compile({ allow: [`${ws}/**`], deny: ['**/.env', '**/id_*'], argumentNames: ['target'], base: ws });

async function effect(p: string): Promise<string> {
  return (await guard.check(p, ws)).effect;
}

describe('PathGuard.check', () => {
  test('a relative path without a workspace is refused: the upstream would resolve it its own way', async () => {
    assert.deepEqual(await guard.check('a/b/file.txt'), { effect: 'deny', reason: 'path.relative', rule: 'paths' });
    assert.deepEqual(await guard.check('.'), { effect: 'deny', reason: 'path.relative', rule: 'paths' });
    assert.equal((await guard.check(join(ws, 'a/b/file.txt'))).effect, 'allow', 'absolute paths need no workspace');
  });


  test('inside the workspace: relative, absolute, the workspace itself, not-yet-existing files', async () => {
    assert.deepEqual(await guard.check('a/b/file.txt', ws), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.equal(await effect(join(ws, 'a', 'b', 'file.txt')), 'allow');
    assert.equal(await effect(ws), 'allow');
    assert.equal(await effect('.'), 'allow');
    assert.equal(await effect('a/new-dir/new-file.txt'), 'allow');
    assert.equal(await effect('./a//b/./file.txt'), 'allow');
    assert.equal(await effect('a/../a/b/file.txt'), 'allow');
  });

  test('outside the workspace', async () => {
    assert.deepEqual(await guard.check('../outside/secret.txt', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.equal(await effect('/etc/passwd'), 'deny');
    assert.equal(await effect('a/../../outside'), 'deny');
    assert.equal(await effect(`${ws}x/file`), 'deny');
    assert.equal(await effect('..'), 'deny');
  });

  test('deny globs win, at any depth, dot files included', async () => {
    assert.deepEqual(await guard.check('.env', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.deepEqual(await guard.check('keys/id_rsa', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[1]' });
    assert.equal((await guard.check('a/b/.ENV', ws)).reason, 'path.denied');
  });

  test('symlinks are followed: escaping links are denied even for files that do not exist yet', async () => {
    assert.equal((await guard.check('link-out/secret.txt', ws)).reason, 'path.outside');
    assert.equal((await guard.check('link-out/not-yet.txt', ws)).reason, 'path.outside');
    assert.equal((await guard.check('link-out', ws)).reason, 'path.outside');
    assert.equal((await guard.check('dangling', ws)).reason, 'path.outside');
    assert.equal((await guard.check(join(ws, 'env-alias'), ws)).reason, 'path.denied');
    assert.equal(await effect('link-in/file.txt'), 'allow');
    // `sub-out/..` is root/outside for the kernel, though it reads as ws/ lexically.
    assert.equal((await guard.check('sub-out/../secret.txt', ws)).reason, 'path.outside');
    assert.equal((await guard.check('sub-out/../x', ws)).reason, 'path.outside');
  });

  test('`..` out of a missing folder or a symlink does not hide the link the upstream may open', async () => {
    // The kernel fails `missing/..` (ENOENT), but an upstream that normalizes the text first, or
    // creates the missing folder, opens ws/link-out/secret.txt: outside.
    assert.deepEqual(await guard.check('missing/../link-out/secret.txt', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.deepEqual(await guard.check('m1/m2/../../link-out/new.txt', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.deepEqual(await guard.check('missing/../env-alias', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    // The kernel reads ws/a/link-out (absent, inside); path.resolve reads ws/link-out, a link outside.
    assert.deepEqual(await guard.check('link-in/../link-out/secret.txt', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.equal(await effect('missing/../a/b/file.txt'), 'allow', 'a climb back onto real folders inside stays allowed');
  });

  test('refusals before the allow globs name their reason and the rule `paths`: loops, NUL, ~, non-strings, bad file: URIs', async () => {
    const refused = (reason: string) => ({ effect: 'deny', reason, rule: 'paths' });
    assert.deepEqual(await guard.check('loop1/x', ws), refused('path.unresolvable'));
    assert.deepEqual(await guard.check('a/b\0/file.txt', ws), refused('path.nul'));
    assert.deepEqual(await guard.check('~/x', ws), refused('path.tilde'));
    assert.deepEqual(await guard.check('~root/x', ws), refused('path.tilde'));
    assert.deepEqual(await guard.check(42 as unknown as string, ws), refused('path.invalid'));
    assert.deepEqual(await guard.check('', ws), refused('path.invalid'));
    assert.deepEqual(await guard.check('a/\uD800', ws), refused('path.invalid'));
    // A remote host, and an encoded `/`: fileURLToPath refuses both.
    assert.deepEqual(await guard.check('file://evil.example/etc/passwd', ws), refused('path.invalid'));
    assert.deepEqual(await guard.check(`file://${ws}/a%2Fb`, ws), refused('path.invalid'));
    // Decoded once, still encoded: traversal for an upstream that decodes twice.
    assert.deepEqual(await guard.check(`file://${ws}/a/%252e%252e/x`, ws), refused('path.invalid'));
    assert.deepEqual(await guard.check(`file://${ws}/a%00b`, ws), refused('path.nul'));
  });

  test('a path needs to match one allow glob, any of them; the rule is the one its physical path matched', async () => {
    const two = PathGuard.compile({ allow: [`${ws}/**`, `${outside}/**`], deny: ['**/.env'], argumentNames: [], base: ws });
    assert.deepEqual(await two.check(`${outside}/secret.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[1]' });
    assert.deepEqual(await two.check('a/b/file.txt', ws), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    // Lexically under allow[0], physically under allow[1].
    assert.deepEqual(await two.check('link-out/secret.txt', ws), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[1]' });
  });

  test('file: URIs are converted', async () => {
    assert.equal(await effect(pathToFileURL(join(ws, 'a', 'b', 'file.txt')).href), 'allow');
    assert.equal(await effect(pathToFileURL(join(outside, 'secret.txt')).href), 'deny');
    assert.equal((await guard.check(pathToFileURL(join(ws, '.env')).href)).reason, 'path.denied');
  });

  test('relative or missing globs and bases are refused at compile', () => {
    const bad = (paths: Parameters<typeof PathGuard.compile>[0]) =>
      assert.throws(() => PathGuard.compile(paths), (e: unknown) => isBastionError(e, 'ERR_CONFIG_INVALID'));
    bad({ allow: ['workspace/**'], deny: [], argumentNames: [], base: ws });
    bad({ allow: [], deny: [], argumentNames: [], base: 'relative' });
  });

  test('a glob through a symlinked folder also matches the physical paths', async () => {
    const alias = join(root, 'alias-ws');
    symlinkSync(ws, alias);
    const g = PathGuard.compile({ allow: [`${alias}/**`], deny: [`${alias}/a/b/**`], argumentNames: [], base: alias });
    assert.equal((await g.check('x', alias)).effect, 'allow');
    assert.equal((await g.check(join(ws, 'x'))).effect, 'allow');
    assert.equal((await g.check('link-in/file.txt', alias)).reason, 'path.denied');
    assert.equal((await g.check('../outside/secret.txt', alias)).reason, 'path.outside');
  });

  test('property: a path whose normalized form escapes the workspace is never allowed', async () => {
    const segment = fc.constantFrom('..', '.', 'a', 'b', 'c', 'x', 'ws', 'outside', 'file.txt', '');
    const relPath = fc.array(segment, { minLength: 1, maxLength: 8 }).map((s) => s.join('/'));
    await fc.assert(
      fc.asyncProperty(relPath, fc.boolean(), async (rel, absolute) => {
        const input = absolute ? `${ws}/${rel}` : rel;
        if (input === '') return;
        const normalized = resolve(ws, input);
        const inside = normalized === ws || normalized.startsWith(`${ws}/`);
        const d = await guard.check(input, ws);
        if (!inside) assert.notEqual(d.effect, 'allow', `${input} → ${normalized}`);
        // Without symlinks on the way (none are named by these segments), inside means allowed.
        else assert.equal(d.effect, 'allow', `${input} → ${normalized}: ${d.reason}`);
      }),
      { numRuns: 500 },
    );
  });

  test('property: paths through the escaping symlink are never allowed', async () => {
    const segment = fc.constantFrom('..', '.', 'a', 'secret.txt', 'sub', 'new');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('link-out', 'sub-out', 'dangling'), fc.array(segment, { maxLength: 5 }), async (link, rest) => {
        const input = [link, ...rest].join('/');
        const d = await guard.check(input, ws);
        // Everything reached through these links lives under root/outside, or climbs to root and above.
        assert.notEqual(d.effect, 'allow', input);
      }),
      { numRuns: 300 },
    );
  });
});

describe('PathGuard.pathArguments', () => {
  test('names, suffixes, configured names, arrays, nesting, pointers', () => {
    const args = {
      path: 'a.txt',
      paths: ['b.txt', 'c.txt'],
      options: { filePath: 'd.txt', output_path: 'e.txt', target: 'f.txt', content: 'not a path', 'we/ird~': { dir: 'g' } },
      edits: [{ oldText: 'x', newText: 'y' }],
      head: 10,
      file: 7,
      url: 'https://example.com/x',
    };
    assert.deepEqual(guard.pathArguments({}, args), [
      { pointer: '/path', value: 'a.txt', kind: 'path' },
      { pointer: '/paths/0', value: 'b.txt', kind: 'path' },
      { pointer: '/paths/1', value: 'c.txt', kind: 'path' },
      { pointer: '/options/filePath', value: 'd.txt', kind: 'path' },
      { pointer: '/options/output_path', value: 'e.txt', kind: 'path' },
      { pointer: '/options/target', value: 'f.txt', kind: 'path' },
      { pointer: '/options/we~1ird~0/dir', value: 'g', kind: 'path' },
    ]);
  });

  test('schema formats and file: URIs anywhere', () => {
    const schema = {
      type: 'object',
      properties: {
        where: { type: 'string', format: 'path' },
        link: { type: 'string', format: 'uri-reference' },
        site: { type: 'string', format: 'uri' },
        list: { type: 'array', items: { type: 'string', format: 'file-path' } },
      },
    };
    const args = { where: 'w', link: 'docs/x.md', site: 'https://example.com', list: ['l1'], note: 'file:///etc/passwd' };
    assert.deepEqual(
      guard.pathArguments(schema, args).map((p) => p.pointer),
      ['/where', '/link', '/list/0', '/note'],
    );
  });

  test('over-deep arguments are refused, not skipped', () => {
    let deep: unknown = { path: '/etc/passwd' };
    for (let i = 0; i < MAX_PATH_ARGS_DEPTH + 1; i++) deep = { a: deep };
    assert.throws(() => guard.pathArguments({}, deep), (e: unknown) => isBastionError(e, 'ERR_ARGS_INVALID'));
  });
});

describe('symlinks with an absolute target outside the workspace (issue 11 §4)', () => {
  test('a file that does not exist yet behind the link (the write/create case) is outside', async () => {
    assert.deepEqual(await guard.check('abs-out/new.txt', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.deepEqual(await guard.check(join(ws, 'abs-out', 'new-dir', 'new.txt')), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    // Writing through a dangling absolute link creates its target, outside.
    assert.deepEqual(await guard.check('abs-dangling', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
  });

  test('with `..` after the link, the climb starts from the absolute target', async () => {
    // Lexically ws/new.txt and ws/x (inside); for the kernel root/outside/new.txt and root/x.
    assert.deepEqual(await guard.check('abs-out/sub/../new.txt', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.deepEqual(await guard.check('abs-out/../x', ws), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.deepEqual(await guard.check(`${ws}/abs-out/sub/../../ws/.env`), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
  });

  test('property: nothing reached through the absolute link is allowed', async () => {
    const segment = fc.constantFrom('..', '.', 'sub', 'secret.txt', 'new', 'new.txt');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('abs-out', 'abs-dangling'), fc.array(segment, { maxLength: 5 }), async (link, rest) => {
        const input = [link, ...rest].join('/');
        const d = await guard.check(input, ws);
        // `abs-out/../ws/...` climbs back in; these segments never name `ws`, so everything stays under root/outside or above.
        assert.notEqual(d.effect, 'allow', input);
      }),
      { numRuns: 300 },
    );
  });
});

describe('a name that does not exist yet (the create case): its physical path is its real folder plus the name', () => {
  test('through a symlinked folder, a glob on the real folder matches the new file', async () => {
    // `*` stops at `/`: only `ws/a/b/new.txt` itself matches, not a path merely holding it.
    const g = PathGuard.compile({ allow: [`${ws}/**`], deny: [`${ws}/a/b/*`], argumentNames: [], base: ws });
    assert.deepEqual(await g.check('link-in/new.txt', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.deepEqual(await g.check(`${ws}/link-in/.new`), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.deepEqual(await g.check('link-in/new-dir/new.txt', ws), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
  });

  test('directly under `/`, the new file is `/name`', async () => {
    const name = `/${basename(root)}`;
    assert.equal(existsSync(name), false);
    const g = PathGuard.compile({ allow: [name], deny: [], argumentNames: [], base: ws });
    assert.deepEqual(await g.check(name), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.deepEqual(await g.check(`${name}x`), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
  });
});

describe('Unicode normalization (NFC)', () => {
  const nfcGuard = PathGuard.compile({
    allow: [`${ws}/**`],
    deny: ['**/.env', `${ws}/caf\u00e9/**`, '**/secr\u00e9t*', `${ws}/de\u0301cor/**`],
    argumentNames: [],
    base: ws,
  });

  test('a decomposed é does not slip past a deny glob written composed, nor the reverse', async () => {
    assert.deepEqual(await nfcGuard.check('cafe\u0301/menu.txt', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[1]' });
    assert.deepEqual(await nfcGuard.check('caf\u00e9/menu.txt', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[1]' });
    assert.deepEqual(await nfcGuard.check('a/secre\u0301t.txt', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[2]' });
    assert.deepEqual(await nfcGuard.check(pathToFileURL(join(ws, 'secre\u0301t')).href), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[2]' });
    // The glob written decomposed catches the composed input.
    assert.deepEqual(await nfcGuard.check('d\u00e9cor/x', ws), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[3]' });
  });

  test('a decomposed name does not escape the allow root through a symlink named composed', async () => {
    assert.equal((await nfcGuard.check('lien-\u00e9/secret.txt', ws)).reason, 'path.outside');
    assert.equal((await nfcGuard.check('lien-e\u0301/secret.txt', ws)).reason, 'path.outside');
    assert.equal((await nfcGuard.check('lien-e\u0301/new.txt', ws)).reason, 'path.outside');
    // The reverse: the link is named decomposed, the input is composed.
    assert.equal((await nfcGuard.check('nfd-lien-\u00e9/secret.txt', ws)).reason, 'path.outside');
    assert.equal((await nfcGuard.check(`${ws}/nfd-lien-\u00e9/new.txt`)).reason, 'path.outside');
  });

  test('an allow root written composed admits the decomposed form of a path inside it', async () => {
    const g = PathGuard.compile({ allow: [`${root}/r\u00e9sum\u00e9s/**`], deny: [], argumentNames: [], base: root });
    assert.equal((await g.check(`${root}/re\u0301sume\u0301s/cv.txt`)).effect, 'allow');
    assert.equal((await g.check(`${root}/re\u0301sume\u0301s/../outside/secret.txt`)).reason, 'path.outside');
  });

  test('property: the NFC and NFD forms of any path decide the same', async () => {
    const piece = fc.constantFrom('a', 'x', '.', '..', '/', '/', '\u00e9', 'e\u0301', '\u00c5', '\u212b', 'caf', 'secr', 't', '.env', 'lien-', 'de', 'cor', 'abs-out', ' ');
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 10 }), fc.boolean(), async (pieces, absolute) => {
        const raw = (absolute ? `${ws}/` : '') + pieces.join('');
        const nfc = await nfcGuard.check(raw.normalize('NFC'), ws);
        const nfd = await nfcGuard.check(raw.normalize('NFD'), ws);
        assert.deepEqual(nfc, nfd, JSON.stringify(raw));
      }),
      { numRuns: 400 },
    );
  });
});

describe('PathGuard.checkArguments: every string is classified or checked (issue 11, class 3)', () => {
  const strict: PathScope = { name: 'files', workspace: ws };
  const named: PathScope = { name: 'other' };
  const check = (scope: PathScope | undefined, args: unknown, schema: unknown = {}, tool = 'tool') => guard.checkArguments(scope, tool, schema, args);

  test('under a workspace (strict by default) an unclassified nested string is checked as a path', async () => {
    const v = await check(strict, { a: { b: [{ c: '.env' }] } });
    assert.deepEqual(v.decision, { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.deepEqual(v.argument, { pointer: '/a/b/0/c', value: '.env', kind: 'unclassified' });
    assert.equal((await check(strict, { q: [[`${outside}/secret.txt`]] })).decision.reason, 'path.outside');
    assert.deepEqual((await check(strict, { note: 'hello world', n: 3 })).decision, { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.deepEqual(await check(strict, {}), { decision: { effect: 'allow', reason: 'path.none', rule: 'paths' }, checked: 0 });
  });

  test('named: only classified strings; pathGuard strict without a workspace: relative strings are refused', async () => {
    assert.deepEqual(await check(named, { a: { b: [{ c: `${ws}/.env` }] } }), { decision: { effect: 'allow', reason: 'path.none', rule: 'paths' }, checked: 0 });
    assert.equal((await check(named, { path: `${ws}/.env` })).decision.reason, 'path.denied');
    const explicit: PathScope = { name: 'abs', pathGuard: 'strict' };
    const declared = { type: 'object', properties: { q: { type: 'string' } } };
    assert.equal((await check(explicit, { q: `${ws}/.env` }, declared)).decision.reason, 'path.denied');
    assert.equal((await check(explicit, { q: 'just words' }, declared)).decision.reason, 'path.relative');
    assert.deepEqual((await check(explicit, { q: `${ws}/.env` })).argument, { pointer: '', value: 'q', kind: 'unclassified', key: true }, 'an undeclared key is checked first');
    const off: PathScope = { name: 'files', workspace: ws, pathGuard: 'named' };
    assert.equal((await check(off, { q: '.env' })).checked, 0);
  });

  test('argumentKinds: pointer patterns, subtree coverage, deepest wins, path wins a tie, tool patterns', async () => {
    const scope: PathScope = {
      name: 'files',
      workspace: ws,
      argumentKinds: {
        'edit_*': { '/edits/*/newText': 'not-path', '/opts': 'not-path', '/opts/file': 'path', '/tie': 'not-path', '/tie2': 'path' },
        '*': { '/tie': 'path', '/tie2': 'not-path', '/text': 'not-path' },
      },
    };
    const v = (args: unknown, tool = 'edit_file') => guard.checkArguments(scope, tool, {}, args);
    assert.equal((await v({ edits: [{ oldText: 'x', newText: '/etc/passwd' }] })).decision.effect, 'allow');
    assert.deepEqual((await v({ edits: [{ oldText: '/etc/passwd', newText: 'y' }] })).argument?.pointer, '/edits/0/oldText');
    // A key literally named `*` is a key like any other: only a rule's `*` (or a rule naming `*`) matches it.
    const textOnly: PathScope = { name: 'files', workspace: ws, argumentKinds: { t: { '/text': 'not-path', '/any/*': 'not-path' } } };
    assert.deepEqual((await guard.checkArguments(textOnly, 't', {}, { '*': '/etc/passwd' })).decision, { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' }, 'the key `*` is not every key at its depth');
    assert.equal((await guard.checkArguments(textOnly, 't', {}, { any: { '*': '/etc/passwd' } })).decision.effect, 'allow', "a rule's `*` matches the key `*`");
    assert.equal((await v({ opts: { note: '/etc/passwd', deeper: ['/etc/shadow'] } })).decision.effect, 'allow');
    assert.equal((await v({ opts: { file: 'x.txt', sub: { file: '/etc/passwd' } } })).decision.effect, 'allow', 'the config covers the subtree, over name hints');
    assert.equal((await v({ opts: { file: '/etc/passwd' } })).decision.reason, 'path.outside');
    assert.equal((await v({ tie: '/etc/passwd' })).decision.reason, 'path.outside', 'path wins a tie');
    assert.equal((await v({ tie2: '/etc/passwd' })).decision.reason, 'path.outside', 'path wins a tie, in either order');
    assert.equal((await v({ text: '/etc/passwd' }, 'write_file')).decision.effect, 'allow', '* matches every tool');
    assert.equal((await v({ edits: [{ newText: '/etc/passwd' }] }, 'write_file')).decision.reason, 'path.outside', 'edit_* does not match write_file');
    // A file: URL is a path whatever the config says.
    assert.equal((await v({ text: pathToFileURL(`${ws}/.env`).href }, 'write_file')).decision.reason, 'path.denied');
  });

  test('schema: x-bastion-kind, enum/const, URI formats and checked formats', async () => {
    const schema = {
      type: 'object',
      properties: {
        body: { type: 'object', 'x-bastion-kind': 'not-path' },
        where: { type: 'string', 'x-bastion-kind': 'path' },
        mode: { type: 'string', enum: ['/etc/passwd', 'fast'] },
        fixed: { const: '/etc/shadow' },
        site: { type: 'string', format: 'uri' },
        when: { type: 'string', format: 'date' },
        mail: { type: 'string', format: 'email' },
      },
    };
    const v = (args: unknown, scope: PathScope = strict) => guard.checkArguments(scope, 't', schema, args);
    assert.equal((await v({ body: { anything: '/etc/passwd', list: ['/etc/shadow'] } })).decision.effect, 'allow');
    assert.equal((await v({ where: '/etc/passwd' }, named)).decision.reason, 'path.outside', 'x-bastion-kind: path is checked in named mode too');
    assert.equal((await v({ mode: '/etc/passwd', fixed: '/etc/shadow' })).checked, 0, 'enum and const values are the upstream\'s own');
    assert.equal((await v({ site: 'https://example.com/etc/passwd' })).checked, 0);
    assert.equal((await v({ site: '/etc/passwd' })).decision.reason, 'path.outside', 'a URI without a scheme is a path');
    assert.equal((await v({ site: pathToFileURL('/etc/passwd').href })).decision.reason, 'path.outside');
    assert.equal((await v({ when: '2026-12-06', mail: 'a@example.com' })).checked, 0);
    // A format is checked on the value, not trusted: an invalid date is just a string.
    assert.equal((await v({ when: '/etc/passwd' })).decision.reason, 'path.outside');
  });

  test('keys of free-form objects are checked; declared property names are not; the key never reaches the pointer', async () => {
    const v = await check(strict, { env: { [`${ws}/.env`]: 'x' } });
    assert.deepEqual(v.argument, { pointer: '/env', value: `${ws}/.env`, kind: 'unclassified', key: true });
    assert.equal(pathRefusalText(v), 'Bastion refused this call: the path in a key of /env is not allowed');
    assert.deepEqual(pathAuditDetail(v), { pathArgument: '/env', pathArgumentKind: 'unclassified', pathArgumentIsKey: true });
    const schema = { type: 'object', properties: { '/etc/passwd': { type: 'number' } } };
    assert.equal((await guard.checkArguments(strict, 't', schema, { '/etc/passwd': 1 })).decision.effect, 'allow');
  });

  test('file: URLs are recognized as the URL parser sees them (spaces, tabs, case), and decoded once', async () => {
    for (const note of [' file:///etc/passwd', 'fi\tle:///etc/passwd', 'FILE:///etc/passwd', 'file:/etc/passwd']) {
      assert.equal((await check(named, { note })).decision.reason, 'path.outside', JSON.stringify(note));
    }
    assert.equal((await guard.check(`file://${ws}/a/%2e%2e/%2E%2E/outside/secret.txt`)).reason, 'path.outside');
    assert.equal((await guard.check(`file://${ws}/a/%252e%252e/%252e%252e/outside/secret.txt`)).reason, 'path.invalid');
    assert.equal((await guard.check(`file://${ws}/a%255cb`)).reason, 'path.invalid');
    assert.equal((await guard.check(`file://${ws}/a/b/file.txt`)).effect, 'allow');
  });

  test('text that is no file name is not unresolvable: a name too long to exist ends the walk', async () => {
    assert.equal((await check(strict, { content: 'x'.repeat(300) })).decision.effect, 'allow');
    assert.equal((await check(strict, { content: `a/${'y'.repeat(300)}/${'z'.repeat(5000)}` })).decision.effect, 'allow');
    assert.equal((await check(strict, { content: `${'y'.repeat(300)}/../../../outside/secret.txt` })).decision.reason, 'path.outside');
  });

  test('one request\'s checks run at most 16 at a time; the first denial in document order decides', async () => {
    const g = PathGuard.compile({ allow: [`${ws}/**`], deny: ['**/.env'], argumentNames: [], base: ws });
    const check = g.check.bind(g);
    let inFlight = 0;
    let most = 0;
    g.check = async (value, workspace) => {
      most = Math.max(most, ++inFlight);
      try {
        return await check(value, workspace);
      } finally {
        inFlight--;
      }
    };
    const list = Array.from({ length: 40 }, (_, i) => (i === 20 || i === 35 ? '.env' : `a/${i}.txt`));
    const schema = { type: 'object', properties: { list: { type: 'array', items: { type: 'string' } } } };
    assert.deepEqual(await g.checkArguments(strict, 't', schema, { list }), {
      decision: { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' },
      argument: { pointer: '/list/20', value: '.env', kind: 'unclassified' },
      checked: 40,
    });
    assert.equal(most, 16);
  });

  test('over-deep arguments deny', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < MAX_PATH_ARGS_DEPTH + 1; i++) deep = [deep];
    assert.deepEqual((await check(strict, { deep })).decision, { effect: 'deny', reason: 'path.invalid', rule: 'paths' });
  });

  test('property: a denied path anywhere in unclassified arguments is denied', async () => {
    const key = fc.constantFrom('a', 'q', 'text', 'content', 'options', 'items', 'x-y', 'oldText');
    const filler = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('notes', 'hello world', 'a/b/file.txt'));
    const denied = fc.constantFrom('.env', `${ws}/.env`, 'keys/id_rsa', `${outside}/secret.txt`, '../outside/secret.txt', 'link-out/x', 'abs-out/new.txt', pathToFileURL(`${ws}/.env`).href, '/etc/passwd');
    // A random tree with the denied value at one leaf, along a path of random keys and indexes.
    const holder = fc.letrec<{ tree: unknown }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        denied,
        fc.tuple(key, tie('tree'), fc.dictionary(key, filler, { maxKeys: 3 })).map(([k, sub, rest]) => ({ ...rest, [k]: sub })),
        fc.tuple(tie('tree'), fc.array(filler, { maxLength: 3 }), fc.nat(3)).map(([sub, rest, at]) => [...rest.slice(0, at), sub, ...rest.slice(at)]),
      ),
    })).tree;
    await fc.assert(
      fc.asyncProperty(holder, async (tree) => {
        const args = typeof tree === 'object' && tree !== null && !Array.isArray(tree) ? tree : { wrap: tree };
        const v = await guard.checkArguments(strict, 'any_tool', {}, args);
        assert.equal(v.decision.effect, 'deny', JSON.stringify(args));
      }),
      { numRuns: 300 },
    );
  });
});

describe('PathGuard.checkResource', () => {
  test('a file: URI is a path for any upstream; other schemes are not files', async () => {
    assert.deepEqual(await guard.checkResource(undefined, pathToFileURL(`${ws}/.env`).href), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.equal((await guard.checkResource({ name: 'x' }, `file://${ws}/a/%2e%2e/%2e%2e/%2e%2e/etc/passwd`)).reason, 'path.outside');
    assert.equal((await guard.checkResource(undefined, `file://${ws}/a/b/file.txt`)).effect, 'allow');
    assert.deepEqual(await guard.checkResource(undefined, 'note://a/../../etc/passwd'), { effect: 'allow', reason: 'path.none', rule: 'paths' });
  });

  test('a URI that is not a string is refused path.invalid, not taken for "no file"', async () => {
    for (const uri of [['file:///etc/passwd'], { href: 'file:///etc/passwd' }, null, 7]) {
      assert.deepEqual(await guard.checkResource(undefined, uri as unknown as string), { effect: 'deny', reason: 'path.invalid', rule: 'paths' });
    }
  });
});

describe('PathGuard.checkPromptArguments', () => {
  test('declared arguments are checked by the same rules; their names are not keys to check', async () => {
    const prompt = { name: 'review', arguments: [{ name: 'subject' }, { name: 'file' }] };
    const strict: PathScope = { name: 'docs', workspace: ws, pathGuard: 'strict', argumentKinds: { rev: { '/subject': 'not-path' } } };
    assert.deepEqual((await guard.checkPromptArguments(strict, prompt, { subject: '.env' })).argument, { pointer: '/subject', value: '.env', kind: 'unclassified' });
    assert.equal((await guard.checkPromptArguments({ name: 'abs', pathGuard: 'strict' }, prompt, { subject: `${ws}/a/b/file.txt` })).decision.effect, 'allow', 'a declared name is no relative path to check');
    assert.equal((await guard.checkPromptArguments({ name: 'abs', pathGuard: 'strict' }, prompt, { extra: `${ws}/a/b/file.txt` })).decision.reason, 'path.relative', 'an undeclared one is');
    assert.equal((await guard.checkPromptArguments(undefined, prompt, { file: '/etc/passwd', subject: '/etc/passwd' })).argument?.pointer, '/file', 'named mode: only the path-named one');
    assert.equal((await guard.checkPromptArguments({ ...strict, argumentKinds: { rev: { '/subject': 'not-path' }, review: { '/subject': 'not-path' } } }, prompt, { subject: '/etc/passwd' })).decision.effect, 'allow', 'argumentKinds match prompt names');
  });

  test('a name listed twice is declared once: the call is decided, not thrown', async () => {
    const prompt = { name: 'review', arguments: [{ name: 'file' }, { name: 'file' }] };
    assert.deepEqual((await guard.checkPromptArguments(undefined, prompt, { file: '/etc/passwd' })).decision, { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.equal((await guard.checkPromptArguments(undefined, prompt, { file: `${ws}/a/b/file.txt` })).decision.effect, 'allow');
  });

  test('an argument entry that is not `{ name: string }` declares nothing and throws nothing', async () => {
    const prompt = { name: 'review', arguments: [null, { name: 5 }, { name: 'subject' }] } as unknown as { name: string; arguments: { name: string }[] };
    const abs: PathScope = { name: 'abs', pathGuard: 'strict' };
    // Key `5` is undeclared: checked, and relative without a workspace.
    assert.deepEqual(await guard.checkPromptArguments(abs, prompt, { 5: `${ws}/a/b/file.txt` }), {
      decision: { effect: 'deny', reason: 'path.relative', rule: 'paths' },
      argument: { pointer: '', value: '5', kind: 'unclassified', key: true },
      checked: 2,
    });
    assert.deepEqual((await guard.checkPromptArguments(abs, prompt, { subject: `${ws}/a/b/file.txt` })).decision, { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
  });
});

describe('PathGuard.checkCompletion / allowedCompletions (completing a resource template)', () => {
  const arg = (value: string) => ({ name: 'path', value });
  test('the template expanded with the typed value is checked like a read of that URI', async () => {
    assert.equal((await guard.checkCompletion(undefined, 'file://{+path}', arg(`${ws}/a/`))).effect, 'allow');
    assert.deepEqual(await guard.checkCompletion(undefined, 'file://{+path}', arg(`${outside}/`)), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.equal((await guard.checkCompletion({ name: 'u', workspace: ws }, `file://${ws}/{+path}`, arg('../outside/se'))).reason, 'path.outside');
    assert.equal((await guard.checkCompletion(undefined, 'file://{+dir}/{+path}', arg('.en'), { dir: ws })).effect, 'allow', 'a prefix of a denied name is not itself denied');
    assert.equal((await guard.checkCompletion(undefined, 'file://{+dir}/{+path}', arg('.env'), { dir: ws })).reason, 'path.denied', 'context arguments fill the template');
  });

  test('a file: template whose expansion is no file URL is refused; other schemes are not files', async () => {
    const invalid = { effect: 'deny', reason: 'path.invalid', rule: 'paths' };
    const none = { effect: 'allow', reason: 'path.none', rule: 'paths' };
    assert.deepEqual(await guard.checkCompletion(undefined, 'file://{path}', arg('/etc/pa')), invalid);
    assert.deepEqual(await guard.checkCompletion(undefined, 'note://{+path}', arg('/etc/pa')), none);
    assert.equal((await guard.checkCompletion(undefined, 'note://{+path}', arg('file:///etc/passwd'))).reason, 'path.outside', 'a file: URL value is a path anyway');
    // A template that does not parse (unclosed expression).
    assert.deepEqual(await guard.checkCompletion(undefined, 'file://{+path', arg(`${ws}/a`)), invalid);
    assert.deepEqual(await guard.checkCompletion(undefined, 'note://{+path', arg(`${ws}/a`)), none);
  });

  test('a template is a file: one exactly when the URL parser reads the file: scheme (leading spaces and C0, tabs and newlines anywhere, any case)', async () => {
    const invalid = { effect: 'deny', reason: 'path.invalid', rule: 'paths' };
    const none = { effect: 'allow', reason: 'path.none', rule: 'paths' };
    for (const template of [' FILE://{path}', ' \u0001 file://{path}', 'fi\tle://{path}', 'f\ni\rle://{path}']) {
      assert.deepEqual(await guard.checkCompletion(undefined, template, arg('/etc/pa')), invalid, JSON.stringify(template));
    }
    // `file:` later in the URI, or a scheme the parser refuses, is no file: template.
    for (const template of ['note://host/file:{path}', 'fi le://{path}']) {
      assert.deepEqual(await guard.checkCompletion(undefined, template, arg('/etc/pa')), none, JSON.stringify(template));
    }
  });

  test('an allowed file: URL value does not stand for the expansion: both are checked', async () => {
    const value = pathToFileURL(join(ws, 'a')).href;
    assert.deepEqual(await guard.checkCompletion(undefined, '{+path}/.env', arg(value)), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.deepEqual(await guard.checkCompletion(undefined, 'file://{+path}', arg(value)), { effect: 'deny', reason: 'path.invalid', rule: 'paths' });
  });

  test('a malformed request (template, argument or value not a string) is refused path.invalid, not thrown', async () => {
    const invalid = { effect: 'deny', reason: 'path.invalid', rule: 'paths' };
    const bad = <T>(v: unknown) => v as T;
    assert.deepEqual(await guard.checkCompletion(undefined, bad<string>(42), arg(`${ws}/a`)), invalid);
    assert.deepEqual(await guard.checkCompletion(undefined, 'file://{+path}', bad<{ name: string; value: string }>(null)), invalid);
    assert.deepEqual(await guard.checkCompletion(undefined, 'file://{+path}', bad<{ name: string; value: string }>({ value: `${ws}/a` })), invalid);
    assert.deepEqual(await guard.checkCompletion(undefined, `file://${ws}/{+path}`, { name: 'path', value: bad<string>(42) }), invalid);
  });

  test('proposed values under a deny glob or outside are dropped, order kept', async () => {
    const values = [`${ws}/a`, `${ws}/.env`, `${outside}/secret.txt`, `${ws}/keys/id_rsa`, `${ws}/x`];
    assert.deepEqual(await guard.allowedCompletions(undefined, 'file://{+path}', 'path', values), [`${ws}/a`, `${ws}/x`]);
    // More values than are checked at once: each is kept once, in order.
    const many = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? `${ws}/${i}/.env` : `${ws}/${i}`));
    assert.deepEqual(await guard.allowedCompletions(undefined, 'file://{+path}', 'path', many), many.filter((_, i) => i % 3 !== 0));
  });
});

describe('PathGuard.unclassifiedArguments (what serve and config check print)', () => {
  const editFile = {
    type: 'object',
    properties: {
      path: { type: 'string' },
      edits: { type: 'array', items: { type: 'object', properties: { oldText: { type: 'string' }, newText: { type: 'string' } }, additionalProperties: false } },
      dryRun: { type: 'boolean' },
      mode: { type: 'string', enum: ['a', 'b'] },
      site: { type: 'string', format: 'uri' },
    },
    additionalProperties: false,
  };

  test('lists string positions nothing classifies, as pointer patterns', () => {
    assert.deepEqual(guard.unclassifiedArguments({ name: 'files', workspace: ws }, 'edit_file', editFile), ['/edits/*/oldText', '/edits/*/newText']);
    const scope: PathScope = { name: 'files', workspace: ws, argumentKinds: { edit_file: { '/edits/*/newText': 'not-path' }, '*': { '/edits/*/oldText': 'not-path' } } };
    assert.deepEqual(guard.unclassifiedArguments(scope, 'edit_file', editFile), []);
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', { type: 'object', properties: { q: { type: 'string' }, meta: { type: 'object' } } }), ['/q', '/meta/*']);
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', { type: 'object', properties: { q: { type: 'number' } }, additionalProperties: { type: 'string' } }), ['/*']);
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', { type: 'object', additionalProperties: true }), ['/*']);
    assert.deepEqual(guard.unclassifiedArguments(undefined, 't', { type: 'object', properties: { body: { type: 'object', 'x-bastion-kind': 'not-path' } }, additionalProperties: false }), []);
  });
});
