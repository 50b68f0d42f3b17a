// `bsworker --url a,b,c`: the worker command over several real servers, one of them down at start: it
// starts on the others, runs what each holds, and the fixture's producer (created with no url) puts to
// the same list through BEANSTALKD_URL.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BeanstalkdServer, freePort, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, envelope, prefix, writeFixtureJobs } from '../helpers/cli.js';

describe('bsworker --url over several servers', () => {
  let servers: BeanstalkdServer[];
  let temp: string;
  let jobsDir: string;
  before(async () => {
    servers = await Promise.all([startBeanstalkd(), startBeanstalkd()]);
    temp = await mkdtemp(join(tmpdir(), 'bsworker-cli-several-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir);
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await rm(temp, { recursive: true, force: true });
  });

  for (const processes of [1, 2]) {
    it(`--processes ${processes}: starts with one server down and runs the jobs of the others`, { timeout: 30_000 }, async () => {
      const p = prefix('several');
      const down = `127.0.0.1:${await freePort()}`;
      const urls = [...servers.map((server) => server.url), down].join(',');
      const cli = new Cli(['--tubes', `${p}-fast`, '--jobs', jobsDir, '--url', urls, '-c', '4', '--processes', String(processes)], {
        FIXTURE_PREFIX: p,
      });
      try {
        await cli.waitForLine((line) => line.msg === 'worker started', 'worker started');
        const started = cli.lines.find((line) => line.msg === 'worker started');
        assert.deepEqual(started?.server, [...servers.map((server) => server.url), down]);
        for (const server of servers)
          for (let i = 0; i < 3; i++) await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { at: server.url, i }));
        await cli.waitForLine(
          () => cli.lines.filter((line) => line.msg === 'fixture: fast ran').length === 6,
          'six runs, three from each live server',
        );
        const ran = cli.lines.filter((line) => line.msg === 'fixture: fast ran').map((line) => (line.kwargs as { at: string }).at);
        for (const server of servers) assert.equal(ran.filter((at) => at === server.url).length, 3, server.url);
        // The completed lines (written once the delete is answered) name jobs by their qualified id.
        await cli.waitForLine(() => cli.lines.filter((line) => line.msg === 'job completed').length === 6, 'six completed lines');
        const ids = cli.lines.filter((line) => line.msg === 'job completed').map((line) => String(line.jobId));
        assert.ok(ids.length === 6 && ids.every((id) => /^127\.0\.0\.1:\d+\/\d+$/.test(id)), ids.join(' '));
      } finally {
        cli.child.kill('SIGTERM');
        assert.equal((await cli.exited).code, 0, cli.stderr);
      }
    });
  }
});
