// Results across `bsworker --processes`: each child replies on its own connection into the caller's
// reply tube, so a caller gets every result whichever process ran the job.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { JobQueue } from '../../src/index.js';
import { type BeanstalkdServer, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, prefix, writeFixtureJobs } from '../helpers/cli.js';

describe('results across --processes', () => {
  let server: BeanstalkdServer;
  let temp: string;

  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-results-'));
    await writeFixtureJobs(join(temp, 'jobs'), { typescript: false });
  });
  after(async () => {
    for (const cli of children) cli.child.kill('SIGKILL');
    await server?.stop();
    await rm(temp, { recursive: true, force: true });
  });

  it('returns each job result to the caller whichever child ran it', { timeout: 60_000 }, async () => {
    const p = prefix('results');
    const tube = `${p}-compute`;
    const cli = new Cli(['--jobs', join(temp, 'jobs'), '--url', server.url, '--tubes', tube, '--processes', '2', '--concurrency', '1'], {
      FIXTURE_PREFIX: p,
    });
    const started = (): Set<unknown> => new Set(cli.lines.filter((line) => line.msg === 'worker started').map((line) => line.pid));
    await cli.waitForLine(() => started().size >= 2, 'two children started');
    const queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
    try {
      // The same task name and tube as the fixture: this process only puts it.
      const compute = queue.task(tube)(async function compute(_kw: { n: number; waitMs: number }) {
        return { n: 0, square: 0, pid: 0 };
      });
      const jobs = await Promise.all(Array.from({ length: 8 }, (_, n) => compute.put({ n, waitMs: 100 }, { result: true })));
      const results = await Promise.all(jobs.map((job) => job.result({ timeoutMs: 30_000 })));
      assert.deepEqual(
        results.map((result) => [result.n, result.square]),
        Array.from({ length: 8 }, (_, n) => [n, n * n]),
      );
      const pids = new Set(results.map((result) => result.pid));
      assert.equal(pids.size, 2, `both children ran jobs (pids ${[...pids].join(', ')})`);
      assert.ok(!pids.has(cli.child.pid as number), 'the supervisor runs no jobs');
    } finally {
      await queue.close();
      cli.signal('SIGTERM');
      await cli.waitForExit();
    }
  });
});
