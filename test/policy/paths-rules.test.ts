import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isBastionError } from '../../src/errors.ts';
import { MAX_SYMLINKS, PathGuard, pathAuditDetail, pathGuardMode, pathRefusalText, type PathScope } from '../../src/policy/paths.ts';

// The rules of glob compilation, the physical walk, argument classification and the
// refusal texts, each pinned by the inputs that tell it apart. A small tree:
//   root/
//     outside/secret.txt
//     ws/                      (the workspace)
//       a/b/file.txt, keys/
//       link-in -> a/b         (relative target)
//       c0 -> c1 -> ... -> c39 -> a        (MAX_SYMLINKS links)
//       d0 -> d1 -> ... -> d40 -> a        (one more)
//     alias -> ws              (a symlinked folder on the way to the workspace)
//     toroot -> /              (a symlink to the root)
//     \*b -> outside           (a name that is glob syntax when written unescaped)
//     st*r/, stor/secret.txt, alias-star -> st*r
const root = realpathSync(mkdtempSync(join(tmpdir(), 'bastion-paths-rules-')));
after(() => rmSync(root, { recursive: true, force: true }));
const ws = join(root, 'ws');
const outside = join(root, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'secret.txt'), 'x');
mkdirSync(join(ws, 'a', 'b'), { recursive: true });
mkdirSync(join(ws, 'keys'));
writeFileSync(join(ws, 'a', 'b', 'file.txt'), 'x');
symlinkSync('a/b', join(ws, 'link-in'));
for (let i = 0; i < MAX_SYMLINKS; i++) symlinkSync(i + 1 < MAX_SYMLINKS ? `c${i + 1}` : 'a', join(ws, `c${i}`));
for (let i = 0; i <= MAX_SYMLINKS; i++) symlinkSync(i < MAX_SYMLINKS ? `d${i + 1}` : 'a', join(ws, `d${i}`));
symlinkSync('ws', join(root, 'alias'));
symlinkSync('/', join(root, 'toroot'));
symlinkSync(outside, join(root, '\\*b'));
mkdirSync(join(root, 'st*r'));
mkdirSync(join(root, 'stor'));
writeFileSync(join(root, 'stor', 'secret.txt'), 'x');
symlinkSync('st*r', join(root, 'alias-star'));

const guard = PathGuard.compile({ allow: [`${ws}/**`], deny: ['**/.env', `${ws}/keys/**`], argumentNames: [], base: ws });
const strict: PathScope = { name: 'files', workspace: ws };
const named: PathScope = { name: 'other' };
const only = (allow: string[]) => PathGuard.compile({ allow, deny: [], argumentNames: [], base: root });

