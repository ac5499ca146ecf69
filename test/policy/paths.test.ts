import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { isBastionError } from '../../src/errors.ts';
import { MAX_PATH_ARGS_DEPTH, PathGuard } from '../../src/policy/paths.ts';

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

  test('loops, NUL, ~, non-strings, bad file: URIs', async () => {
    assert.equal((await guard.check('loop1/x', ws)).reason, 'path.unresolvable');
    assert.equal((await guard.check('a/b\0/file.txt', ws)).reason, 'path.nul');
    assert.equal((await guard.check('~/x', ws)).reason, 'path.tilde');
    assert.equal((await guard.check('~root/x', ws)).reason, 'path.tilde');
    assert.equal((await guard.check(42 as unknown as string, ws)).reason, 'path.invalid');
    assert.equal((await guard.check('', ws)).reason, 'path.invalid');
    assert.equal((await guard.check('a/\uD800', ws)).reason, 'path.invalid');
    assert.equal((await guard.check('file://evil.example/etc/passwd', ws)).reason, 'path.invalid');
    assert.equal((await guard.check(`file://${ws}/a%2Fb`, ws)).reason, 'path.invalid');
    assert.equal((await guard.check(`file://${ws}/a%00b`, ws)).reason, 'path.nul');
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
      { pointer: '/path', value: 'a.txt' },
      { pointer: '/paths/0', value: 'b.txt' },
      { pointer: '/paths/1', value: 'c.txt' },
      { pointer: '/options/filePath', value: 'd.txt' },
      { pointer: '/options/output_path', value: 'e.txt' },
      { pointer: '/options/target', value: 'f.txt' },
      { pointer: '/options/we~1ird~0/dir', value: 'g' },
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
