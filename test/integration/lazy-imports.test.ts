// What a process loads just by importing bsworker. Every job module imports it, so a producer and every
// worker pay for whatever it loads at import: the HTTP server (Fastify) and prom-client are loaded only
// by the code that uses them (`serve`, a metrics registry), about 16 MB less in an idle worker.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO } from '../helpers/cli.js';

/** The npm packages (CommonJS ones, which is what both of these are) loaded after running `script` in a fresh Node. */
function packagesLoadedBy(script: string): Set<string> {
  const probe = `
    import { createRequire } from 'node:module';
    ${script}
    const names = Object.keys(createRequire(import.meta.url).cache)
      .map((file) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file)?.[1])
      .filter((name) => name !== undefined);
    process.stdout.write(JSON.stringify([...new Set(names)]));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: REPO, encoding: 'utf8', timeout: 10_000 });
  return new Set(JSON.parse(out) as string[]);
}

const dist = (file: string): string => JSON.stringify(pathToFileURL(join(REPO, 'dist', file)).href);

describe('what importing bsworker loads', () => {
  it('the package index loads neither prom-client nor Fastify, until a metric is made', () => {
    const idle = packagesLoadedBy(`await import(${dist('index.js')});`);
    assert.ok(idle.has('pino'), `the probe sees CommonJS packages: ${[...idle].join(', ')}`);
    for (const heavy of ['prom-client', 'fastify']) assert.ok(!idle.has(heavy), `${heavy} loaded at import`);

    const used = packagesLoadedBy(`const { WorkerMetrics } = await import(${dist('index.js')}); new WorkerMetrics();`);
    assert.ok(used.has('prom-client'), 'prom-client is loaded once a metric is made');
  });

  it('the CLI program (what a worker process builds) does not load Fastify or prom-client', () => {
    const loaded = packagesLoadedBy(
      `const { buildProgram } = await import(${dist('cli/program.js')}); buildProgram({ print() {}, exit() {} });`,
    );
    assert.ok(loaded.has('commander'));
    for (const heavy of ['prom-client', 'fastify', '@fastify/swagger']) assert.ok(!loaded.has(heavy), `${heavy} loaded by the CLI program`);
  });
});
