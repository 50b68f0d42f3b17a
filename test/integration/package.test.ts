// The package as a user gets it: `npm pack` (whose `prepare` script builds), installed from the tarball
// into a fresh ESM project, then type-checked, imported and run through its bin from there.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
/** npm install resolves the dependencies from the registry or its cache: tens of seconds on a cold cache. */
const INSTALL_TIMEOUT_MS = 240_000;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of a child. Under `npm test`, npm exports the repo's package fields and lifecycle state
 * (`npm_package_*`, `npm_lifecycle_*`); an inner npm must not act on those. NODE_OPTIONS could preload
 * tsx and make a user project look as if it could run TypeScript on its own.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle)_/i.test(name) || ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'INIT_CWD'].includes(name)) continue;
    env[name] = value;
  }
  // The `#!/usr/bin/env node` of the installed bin must find the node running these tests.
  env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}`;
  return env;
}

/** Runs a command to its end (never through a shell) and resolves with its exit code and output. */
function exec(file: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        // Not an exit code: it could not start, or the timeout killed it.
        reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
        return;
      }
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

function assertOk(result: Result, what: string): void {
  assert.equal(result.code, 0, `${what} exited ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}

/** What a fresh clone lacks: installed and built files, and the packs of earlier runs. */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.git', '.bench', 'coverage']);

describe('the npm package', { timeout: INSTALL_TIMEOUT_MS + 120_000 }, () => {
  let temp: string;
  let tarball: string;
  let project: string;
  let version: string;

  before(async () => {
    temp = await mkdtemp(join(tmpdir(), 'bsworker-pkg-'));
    version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

    // Pack from a copy of the checkout: `prepare` rebuilds dist/, and doing that in the repo itself
    // would rewrite files that CLI tests running at the same time are loading. A copy without dist/
    // also proves that `prepare` builds from a clean clone. node_modules is linked, not copied.
    const checkout = join(temp, 'checkout');
    await cp(REPO, checkout, {
      recursive: true,
      filter: (source) => {
        const top = relative(REPO, source).split(sep)[0] ?? '';
        return !NOT_IN_A_CLONE.has(top) && !top.endsWith('.tgz');
      },
    });
    await symlink(join(REPO, 'node_modules'), join(checkout, 'node_modules'), 'dir');
    const packs = join(temp, 'packs');
    await mkdir(packs);
    assertOk(await exec('npm', ['pack', '--pack-destination', packs], checkout, 120_000), 'npm pack');
    const tgz = (await readdir(packs)).filter((name) => name.endsWith('.tgz'));
    assert.equal(tgz.length, 1, `one tarball expected, got ${tgz.join(', ')}`);
    tarball = join(packs, tgz[0] as string);

    project = join(temp, 'user-project');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'bsworker-user', private: true, type: 'module' }, null, 2)}\n`,
    );
    const install = await exec('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], project, INSTALL_TIMEOUT_MS);
    assertOk(install, 'npm install <tarball>');
  });

  after(async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('ships dist/ and bin/ but not src/, test/ or source maps', async () => {
    const listing = await exec('tar', ['-tzf', tarball], temp);
    assertOk(listing, 'tar -tzf');
    const entries = listing.stdout.split('\n').filter((entry) => entry !== '');
    for (const needed of [
      'package/package.json',
      'package/bin/bsworker',
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/dist/cli/main.js',
    ]) {
      assert.ok(entries.includes(needed), `${needed} is missing from the tarball`);
    }
    for (const entry of entries) {
      assert.doesNotMatch(entry, /^package\/(src|test|jobs|scripts)\//, `${entry} should not be published`);
      assert.doesNotMatch(entry, /\.map$/, `${entry}: package.json excludes source maps`);
    }
  });

  it('type-checks a user TypeScript file, and rejects wrong kwargs', async () => {
    const file = join(project, 'usage.ts');
    await writeFile(
      file,
      `import { JobQueue, Worker, type WorkerOptions } from 'bsworker';

const queue = new JobQueue({ url: '127.0.0.1:11300' });
export const send = queue.task('emails')(async function send(kw: { to: string; subject?: string }): Promise<number> {
  return kw.to.length;
});

export async function produce(): Promise<string[]> {
  const ids = [await send.put({ to: 'ann@example.com' }), await queue.put(send, { to: 'bob@example.com', subject: 'hi' })];
  // @ts-expect-error: \`to\` must be a string
  ids.push(await send.put({ to: 42 }));
  // @ts-expect-error: \`too\` is not a kwarg of send
  ids.push(await queue.put(send, { too: 'x' }));
  return ids;
}

const options: WorkerOptions = { tubes: ['emails'], maxKicks: 2 };
export const worker: Worker = new Worker(options);
`,
    );
    // The repo's own TypeScript and @types/node: the user project installs neither, and the package's
    // declarations are checked too (no --skipLibCheck), as a strict user project would.
    const typeRoots = join(REPO, 'node_modules', '@types');
    const check = await exec(
      process.execPath,
      [
        TSC,
        '--noEmit',
        '--strict',
        '--module',
        'NodeNext',
        '--moduleResolution',
        'NodeNext',
        '--target',
        'ES2022',
        '--typeRoots',
        typeRoots,
        '--types',
        'node',
        file,
      ],
      project,
    );
    assertOk(check, 'tsc --noEmit');
  });

  it('imports at run time from an .mjs file', async () => {
    await writeFile(
      join(project, 'run.mjs'),
      `import { JobQueue, Worker } from 'bsworker';
// Inline mode runs the task in-process: no server needed to see that the import really works.
const queue = new JobQueue({ inline: true });
const double = queue.task('numbers')(async function double(kw) {
  process.stdout.write(JSON.stringify({ doubled: kw.n * 2, worker: typeof Worker }) + '\\n');
});
await double.put({ n: 21 });
`,
    );
    const result = await exec(process.execPath, ['run.mjs'], project);
    assertOk(result, 'node run.mjs');
    assert.deepEqual(JSON.parse(result.stdout), { doubled: 42, worker: 'function' });
  });

  it('runs the installed bin: --help exits 0 and --version prints the version', async () => {
    const bin = join(project, 'node_modules', '.bin', 'bsworker');
    // Executed directly, so its shebang and executable bit are tested too.
    const help = await exec(bin, ['--help'], project);
    assertOk(help, 'bsworker --help');
    assert.match(help.stdout, /^Usage: bsworker /);
    const shown = await exec(bin, ['--version'], project);
    assertOk(shown, 'bsworker --version');
    assert.equal(shown.stdout, `${version}\n`);
  });
});
