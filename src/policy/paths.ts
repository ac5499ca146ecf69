/**
 * The path guard: every tool argument that names a file is resolved the way
 * the operating system will resolve it and checked against `paths.allow` and
 * `paths.deny` (picomatch globs on absolute paths).
 *
 * ## Which arguments name files ({@link PathGuard.pathArguments})
 *
 * A string is a path when, at any depth of the arguments:
 * - its property name is one of {@link PATH_ARGUMENT_NAMES}, ends in `Path` or
 *   `_path` (`filePath`, `output_path`), or is listed in `paths.argumentNames`
 *   (names match case-sensitively); array items under such a property count too
 *   (`paths: ["a", "b"]`);
 * - or the tool's input schema gives it `format: "path"` or `"file-path"`; or
 *   `format: "uri"`/`"uri-reference"` and the value is a `file:` URI or has no scheme;
 * - or it is a `file:` URI, whatever its name.
 * Numbers and booleans are never paths. The schema is followed through
 * `properties`, `additionalProperties`, `items` and `prefixItems` only.
 *
 * ## How a path is checked ({@link PathGuard.check})
 *
 * 1. Not a string, empty, holding NUL or a lone surrogate → deny `path.invalid` / `path.nul`.
 * 2. A `file:` URI becomes a path (`fileURLToPath`; a remote host or an encoded `/` → `path.invalid`).
 * 3. A leading `~` is not expanded: deny `path.tilde` (the tool's idea of home is unknown).
 * 4. A relative path resolves against the `workspace` of the upstream the tool
 *    belongs to — the folder that upstream itself resolves relative paths against.
 *    Without one it is denied (`path.relative`): the gateway cannot know what the
 *    upstream would resolve it against, and checking one path while the upstream
 *    opens another is how a deny rule gets bypassed.
 * 5. Two candidates: the *lexical* path (`path.resolve`) and the *physical* path,
 *    resolved component by component like the kernel does: symlinks are followed
 *    (also dangling ones, so a write target behind a link is its real target),
 *    and `..` after a symlink climbs from the link's target, not from the link.
 *    A component that does not exist ends the file-system walk; the rest is
 *    appended lexically. A loop or unreadable component → deny `path.unresolvable`.
 * 6. Deny globs first, over both candidates (deny wins): `path.denied`, rule `paths.deny[i]`.
 *    Deny globs match case-insensitively (on a case-insensitive file system `.ENV`
 *    is `.env`; on Linux this denies a little more, which is the safe side).
 * 7. Both candidates must match an allow glob: `path.allowed`, rule `paths.allow[i]`
 *    (the glob the physical path matched); otherwise deny `path.outside`.
 *
 * Globs use picomatch with `dot: true` (so `**` and `*` match dot files).
 * `/abs/dir/**` matches `/abs/dir` itself; `**\/name` matches at any depth. When a
 * glob's fixed prefix runs through a symlink (macOS `/tmp` → `/private/tmp`), the
 * glob is also compiled with the prefix's real path, so physical paths match it.
 *
 * POSIX paths only.
 */
