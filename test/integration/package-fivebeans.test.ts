// vendor/fivebeans is fivebeans 1.5.0 as published, but for what its README lists: this checks the
// code against the published files' SHA-256 sums, and that package.json bundles it in a way npm
// accepts in a user's project (the packed tarball itself is tested in package.test.ts).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const VENDOR = join(REPO, 'vendor', 'fivebeans');

/** SHA-256 of the files in the fivebeans-1.5.0.tgz the npm registry serves. */
const PUBLISHED: Readonly<Record<string, string>> = {
  'index.js': '8bb3d055a72dfe744319f8e1a809261fd41747e0354561407f553e76afdacd96',
  'lib/client.js': '6080949e6be447d2a580ead062904cce04df80b4796f524499294d2488210d4a',
  'lib/runner.js': '488ed3f0cb2d51064585589959797a3346fd50c678c5b174ff51b01994097d3f',
  'lib/worker.js': 'c2036cd3d88306519140f3e09e9cb5a71cef61ae9869f6b89e0cd41bc2584a42',
};

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface Manifest {
  readonly version: string;
  readonly dependencies?: Record<string, string>;
  readonly bundleDependencies?: string[];
  readonly workspaces?: string[];
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly bin?: unknown;
}

describe('the vendored fivebeans', () => {
  it('is the published code, but for new Buffer() in the client', async () => {
    for (const file of ['index.js', 'lib/runner.js', 'lib/worker.js']) {
      assert.equal(sha256(await readFile(join(VENDOR, file), 'utf8')), PUBLISHED[file], `${file} differs from fivebeans 1.5.0`);
    }
    const client = await readFile(join(VENDOR, 'lib', 'client.js'), 'utf8');
    assert.doesNotMatch(client, /new Buffer\(/, 'Node warns (DEP0005) about new Buffer() outside node_modules/');
    // The published client has no Buffer.from or Buffer.alloc: turning them back gives its exact bytes.
    assert.equal(sha256(client.replace(/Buffer\.(?:from|alloc)\(/g, 'new Buffer(')), PUBLISHED['lib/client.js']);
  });

  it('needs only js-yaml at a fixed version, with no CLI and lodash optional', async () => {
    const manifest = JSON.parse(await readFile(join(VENDOR, 'package.json'), 'utf8')) as Manifest;
    assert.deepEqual(manifest.dependencies, { 'js-yaml': '^4.3.2' });
    assert.equal(manifest.bin, undefined);
    assert.equal(manifest.peerDependenciesMeta?.lodash?.optional, true);
  });

  it('is a workspace bsworker bundles, at the exact version it declares', async () => {
    const vendored = JSON.parse(await readFile(join(VENDOR, 'package.json'), 'utf8')) as Manifest;
    const root = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as Manifest;
    assert.deepEqual(root.workspaces, ['vendor/fivebeans']);
    assert.deepEqual(root.bundleDependencies, ['fivebeans']);
    // npm checks a bundled package against the declared spec as written: a file: spec or a range
    // the bundle misses would make npm ls report it invalid in every user's project.
    assert.equal(root.dependencies?.fivebeans, vendored.version);
  });
});
