/**
 * `npm run bench:detect`: the secret detector's throughput on one core, against
 * secretlint (recommend preset) on the same input, and the recall of each on
 * the gitleaks literal secret rows of the labeled corpus.
 *
 * The input is a mixed corpus built in memory from a seeded generator (so every
 * run and every machine scans the same bytes): source code, JSON, logs and
 * prose, with the corpus's secret rows sprinkled in (about one per 40 KiB).
 * Corpus rows are read at run time from `secrets/` of the corpora folder
 * (BENCH_CORPORA, else `$BASTION_CORPORA/secrets`, else `../shared/corpora/secrets`
 * beside the repository) and never written anywhere. Without the corpora the bench
 * says so, sprinkles generated credential-shaped strings instead (throughput is
 * still measured) and reports no recall.
 *
 * Env: BENCH_MB (corpus size, default 50), BENCH_RUNS (timed runs of ours, default 5),
 * BENCH_SECRETLINT_MB (secretlint scans a prefix of this size, default: the whole corpus;
 * 0 skips it), BENCH_CORPORA (corpus directory).
 *
 * Throughput is reported per CPU second of this process (user + system), which
 * is what "on one core" means for single-threaded work and does not move when
 * other processes compete for the machine; wall-clock figures are printed too.
 * MB = 10^6 bytes, MiB = 2^20 bytes (UTF-8 bytes of the input).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findSecrets } from '../src/detect/secrets.ts';
import { corporaAbsentMessage, findCorpora } from '../test/helpers/corpora.ts';
import { prng } from '../test/helpers/prng.ts';

/** The secrets corpus folder, or undefined when absent (the bench then says so). */
const CORPORA: string | undefined = process.env.BENCH_CORPORA ?? ((d) => (d === undefined ? undefined : join(d, 'secrets')))(findCorpora(['secrets']));
const MB = Number(process.env.BENCH_MB ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECRETLINT_MB = Number(process.env.BENCH_SECRETLINT_MB ?? MB);

interface Row {
  source: string;
  label: 'secret' | 'not-secret';
  text: string;
  expected_match?: string;
}


// Ordinary vocabulary; the words the generic rule keys on (key, token, secret, password,
// auth, access) are a few percent of it, as in real code and prose, not most of it.
const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her ' +
  'she there been one all would their we him has when who will more no if out so said what up its about into than them can ' +
  'only other new some could time these two may then do first any my now such like our over man me even most made after also ' +
  'did many before must through back years where much your way well down should because each just those people how too little ' +
  'state good very make world still own see men work long get here between both life being under never day same another know ' +
  'request response server client config session user account cache error value timeout retry handler module export import ' +
  'function return const let async await promise buffer stream header body policy approval audit chain record gateway proxy ' +
  'egress upstream tool model agent network door rule allow deny key token secret password auth access'
).split(' ');
const IDENTS = [
  'userId', 'apiVersion', 'requestId', 'itemCount', 'retryDelay', 'handlerName', 'bodyText', 'streamOptions', 'resultList',
  'parentNode', 'startTime', 'outputPath', 'isEnabled', 'pageSize', 'fileName', 'tokenCount', 'cacheKey', 'authHeader',
  'sessionId', 'lastError',
];
const HEX = '0123456789abcdef';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A mixed text of about `bytes` bytes: code, JSON, logs and prose, with `secrets`
 * inserted between chunks every `every` bytes. Deterministic for a given seed.
 */