import { realpathSync } from 'node:fs';
import { lstat, readlink, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import picomatch from 'picomatch';
import type { ResolvedPaths } from '../config/types.ts';
import { allow, deny, type Decision } from '../decision.ts';
import { BastionError } from '../errors.ts';

/** Argument property names that always hold paths. */
export const PATH_ARGUMENT_NAMES: readonly string[] = Object.freeze([
  'path',
  'paths',
  'source',
  'destination',
  'file',
  'filename',
  'files',
  'directory',
  'dir',
  'root',
  'cwd',
]);

/** JSON Schema `format`s that mark a string as a path. */
const PATH_FORMATS = new Set(['path', 'file-path']);
/** JSON Schema `format`s that mark a string as a path when it is a `file:` URI or has no scheme. */
const URI_FORMATS = new Set(['uri', 'uri-reference']);
/** Deepest argument nesting {@link PathGuard.pathArguments} walks; deeper is `ERR_ARGS_INVALID`. */
export const MAX_PATH_ARGS_DEPTH = 64;
/** Most symlinks followed resolving one path (Linux's own limit is 40). */
export const MAX_SYMLINKS = 40;

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const FILE_SCHEME = /^file:/i;

/** A path found in the arguments: its RFC 6901 JSON Pointer and its value. */
export interface PathArgument {
  readonly pointer: string;
  readonly value: string;
}

interface Glob {
  readonly rule: string;
  readonly test: (path: string) => boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The glob, plus the same glob with its fixed prefix replaced by the prefix's
 * real path when that differs (a symlinked folder on the way to the workspace).
 */
function globVariants(glob: string): string[] {
  if (!isAbsolute(glob)) return [glob];
  const base = picomatch.scan(glob).base;
  if (base === '' || /[\\*?[\]{}()!+@|]/.test(base)) return [glob];
  let existing = base;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = realpathSync(existing);
      const realBase = [real, ...rest.reverse()].join('/').replace(/\/+/g, '/');
      if (realBase === base || /[\\*?[\]{}()!+@|]/.test(realBase)) return [glob];
      return [glob, realBase + glob.slice(base.length)];
    } catch {
      const parent = dirname(existing);
      if (parent === existing) return [glob];
      rest.push(existing.slice(parent.length).replace(/^\//, ''));
      existing = parent;
    }
  }
}

function compileGlobs(globs: readonly string[], key: 'allow' | 'deny'): Glob[] {
  return globs.map((glob, i) => {
    const rule = `paths.${key}[${i}]`;
    if (typeof glob !== 'string' || glob === '' || (!isAbsolute(glob) && !glob.startsWith('**'))) {
      throw new BastionError('ERR_CONFIG_INVALID', `${rule}: a path glob must be absolute or start with **`, { detail: { path: rule } });
    }
    const matchers = globVariants(glob).map((g) => picomatch(g, { dot: true, nocase: key === 'deny' }));
    return { rule, test: (p: string) => matchers.some((m) => m(p)) };
  });
}

/**
 * The physical path of `abs` (absolute, not normalized): each component is
 * looked up with `lstat`; symlinks are replaced by their target; `..` climbs
 * from the physical folder. Components after the first missing one are taken
 * lexically. Throws `ELOOP` past {@link MAX_SYMLINKS}.
 */
async function physicalPath(abs: string): Promise<string> {
  const pending = abs.split('/').reverse();
  let cur = '/';
  let exists = true;
  let links = 0;
  while (pending.length > 0) {
    const seg = pending.pop() as string;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      cur = dirname(cur);
      continue;
    }
    const next = cur === '/' ? `/${seg}` : `${cur}/${seg}`;
    if (!exists) {
      cur = next;
      continue;
    }
    let isLink: boolean;
    try {
      isLink = (await lstat(next)).isSymbolicLink();
    } catch (err) {
      const code = errnoOf(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      exists = false;
      cur = next;
      continue;
    }
    if (!isLink) {
      cur = next;
      continue;
    }
    if (++links > MAX_SYMLINKS) throw Object.assign(new Error('too many symlinks'), { code: 'ELOOP' });
    const target = await readlink(next);
    if (target.startsWith('/')) cur = '/';
    pending.push(...target.split('/').reverse());
  }
  return cur;
}

/** The compiled path guard. */
export class PathGuard {
  readonly #allow: readonly Glob[];
  readonly #deny: readonly Glob[];
  readonly #names: ReadonlySet<string>;

  private constructor(allowGlobs: Glob[], denyGlobs: Glob[], names: ReadonlySet<string>) {
    this.#allow = allowGlobs;
    this.#deny = denyGlobs;
    this.#names = names;
  }

  /** Compiles `paths`. Throws `ERR_CONFIG_INVALID` for a relative glob or base. */
  static compile(paths: ResolvedPaths): PathGuard {
    if (typeof paths.base !== 'string' || !isAbsolute(paths.base)) {
      throw new BastionError('ERR_CONFIG_INVALID', 'paths.base must be an absolute path');
    }
    return new PathGuard(
      compileGlobs(paths.allow, 'allow'),
      compileGlobs(paths.deny, 'deny'),
      new Set([...PATH_ARGUMENT_NAMES, ...paths.argumentNames]),
    );
  }

  /** Whether a property named `name` holds paths. */
  isPathName(name: string): boolean {
    return this.#names.has(name) || name.endsWith('Path') || name.endsWith('_path');
  }

  /**
   * Every argument value that names a file (see the module docs), in document
   * order. Throws `ERR_ARGS_INVALID` when `args` nest deeper than {@link MAX_PATH_ARGS_DEPTH}.
   */
  pathArguments(inputSchema: unknown, args: unknown): PathArgument[] {
    const out: PathArgument[] = [];
    const walk = (value: unknown, schema: unknown, pointer: string, depth: number, named: boolean): void => {
      if (depth > MAX_PATH_ARGS_DEPTH) {
        throw new BastionError('ERR_ARGS_INVALID', `arguments nest deeper than ${MAX_PATH_ARGS_DEPTH} levels`);
      }
      if (typeof value === 'string') {
        if (named || FILE_SCHEME.test(value) || schemaSaysPath(schema, value)) out.push({ pointer, value });
        return;
      }
      if (Array.isArray(value)) {
        value.forEach((item, i) => walk(item, itemSchema(schema, i), `${pointer}/${i}`, depth + 1, named));
        return;
      }
      if (isObject(value)) {
        for (const key of Object.keys(value)) {
          walk(value[key], propertySchema(schema, key), `${pointer}/${pointerToken(key)}`, depth + 1, this.isPathName(key));
        }
      }
    };
    walk(args, inputSchema, '', 0, false);
    return out;
  }

  /**
   * Decides whether the tool may touch `value` (see the module docs for the steps).
   * `workspace`: absolute folder that relative paths resolve against (the upstream's
   * own base); without it a relative path is denied. Never throws.
   */
  async check(value: string, workspace?: string): Promise<Decision> {
    if (typeof value !== 'string' || value === '' || !value.isWellFormed()) return deny('path.invalid', 'paths');
    if (value.includes('\0')) return deny('path.nul', 'paths');
    let p = value;
    if (FILE_SCHEME.test(p)) {
      try {
        p = fileURLToPath(p);
      } catch {
        return deny('path.invalid', 'paths');
      }
      if (p.includes('\0')) return deny('path.nul', 'paths');
      if (!p.isWellFormed()) return deny('path.invalid', 'paths');
    }
    if (p.startsWith('~')) return deny('path.tilde', 'paths');

    if (!isAbsolute(p) && (workspace === undefined || !isAbsolute(workspace))) return deny('path.relative', 'paths');
    const abs = isAbsolute(p) ? p : `${workspace}/${p}`;
    const lexical = resolve(abs);
    let physical: string;
    try {
      physical = await this.#physical(abs, lexical);
    } catch {
      return deny('path.unresolvable', 'paths');
    }

    for (const g of this.#deny) {
      if (g.test(lexical) || g.test(physical)) return deny('path.denied', g.rule);
    }
    const lexicalAllowed = this.#allow.some((g) => g.test(lexical));
    const physicalRule = this.#allow.find((g) => g.test(physical));
    if (lexicalAllowed && physicalRule) return allow('path.allowed', physicalRule.rule);
    return deny('path.outside', 'paths.allow');
  }

  async #physical(abs: string, lexical: string): Promise<string> {
    // Without `..` the lexical form differs from `abs` only by `.` and `//`, so one
    // realpath(3) is the kernel's answer when the whole path exists.
    if (!abs.split('/').includes('..')) {
      try {
        return await realpath(lexical);
      } catch (err) {
        const code = errnoOf(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      }
    }
    return physicalPath(abs);
  }
}

function schemaSaysPath(schema: unknown, value: string): boolean {
  if (!isObject(schema) || typeof schema.format !== 'string') return false;
  if (PATH_FORMATS.has(schema.format)) return true;
  return URI_FORMATS.has(schema.format) && (FILE_SCHEME.test(value) || !SCHEME.test(value));
}

function propertySchema(schema: unknown, key: string): unknown {
  if (!isObject(schema)) return undefined;
  if (isObject(schema.properties) && Object.hasOwn(schema.properties, key)) return schema.properties[key];
  return isObject(schema.additionalProperties) ? schema.additionalProperties : undefined;
}

function itemSchema(schema: unknown, index: number): unknown {
  if (!isObject(schema)) return undefined;
  if (Array.isArray(schema.prefixItems) && index < schema.prefixItems.length) return schema.prefixItems[index];
  return isObject(schema.items) ? schema.items : undefined;
}
