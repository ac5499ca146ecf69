/**
 * The console's static files (src/console/static/): read once from disk into
 * memory on first use, served from a fixed list by exact name. No path from
 * the request ever reaches the file system.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';

/** One file, ready to send. */
export interface StaticAsset {
  readonly body: Buffer;
  readonly contentType: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The folder holding the console's files. */
export const STATIC_DIR = join(import.meta.dirname, 'static');

let assets: ReadonlyMap<string, StaticAsset> | undefined;

/**
 * The assets by URL name (`app.js`, `pages/audit.js`), loaded on first call.
 * Only files with a known extension are served; sub-folders one level deep.
 */
export function consoleAssets(): ReadonlyMap<string, StaticAsset> {
  if (assets !== undefined) return assets;
  const out = new Map<string, StaticAsset>();
  const add = (rel: string): void => {
    const type = TYPES[extname(rel)];
    if (type !== undefined) out.set(rel, { body: readFileSync(join(STATIC_DIR, rel)), contentType: type });
  };
  for (const entry of readdirSync(STATIC_DIR, { withFileTypes: true })) {
    if (entry.isFile()) add(entry.name);
    else if (entry.isDirectory()) {
      for (const sub of readdirSync(join(STATIC_DIR, entry.name), { withFileTypes: true })) if (sub.isFile()) add(`${entry.name}/${sub.name}`);
    }
  }
  assets = out;
  return out;
}
