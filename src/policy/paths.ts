/**
 * The path guard: every tool argument that may name a file is resolved the way
 * the operating system will resolve it and checked against `paths.allow` and
 * `paths.deny` (picomatch globs on absolute paths).
 *
 * ## Which strings are checked ({@link PathGuard.checkArguments})
 *
 * Every string in a tool's arguments, at any depth (array items, object
 * members, and the keys of objects whose schema does not declare them), gets a
 * kind, decided in this order:
 * 1. A value that parses (WHATWG URL) as a `file:` URL is a **path**, whatever
 *    else says otherwise: the upstream can open it.
 * 2. `upstreams.<name>.argumentKinds` (config): tool name pattern → JSON Pointer
 *    pattern (RFC 6901, a `*` segment matches any key or index) → `path` or
 *    `not-path`. A classification covers everything below its pointer; the
 *    deepest wins; `path` wins a tie at the same depth.
 * 3. The tool's input schema: `x-bastion-kind: "path" | "not-path"` on the
 *    string's schema or an ancestor's (the nearest wins).
 * 4. **path** hints: the property name is one of {@link PATH_ARGUMENT_NAMES},
 *    ends in `Path` or `_path`, or is in `paths.argumentNames` (array items
 *    under such a property count too); or the schema says `format: "path"` or
 *    `"file-path"`; or `format: "uri"`/`"uri-reference"`/`"iri"`/`"iri-reference"`
 *    and the value has no scheme.
 * 5. **not-path** hints (each checked on the value itself, not trusted from an
 *    earlier validation): a URI format whose value has a scheme other than `file:`;
 *    a value listed in the schema's `enum`/`const`; a value that holds one of the
 *    formats in {@link NOT_PATH_FORMATS} (ajv-formats' full definitions).
 * 6. Otherwise the string is **unclassified**. Under `pathGuard: strict` (the
 *    default for an upstream with a `workspace`) it is checked as a path: fail
 *    closed. Under `named` it is not checked.
 * Object keys go through 1, 2, 3 (the object's own classification) and 6 only.
 * Numbers and booleans are never paths. The schema is followed through
 * `properties`, `additionalProperties`, `items` and `prefixItems` only;
 * strings under `anyOf`, `$ref` and the like are unclassified.
 *
 * Schema hints come from the upstream. That is sound for this guard: it keeps
 * the *agent* from making a benign upstream open a file; an upstream that
 * lies about its own arguments could open any file without being asked.
 *
 * ## How a path is checked ({@link PathGuard.check})
 *
 * 1. Not a string, empty, holding NUL or a lone surrogate → deny `path.invalid` / `path.nul`.
 * 2. A `file:` URL becomes a path (`new URL` then `fileURLToPath`, never
 *    substrings: `%2e%2e` segments are resolved by the URL parser, an encoded `/`
 *    or a remote host → `path.invalid`). A path that still holds an encoded `.`,
 *    `/`, `\` or NUL after decoding → `path.invalid`: an upstream that decodes
 *    twice would see traversal there.
 * 3. A leading `~` is not expanded: deny `path.tilde` (the tool's idea of home is unknown).
 * 4. A relative path resolves against the `workspace` of the upstream the tool
 *    belongs to — the folder that upstream itself resolves relative paths against.
 *    Without one it is denied (`path.relative`): the gateway cannot know what the
 *    upstream would resolve it against, and checking one path while the upstream
 *    opens another is how a deny rule gets bypassed.
 * 5. Candidates: the *lexical* path (`path.resolve`) and the *physical* paths,
 *    resolved component by component like the kernel does: symlinks are followed
 *    (also dangling ones, so a write target behind a link is its real target;
 *    an absolute link target restarts at `/`), and `..` after a symlink climbs
 *    from the link's target, not from the link. A component that does not exist
 *    (or whose name is too long to exist) is appended lexically, and so is what
 *    follows it, until a `..` climbs back to a folder that exists (where lookups
 *    resume). A path with `..` is also walked in its lexical form, which is what
 *    an upstream that normalizes the text before opening it (`path.resolve`,
 *    `os.path.normpath`) opens. A loop or unreadable component → deny `path.unresolvable`.
 *    The physical walk is done for the value as given and for its NFC and NFD
 *    forms: a file system that is normalization-insensitive (APFS, HFS+, ZFS
 *    with `normalization=`) opens a symlink named `é` for either form.
 * 6. Every candidate and every glob is compared in Unicode NFC (UAX #15), so a
 *    decomposed `é` neither slips past a deny glob nor out of an allow root.
 *    NFKC is not applied: no file system treats compatibility equivalents
 *    (full-width `ｅｎｖ`, ligatures) as the same name, so folding them would not
 *    close a bypass, and applied to allow globs it would widen them.
 * 7. Deny globs first, over every candidate (deny wins): `path.denied`, rule `paths.deny[i]`.
 *    Deny globs match case-insensitively (on a case-insensitive file system `.ENV`
 *    is `.env`; on Linux this denies a little more, which is the safe side).
 * 8. Every candidate must match an allow glob: `path.allowed`, rule `paths.allow[i]`
 *    (the glob the physical path matched); otherwise deny `path.outside`.
 *
 * Globs use picomatch with `dot: true` (so `**` and `*` match dot files).
 * `/abs/dir/**` matches `/abs/dir` itself; `**\/name` matches at any depth. When a
 * glob's fixed prefix runs through a symlink (macOS `/tmp` → `/private/tmp`), the
 * glob is also compiled with the prefix's real path, so physical paths match it.
 *
 * `resources/read` (and subscribe) URIs go through {@link PathGuard.checkResource}:
 * a `file:` URI is checked as a path, whatever the upstream; completions of a
 * resource template, through {@link PathGuard.checkCompletion}.
 *
 * POSIX paths only.
 */
