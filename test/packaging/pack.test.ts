/**
 * The image's recipe, checked without a container daemon. Statically: the
 * Dockerfile (Node 24 slim by tag, a non-root user, no dev dependencies in what
 * ships, a HEALTHCHECK on /healthz, `bastion serve` as entrypoint), its
 * .dockerignore, and compose.yaml (healthy PostgreSQL and Redis first, two
 * read-only Bastion instances on one config, only variables Bastion reads).
 * Then the Dockerfile's steps on this machine: `npm pack`, the packed files and
 * the lockfile into an empty folder, `npm ci --omit=dev`, and `bastion serve`
 * from there, once per shipped config, with the image's and compose's
 * environment (listen addresses moved to 127.0.0.1:0, the database to a fresh
 * schema, Redis keys under a random prefix): it serves, answers /healthz, writes
 * nothing outside its state folder, and exits 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { parse as parseYaml, parseDocument } from 'yaml';
import { ROOT } from '../helpers/gateway.ts';
import { freshSchema } from '../helpers/postgres.ts';
import { ensureRedis, REDIS_URL } from '../helpers/redis.ts';

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly body: Instruction[];
}

/** The Dockerfile as stages of instructions: continuation lines joined, comments and directives dropped. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (pending === '' && /^\s*(#|$)/.test(line)) continue;
    if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(`${pending}${line}`.trim());
    pending = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(l);
    assert.ok(m, `unreadable Dockerfile line: ${l}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.replace(/\s+/g, ' ').trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?: AS (\S+))?$/i.exec(args);
      assert.ok(f, `FROM ${args}`);
      stages.push({ image: f[1]!, name: f[2], body: [] });
      continue;
    }
    assert.ok(stages.length > 0, `${op} before FROM`);
    stages.at(-1)!.body.push({ op, args });
  }
  return stages;
}

/** `KEY=value KEY2=value2` of the ENV instructions of a stage (unquoted values, as this Dockerfile writes them). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.body.filter((x) => x.op === 'ENV')) {
    for (const pair of i.args.split(' ')) {
      const eq = pair.indexOf('=');
      assert.ok(eq > 0, `ENV ${i.args}: use KEY=value`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** The JSON (exec) form of an instruction's argument list. */
function execForm(args: string): string[] {
  const v = JSON.parse(args) as unknown;
  assert.ok(Array.isArray(v) && v.every((s) => typeof s === 'string'), `not exec form: ${args}`);
  return v as string[];
}

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const STAGES = parseDockerfile(DOCKERFILE);
const FINAL = STAGES.at(-1)!;
const IMAGE_ENV = envOf(FINAL);
const HEALTHCHECK = FINAL.body.find((i) => i.op === 'HEALTHCHECK');

// ---------------------------------------------------------------- compose

interface ComposeService {
  image?: string;
  build?: unknown;
  read_only?: boolean;
  tmpfs?: string[] | string;
  volumes?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: unknown };
  ports?: string[];
}
const COMPOSE = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const PRODUCTION_CONFIG = join(ROOT, 'examples', 'production', 'bastion.yaml');
const SINGLE_CONFIG = join(ROOT, 'examples', 'production', 'single.yaml');

/** Compose's `${NAME}`, `${NAME:?message}`, `${NAME:-default}` against `vars`; a name without a value fails the test. */
function interpolate(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}/g, (_, name: string) => {
    const v = vars[name];
    assert.ok(v !== undefined, `compose.yaml needs \${${name}}, which the test does not provide`);
    return v;
  });
}

/** The source of every .ts file under src/, concatenated. */
function sources(): string {
  return (readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(join(ROOT, 'src', f), 'utf8'))
    .join('\n');
}

/** Whether `src` reads the variable: its name as a string literal, or `env.NAME`. */
function readsVariable(src: string, name: string): boolean {
  return new RegExp(`['"\`]${name}['"\`]|\\benv\\.${name}\\b`).test(src);
}

/** The `env:NAME` references among the config's values (comments are not values). */
function envRefsOf(file: string): Set<string> {
  const refs = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && v.startsWith('env:')) refs.add(v.slice('env:'.length));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(parseYaml(readFileSync(file, 'utf8')));
  return refs;
}

/** Variables the image sets for Node and glibc, not for Bastion: each with its reason. */
const RUNTIME_VARIABLES: Readonly<Record<string, string>> = {
  HOME: 'no write outside the state folder (tools spawned by stdio upstreams inherit it)',
  TMPDIR: 'the tmpfs',
  MALLOC_ARENA_MAX: 'glibc: bounds memory fragmentation of a multi-threaded Node',
};

