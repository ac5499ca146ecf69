/**
 * Where the third-party corpora are (`$BASTION_CORPORA`, else `../shared/corpora`
 * beside the repository). They are not part of the repository: `npm test` never
 * reads them; `npm run test:corpora` (test/corpora/*.corpus.ts) and the benches do.
 * Nothing from them is ever copied into the repository.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** The places searched, in order: `$BASTION_CORPORA` (when set), then `../shared/corpora` beside the repository. */
export function corporaCandidates(): string[] {
  const env = process.env.BASTION_CORPORA;
  return [...(env ? [resolve(env)] : []), resolve(ROOT, '..', 'shared', 'corpora')];
}

/** The first candidate that holds all of `subdirs` (default: secrets, injection, ssrf), or undefined. */
export function findCorpora(subdirs: readonly string[] = ['secrets', 'injection', 'ssrf']): string | undefined {
  return corporaCandidates().find((dir) => subdirs.every((s) => existsSync(join(dir, s))));
}

/** One line saying the corpora are absent and naming every place searched. */
export function corporaAbsentMessage(subdirs: readonly string[] = ['secrets', 'injection', 'ssrf']): string {
  const env = process.env.BASTION_CORPORA;
  return (
    `the third-party corpora (${subdirs.join(', ')}) were not found: looked in ` +
    `$BASTION_CORPORA (${env ? resolve(env) : 'not set'}) and ${resolve(ROOT, '..', 'shared', 'corpora')}`
  );
}

/**
 * The path of a corpus file, e.g. `corpusPath('secrets', 'samples.jsonl')`.
 * @throws Error naming both places searched when the corpora are absent.
 */
export function corpusPath(...parts: string[]): string {
  const need = parts.slice(0, 1);
  const dir = findCorpora(need);
  if (dir === undefined) throw new Error(corporaAbsentMessage(need));
  return join(dir, ...parts);
}