import { realpathSync } from 'node:fs';
import { lstat, readlink, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import picomatch from 'picomatch';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import type { ResolvedPaths, ResolvedUpstream } from '../config/types.ts';
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

/** JSON Schema `format`s whose values are checked against the format and, when they hold, are not paths. */
export const NOT_PATH_FORMATS: readonly string[] = Object.freeze(['date-time', 'date', 'time', 'duration', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid']);

/** JSON Schema `format`s that mark a string as a path. */
const PATH_FORMATS = new Set(['path', 'file-path']);
/** JSON Schema `format`s that mark a string as a path when it has no scheme (a `file:` URL always is one). */
const URI_FORMATS = new Set(['uri', 'uri-reference', 'iri', 'iri-reference']);
/** Deepest argument nesting {@link PathGuard.checkArguments} walks; deeper is `ERR_ARGS_INVALID`. */
export const MAX_PATH_ARGS_DEPTH = 64;
/** Most symlinks followed resolving one path (Linux's own limit is 40). */
export const MAX_SYMLINKS = 40;
/** Most path checks of one request in flight at once (each is a few `lstat`/`realpath` calls). */
const PATH_CHECK_CONCURRENCY = 16;

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** Percent-encoded `.`, `/`, `\` or NUL left in a path after one decoding: traversal for an upstream that decodes twice. */
const STILL_ENCODED = /%(?:2e|2f|5c|00)/i;

/** How one argument string is classified for the path guard. */
export type ArgumentKind = 'path' | 'not-path';
/** Which strings an upstream's path guard checks (see the module docs). */
export type PathGuardMode = 'strict' | 'named';

/**
 * A string the guard checks: its RFC 6901 JSON Pointer, its value, why it is
 * checked (`path`: classified so; `unclassified`: only because the upstream is
 * `strict`), and whether it is an object key (then `pointer` names the object,
 * so that no pointer holds the key itself).
 */
export interface PathArgument {
  readonly pointer: string;
  readonly value: string;
  readonly kind: 'path' | 'unclassified';
  readonly key?: true;
}

/**
 * The path guard's answer for a whole request. `decision` is the first denial
 * (in document order) or an allow; `argument` is the string it concerns;
 * `checked` counts the strings checked.
 */
export interface PathVerdict {
  readonly decision: Decision;
  readonly argument?: PathArgument;
  readonly checked: number;
}

/** The upstream fields the guard reads. */
export type PathScope = Pick<ResolvedUpstream, 'name' | 'workspace' | 'pathGuard' | 'argumentKinds'>;

interface Glob {
  readonly rule: string;
  readonly test: (path: string) => boolean;
}

/** One `argumentKinds` entry compiled: pointer tokens (`*` = any) and the kind. */
interface KindRule {
  readonly tokens: readonly string[];
  readonly kind: ArgumentKind;
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

/** The WHATWG URL `value` parses to when its scheme is `file:`, else undefined (leading spaces and embedded tabs count, as for the URL parser). */
function fileUrlOf(value: string): URL | undefined {
  const url = URL.parse(value);
  return url?.protocol === 'file:' ? url : undefined;
}

/** Whether `value` is a `file:` URL (see {@link fileUrlOf}). */
export function isFileUrl(value: string): boolean {
  return fileUrlOf(value) !== undefined;
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
      const real = realpathSync(existing).normalize('NFC');
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
    if (typeof glob !== 'string' || (!isAbsolute(glob) && !glob.startsWith('**'))) {
      throw new BastionError('ERR_CONFIG_INVALID', `${rule}: a path glob must be absolute or start with **`, { detail: { path: rule } });
    }
    // Globs are compared in NFC, like the paths (see the module docs).
    const matchers = globVariants(glob.normalize('NFC')).map((g) => picomatch(g, { dot: true, nocase: key === 'deny' }));
    return { rule, test: (p: string) => matchers.some((m) => m(p)) };
  });
}

/**
 * The physical path of `abs` (absolute, not normalized): each component is
 * looked up with `lstat`; symlinks are replaced by their target; `..` climbs
 * from the physical folder. Components after a missing one (or one too long to
 * exist) are taken lexically until a `..` climbs back, where lookups resume.
 * Throws `ELOOP` past {@link MAX_SYMLINKS}.
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
      // Climbing out of a missing folder lands on one that exists: look components up again
      // (`missing/../link/x` must follow `link`, as an upstream that normalizes first would).
      cur = dirname(cur);
      exists = true;
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
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENAMETOOLONG') throw err;
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
    // An absolute target restarts at the root, as the kernel does.
    if (target.startsWith('/')) cur = '/';
    pending.push(...target.split('/').reverse());
  }
  return cur;
}

/** Compiled `argumentKinds` of each upstream config object (configs are frozen, so the compiled form never goes stale). */
const kindsMemo = new WeakMap<object, readonly { readonly tool: RegExp; readonly rules: readonly KindRule[] }[]>();

function compileKinds(scope: PathScope): readonly { readonly tool: RegExp; readonly rules: readonly KindRule[] }[] {
  let compiled = kindsMemo.get(scope);
  if (compiled === undefined) {
    compiled = Object.entries(scope.argumentKinds ?? {}).map(([tool, pointers]) => ({
      tool: new RegExp(`^${tool.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('.*')}$`, 's'),
      rules: Object.entries(pointers).map(([pointer, kind]) => ({
        tokens: pointer === '' ? [] : pointer.slice(1).split('/').map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~')),
        kind,
      })),
    }));
    kindsMemo.set(scope, compiled);
  }
  return compiled;
}

/** The `argumentKinds` rules that apply to `tool` (its name as the upstream lists it). */
function kindRules(scope: PathScope | undefined, tool: string): KindRule[] {
  if (scope === undefined) return [];
  return compileKinds(scope).flatMap((t) => (t.tool.test(tool) ? t.rules : []));
}

/**
 * The configured kind of the node at `tokens` (exactly that depth), `path` winning a tie; undefined when no rule names it.
 * `anyKey`: a `*` in `tokens` stands for every key (a schema position, {@link PathGuard.unclassifiedArguments});
 * in an argument it is a key like any other, which only a rule's `*` or `*` itself matches.
 */
function configuredKind(rules: readonly KindRule[], tokens: readonly string[], anyKey = false): ArgumentKind | undefined {
  let found: ArgumentKind | undefined;
  for (const r of rules) {
    if (r.tokens.length !== tokens.length) continue;
    if (!r.tokens.every((t, i) => t === '*' || (anyKey && tokens[i] === '*') || t === tokens[i])) continue;
    if (r.kind === 'path') return 'path';
    found = 'not-path';
  }
  return found;
}

/** `x-bastion-kind` of a schema node, when it is one of the two kinds. */
function schemaKind(schema: unknown): ArgumentKind | undefined {
  if (!isObject(schema)) return undefined;
  const k = schema['x-bastion-kind'];
  return k === 'path' || k === 'not-path' ? k : undefined;
}

/** The path guard's mode for an upstream: as configured, else `strict` with a workspace. No upstream (none configured): `named`. */
export function pathGuardMode(scope: PathScope | undefined): PathGuardMode {
  if (scope === undefined) return 'named';
  return scope.pathGuard ?? (scope.workspace !== undefined ? 'strict' : 'named');
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
   * The strings of `args` the guard checks for `tool` of upstream `scope` (see
   * the module docs), in document order. `tool` is the name the upstream lists;
   * `scope` undefined: `named` mode, no `argumentKinds`.
   * Throws `ERR_ARGS_INVALID` when `args` nest deeper than {@link MAX_PATH_ARGS_DEPTH}.
   */
  argumentsToCheck(scope: PathScope | undefined, tool: string, inputSchema: unknown, args: unknown): PathArgument[] {
    const strict = pathGuardMode(scope) === 'strict';
    const rules = kindRules(scope, tool);
    const out: PathArgument[] = [];
    const tokens: string[] = [];
    const walk = (value: unknown, schema: unknown, pointer: string, depth: number, named: boolean, inherited: ArgumentKind | undefined, fromSchema: ArgumentKind | undefined): void => {
      if (depth > MAX_PATH_ARGS_DEPTH) {
        throw new BastionError('ERR_ARGS_INVALID', `arguments nest deeper than ${MAX_PATH_ARGS_DEPTH} levels`);
      }
      const configured = configuredKind(rules, tokens) ?? inherited;
      const declared = schemaKind(schema) ?? fromSchema;
      if (typeof value === 'string') {
        const kind = classify(value, configured, declared, () => named || schemaSaysPath(schema, value), () => schemaSaysNotPath(schema, value), strict);
        if (kind !== undefined) out.push({ pointer, value, kind });
        return;
      }
      if (Array.isArray(value)) {
        value.forEach((item, i) => {
          tokens.push(String(i));
          walk(item, itemSchema(schema, i), `${pointer}/${i}`, depth + 1, named, configured, declared);
          tokens.pop();
        });
        return;
      }
      if (isObject(value)) {
        const declaredKeys = isObject(schema) && isObject(schema.properties) ? schema.properties : {};
        for (const key of Object.keys(value)) {
          const member = `${pointer}/${pointerToken(key)}`;
          if (!Object.hasOwn(declaredKeys, key)) {
            // A key the schema does not declare is a string the agent chose.
            const kind = classify(key, configured, declared, () => false, () => false, strict);
            if (kind !== undefined) out.push({ pointer, value: key, kind, key: true });
          }
          tokens.push(key);
          walk(value[key], propertySchema(schema, key), member, depth + 1, this.isPathName(key), configured, declared);
          tokens.pop();
        }
      }
    };
    walk(args, inputSchema, '', 0, false, undefined, undefined);
    return out;
  }

  /**
   * The classified-path strings of `args` in `named` mode without config
   * (the guard of an upstream that is not `strict`). Kept for callers that
   * have no upstream. Throws `ERR_ARGS_INVALID` like {@link argumentsToCheck}.
   */
  pathArguments(inputSchema: unknown, args: unknown): PathArgument[] {
    return this.argumentsToCheck(undefined, '', inputSchema, args);
  }

  /**
   * Where in a tool's input schema a string would be unclassified (module docs,
   * step 6), as JSON Pointer patterns (`*` for any index or member). The members
   * of a free-form object (no declared properties, or `additionalProperties`
   * given and not `false`) are reported as `<object>/*`: key and value are both
   * unclassified. Under `strict`
   * these are checked as paths; under `named` they are not checked.
   * URI formats count as classified (the value decides: a scheme other than
   * `file:` is not a path, anything else is).
   */
  unclassifiedArguments(scope: PathScope | undefined, tool: string, inputSchema: unknown): string[] {
    const rules = kindRules(scope, tool);
    const out = new Set<string>();
    const tokens: string[] = [];
    const at = (): string => tokens.map((t) => (t === '*' ? '*' : pointerToken(t))).map((t) => `/${t}`).join('');
    const walk = (schema: unknown, depth: number, named: boolean, inherited: ArgumentKind | undefined, fromSchema: ArgumentKind | undefined): void => {
      const configured = configuredKind(rules, tokens, true) ?? inherited;
      const declared = schemaKind(schema) ?? fromSchema;
      // Below an explicit classification everything is classified (a deeper one only re-classifies).
      if (configured !== undefined || declared !== undefined) {
        if (!rules.some((r) => r.tokens.length > tokens.length)) return;
      }
      if (depth > MAX_PATH_ARGS_DEPTH) return;
      if (!isObject(schema)) {
        if (configured === undefined && declared === undefined && !named) out.add(at());
        return;
      }
      const types = Array.isArray(schema.type) ? schema.type : typeof schema.type === 'string' ? [schema.type] : undefined;
      const structured = isObject(schema.properties) || schema.additionalProperties !== undefined || schema.items !== undefined || Array.isArray(schema.prefixItems);
      if (isObject(schema.properties)) {
        for (const [key, sub] of Object.entries(schema.properties)) {
          tokens.push(key);
          walk(sub, depth + 1, this.isPathName(key), configured, declared);
          tokens.pop();
        }
      }
      const objectLike = types === undefined ? isObject(schema.properties) || schema.additionalProperties !== undefined : types.includes('object');
      // A free-form object: no declared properties, or additionalProperties given. An object that
      // declares its properties and says nothing more is open too, but its extra members are not
      // part of the tool's interface (they are still checked under strict).
      const freeForm = !isObject(schema.properties) || (schema.additionalProperties !== undefined && schema.additionalProperties !== false);
      if (objectLike && freeForm && schema.additionalProperties !== false) {
        tokens.push('*');
        if (configured === undefined && declared === undefined) out.add(at());
        else if (isObject(schema.additionalProperties)) walk(schema.additionalProperties, depth + 1, false, configured, declared);
        tokens.pop();
      }
      if (Array.isArray(schema.prefixItems)) {
        schema.prefixItems.forEach((sub, i) => {
          tokens.push(String(i));
          walk(sub, depth + 1, named, configured, declared);
          tokens.pop();
        });
      }
      if (schema.items !== undefined && schema.items !== false) {
        tokens.push('*');
        walk(schema.items, depth + 1, named, configured, declared);
        tokens.pop();
      } else if (schema.items === undefined && types?.includes('array') === true) {
        // An array that says nothing of its items takes anything: its items are free positions.
        tokens.push('*');
        if (configured === undefined && declared === undefined && !named) out.add(at());
        tokens.pop();
      }
      const mayBeString = types === undefined ? !structured : types.includes('string');
      if (!mayBeString || configured !== undefined || declared !== undefined || named) return;
      const format = typeof schema.format === 'string' ? schema.format : '';
      if (PATH_FORMATS.has(format) || URI_FORMATS.has(format) || NOT_PATH_FORMATS.includes(format)) return;
      if (Object.hasOwn(schema, 'const') || Array.isArray(schema.enum)) return;
      out.add(at());
    };
    walk(inputSchema, 0, false, undefined, undefined);
    return [...out];
  }

  /**
   * Decides a tool call's arguments: every string {@link argumentsToCheck}
   * returns must pass {@link check} against the upstream's workspace. The first
   * denial (document order) decides; otherwise allow `path.allowed` (rule of the
   * last checked path) or, when nothing was checked, allow `path.none`.
   * Never throws: arguments nested deeper than {@link MAX_PATH_ARGS_DEPTH} deny `path.invalid`.
   */
  async checkArguments(scope: PathScope | undefined, tool: string, inputSchema: unknown, args: unknown): Promise<PathVerdict> {
    let list: PathArgument[];
    try {
      list = this.argumentsToCheck(scope, tool, inputSchema, args);
    } catch {
      return { decision: deny('path.invalid', 'paths'), checked: 0 };
    }
    let last: Decision = allow('path.none', 'paths');
    // Checks only read the file system: run a bounded batch at once, then take the first denial in document order.
    for (let i = 0; i < list.length; i += PATH_CHECK_CONCURRENCY) {
      const batch = list.slice(i, i + PATH_CHECK_CONCURRENCY);
      const decisions = await Promise.all(batch.map((a) => this.check(a.value, scope?.workspace)));
      for (const [j, d] of decisions.entries()) {
        if (d.effect !== 'allow') return { decision: d, argument: batch[j] as PathArgument, checked: list.length };
        last = d;
      }
    }
    return { decision: last, checked: list.length };
  }

  /**
   * Decides a `prompts/get` call's arguments like a tool call's: a prompt's
   * arguments are strings it declares by name (no schema), and a server may
   * read the file one names. `prompt.name` is the name the upstream lists
   * (`argumentKinds` patterns match prompt names too). Never throws.
   */
  async checkPromptArguments(scope: PathScope | undefined, prompt: { readonly name: string; readonly arguments?: readonly { readonly name: string }[] }, args: unknown): Promise<PathVerdict> {
    const properties: Record<string, unknown> = {};
    // A name listed twice declares it once (defineProperty on a non-configurable name would throw).
    for (const a of prompt.arguments ?? []) if (typeof a?.name === 'string' && !Object.hasOwn(properties, a.name)) Object.defineProperty(properties, a.name, { value: { type: 'string' }, enumerable: true });
    return this.checkArguments(scope, prompt.name, { type: 'object', properties }, args ?? {});
  }

  /**
   * Decides a resource URI (`resources/read`, subscribe): a `file:` URL is
   * checked as a path against the owner's workspace; any other URI is not a
   * file (allow `path.none`); a URI that is not a string is `path.invalid`
   * (fail closed: nothing can say it names no file). Never throws.
   */
  async checkResource(scope: PathScope | undefined, uri: string): Promise<Decision> {
    if (typeof uri !== 'string') return deny('path.invalid', 'paths');
    if (!isFileUrl(uri)) return allow('path.none', 'paths');
    return this.check(uri, scope?.workspace);
  }

  /**
   * Decides a `completion/complete` request for a resource template: a server
   * that completes a `file:` template lists the names under the path being
   * typed, so the template expanded with the argument (and the earlier
   * arguments in `context`, RFC 6570 via the MCP SDK) is checked like a
   * `resources/read` of that URI. A `file:` template whose expansion is not a
   * `file:` URL (an encoded `/` in a simple expansion, a broken template) is
   * refused `path.invalid`; a value that is itself a `file:` URL is checked too.
   * Never throws.
   */
  async checkCompletion(scope: PathScope | undefined, template: string, argument: { readonly name: string; readonly value: string }, context?: Readonly<Record<string, string>>): Promise<Decision> {
    if (typeof template !== 'string' || typeof argument?.name !== 'string' || typeof argument.value !== 'string') return deny('path.invalid', 'paths');
    if (isFileUrl(argument.value)) {
      const d = await this.check(argument.value, scope?.workspace);
      if (d.effect !== 'allow') return d;
    }
    const fileTemplate = /^file:/i.test(template.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+/, ''));
    let expanded: string;
    try {
      expanded = new UriTemplate(template).expand({ ...context, [argument.name]: argument.value });
    } catch {
      return fileTemplate ? deny('path.invalid', 'paths') : allow('path.none', 'paths');
    }
    if (isFileUrl(expanded)) return this.check(expanded, scope?.workspace);
    return fileTemplate ? deny('path.invalid', 'paths') : allow('path.none', 'paths');
  }

  /**
   * The completion values a server proposed for a resource template, without
   * those {@link checkCompletion} refuses (a name under a deny glob, say `.env`
   * proposed for `.en`), in their order. Never throws.
   */
  async allowedCompletions(scope: PathScope | undefined, template: string, argumentName: string, values: readonly string[], context?: Readonly<Record<string, string>>): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < values.length; i += PATH_CHECK_CONCURRENCY) {
      const batch = values.slice(i, i + PATH_CHECK_CONCURRENCY);
      const decisions = await Promise.all(batch.map((value) => this.checkCompletion(scope, template, { name: argumentName, value }, context)));
      batch.forEach((v, j) => {
        if (decisions[j]?.effect === 'allow') out.push(v);
      });
    }
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
    const url = fileUrlOf(value);
    if (url !== undefined) {
      try {
        p = fileURLToPath(url);
      } catch {
        return deny('path.invalid', 'paths');
      }
      if (p.includes('\0')) return deny('path.nul', 'paths');
      if (!p.isWellFormed() || STILL_ENCODED.test(p)) return deny('path.invalid', 'paths');
    }
    if (p.startsWith('~')) return deny('path.tilde', 'paths');

    if (!isAbsolute(p) && (workspace === undefined || !isAbsolute(workspace))) return deny('path.relative', 'paths');
    const absOf = (q: string): string => (isAbsolute(q) ? q : `${workspace}/${q}`);
    const lexical = resolve(absOf(p)).normalize('NFC');
    // The physical walk for the value as given, then for its other normalization forms.
    const forms = [...new Set([p, p.normalize('NFC'), p.normalize('NFD')])];
    const physical: string[] = [];
    try {
      for (const form of forms) {
        const abs = absOf(form);
        physical.push((await this.#physical(abs, resolve(abs))).normalize('NFC'));
        // With `..`, the kernel climbs from where symlinks lead, but an upstream that normalizes
        // the text first (path.resolve, os.path.normpath) opens the lexical form: walk that too.
        if (abs.split('/').includes('..')) physical.push((await this.#physical(resolve(abs), resolve(abs))).normalize('NFC'));
      }
    } catch {
      return deny('path.unresolvable', 'paths');
    }

    const candidates = [lexical, ...physical];
    for (const g of this.#deny) {
      if (candidates.some((c) => g.test(c))) return deny('path.denied', g.rule);
    }
    const physicalRule = this.#allow.find((g) => g.test(physical[0] as string));
    if (physicalRule && candidates.every((c) => this.#allow.some((g) => g.test(c)))) return allow('path.allowed', physicalRule.rule);
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
        if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENAMETOOLONG') throw err;
      }
      // The common miss (a file about to be created, text under strict): the folder exists and
      // the last name is absent, not a dangling link. Then the folder's realpath plus the name
      // is the kernel's answer; anything else takes the component walk.
      const parent = dirname(lexical);
      if (parent !== lexical) {
        const [realParent, last] = await Promise.all([realpath(parent).catch(() => undefined), lstat(lexical).then(() => 'exists', (e: unknown) => errnoOf(e))]);
        if (realParent !== undefined && last === 'ENOENT') return `${realParent === '/' ? '' : realParent}/${lexical.slice(parent === '/' ? 1 : parent.length + 1)}`;
      }
    }
    return physicalPath(abs);
  }
}

/** The kind of one string (steps 1–6 of the module docs); undefined: not checked. */
function classify(
  value: string,
  configured: ArgumentKind | undefined,
  declared: ArgumentKind | undefined,
  pathHint: () => boolean,
  notPathHint: () => boolean,
  strict: boolean,
): 'path' | 'unclassified' | undefined {
  if (isFileUrl(value)) return 'path';
  const explicit = configured ?? declared;
  if (explicit !== undefined) return explicit === 'path' ? 'path' : undefined;
  if (pathHint()) return 'path';
  if (notPathHint()) return undefined;
  return strict ? 'unclassified' : undefined;
}

function schemaSaysPath(schema: unknown, value: string): boolean {
  if (!isObject(schema) || typeof schema.format !== 'string') return false;
  if (PATH_FORMATS.has(schema.format)) return true;
  return URI_FORMATS.has(schema.format) && !SCHEME.test(value);
}

/** Whether the value provably is something else than a path, by its schema (checked on the value, see the module docs). */
function schemaSaysNotPath(schema: unknown, value: string): boolean {
  if (!isObject(schema)) return false;
  if (Object.hasOwn(schema, 'const') && schema.const === value) return true;
  if (Array.isArray(schema.enum) && schema.enum.includes(value)) return true;
  const format = schema.format;
  if (typeof format !== 'string') return false;
  if (URI_FORMATS.has(format)) return URL.canParse(value) && !isFileUrl(value);
  return NOT_PATH_FORMATS.includes(format) && formatHolds(format, value);
}

/** Whether `value` holds the JSON Schema `format` by ajv-formats' full definition. */
function formatHolds(format: string, value: string): boolean {
  const f = (fullFormats as Record<string, unknown>)[format];
  const check = isObject(f) && !(f instanceof RegExp) && 'validate' in f ? f.validate : f;
  if (check instanceof RegExp) return check.test(value);
  if (typeof check === 'function') return (check as (v: string) => boolean)(value) === true;
  return false;
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

/**
 * The fixed text an agent gets for a refused call: the argument's pointer (never
 * its value; for a key, the object's pointer) and, for a relative path, a hint.
 */
export function pathRefusalText(verdict: PathVerdict): string {
  const a = verdict.argument;
  const where = a === undefined || (a.pointer === '' && a.key !== true) ? 'the arguments' : a.key === true ? `a key of ${a.pointer === '' ? 'the arguments' : a.pointer}` : a.pointer;
  const hint = verdict.decision.reason === 'path.relative' ? ' (use an absolute path)' : '';
  return `Bastion refused this call: the path in ${where} is not allowed${hint}`;
}

/** Audit-record detail of a refused call: which argument (pointer, never the value) and why it was checked. */
export function pathAuditDetail(verdict: PathVerdict): Record<string, unknown> {
  const a = verdict.argument;
  if (a === undefined) return {};
  return { pathArgument: a.pointer, pathArgumentKind: a.kind, ...(a.key === true ? { pathArgumentIsKey: true } : {}) };
}
