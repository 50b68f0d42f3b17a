// The package as a user gets it: `npm pack` (whose `prepare` script builds), installed from the tarball
// into a fresh ESM project, then type-checked, imported (and required from CommonJS) and run through its
// bin from there; and what else that install brings in: no copy of a dependency with a known advisory.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

/**
 * The first release of each line that fixes the advisories published against it, for the packages that
 * fivebeans 1.5.0 pinned to vulnerable versions. A copy of one of these in the user's tree must be at
 * least the floor of its major line; a major with no entry has no fixed release in that line.
 */
const FIXED: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  // 3.13.1: code execution in load() (npm advisory 813); 3.14.2 / 4.1.1: prototype pollution through
  // merge keys (GHSA-mh29-5h37-fv8m); 3.15.0 / 4.3.0: quadratic merge chains (CVE-2026-59869);
  // 3.15.2 / 4.3.2: denial of service (CVE-2026-84375); 5.2.2: flow collections (GHSA-pm4m-ph32-ghv5).
  'js-yaml': { 3: '3.15.2', 4: '4.3.2', 5: '5.2.2' },
  // 4.17.21: command injection in template (GHSA-35jh-r3h4-6jhm); 4.17.23 and 4.18.0: prototype
  // pollution in unset/omit (GHSA-xxjr-mmjv-4gpg, GHSA-f23m-r3pf-42rh); 4.18.0: template imports
  // (GHSA-r5fr-rjxr-66jc).
  lodash: { 4: '4.18.0' },
  // ReDoS in Range (GHSA-c2qf-rxjj-qqgw), fixed in each line.
  semver: { 5: '5.7.2', 6: '6.3.1', 7: '7.5.2' },
  // Prototype pollution (GHSA-p9pc-299p-vxgp), fixed in 5.0.1, 13.1.2, 15.0.1 and 18.1.2.
  'yargs-parser': { 5: '5.0.1', 13: '13.1.2', 15: '15.0.1', 18: '18.1.2' },
};

/** `a >= b` for plain `x.y.z` versions (the installed packages here have no prerelease tags). */
function atLeast(a: string, b: string): boolean {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number)) as [number[], number[]];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return true;
}

/** Every installed package under `dir` (nested node_modules included), as [path, name, version]. */
async function installedPackages(dir: string): Promise<Array<[string, string, string]>> {
  const found: Array<[string, string, string]> = [];
  const walk = async (modules: string): Promise<void> => {
    const entries = await readdir(modules, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const dirs = entry.name.startsWith('@')
        ? (await readdir(join(modules, entry.name))).map((child) => join(modules, entry.name, child))
        : [join(modules, entry.name)];
      for (const pkg of dirs) {
        const manifest = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as { name: string; version: string };
        found.push([relative(dir, pkg), manifest.name, manifest.version]);
        await walk(join(pkg, 'node_modules'));
      }
    }
  };
  await walk(join(dir, 'node_modules'));
  return found;
}

/** What a fresh clone lacks: installed and built files, and the packs of earlier runs. */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.git', '.bench', 'coverage']);