export function buildCorpus(bytes: number, secrets: readonly string[], seed = 1, every = 40 * 1024): string {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const str = (alphabet: string, n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    return s;
  };
  const sentence = (n: number): string => {
    const w: string[] = [];
    for (let i = 0; i < n; i++) w.push(pick(WORDS));
    return w.join(' ');
  };
  const code = (): string =>
    [
      `export async function ${pick(IDENTS)}${Math.floor(rnd() * 100)}(${pick(IDENTS)}: string, opts = {}) {`,
      `  const ${pick(IDENTS)} = await fetch(\`https://api.example.com/v1/${pick(WORDS)}\`, { headers: { accept: 'application/json' } });`,
      `  if (!${pick(IDENTS)}) throw new Error('${sentence(5)}');`,
      `  const ${pick(IDENTS)} = process.env.${pick(IDENTS).toUpperCase()} ?? config.${pick(IDENTS)};`,
      `  // ${sentence(10)}`,
      `  return { ${pick(IDENTS)}: ${pick(IDENTS)}.${pick(WORDS)}, count: ${Math.floor(rnd() * 1000)} };`,
      '}',
      '',
    ].join('\n');
  const json = (): string =>
    JSON.stringify({
      id: `${str(HEX, 8)}-${str(HEX, 4)}-4${str(HEX, 3)}-${str(HEX, 4)}-${str(HEX, 12)}`,
      [pick(IDENTS)]: sentence(4),
      created_at: new Date(1_700_000_000_000 + Math.floor(rnd() * 1e10)).toISOString(),
      sha: str(HEX, 40),
      tags: [pick(WORDS), pick(WORDS)],
      nested: { [pick(IDENTS)]: Math.floor(rnd() * 1e6), ok: rnd() > 0.5 },
    }) + '\n';
  const log = (): string =>
    `${new Date(1_700_000_000_000 + Math.floor(rnd() * 1e10)).toISOString()} ${pick(['INFO', 'WARN', 'DEBUG', 'ERROR'])} ` +
    `[${pick(WORDS)}] ${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.0.${Math.floor(rnd() * 256)} ${pick(['GET', 'POST'])} ` +
    `/api/${pick(WORDS)}/${str(ALNUM, 10)} ${pick([200, 201, 404, 500])} ${Math.floor(rnd() * 900)}ms req=${str(HEX, 16)} ${sentence(6)}\n`;
  const prose = (): string => `${sentence(12 + Math.floor(rnd() * 20))}. ${sentence(8 + Math.floor(rnd() * 10))}.\n`;
  const kinds = [code, json, log, log, prose, prose];
  const parts: string[] = [];
  let size = 0;
  let nextSecret = every;
  let k = 0;
  while (size < bytes) {
    const chunk = pick(kinds)();
    parts.push(chunk);
    size += chunk.length;
    if (secrets.length > 0 && size >= nextSecret) {
      const s = secrets[k++ % secrets.length] as string;
      parts.push(`\n${s}\n`);
      size += s.length + 2;
      nextSecret += every;
    }
  }
  return parts.join('');
}