describe('Dockerfile', () => {
  test('every stage starts from node:24-slim, pinned by tag', () => {
    assert.ok(STAGES.length >= 2, 'a build stage and a runtime stage');
    for (const s of STAGES) assert.equal(s.image, 'node:24-slim');
  });

  test('the image runs as a non-root user given by number', () => {
    const users = FINAL.body.filter((i) => i.op === 'USER');
    assert.equal(users.length, 1);
    const [user, group] = users[0]!.args.split(':');
    assert.match(user!, /^[1-9][0-9]*$/, 'numeric, so runAsNonRoot can verify it');
    assert.match(group ?? '1', /^[1-9][0-9]*$/);
    // Nothing runs as root after it.
    const after = FINAL.body.slice(FINAL.body.indexOf(users[0]!) + 1);
    assert.deepEqual(after.filter((i) => i.op === 'RUN'), []);
  });

  test('what ships was installed without dev dependencies and without install scripts', () => {
    const installs = (s: Stage): Instruction[] => s.body.filter((i) => i.op === 'RUN' && /\bnpm (ci|install|i)\b/.test(i.args));
    for (const s of STAGES) for (const i of installs(s)) assert.match(i.args, /--ignore-scripts/, `${i.args}`);
    // The runtime stage installs nothing itself; every stage it copies from installed with --omit=dev.
    assert.deepEqual(installs(FINAL), []);
    const sourcesOfFinal = FINAL.body.filter((i) => i.op === 'COPY').map((i) => /--from=(\S+)/.exec(i.args)?.[1]);
    assert.ok(sourcesOfFinal.length > 0 && sourcesOfFinal.every((s) => s !== undefined), 'the runtime stage copies only from earlier stages');
    for (const name of new Set(sourcesOfFinal)) {
      const stage = STAGES.find((s) => s.name === name);
      assert.ok(stage, `stage ${name}`);
      assert.ok(installs(stage).length > 0, `stage ${name} installs the dependencies`);
      for (const i of installs(stage)) assert.match(i.args, /--omit=dev/, `${name}: ${i.args}`);
      assert.ok(stage.body.some((i) => i.op === 'COPY' && i.args.includes('package-lock.json')), `${name} installs from the lockfile`);
    }
  });

  test('the package is built with npm pack, so the image holds exactly package.json#files', () => {
    assert.ok(STAGES.some((s) => s.body.some((i) => i.op === 'RUN' && /\bnpm pack\b/.test(i.args) && /tsconfig\.verify\.json/.test(i.args))));
  });

  test('ENTRYPOINT runs `bastion serve`, with bastion linked to the installed bin', () => {
    const entry = FINAL.body.filter((i) => i.op === 'ENTRYPOINT');
    assert.equal(entry.length, 1);
    assert.deepEqual(execForm(entry[0]!.args), ['bastion', 'serve']);
    assert.ok(FINAL.body.some((i) => i.op === 'RUN' && i.args.includes('ln -s /opt/bastion/bin/bastion.js /usr/local/bin/bastion')));
  });

  test('environment: listen addresses, config path and allocator arenas', () => {
    assert.equal(IMAGE_ENV.BASTION_LISTEN, '0.0.0.0:8790');
    assert.equal(IMAGE_ENV.BASTION_EGRESS_LISTEN, '0.0.0.0:8791');
    assert.equal(IMAGE_ENV.BASTION_CONFIG, '/etc/bastion/bastion.yaml');
    assert.equal(IMAGE_ENV.MALLOC_ARENA_MAX, '2');
    assert.equal(IMAGE_ENV.HOME, '/var/lib/bastion', 'HOME is the state folder');
    const src = sources();
    for (const name of Object.keys(IMAGE_ENV)) {
      assert.ok(name in RUNTIME_VARIABLES || readsVariable(src, name), `the image sets ${name}, which Bastion does not read`);
    }
  });

  test('EXPOSE names both listeners', () => {
    const ports = FINAL.body.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(' '));
    for (const v of [IMAGE_ENV.BASTION_LISTEN!, IMAGE_ENV.BASTION_EGRESS_LISTEN!]) assert.ok(ports.includes(v.split(':').pop()!), v);
  });

  test('HEALTHCHECK asks /healthz with node (no curl in slim), bounded in time', () => {
    assert.ok(HEALTHCHECK);
    const m = /^(.*?)CMD (\[.*\])$/.exec(HEALTHCHECK.args);
    assert.ok(m, 'exec form');
    const cmd = execForm(m[2]!);
    assert.equal(cmd[0], 'node');
    assert.equal(cmd[1], '-e');
    assert.match(cmd[2]!, /\/healthz/);
    assert.match(m[1]!, /--timeout=\d+s/);
    assert.doesNotMatch(HEALTHCHECK.args, /\b(curl|wget)\b/);
  });

  test('.dockerignore lets in exactly what the Dockerfile copies, nothing else', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(lines[0], '*', 'an allowlist: everything is excluded first');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    const copied = STAGES.flatMap((s) => s.body)
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.replace(/^(--\S+ )+/, '').split(' ').slice(0, -1));
    assert.deepEqual(new Set(copied), new Set(allowed));
    for (const f of allowed) assert.ok(existsSync(join(ROOT, f)), `${f} does not exist`);
    for (const never of ['**/.bastion', '**/.env']) assert.ok(lines.includes(never), never);
  });
});

