/**
 * The dashboard's static files: the compiled client (dist/dashboard/client: its modules and style.css)
 * and uPlot's minified script and stylesheet, read from node_modules at start. They are served under a
 * path holding a hash of their contents (`/assets/<hash>/app.js`), so a browser may keep them forever
 * (`immutable`) and a new version is a new URL; the page that names them is never cached.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Two levels above both src/dashboard/ and dist/dashboard/: the package's dist/dashboard/client. */
const CLIENT_DIR = fileURLToPath(new URL('../../dist/dashboard/client/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** One file, ready to send. */
export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

/** The files and the hash their URLs carry. */
export interface AssetSet {
  /** First 16 hex digits of a SHA-256 over every file: the path segment after `/assets/`. */
  readonly version: string;
  /** File name → file. Only these names are served: a request names a key, never a path on disk. */
  readonly files: ReadonlyMap<string, Asset>;
  /** Why the client is missing (not built), or null. */
  readonly missing: string | null;
}

/** Reads the assets once; a missing client build is reported in `missing`, not thrown, so the API still starts. */
export function loadAssets(clientDir: string = CLIENT_DIR): AssetSet {
  const files = new Map<string, Asset>();
  const require = createRequire(import.meta.url);
  for (const name of ['uPlot.iife.min.js', 'uPlot.min.css']) {
    const path = require.resolve(`uplot/dist/${name}`);
    files.set(name, { body: readFileSync(path), contentType: CONTENT_TYPES[extname(name)] as string });
  }
  let missing: string | null = null;
  try {
    for (const name of readdirSync(clientDir).sort()) {
      const type = CONTENT_TYPES[extname(name)];
      if (type !== undefined) files.set(name, { body: readFileSync(join(clientDir, name)), contentType: type });
    }
    if (!files.has('app.js')) missing = `no app.js in ${clientDir}`;
  } catch (error) {
    missing = `cannot read ${clientDir}: ${(error as Error).message}`;
  }
  const hash = createHash('sha256');
  for (const [name, asset] of files) hash.update(name).update(asset.body);
  return { version: hash.digest('hex').slice(0, 16), files, missing };
}