function readRows(dir: string, file: string): Row[] {
  return readFileSync(join(dir, file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Row);
}

/** Whether a finding covers the row's expected match (or any finding, when it has none). */
function covers(row: Row, spans: ReadonlyArray<{ start: number; end: number }>): boolean {
  if (!row.expected_match) return spans.length > 0;
  const at = row.text.indexOf(row.expected_match);
  if (at < 0) return spans.length > 0;
  const end = at + row.expected_match.length;
  return spans.some((s) => s.start < end && s.end > at);
}

/** Runs `f` and returns its CPU ms (user + system of this process) and wall ms. */
async function measure<T>(f: () => T | Promise<T>): Promise<{ cpuMs: number; wallMs: number; value: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await f();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs, value };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Credential-shaped strings for the throughput run when the corpora are absent (seeded; the formats of a few providers). */
function generatedSecrets(): string[] {
  const rnd = prng(7);
  const str = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  const out: string[] = [];
  for (let i = 0; i < 50; i++) {
    out.push(`token = "${['gh', 'p_'].join('')}${str(ALNUM, 36)}"`, `aws_secret_access_key = ${str(ALNUM + '/+', 40)}`, `password: "${str(ALNUM, 16)}"`);
  }
  return out;
}

async function main(): Promise<void> {
  const dir = CORPORA !== undefined && existsSync(CORPORA) ? CORPORA : undefined;
  if (dir === undefined) {
    console.log(
      `NOTE: ${CORPORA !== undefined ? `BENCH_CORPORA (${CORPORA}) does not exist` : corporaAbsentMessage(['secrets'])}.\n` +
        'Sprinkling generated credential-shaped strings instead: throughput is measured, recall is not.\n',
    );
  }
  const rows = dir === undefined ? [] : readRows(dir, 'samples.jsonl').filter((r) => r.source === 'gitleaks' && r.label === 'secret');
  const corpus = buildCorpus(MB * 1024 * 1024, dir === undefined ? generatedSecrets() : rows.map((r) => r.text));
  const bytes = Buffer.byteLength(corpus);
  console.log(
    `corpus: ${(bytes / 1048576).toFixed(1)} MiB mixed text, ${dir === undefined ? 'generated strings' : `${rows.length} gitleaks secret rows`} sprinkled in; node ${process.version}, one thread`,
  );

  // Ours: warm up once, then the median of RUNS timed runs over the whole corpus.
  findSecrets(corpus.slice(0, 1 << 20));
  const cpu: number[] = [];
  const wall: number[] = [];
  let findings = 0;
  for (let i = 0; i < RUNS; i++) {
    const m = await measure(() => findSecrets(corpus).length);
    findings = m.value;
    cpu.push(m.cpuMs);
    wall.push(m.wallMs);
  }
  const oursMs = median(cpu);
  const oursMBs = bytes / 1e6 / (oursMs / 1000);
  const oursWallMBs = bytes / 1e6 / (median(wall) / 1000);
  const oursRecall = rows.length === 0 ? NaN : rows.filter((r) => covers(r, findSecrets(r.text))).length / rows.length;

  let slMBs = NaN;
  let slWallMBs = NaN;
  let slRecall = NaN;
  let slFindings = NaN;
  let slBytes = 0;
  if (SECRETLINT_MB > 0) {
    const { lintSource } = await import('@secretlint/core');
    const { creator } = await import('@secretlint/secretlint-rule-preset-recommend');
    const config = { rules: [{ id: '@secretlint/secretlint-rule-preset-recommend', rule: creator }] };
    const lint = async (content: string) =>
      (await lintSource({ source: { filePath: '/bench/input.txt', content, contentType: 'text' }, options: { config, noPhysicFilePath: true } })).messages;
    const prefix = corpus.slice(0, SECRETLINT_MB * 1024 * 1024);
    slBytes = Buffer.byteLength(prefix);
    await lint(prefix.slice(0, 1 << 20));
    const slCpu: number[] = [];
    const slWall: number[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await measure(async () => (await lint(prefix)).length);
      slFindings = m.value;
      slCpu.push(m.cpuMs);
      slWall.push(m.wallMs);
    }
    slMBs = slBytes / 1e6 / (median(slCpu) / 1000);
    slWallMBs = slBytes / 1e6 / (median(slWall) / 1000);
    let hit = 0;
    for (const r of rows) {
      const messages = await lint(r.text);
      if (covers(r, messages.map((m) => ({ start: m.range[0], end: m.range[1] })))) hit++;
    }
    slRecall = rows.length === 0 ? NaN : hit / rows.length;
  }

  const pad = (s: string, n: number) => s.padEnd(n);
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const pctOf = (x: number) => (Number.isNaN(x) ? 'n/a (no corpus)' : `${(x * 100).toFixed(1)}%`);
  console.log('');
  console.log(`${pad('detector', 30)}${pad('MB/s (CPU)', 12)}${pad('MB/s (wall)', 13)}${pad('findings', 20)}recall, ${rows.length} gitleaks secret rows`);
  console.log(`${pad('bastion findSecrets', 30)}${pad(oursMBs.toFixed(1), 12)}${pad(oursWallMBs.toFixed(1), 13)}${pad(`${findings} in ${mb(bytes)}`, 20)}${pctOf(oursRecall)}`);
  if (SECRETLINT_MB > 0) {
    console.log(
      `${pad('secretlint (recommend)', 30)}${pad(slMBs.toFixed(1), 12)}${pad(slWallMBs.toFixed(1), 13)}${pad(`${slFindings} in ${mb(slBytes)}`, 20)}${pctOf(slRecall)}`,
    );
    console.log(`\nratio (ours / secretlint, CPU): ${(oursMBs / slMBs).toFixed(1)}x`);
  }
  console.log(`ours: median of ${RUNS} runs, ${oursMs.toFixed(0)} CPU ms per run (CPU ms: ${cpu.map((t) => t.toFixed(0)).join(', ')}; wall ms: ${wall.map((t) => t.toFixed(0)).join(', ')})`);

  // Recall and flagged negatives per corpus file and source (the same counting as test/corpora/secrets.corpus.ts).
  if (dir === undefined) {
    console.log('\nper-file recall: not measured (no corpus).');
    return;
  }
  console.log(`\n${pad('file / source', 48)}${pad('recall', 22)}not-secret flagged`);
  for (const file of ['samples.jsonl', 'samples-gitleaks-generated.jsonl', 'samples-trufflehog.jsonl']) {
    const by = new Map<string, { pos: number; tp: number; neg: number; fp: number }>();
    for (const r of readRows(dir, file)) {
      const c = by.get(r.source) ?? { pos: 0, tp: 0, neg: 0, fp: 0 };
      by.set(r.source, c);
      const found = findSecrets(r.text);
      if (r.label === 'secret') {
        c.pos++;
        if (covers(r, found)) c.tp++;
      } else {
        c.neg++;
        if (found.length > 0) c.fp++;
      }
    }
    for (const [source, c] of by) {
      const f = (a: number, b: number) => (b === 0 ? 'n/a' : `${a}/${b} (${((100 * a) / b).toFixed(1)}%)`);
      console.log(`${pad(`${file} ${source}`, 48)}${pad(f(c.tp, c.pos), 22)}${f(c.fp, c.neg)}`);
    }
  }
}

if (import.meta.main) await main();
