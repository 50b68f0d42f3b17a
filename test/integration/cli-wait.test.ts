// A worker started before its beanstalkd: it waits, one log line per attempt, and runs jobs once the
// server is up; --connect-timeout gives up; a signal ends the wait at once; the --processes supervisor
// waits the same way. And a supervisor child whose parent is SIGKILLed before it even finished loading
// its jobs still stops. Servers are started on a chosen free loopback port, after the worker.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type BeanstalkdServer, freePort, rawPut, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, DIST_INDEX, envelope, type LogLine, prefix, writeFixtureJobs } from '../helpers/cli.js';

const TEST_TIMEOUT = { timeout: 30_000 };

const isRetry = (line: LogLine): boolean => typeof line.msg === 'string' && line.msg.startsWith('cannot reach beanstalkd at ');

function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('waiting for beanstalkd at start', () => {
  let temp: string;
  let jobsDir: string;
  const servers: BeanstalkdServer[] = [];
  /** Pids of grandchildren (supervised workers) a test saw, for the cleanup to kill. */
  const strays = new Set<number>();

  const worker = (p: string, port: number, args: string[]): Cli =>
    new Cli(['--jobs', jobsDir, '--url', `127.0.0.1:${port}`, '--tubes', `${p}-fast`, ...args], { FIXTURE_PREFIX: p });

  before(async () => {
    temp = await mkdtemp(join(tmpdir(), 'bsworker-wait-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir, { typescript: false });
  });

  afterEach(async () => {
    for (const cli of children) if (!cli.exit) killQuietly(cli.child.pid);
    for (const pid of strays) killQuietly(pid);
    await Promise.all([...children].map((cli) => cli.exited));
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  after(async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('a worker started first waits, one line per attempt, then runs a job once beanstalkd is up', TEST_TIMEOUT, async () => {
    const p = prefix('wait');
    const port = await freePort();
    const cli = worker(p, port, []);
    const first = await cli.waitForLine(isRetry, 'a first retry line');
    assert.equal(first.attempt, 1);
    assert.equal(first.server, `127.0.0.1:${port}`);
    assert.equal(typeof first.delayMs, 'number');
    assert.match(String(first.error), /connection refused/);
    assert.ok(!JSON.stringify(first).includes('    at '), 'no stack in the line');
    await cli.waitForLine((l) => isRetry(l) && l.attempt === 2, 'a second attempt');

    const server = await startBeanstalkd({ port });
    servers.push(server);
    const connected = await cli.waitForLine((l) => /^connected to beanstalkd at /.test(String(l.msg)), 'the connected line');
    assert.ok(Number(connected.attempts) >= 3);
    const id = await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { n: 1 }));
    await cli.waitForLine((l) => l.msg === 'job completed' && l.jobId === id, 'job completed');
    assert.equal(await rawStatsJob(server.url, id), null);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0, cli.stderr);
  });

  it('--connect-timeout 1 gives up: exit 1 and one line that says so', TEST_TIMEOUT, async () => {
    const port = await freePort();
    const cli = worker(prefix('wait'), port, ['--connect-timeout', '1']);
    const exit = await cli.waitForExit(8_000);
    assert.equal(exit.code, 1, cli.stderr);
    const lines = cli.stderr.split('\n');
    assert.equal(lines.length, 2, cli.stderr);
    assert.match(lines[0] ?? '', new RegExp(`^bsworker: error: beanstalkd at 127\\.0\\.0\\.1:${port} was still unreachable after 1s`));
  });

  it('SIGTERM or SIGINT during the wait ends it at once with exit 0', TEST_TIMEOUT, async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const port = await freePort();
      const cli = worker(prefix('wait'), port, []);
      await cli.waitForLine(isRetry, 'a retry line');
      const sent = Date.now();
      cli.signal(signal);
      const exit = await cli.waitForExit(5_000);
      assert.equal(exit.code, 0, `${signal}: ${cli.stderr}`);
      assert.ok(Date.now() - sent < 3_000, `${signal} ended the wait at once`);
      assert.equal(cli.stderr, '');
    }
  });

  it('--processes: the supervisor waits the same way, then its child runs the job', TEST_TIMEOUT, async () => {
    const p = prefix('wait');
    const port = await freePort();
    const cli = worker(p, port, ['--processes', '1']);
    const retry = await cli.waitForLine(isRetry, 'a retry line from the supervisor');
    assert.equal(retry.pid, cli.child.pid, 'the supervisor itself waits; no child is forked yet');
    assert.ok(!cli.lines.some((l) => l.msg === 'child started'));
    const server = await startBeanstalkd({ port });
    servers.push(server);
    const started = await cli.waitForLine((l) => l.msg === 'child started', 'child started');
    strays.add(started.childPid as number);
    const id = await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { n: 1 }));
    await cli.waitForLine((l) => l.msg === 'job completed' && l.jobId === id, 'job completed');
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0, cli.stderr);
  });

  it('a child whose supervisor is SIGKILLed while the child still loads its jobs stops instead of lingering', TEST_TIMEOUT, async () => {
    const p = prefix('wait');
    const server = await startBeanstalkd();
    servers.push(server);
    const dir = join(temp, `${p}-slow-load`);
    await mkdir(dir);
    const releaseFile = join(temp, `${p}.loaded`);
    // Importing this module takes until the test says so: the parent dies in that window.
    await writeFile(
      join(dir, 'slow-load.mjs'),
      `import { existsSync } from 'node:fs';
import { JobQueue } from ${JSON.stringify(pathToFileURL(DIST_INDEX).href)};
process.stdout.write(JSON.stringify({ msg: 'fixture: loading', pid: process.pid }) + '\\n');
const deadline = Date.now() + 20_000;
while (!existsSync(${JSON.stringify(releaseFile)}) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
export const fast = new JobQueue().task('${p}-fast')(async function fast() {});
`,
    );
    const cli = new Cli(['--jobs', dir, '--url', server.url, '--tubes', `${p}-fast`, '--processes', '1']);
    const loading = await cli.waitForLine((l) => l.msg === 'fixture: loading', 'the child loading its jobs');
    strays.add(loading.pid as number);
    cli.signal('SIGKILL');
    await writeFile(releaseFile, '');
    // 'close' comes once every holder of the shared stdout is gone: the child too.
    const exit = await cli.waitForExit(10_000);
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(
      cli.lines.some((l) => l.msg === 'the parent process is gone; stopping after the running jobs' && l.pid === loading.pid),
      cli.stdout,
    );
  });
});
