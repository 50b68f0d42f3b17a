// `bsworker --metrics-port` through the real CLI, alone and under `--processes`: the scraped values are
// checked against the jobs that were run. Every wait awaits a log line, an exit or a scrape.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { type BeanstalkdServer, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, envelope, type LogLine, prefix, run, writeFixtureJobs } from '../helpers/cli.js';
import { scrape } from '../helpers/prometheus.js';

const TEST_TIMEOUT = { timeout: 40_000 };

/** A task that blocks its process's event loop until a file exists: its process cannot answer IPC. */
const SPIN = `import { existsSync } from 'node:fs';
import { p, queue } from './queue.mjs';
export const spin = queue.task(\`\${p}-spin\`)(async function spin(kw) {
  process.stdout.write(JSON.stringify({ msg: 'fixture: spin started', pid: process.pid }) + '\\n');
  const deadline = Date.now() + 20_000;
  while (!existsSync(kw.releaseFile) && Date.now() < deadline) {}
});
`;

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('bsworker --metrics-port', () => {
  let server: BeanstalkdServer;
  let temp: string;
  let jobsDir: string;

  const worker = (p: string, args: string[]): Cli =>
    new Cli(['--jobs', jobsDir, '--url', server.url, '--grace-ms', '10000', ...args], { FIXTURE_PREFIX: p });
  const metricsUrl = async (cli: Cli): Promise<string> => {
    const line = await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('metrics '), 'the metrics line');
    assert.match(String(line.url), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    return String(line.url);
  };
  const count = (cli: Cli, msg: string): number => cli.lines.filter((l) => l.msg === msg).length;
  const waitCount = (cli: Cli, msg: string, n: number, timeoutMs?: number): Promise<LogLine> =>
    cli.waitForLine(() => count(cli, msg) >= n, `${n} '${msg}' lines`, timeoutMs);

  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-metrics-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir, { typescript: false });
    await writeFile(join(jobsDir, 'spin.mjs'), SPIN);
  });

  afterEach(async () => {
    for (const cli of children) {
      if (cli.child.pid !== undefined && cli.exit === undefined) killQuietly(cli.child.pid);
      for (const line of cli.lines) if (line.msg === 'child started' && typeof line.childPid === 'number') killQuietly(line.childPid);
    }
    await Promise.all([...children].map((cli) => cli.exited));
  });

  after(async () => {
    await server?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('serves the worker metrics on 127.0.0.1 and a free port; the values match the jobs run', TEST_TIMEOUT, async () => {
    const p = prefix('met');
    const cli = worker(p, ['--tubes', `${p}-fast,${p}-fail`, '--metrics-port', '0']);
    const url = await metricsUrl(cli);
    await cli.waitForLine((l) => l.msg === 'worker started', "'worker started'");
    for (let n = 0; n < 3; n += 1) await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { n }));
    await rawPut(server.url, `${p}-fail`, envelope('fail', `${p}-fail`, { orderId: 1 }));
    await waitCount(cli, 'job completed', 3);
    await cli.waitForLine((l) => l.msg === 'job failed; buried', "'job failed; buried'");

    const scraped = await scrape(url);
    assert.equal(scraped.value('bsworker_jobs_total', { tube: `${p}-fast`, task: 'fast', outcome: 'completed' }), 3);
    assert.equal(scraped.value('bsworker_jobs_total', { tube: `${p}-fail`, task: 'fail', outcome: 'failed' }), 1);
    assert.equal(scraped.value('bsworker_jobs_total', { tube: `${p}-fail`, task: 'fail', outcome: 'buried' }), 1);
    assert.equal(scraped.value('bsworker_job_duration_seconds_count', { tube: `${p}-fast`, task: 'fast' }), 3);
    assert.equal(scraped.value('bsworker_worker_up'), 1);
    // prom-client's process metrics come along.
    assert.equal(scraped.types.get('process_cpu_user_seconds_total'), 'counter');
    assert.ok((scraped.value('process_resident_memory_bytes') as number) > 0);

    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('refuses a host name, and exits 1 when the port is taken', TEST_TIMEOUT, async () => {
    const p = prefix('met');
    const named = await run(['--tubes', `${p}-fast`, '--jobs', jobsDir, '--metrics-port', '0', '--metrics-host', 'metrics.example']);
    assert.equal(named.code, 2);
    assert.match(named.stderr, /expected an IP address/);

    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen({ host: '127.0.0.1', port: 0 }, resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const cli = worker(p, ['--tubes', `${p}-fast`, '--metrics-port', String(port)]);
      const exit = await cli.waitForExit();
      assert.equal(exit.code, 1);
      assert.match(cli.stderr, new RegExp(`could not serve the metrics on 127\\.0\\.0\\.1:${port}`));
    } finally {
      taken.close();
    }
  });

  it('--processes 2: the supervisor serves the sum of both children', TEST_TIMEOUT, async () => {
    const p = prefix('met');
    const tubes = `${p}-fast,${p}-fail,${p}-slow`;
    const cli = worker(p, ['--tubes', tubes, '--processes', '2', '--metrics-port', '0']);
    const url = await metricsUrl(cli);
    await waitCount(cli, 'worker started', 2);
    // One slow job per child (each runs one job at a time): both children count one.
    const releaseFile = join(temp, `${p}.release`);
    for (let n = 0; n < 2; n += 1) await rawPut(server.url, `${p}-slow`, envelope('slow', `${p}-slow`, { token: n, releaseFile }));
    await waitCount(cli, 'fixture: slow started', 2);
    const pids = new Set(cli.lines.filter((l) => l.msg === 'fixture: slow started').map((l) => l.pid));
    assert.equal(pids.size, 2, 'each child runs one slow job');
    const busy = await scrape(url);
    assert.equal(busy.value('bsworker_jobs_active'), 2);
    assert.equal(busy.value('bsworker_worker_up'), 2);
    assert.equal(busy.value('bsworker_supervisor_children'), 2);
    await writeFile(releaseFile, '');
    for (let n = 0; n < 6; n += 1) await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { n }));
    for (let n = 0; n < 2; n += 1) await rawPut(server.url, `${p}-fail`, envelope('fail', `${p}-fail`, { orderId: n }));
    await waitCount(cli, 'job completed', 8);
    await waitCount(cli, 'job failed; buried', 2);

    const summed = await scrape(url);
    const jobs = (tube: string, task: string, outcome: string): number | undefined =>
      summed.value('bsworker_jobs_total', { tube: `${p}-${tube}`, task, outcome });
    assert.equal(jobs('slow', 'slow', 'completed'), 2);
    assert.equal(jobs('fast', 'fast', 'completed'), 6);
    assert.equal(jobs('fail', 'fail', 'failed'), 2);
    assert.equal(jobs('fail', 'fail', 'buried'), 2);
    assert.equal(summed.value('bsworker_job_duration_seconds_count', { tube: `${p}-fast`, task: 'fast' }), 6);
    assert.equal(summed.value('bsworker_job_duration_seconds_count', { tube: `${p}-fail`, task: 'fail' }), 2);
    assert.equal(summed.value('bsworker_jobs_active'), 0);
    assert.equal(summed.value('bsworker_metrics_children_missing'), 0);

    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('--processes: a recycled child keeps its counts in the sum; a silent child is left out and counted', TEST_TIMEOUT, async () => {
    const p = prefix('met');
    const cli = worker(p, ['--tubes', `${p}-fast,${p}-spin`, '--processes', '1', '--max-jobs-per-child', '3', '--metrics-port', '0']);
    const url = await metricsUrl(cli);
    for (let n = 0; n < 7; n += 1) await rawPut(server.url, `${p}-fast`, envelope('fast', `${p}-fast`, { n }));
    await waitCount(cli, 'job completed', 7);
    await waitCount(cli, 'worker started', 3);
    const recycled = await scrape(url);
    // Three generations: 3 + 3 + 1.
    assert.equal(recycled.value('bsworker_jobs_total', { tube: `${p}-fast`, task: 'fast', outcome: 'completed' }), 7);
    assert.equal(recycled.value('bsworker_job_duration_seconds_count', { tube: `${p}-fast`, task: 'fast' }), 7);
    assert.equal(recycled.value('bsworker_supervisor_restarts_total'), 0, 'a recycle is no restart');

    // The child blocks its event loop: the scrape answers after the deadline without it.
    const releaseFile = join(temp, `${p}.spin`);
    await rawPut(server.url, `${p}-spin`, envelope('spin', `${p}-spin`, { releaseFile }));
    await cli.waitForLine((l) => l.msg === 'fixture: spin started', "'fixture: spin started'");
    const started = performance.now();
    const silent = await scrape(url);
    const tookMs = performance.now() - started;
    await writeFile(releaseFile, '');
    assert.ok(tookMs >= 1_900 && tookMs < 5_000, `the scrape waited for the deadline: ${Math.round(tookMs)} ms`);
    assert.equal(silent.value('bsworker_metrics_children_missing'), 1);
    assert.ok((silent.value('bsworker_metrics_children_missed_total') as number) >= 1);
    // Its counters stay in the sum (from its last answer); its gauges are left out: no worker is up.
    assert.equal(silent.value('bsworker_jobs_total', { tube: `${p}-fast`, task: 'fast', outcome: 'completed' }), 7);
    assert.equal(silent.value('bsworker_worker_up'), 0);
    assert.equal(silent.value('bsworker_jobs_active'), 0);

    await waitCount(cli, 'job completed', 8);
    const back = await scrape(url);
    assert.equal(back.value('bsworker_metrics_children_missing'), 0);
    assert.equal(back.value('bsworker_worker_up'), 1);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });
});