describe('compose.yaml', () => {
  const services = COMPOSE.services;
  const bastions = ['bastion-1', 'bastion-2'];

  test('PostgreSQL 15 or 16 and Redis 7, each with a healthcheck', () => {
    assert.match(services.postgres?.image ?? '', /^postgres:1[56](\b|$)/);
    assert.match(services.redis?.image ?? '', /^redis:7(\b|$)/);
    assert.ok(services.postgres?.healthcheck?.test);
    assert.ok(services.redis?.healthcheck?.test);
  });

  test('two instances from the Dockerfile, read-only with a tmpfs /tmp, started once the data services are healthy', () => {
    for (const name of bastions) {
      const s = services[name];
      assert.ok(s, name);
      assert.equal(s.build, '.');
      assert.equal(s.read_only, true);
      assert.ok([s.tmpfs ?? []].flat().includes('/tmp'));
      assert.deepEqual(s.depends_on, { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    }
  });

  test('both mount the one production config read-only where the image looks for it, and nothing else (the CA is in the store)', () => {
    for (const name of bastions) {
      assert.deepEqual(services[name]!.volumes, [`./examples/production/bastion.yaml:${IMAGE_ENV.BASTION_CONFIG}:ro`]);
    }
  });

  test('the config uses the PostgreSQL store and the Redis service by name', () => {
    const config = parseYaml(readFileSync(PRODUCTION_CONFIG, 'utf8')) as { store: unknown; redis: { url: string }; server: { allowedHosts: string[] } };
    assert.deepEqual(config.store, { postgres: 'env:BASTION_DATABASE_URL' });
    assert.ok(new URL(config.redis.url).hostname in services);
    const db = new URL(interpolate(services['bastion-1']!.environment!.BASTION_DATABASE_URL!, { POSTGRES_PASSWORD: 'p' }));
    assert.ok(db.hostname in services);
    // The image's HEALTHCHECK sends Host 127.0.0.1:<listen port>: an explicit allowlist must hold it.
    assert.ok(config.server.allowedHosts.includes(`127.0.0.1:${IMAGE_ENV.BASTION_LISTEN!.split(':').pop()}`));
  });

  test('every variable compose sets is one Bastion reads (in src/ or as env: in the mounted config)', () => {
    const src = sources();
    const refs = envRefsOf(PRODUCTION_CONFIG);
    assert.ok(refs.has('BASTION_DATABASE_URL'));
    for (const name of bastions) {
      const env = services[name]!.environment ?? {};
      for (const v of Object.keys(env)) assert.ok(readsVariable(src, v) || refs.has(v), `${name} sets ${v}, which nothing reads`);
      // The reverse: every env: reference of the config is given, and so is the vault key.
      for (const ref of [...refs, 'BASTION_MASTER_KEY']) assert.ok(ref in env, `${name} lacks ${ref}`);
    }
  });
});

// ---------------------------------------------------------------- the steps, run here

/** This Node (24) first on PATH, as the image's; nothing else inherited from the test's environment. */
const PATH = [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(delimiter);

function run(file: string, args: readonly string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // HOME stays the user's, so npm finds its cache (--prefer-offline).
    execFile(file, args, { cwd, env: { PATH, HOME: process.env.HOME ?? cwd, ...env }, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Every path under `dir`, sorted. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).sort();
}

interface Serving {
  readonly child: ChildProcess;
  readonly url: URL;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `bin/bastion.js serve` of the installed folder (through its shebang, as the entrypoint does) and waits until both listeners are up. */
function serve(app: string, env: Record<string, string>): Promise<Serving> {
  const child = spawn(join(app, 'bin', 'bastion.js'), ['serve'], { cwd: env.HOME, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  createInterface({ input: child.stderr! }).on('line', (l) => lines.push(l));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not serving after 30 s:\n${lines.join('\n')}`));
    }, 30_000);
    let url: URL | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const m = /^Bastion is serving MCP at (http:\/\/\S+)$/.exec(line);
      if (m) url = new URL(m[1]!);
      // The egress proxy's line comes last, once both listeners are up.
      if (url !== undefined && /^Bastion egress proxy listening on 127\.0\.0\.1:\d+ /.test(line)) {
        clearTimeout(timer);
        resolve({ child, url, lines, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`bastion serve exited ${code}:\n${lines.join('\n')}`));
    });
  });
}

/** GET `path` on `url`'s port with the given Host header. */
function get(url: URL, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, path, headers: { host }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Runs the image's HEALTHCHECK command with this Node, as the container would with BASTION_LISTEN `listen`. */
function healthcheck(listen: string): Promise<number> {
  const cmd = execForm(/CMD (\[.*\])$/.exec(HEALTHCHECK!.args)![1]!);
  return run(process.execPath, cmd.slice(1), tmpdir(), { BASTION_LISTEN: listen }, 15_000).then((r) => r.code);
}

/** SIGTERM, then the exit. */
async function stop(s: Serving): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  s.child.kill('SIGTERM');
  return s.exited;
}

// The two instances are independent: run them side by side.
describe('the Dockerfile steps, run here', { concurrency: true }, () => {
  const dirs: string[] = [];
  const temp = (prefix: string): string => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  const cleanups: Array<() => Promise<void>> = [];
  let app = '';
  let packed: string[] = [];
  const running: ChildProcess[] = [];

  after(async () => {
    for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of cleanups) await c();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  before(
    async () => {
      // dist/verify is built by `prepare` on install and by `npm test`; packing here runs no
      // scripts, so the shared checkout is never rewritten while other tests read it.
      if (!existsSync(join(ROOT, 'dist', 'verify', 'index.js'))) {
        const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.verify.json'], ROOT, {}, 120_000);
        assert.equal(tsc.code, 0, tsc.stdout);
      }
      const out = temp('bastion-image-pack-');
      const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', out, '--json', '--silent'], ROOT, {}, 60_000);
      assert.equal(pack.code, 0, pack.stderr);
      const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
      assert.ok(info);
      packed = info.files.map((f) => f.path);
      // The image's install stage: the packed files and the lockfile in an empty folder, npm ci --omit=dev.
      app = temp('bastion-image-app-');
      const untar = await run('tar', ['-xzf', join(out, info.filename), '-C', app, '--strip-components=1', '--no-same-owner'], app, {}, 30_000);
      assert.equal(untar.code, 0, untar.stderr);
      copyFileSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
      const install = await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--silent'], app, {}, 100_000);
      assert.equal(install.code, 0, install.stderr);
    },
    { timeout: 120_000 },
  );

  test('the installed folder has the package files and production dependencies only', () => {
    for (const f of ['bin/bastion.js', 'src/cli/main.ts', 'dist/verify/index.js', 'schema/bastion.schema.json', 'package.json']) {
      assert.ok(packed.includes(f) && existsSync(join(app, f)), `${f} missing`);
    }
    assert.deepEqual(packed.filter((f) => /^(test|bench|scripts|examples|docs|\.ci)\//.test(f)), []);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', dep, 'package.json')), `${dep} not installed`);
    for (const dev of Object.keys(pkg.devDependencies)) {
      if (dev in pkg.dependencies) continue;
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `dev dependency ${dev} installed`);
    }
  });

  test('one instance (examples/production/single.yaml, SQLite in the state folder): serves, passes the HEALTHCHECK, writes only there, exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const state = temp('bastion-image-state-');
    const etc = temp('bastion-image-etc-');
    const home = join(state, 'home');
    // The image's paths, moved under the test's folders.
    writeFileSync(join(etc, 'bastion.yaml'), readFileSync(SINGLE_CONFIG, 'utf8').replaceAll('/var/lib/bastion/', `${state}/`));
    mkdirSync(home);
    const env: Record<string, string> = {
      PATH,
      ...IMAGE_ENV,
      HOME: home,
      TMPDIR: temp('bastion-image-tmp-'),
      BASTION_CONFIG: join(etc, 'bastion.yaml'),
      BASTION_LISTEN: '127.0.0.1:0',
      BASTION_EGRESS_LISTEN: '127.0.0.1:0',
      BASTION_MASTER_KEY: randomBytes(32).toString('base64'),
      BASTION_ADMIN_KEY: randomBytes(32).toString('hex'),
      BASTION_AGENT_KEY: randomBytes(32).toString('hex'),
    };
    const code = tree(app);
    const s = await serve(app, env);
    running.push(s.child);
    const health = await get(s.url, '/healthz', s.url.host);
    assert.deepEqual(health, { status: 200, body: '{"status":"ok"}' });
    assert.equal(await healthcheck(s.url.host), 0);
    assert.deepEqual(await stop(s), { code: 0, signal: null });
    assert.equal(await healthcheck(s.url.host), 1, 'the HEALTHCHECK fails when nothing answers');
    assert.deepEqual(tree(app), code, 'the code folder is unchanged (a read-only root works)');
    assert.deepEqual(readdirSync(home), []);
    assert.deepEqual(
      readdirSync(state).filter((f) => f !== 'home'),
      ['bastion.db'],
    );
  });

  test('bastion-1 of compose.yaml (PostgreSQL store, Redis): serves, /healthz answers the HEALTHCHECK\'s Host, exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
    await ensureRedis();
    const db = await freshSchema('pack');
    cleanups.push(() => db.drop());
    const etc = temp('bastion-image-etc-');
    const home = temp('bastion-image-home-');
    const doc = parseDocument(readFileSync(PRODUCTION_CONFIG, 'utf8'));
    doc.setIn(['redis', 'url'], REDIS_URL);
    const keyPrefix = `pack-test-${randomBytes(6).toString('hex')}:`;
    doc.setIn(['redis', 'keyPrefix'], keyPrefix);
    cleanups.push(async () => {
      const redis = new Redis(REDIS_URL);
      try {
        const keys = await redis.keys(`${keyPrefix}*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
    });
    writeFileSync(join(etc, 'bastion.yaml'), doc.toString());
    const composeEnv = Object.fromEntries(
      Object.entries(COMPOSE.services['bastion-1']!.environment!).map(([k, v]) => [
        k,
        interpolate(String(v), {
          POSTGRES_PASSWORD: randomBytes(12).toString('hex'),
          BASTION_MASTER_KEY: randomBytes(32).toString('base64'),
          BASTION_ADMIN_KEY: randomBytes(32).toString('hex'),
          BASTION_AGENT_KEY: randomBytes(32).toString('hex'),
        }),
      ]),
    );
    const env: Record<string, string> = {
      PATH,
      ...IMAGE_ENV,
      ...composeEnv,
      HOME: home,
      TMPDIR: temp('bastion-image-tmp-'),
      BASTION_CONFIG: join(etc, 'bastion.yaml'),
      BASTION_LISTEN: '127.0.0.1:0',
      BASTION_EGRESS_LISTEN: '127.0.0.1:0',
      BASTION_DATABASE_URL: db.url,
    };
    const code = tree(app);
    const s = await serve(app, env);
    running.push(s.child);
    // Inside the container the HEALTHCHECK sends Host 127.0.0.1:8790, which the config allows.
    const containerHost = `127.0.0.1:${IMAGE_ENV.BASTION_LISTEN!.split(':').pop()}`;
    assert.deepEqual(await get(s.url, '/healthz', containerHost), { status: 200, body: '{"status":"ok"}' });
    // The probes answer any Host (a load balancer or Kubernetes sends the pod's address);
    // every other path refuses a Host the production allowlist does not name.
    assert.deepEqual(await get(s.url, '/healthz', s.url.host), { status: 200, body: '{"status":"ok"}' });
    const other = await get(s.url, '/mcp', s.url.host);
    assert.equal(other.status, 403);
    assert.match(other.body, /\(ERR_HOST_NOT_ALLOWED\)/);
    assert.deepEqual(await stop(s), { code: 0, signal: null });
    assert.deepEqual(tree(app), code);
    assert.deepEqual(readdirSync(home), []);
  });
});