describe('the npm package', { timeout: 2 * INSTALL_TIMEOUT_MS + 120_000 }, () => {
  let temp: string;
  let tarball: string;
  let project: string;
  let version: string;

  before(async () => {
    temp = await mkdtemp(join(tmpdir(), 'bsworker-pkg-'));
    version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

    // Pack from a copy of the checkout: `prepare` rebuilds dist/, and doing that in the repo itself
    // would rewrite files that CLI tests running at the same time are loading. A copy without dist/
    // also proves that `prepare` builds from a clean clone. The copy gets its own `npm ci` (from npm's
    // cache when it can): the bundled fivebeans is a workspace link, and npm packs its dependencies
    // only from the checkout's own node_modules. Scripts wait for `npm pack`, which runs `prepare`.
    const checkout = join(temp, 'checkout');
    await cp(REPO, checkout, {
      recursive: true,
      filter: (source) => {
        const top = relative(REPO, source).split(sep)[0] ?? '';
        return !NOT_IN_A_CLONE.has(top) && !top.endsWith('.tgz');
      },
    });
    assertOk(
      await exec('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], checkout, INSTALL_TIMEOUT_MS),
      'npm ci in the copy',
    );
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

  it('ships dist/, bin/, LICENSE and fivebeans, but not src/, test/ or source maps', async () => {
    const listing = await exec('tar', ['-tzf', tarball], temp);
    assertOk(listing, 'tar -tzf');
    const entries = listing.stdout.split('\n').filter((entry) => entry !== '');
    for (const needed of [
      'package/package.json',
      'package/bin/bsworker',
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/dist/cli/main.js',
      'package/LICENSE',
      'package/node_modules/fivebeans/lib/client.js',
    ]) {
      assert.ok(entries.includes(needed), `${needed} is missing from the tarball`);
    }
    for (const entry of entries) {
      assert.doesNotMatch(entry, /^package\/(src|test|jobs|scripts)\//, `${entry} should not be published`);
      if (!entry.startsWith('package/node_modules/')) assert.doesNotMatch(entry, /\.map$/, `${entry}: the build writes no source maps`);
      // fivebeans' beanworker CLI is what needed yargs: it must not ship.
      assert.doesNotMatch(entry, /^package\/node_modules\/(yargs|fivebeans\/bin)\b/, `${entry} should not be bundled`);
    }
    const license = await readFile(join(project, 'node_modules', 'bsworker', 'LICENSE'), 'utf8');
    assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 the bsworker authors\n/);
  });

  it('has no sourceMappingURL comment pointing at a file it does not ship', async () => {
    const root = join(project, 'node_modules', 'bsworker');
    const files = (await readdir(join(root, 'dist'), { recursive: true })).map((file) => join(root, 'dist', file));
    const dangling: string[] = [];
    for (const file of files.filter((name) => /\.(js|d\.ts)$/.test(name))) {
      for (const [, target] of (await readFile(file, 'utf8')).matchAll(/[#@] sourceMappingURL=(\S+)/g)) {
        const exists = await readFile(join(dirname(file), target as string)).then(
          () => true,
          () => false,
        );
        if (!exists) dangling.push(`${relative(root, file)} -> ${target}`);
      }
    }
    assert.deepEqual(dangling, []);
  });

  it('brings in no copy of js-yaml, lodash, semver or yargs-parser with a known advisory, and no yargs', async () => {
    const installed = await installedPackages(project);
    const watched = installed.filter(([, name]) => name in FIXED || name === 'yargs');
    // fivebeans' client needs js-yaml: the check must have something to look at.
    assert.ok(
      watched.some(([, name]) => name === 'js-yaml'),
      `js-yaml is missing: ${installed.map(([path]) => path).join(', ')}`,
    );
    const bad = watched.filter(([, name, version]) => {
      const floor = FIXED[name]?.[Number(version.split('.')[0])];
      return floor === undefined || !atLeast(version, floor);
    });
    assert.deepEqual(
      bad.map(([path, name, version]) => `${path}: ${name}@${version}`),
      [],
    );
  });

  it('leaves a tree that npm ls accepts (the bundle satisfies what bsworker declares)', async () => {
    const listing = await exec('npm', ['ls', '--all', '--offline'], project);
    assertOk(listing, 'npm ls --all');
    assert.match(listing.stdout, /fivebeans@1\.5\.0/);
  });

  it('loads with require() from a CommonJS file', async () => {
    await writeFile(
      join(project, 'run.cjs'),
      `const { JobQueue, Worker } = require('bsworker');
const queue = new JobQueue({ inline: true });
const triple = queue.task('numbers')(async function triple(kw) {
  process.stdout.write(JSON.stringify({ tripled: kw.n * 3, worker: typeof Worker }) + '\\n');
});
triple.put({ n: 14 }).then(() => process.exit(0));
`,
    );
    const result = await exec(process.execPath, ['run.cjs'], project);
    assertOk(result, 'node run.cjs');
    assert.deepEqual(JSON.parse(result.stdout), { tripled: 42, worker: 'function' });
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

  it('type-checks a CommonJS TypeScript file (module nodenext) that imports it', async () => {
    const file = join(project, 'usage.cts');
    await writeFile(
      file,
      `import { JobQueue } from 'bsworker';

const queue = new JobQueue({ inline: true });
export = queue.task('numbers')(async function half(kw: { n: number }): Promise<number> {
  return kw.n / 2;
});
`,
    );
    const typeRoots = join(REPO, 'node_modules', '@types');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--typeRoots', typeRoots];
    assertOk(await exec(process.execPath, [TSC, ...args, '--types', 'node', file], project), 'tsc --noEmit usage.cts');
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
