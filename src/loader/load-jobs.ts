/**
 * Imports a project's jobs directory so that its `queue.task(...)` calls fill the registry. TypeScript
 * files go through tsx's loader, registered only when there is one, so a TypeScript project needs no
 * build step to run a worker.
 */
import { spawnSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The file extensions imported from the jobs directory. */
export const JOB_EXTENSIONS: readonly string[] = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);

/** Stack frames kept in {@link JobLoadError.detail}: where it threw, not fifty lines of loader. */
export const MAX_DETAIL_LINES = 5;

/** A jobs module could not be found or imported. `file` names it, relative to the working directory. */
export class JobLoadError extends Error {
  readonly file: string;
  /**
   * Where in the module it failed, at most {@link MAX_DETAIL_LINES} lines: a syntax error's
   * `file:line` and source line, or the first stack frames in the project's own files (not Node's
   * loader, node_modules or bsworker). Empty when there is nothing better than the message.
   */
  readonly detail: readonly string[];

  constructor(file: string, message: string, cause?: unknown, detail: readonly string[] = []) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'JobLoadError';
    this.file = file;
    this.detail = detail;
  }
}

/** bsworker's own files (dist/ or src/), whose frames say nothing about the user's module. */
const OWN_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The frames of `error`'s stack that are in the project's own files, as `at ...` lines. */
function projectFrames(error: Error): string[] {
  return (error.stack ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    .filter(
      (line) => !/node:|[\\/]node_modules[\\/]/.test(line) && !line.includes(OWN_ROOT) && !line.includes(pathToFileURL(OWN_ROOT).href),
    )
    .slice(0, MAX_DETAIL_LINES);
}

/**
 * Where a JavaScript module's syntax error is. Node 20 leaves the position out of the SyntaxError a
 * dynamic import rejects with, so the file is checked again by `node --check`, which prints
 * `file:line`, the line and a caret. Only on this error path, once.
 */
function syntaxErrorLocation(file: string): string[] {
  const checked = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  const lines = (checked.stderr ?? '').split('\n');
  const at = lines.findIndex((line) => /:\d+$/.test(line));
  if (at < 0) return [];
  return [`at ${lines[at]}`, ...lines.slice(at + 1, at + 3).filter((line) => line.trim() !== '')];
}

/**
 * What to do when a CommonJS module (.cjs, .cts) fails to require an ES module, such as bsworker
 * itself: Node 20 cannot, and tsx's attempt fails with "request for ... is not in cache".
 */
function commonJsHint(file: string, error: unknown): string {
  if (!['.cjs', '.cts'].includes(extname(file))) return '';
  const text = error instanceof Error ? `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}` : '';
  if (!/ERR_REQUIRE_ESM|is not in cache|require\(\) of ES Module/.test(text)) return '';
  return ' (a CommonJS module cannot require an ES module such as bsworker on Node 20: register tasks in .ts, .mts or .mjs modules, or run Node 22 or later)';
}

function detailOf(file: string, error: unknown): string[] {
  if (!(error instanceof Error)) return [];
  const frames = projectFrames(error);
  if (frames.length === 0 && error instanceof SyntaxError && !TYPESCRIPT.has(extname(file))) return syntaxErrorLocation(file);
  return frames;
}

/**
 * Lists the modules under `dir`, recursively, in a stable order. Skips `node_modules`, dot-folders,
 * declaration files (`.d.ts`) and test files (`*.test.*`, `*.spec.*`).
 */
export async function findJobModules(dir: string): Promise<string[]> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new JobLoadError(dir, `the jobs directory ${dir} does not exist (choose another with --jobs DIR)`);
  if (!info.isDirectory()) throw new JobLoadError(dir, `the jobs path ${dir} is not a directory`);
  const found: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && isJobModule(entry.name)) found.push(path);
    }
  };
  await walk(dir);
  return found;
}

function isJobModule(name: string): boolean {
  if (!JOB_EXTENSIONS.includes(extname(name))) return false;
  if (/\.d\.[mc]?ts$/.test(name)) return false;
  return !/\.(test|spec)\.[^.]+$/.test(name);
}

let typescriptLoader: Promise<void> | undefined;

/**
 * Registers tsx once per process, for both module systems: a `.ts` file is ESM or CommonJS depending on
 * the nearest package.json, and many TypeScript projects keep the CommonJS default.
 */
function enableTypeScript(): Promise<void> {
  typescriptLoader ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
  });
  return typescriptLoader;
}

/**
 * Imports every module under `dir`. Resolves to the files imported; rejects with {@link JobLoadError}
 * naming the first file that throws on import.
 */
export async function loadJobs(dir: string): Promise<string[]> {
  const files = await findJobModules(dir);
  if (files.some((file) => TYPESCRIPT.has(extname(file)))) await enableTypeScript();
  for (const file of files) {
    // Relative to the working directory when that is shorter (jobs/x.ts), else absolute.
    const fromCwd = relative(process.cwd(), file);
    const shown = fromCwd === '' || fromCwd.startsWith('..') ? file : fromCwd;
    try {
      await import(pathToFileURL(file).href);
    } catch (error) {
      // One line: tsx's transform errors come as several ("Transform failed with 1 error:\n/x.ts:3:7: ...").
      const message = (error instanceof Error ? error.message : String(error))
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '')
        .join(' ');
      throw new JobLoadError(shown, `failed to load ${shown}: ${message}${commonJsHint(file, error)}`, error, detailOf(file, error));
    }
  }
  return files;
}