describe('glob compilation', () => {
  test('a glob that is not a string is refused at compile; the message and detail name the rule', () => {
    assert.throws(
      () => PathGuard.compile({ allow: [`${ws}/**`], deny: ['**/.env', 42 as unknown as string], argumentNames: [], base: ws }),
      (e: unknown) =>
        isBastionError(e, 'ERR_CONFIG_INVALID') &&
        e.message === 'paths.deny[1]: a path glob must be absolute or start with **' &&
        JSON.stringify(e.detail) === JSON.stringify({ path: 'paths.deny[1]' }),
    );
    assert.throws(() => only(['']), (e: unknown) => isBastionError(e, 'ERR_CONFIG_INVALID') && e.message.startsWith('paths.allow[0]: '));
  });

  test('allow globs match case-sensitively (only deny globs fold case)', async () => {
    const g = only([`${ws}/a/**`]);
    assert.deepEqual(await g.check(`${ws}/a/b/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.deepEqual(await g.check(`${ws}/A/b/file.txt`), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
  });

  test('a glob naming folders not created yet below a symlinked folder matches their physical paths', async () => {
    const g = only([`${root}/alias/new/deeper/**`]);
    assert.deepEqual(await g.check(`${root}/alias/new/deeper/f.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.equal((await g.check(`${root}/alias/deeper/new/f.txt`)).reason, 'path.outside');
  });

  test('a glob through a symlink to / matches the physical path right under /', async () => {
    const absent = `${basename(root)}-absent`;
    const g = only([`${root}/toroot/${absent}/**`]);
    assert.deepEqual(await g.check(`${root}/toroot/${absent}/f.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
  });

  test('an escaped glob prefix is not looked up on disk as a file name', async () => {
    // `\*b` in a glob means the folder `*b`; a symlink literally named `\*b` must not widen it.
    const g = only([`${root}/\\*b/**`]);
    assert.deepEqual(await g.check(join(outside, 'secret.txt')), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.deepEqual(await g.check(`${root}/*b/new.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' }, 'the glob still matches as written');
  });

  test('a real path holding glob syntax is not spliced into a glob (fail closed)', async () => {
    // alias-star -> `st*r`: compiled as `${root}/st*r/**` the glob would match `stor` too.
    const g = only([`${root}/alias-star/**`]);
    assert.deepEqual(await g.check(join(root, 'stor', 'secret.txt')), { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' });
    assert.equal((await g.check(join(root, 'alias-star', 'x'))).reason, 'path.outside', 'its physical paths are not admitted either');
  });
});

describe('the physical walk (a path with `..` is resolved component by component)', () => {
  test('`..` at the root stays at the root, as for the kernel', async () => {
    assert.deepEqual(await guard.check(`/..${ws}/a/b/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
  });

  test('`.` and empty segments name no folder: a `..` after them climbs from the folder before', async () => {
    assert.deepEqual(await guard.check(`${ws}/keys/./../a/b/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.deepEqual(await guard.check(`${ws}/keys//../a/b/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.deepEqual(await only([`${ws}/a/b/file.txt`]).check(`${ws}/a//b/../b/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' }, 'the physical path has no `//` left');
    assert.deepEqual(await guard.check(`${ws}/a/../keys/./x`), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[1]' });
  });

  test('a relative link target resolves from the link\'s folder; an absolute one restarts at /', async () => {
    assert.deepEqual(await guard.check(`${ws}/a/../link-in/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    // toroot -> `/`: its `..` is `/` again, so the physical path is ws/keys/x (lexically it is root/ws/keys/x).
    assert.deepEqual(await guard.check(`${root}/toroot/..${ws}/keys/x`), { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[1]' });
  });

  test('a folder on the way that cannot be searched is unresolvable, not skipped (fail closed)', { skip: process.getuid?.() === 0 && 'root searches every folder' }, async () => {
    const locked = join(ws, 'locked');
    mkdirSync(join(locked, 'inner'), { recursive: true });
    chmodSync(locked, 0o000);
    try {
      assert.deepEqual(await guard.check(`${locked}/inner/../x`), { effect: 'deny', reason: 'path.unresolvable', rule: 'paths' });
    } finally {
      chmodSync(locked, 0o755);
    }
  });

  test(`at most MAX_SYMLINKS (${MAX_SYMLINKS}) symlinks are followed in one path, as on Linux`, async () => {
    assert.deepEqual(await guard.check(`${ws}/c0/b/../b/file.txt`), { effect: 'allow', reason: 'path.allowed', rule: 'paths.allow[0]' });
    assert.deepEqual(await guard.check(`${ws}/d0/b/../b/file.txt`), { effect: 'deny', reason: 'path.unresolvable', rule: 'paths' });
  });
});

describe('argumentKinds: tool patterns and pointers', () => {
  test('a tool pattern is literal apart from `*`, which matches any characters, line breaks too', () => {
    const scope: PathScope = { name: 'other', argumentKinds: { 'read-file.v2': { '/q': 'path' }, 'edit_*': { '/q': 'path' } } };
    const listed = (tool: string) => guard.argumentsToCheck(scope, tool, {}, { q: '/x' }).length;
    assert.equal(listed('read-file.v2'), 1);
    assert.equal(listed('read-fileXv2'), 0);
    assert.equal(listed('edit_\nfile'), 1);
  });

  test('the empty pointer classifies the whole arguments, keys included', () => {
    const scope: PathScope = { ...strict, argumentKinds: { t: { '': 'not-path' } } };
    assert.deepEqual(guard.argumentsToCheck(scope, 't', {}, { q: '/etc/passwd', env: { '/etc/shadow': 'x' } }), []);
  });

  test('pointer tokens decode ~1 to / and ~0 to ~ (RFC 6901)', () => {
    const scope: PathScope = { name: 'other', argumentKinds: { t: { '/a~1b': 'path', '/c~0d': 'path' } } };
    assert.deepEqual(guard.argumentsToCheck(scope, 't', {}, { 'a/b': '/x', 'c~d': '/y', 'a~1b': '/z', cd: '/w' }), [
      { pointer: '/a~1b', value: '/x', kind: 'path' },
      { pointer: '/c~0d', value: '/y', kind: 'path' },
    ]);
  });

  test('a deeper rule re-classifies below a shallower one, not-path under path too', () => {
    const scope: PathScope = { name: 'other', argumentKinds: { t: { '/opts': 'path', '/opts/note': 'not-path' } } };
    assert.deepEqual(guard.argumentsToCheck(scope, 't', {}, { opts: { note: '/etc/passwd', out: '/etc/shadow' } }), [
      { pointer: '/opts', value: 'note', kind: 'path', key: true },
      { pointer: '/opts', value: 'out', kind: 'path', key: true },
      { pointer: '/opts/out', value: '/etc/shadow', kind: 'path' },
    ]);
  });

  test('a file: URL and a configured path are listed as kind `path`, under strict too', () => {
    const scope: PathScope = { ...strict, argumentKinds: { t: { '/note': 'not-path', '/where': 'path' } } };
    const schema = { type: 'object', properties: { note: { type: 'string' }, where: { type: 'string' }, other: { type: 'string' } } };
    assert.deepEqual(guard.argumentsToCheck(scope, 't', schema, { note: 'file:///etc/passwd', where: 'x', other: 'y' }), [
      { pointer: '/note', value: 'file:///etc/passwd', kind: 'path' },
      { pointer: '/where', value: 'x', kind: 'path' },
      { pointer: '/other', value: 'y', kind: 'unclassified' },
    ]);
  });
});

describe('pathGuardMode', () => {
  test('no upstream, or one with neither a workspace nor pathGuard, is `named`; a workspace makes it `strict`', () => {
    assert.equal(pathGuardMode(undefined), 'named');
    assert.equal(pathGuardMode({ name: 'u' }), 'named');
    assert.equal(pathGuardMode({ name: 'u', workspace: ws }), 'strict');
    assert.equal(pathGuardMode({ name: 'u', workspace: ws, pathGuard: 'named' }), 'named');
  });
});

describe('classification by name and schema', () => {
  test('every built-in path argument name holds paths in named mode', () => {
    const names = ['path', 'paths', 'source', 'destination', 'file', 'filename', 'files', 'directory', 'dir', 'root', 'cwd'];
    const listed = guard.pathArguments({}, Object.fromEntries(names.map((n) => [n, `/${n}`])));
    assert.deepEqual(listed.map((a) => a.pointer), names.map((n) => `/${n}`));
    assert.deepEqual(guard.pathArguments({}, { '': '/x', text: '/y' }), []);
  });

  test('null arguments and null schemas are no objects: skipped, not errors', () => {
    assert.deepEqual(guard.argumentsToCheck(strict, 't', { type: 'object', properties: { q: null, n: {} } }, { q: 'x', n: null }), [{ pointer: '/q', value: 'x', kind: 'unclassified' }]);
  });

  test('an unknown x-bastion-kind is ignored: the string is still checked', () => {
    const schema = { type: 'object', properties: { q: { type: 'string', 'x-bastion-kind': 'not-a-path' } } };
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, { q: '/etc/passwd' }), [{ pointer: '/q', value: '/etc/passwd', kind: 'unclassified' }]);
  });

  test('a URI format: a colon after the first segment is no scheme, so the value is a path', () => {
    const schema = { type: 'object', properties: { link: { type: 'string', format: 'uri-reference' } } };
    assert.deepEqual(guard.argumentsToCheck(named, 't', schema, { link: 'notes/a:b.md' }), [{ pointer: '/link', value: 'notes/a:b.md', kind: 'path' }]);
  });

  test('a URI format: a value with a scheme that does not parse as a URL is unclassified (checked under strict)', () => {
    const schema = { type: 'object', properties: { site: { type: 'string', format: 'uri' } } };
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, { site: 'http://[bad' }), [{ pointer: '/site', value: 'http://[bad', kind: 'unclassified' }]);
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, { site: 'http://example.com/x' }), []);
  });

  test('const exempts only its own value', () => {
    const schema = { type: 'object', properties: { mode: { const: 'fast' } } };
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, { mode: 'fast' }), []);
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, { mode: '/etc/passwd' }), [{ pointer: '/mode', value: '/etc/passwd', kind: 'unclassified' }]);
  });

  test('formats defined by a pattern (uuid, ipv4, hostname) exempt the values that match it', () => {
    const schema = { type: 'object', properties: { id: { format: 'uuid' }, ip: { format: 'ipv4' }, host: { format: 'hostname' } } };
    assert.deepEqual(guard.argumentsToCheck(strict, 't', schema, { id: '3b241101-e2bb-4255-8caf-4136c566a962', ip: '10.0.0.1', host: 'example.com' }), []);
    assert.deepEqual(
      guard.argumentsToCheck(strict, 't', schema, { id: '../x', ip: '/etc/passwd', host: 'a/b' }).map((a) => a.pointer),
      ['/id', '/ip', '/host'],
    );
  });

  test('prefixItems classify array items by position; items beyond them take `items`', () => {
    const schema = {
      type: 'object',
      properties: { q: { type: 'array', prefixItems: [{ type: 'string', format: 'path' }, { type: 'string' }], items: { type: 'string', format: 'path' } } },
    };
    assert.deepEqual(guard.argumentsToCheck(named, 't', schema, { q: ['/p0', '/p1', '/p2'] }), [
      { pointer: '/q/0', value: '/p0', kind: 'path' },
      { pointer: '/q/2', value: '/p2', kind: 'path' },
    ]);
  });
});

describe('what the agent and the audit record are told', () => {
  const refused = (tail: string) => `Bastion refused this call: the path in ${tail} is not allowed`;

  test('the refusal text names the argument by its pointer, a key by its object, the root as "the arguments"', async () => {
    const atPointer = await guard.checkArguments(strict, 't', {}, { q: '/etc/passwd' });
    assert.equal(pathRefusalText(atPointer), refused('/q'));
    const rootString = await guard.checkArguments(strict, 't', {}, '/etc/passwd');
    assert.deepEqual(rootString.argument, { pointer: '', value: '/etc/passwd', kind: 'unclassified' });
    assert.equal(pathRefusalText(rootString), refused('the arguments'));
    const rootKey = await guard.checkArguments(strict, 't', {}, { '/etc/passwd': 1 });
    assert.equal(pathRefusalText(rootKey), refused('a key of the arguments'));
    const noArgument = await guard.checkArguments(strict, 't', {}, JSON.parse(`${'['.repeat(70)}${']'.repeat(70)}`));
    assert.equal(noArgument.argument, undefined);
    assert.equal(pathRefusalText(noArgument), refused('the arguments'));
  });

  test('a relative path refused for want of a workspace gets the absolute-path hint', async () => {
    const v = await guard.checkArguments({ name: 'abs', pathGuard: 'strict' }, 't', { type: 'object', properties: { q: { type: 'string' } } }, { q: 'notes.txt' });
    assert.equal(v.decision.reason, 'path.relative');
    assert.equal(pathRefusalText(v), `${refused('/q')} (use an absolute path)`);
  });

  test('the audit detail names the pointer and why it was checked, flags only keys, and is empty without an argument', async () => {
    const v = await guard.checkArguments(strict, 't', {}, { q: '/etc/passwd' });
    assert.deepEqual(pathAuditDetail(v), { pathArgument: '/q', pathArgumentKind: 'unclassified' });
    assert.deepEqual(pathAuditDetail({ decision: v.decision, checked: 0 }), {});
  });
});
