// `bsworker --processes` against a real beanstalkd: the supervisor and its children share one stdout, so
// every process's JSON log lines arrive in one stream and carry their pid. Every wait is bounded and awaits
// a log line, an exit or the server's own view of a job; none is a sleep.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { type BeanstalkdServer, rawPut, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, describeExit, envelope, eventually, type LogLine, prefix, run, writeFixtureJobs } from '../helpers/cli.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const SIBLING_DIED = 'a sibling process died; checking the next jobs for earlier crashes before running them';

const isMsg = (line: LogLine, start: string): boolean => typeof line.msg === 'string' && line.msg.startsWith(start);

/** The pids that logged `msg` (optionally only lines that also pass `also`). */
function pidsOf(cli: Cli, msg: string, also: (line: LogLine) => boolean = () => true): Set<number> {
  return new Set(cli.lines.filter((line) => line.msg === msg && also(line)).map((line) => line.pid as number));
}

/** Resolves once `ready()` holds for the lines logged so far. */
function until(cli: Cli, ready: () => boolean, what: string, timeoutMs?: number): Promise<LogLine> {
  return cli.waitForLine(() => ready(), what, timeoutMs);
}

/** The children the supervisor reported started and not yet reported gone. */
function liveChildPids(cli: Cli): number[] {
  const gone = new Set(cli.lines.filter((l) => /^child (stopped|recycled|died)/.test(String(l.msg))).map((l) => l.childPid));
  return cli.lines
    .filter((l) => l.msg === 'child started' && typeof l.childPid === 'number' && !gone.has(l.childPid))
    .map((l) => l.childPid as number);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('bsworker --processes', () => {
  let server: BeanstalkdServer;
  let temp: string;
  let jobsDir: string;

  const pool = (p: string, args: string[], options: { detached?: boolean } = {}): Cli =>
    new Cli(['--jobs', jobsDir, '--url', server.url, '--grace-ms', '10000', ...args], { FIXTURE_PREFIX: p }, options);
  const completed = (cli: Cli, id: string): Promise<LogLine> =>
    cli.waitForLine((l) => l.msg === 'job completed' && l.jobId === id, `'job completed' for job ${id}`);
  const workersStarted = (cli: Cli, count: number): Promise<LogLine> =>
    until(cli, () => pidsOf(cli, 'worker started').size >= count, `${count} 'worker started' lines from different pids`);

  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-pool-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir, { typescript: false });
    // Task code has process.send too: what it writes to the channel must never be taken for bsworker's.
    await writeFile(
      join(jobsDir, 'noise.mjs'),
      `import { p, queue } from './queue.mjs';
export const noise = queue.task(\`\${p}-noise\`)(async function noise(kw) {
  process.send?.({ type: 'task:progress', n: kw.n });
  process.send?.('bsworker:recycled');
  process.send?.({ type: 'bsworker:metrics-reply', id: 'x', metrics: 'all of them' });
});\n`,
    );
  });

  afterEach(async () => {
    // The supervisor first, so that it cannot restart the children killed next. Its 'close' comes only
    // once every child has closed the stdout they share, so awaiting it also awaits the children.
    for (const cli of children) {
      if (cli.child.pid !== undefined && cli.exit === undefined) killQuietly(cli.child.pid);
      for (const pid of liveChildPids(cli)) killQuietly(pid);
    }
    await Promise.all([...children].map((cli) => cli.exited));
  });

  after(async () => {
    await server?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('--processes 2 starts two workers that run the jobs; SIGTERM stops them all, exit 0', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-fast`;
    const cli = pool(p, ['--tubes', tube, '--processes', '2']);
    await workersStarted(cli, 2);
    const supervisorSaw = new Set(cli.lines.filter((l) => l.msg === 'child started').map((l) => l.childPid));
    assert.deepEqual(supervisorSaw, pidsOf(cli, 'worker started'), 'the workers are the children the supervisor started');
    assert.ok(!pidsOf(cli, 'worker started').has(cli.child.pid as number), 'the supervisor runs no worker itself');

    const ids: string[] = [];
    for (let n = 0; n < 6; n += 1) ids.push(await rawPut(server.url, tube, envelope('fast', tube, { n })));
    for (const id of ids) await completed(cli, id);
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);

    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
    assert.equal(cli.lines.filter((l) => l.msg === 'child stopped' && l.code === 0).length, 2);
  });

  it('a child killed with SIGKILL mid-job is replaced, and a live child runs its job again at once', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-slow`;
    const releaseFile = join(temp, `${p}.release`);
    const cli = pool(p, ['--tubes', tube, '--processes', '2']);
    await workersStarted(cli, 2);
    const firstWorkers = pidsOf(cli, 'worker started');
    // A TTR of 60 s: the job can only run again within the bounds below if the kill gave it back.
    const id = await rawPut(server.url, tube, envelope('slow', tube, { token: p, releaseFile }), { ttr: 60 });
    const first = await cli.waitForLine((l) => l.msg === 'fixture: slow started', 'fixture: slow started');
    const victim = first.pid as number;

    process.kill(victim, 'SIGKILL');
    const again = await cli.waitForLine(
      (l) => l.msg === 'fixture: slow started' && l.pid !== victim,
      'the job started again by another child',
      5_000,
    );
    const stats = await rawStatsJob(server.url, id);
    assert.deepEqual([stats?.state, stats?.reserves, stats?.timeouts], ['reserved', '2', '0'], 'given back by the kill, not a TTR timeout');

    const death = await cli.waitForLine((l) => isMsg(l, 'child died') && l.childPid === victim, "'child died' for the victim");
    assert.equal(death.signal, 'SIGKILL');
    assert.ok((death.delayMs as number) >= 800 && (death.delayMs as number) <= 1_200, `first restart after about 1 s: ${death.delayMs}`);
    const replacement = await cli.waitForLine(
      (l) => l.msg === 'worker started' && !firstWorkers.has(l.pid as number),
      "a replacement's 'worker started'",
      5_000,
    );
    assert.notEqual(replacement.pid, victim);

    await writeFile(releaseFile, '');
    const done = await completed(cli, id);
    assert.equal(done.pid, again.pid, 'completed by the child that ran it again');
    assert.equal(await rawStatsJob(server.url, id), null);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('--max-jobs-per-child 2: each child exits 0 after 2 jobs and is replaced at once; no job is lost', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-fast`;
    const ids: string[] = [];
    for (let n = 0; n < 5; n += 1) ids.push(await rawPut(server.url, tube, envelope('fast', tube, { n })));
    const cli = pool(p, ['--tubes', tube, '--processes', '1', '--max-jobs-per-child', '2']);

    const done = [];
    for (const id of ids) done.push(await completed(cli, id));
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);
    const perChild = new Map<unknown, number>();
    for (const line of done) perChild.set(line.pid, (perChild.get(line.pid) ?? 0) + 1);
    assert.ok(perChild.size >= 2, `jobs ran in ${perChild.size} process(es)`);
    assert.ok(
      [...perChild.values()].every((count) => count <= 2),
      `at most 2 jobs per child: ${[...perChild.values()]}`,
    );

    const recycled = cli.lines.filter((l) => isMsg(l, 'child recycled'));
    assert.ok(recycled.length >= 2, `${recycled.length} recycles`);
    assert.ok(
      recycled.every((l) => l.code === 0),
      'a recycled child exits 0',
    );
    assert.ok(!cli.lines.some((l) => isMsg(l, 'child died')), 'a recycle is not a death: no backoff');
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('--max-memory-per-child alone implies one process and recycles it once its RSS is over the limit', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-fast`;
    // Any Node process is over 16 MiB, so every child is recycled after its first job.
    const cli = pool(p, ['--tubes', tube, '--max-memory-per-child', '16']);
    const ids = [
      await rawPut(server.url, tube, envelope('fast', tube, { n: 1 })),
      await rawPut(server.url, tube, envelope('fast', tube, { n: 2 })),
    ];
    const done = [];
    for (const id of ids) done.push(await completed(cli, id));
    assert.notEqual(done[0]?.pid, done[1]?.pid);
    const reached = await cli.waitForLine((l) => isMsg(l, 'max-memory limit reached'), 'max-memory limit reached');
    assert.equal(reached.maxMemoryMb, 16);
    assert.equal(cli.lines.find((l) => l.msg === 'supervisor started')?.processes, 1);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
  });

  it('SIGTERM lets every running job finish and exits 0', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-slow`;
    const releaseFile = join(temp, `${p}.release`);
    const cli = pool(p, ['--tubes', tube, '--processes', '2']);
    const ids = [
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-1`, releaseFile })),
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-2`, releaseFile })),
    ];
    await until(cli, () => pidsOf(cli, 'fixture: slow started').size === 2, 'both children running a slow job');
    const busy = pidsOf(cli, 'fixture: slow started');

    cli.signal('SIGTERM');
    await until(
      cli,
      () => cli.lines.filter((l) => isMsg(l, 'SIGTERM: stopping') && busy.has(l.pid as number)).length === 2,
      'both children stopping',
    );
    for (const id of ids) assert.equal((await rawStatsJob(server.url, id))?.state, 'reserved', 'the stop waits for the job');
    await writeFile(releaseFile, '');

    for (const id of ids) await completed(cli, id);
    assert.equal((await cli.waitForExit()).code, 0);
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('a Ctrl-C (SIGINT to the whole process group) is one graceful stop, not a forced one', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-slow`;
    const releaseFile = join(temp, `${p}.release`);
    const cli = pool(p, ['--tubes', tube, '--processes', '2'], { detached: true });
    const ids = [
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-1`, releaseFile })),
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-2`, releaseFile })),
    ];
    await until(cli, () => pidsOf(cli, 'fixture: slow started').size === 2, 'both children running a slow job');
    const busy = pidsOf(cli, 'fixture: slow started');

    // The children get the SIGINT too, and then the supervisor's SIGTERM: that must not count as a second signal.
    cli.signalGroup('SIGINT');
    await until(
      cli,
      () => cli.lines.filter((l) => isMsg(l, 'SIGTERM: stopping') && busy.has(l.pid as number)).length === 2,
      'both children stopping',
    );
    await writeFile(releaseFile, '');
    for (const id of ids) await completed(cli, id);
    assert.equal((await cli.waitForExit()).code, 0);
    assert.ok(!cli.lines.some((l) => isMsg(l, 'SIGTERM again')), 'no child was forced');
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('a SIGTERM to the whole process group (systemd, kill -- -PGID) is one graceful stop', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-slow`;
    const releaseFile = join(temp, `${p}.release`);
    const cli = pool(p, ['--tubes', tube, '--processes', '2'], { detached: true });
    const ids = [
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-1`, releaseFile })),
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-2`, releaseFile })),
    ];
    await until(cli, () => pidsOf(cli, 'fixture: slow started').size === 2, 'both children running a slow job');

    // Each child gets this SIGTERM directly and again from the supervisor: still one graceful stop.
    cli.signalGroup('SIGTERM');
    await until(cli, () => cli.lines.some((l) => isMsg(l, 'SIGTERM: stopping')), 'a child stopping');
    await writeFile(releaseFile, '');
    for (const id of ids) await completed(cli, id);
    assert.equal((await cli.waitForExit()).code, 0);
    assert.ok(!cli.lines.some((l) => isMsg(l, 'the supervisor forces the stop')), 'no child was forced');
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('a second SIGTERM makes every child give its job back at once and exits non-zero', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-slow`;
    const never = join(temp, `${p}.never`);
    const cli = pool(p, ['--tubes', tube, '--processes', '2']);
    const ids = [
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-1`, releaseFile: never }), { ttr: 60 }),
      await rawPut(server.url, tube, envelope('slow', tube, { token: `${p}-2`, releaseFile: never }), { ttr: 60 }),
    ];
    await until(cli, () => pidsOf(cli, 'fixture: slow started').size === 2, 'both children running a slow job');
    const busy = pidsOf(cli, 'fixture: slow started');

    cli.signal('SIGTERM');
    // Two signals sent back to back may merge into one; wait until every child has handled the first.
    await until(
      cli,
      () => cli.lines.filter((l) => isMsg(l, 'SIGTERM: stopping') && busy.has(l.pid as number)).length === 2,
      'both children stopping',
    );
    cli.signal('SIGTERM');
    await eventually(async () => {
      for (const id of ids) {
        const stats = await rawStatsJob(server.url, id);
        assert.deepEqual([stats?.state, stats?.timeouts], ['ready', '0'], `job ${id} given back, not timed out`);
      }
    }, 3_000);
    const exit = await cli.waitForExit(5_000);
    assert.notEqual(exit.code, 0);
    assert.notEqual(exit.code, null, `exited by ${describeExit(exit)}, not with a code`);
  });

  it('children of a supervisor killed with SIGKILL finish their jobs and exit instead of lingering', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const tube = `${p}-slow`;
    const releaseFile = join(temp, `${p}.release`);
    const cli = pool(p, ['--tubes', tube, '--processes', '2']);
    await workersStarted(cli, 2);
    const workers = pidsOf(cli, 'worker started');
    const id = await rawPut(server.url, tube, envelope('slow', tube, { token: p, releaseFile }));
    await cli.waitForLine((l) => l.msg === 'fixture: slow started', 'fixture: slow started');

    cli.signal('SIGKILL');
    await until(
      cli,
      () => pidsOf(cli, 'the parent process is gone; stopping after the running jobs', (l) => workers.has(l.pid as number)).size === 2,
      'both children noticing their parent is gone',
    );
    assert.equal((await rawStatsJob(server.url, id))?.state, 'reserved', 'a graceful stop: the job is not given back');
    await writeFile(releaseFile, '');
    await completed(cli, id);
    // 'close' needs every holder of the shared stdout gone: this is the children exiting.
    const exit = await cli.waitForExit();
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('rejects bad pool options, and stops with exit 2 when the children fail with a usage error', TEST_TIMEOUT, async () => {
    const p = prefix('pool');
    const cases: [string[], RegExp][] = [
      [['--processes', '0'], /^bsworker: error: option '--processes <n>' argument '0' is invalid\. expected a whole number from 1 to 64/m],
      [['--processes', '65'], /^bsworker: error: option '--processes <n>' argument '65' is invalid/m],
      [['--max-jobs-per-child', '0'], /^bsworker: error: option '--max-jobs-per-child <n>' argument '0' is invalid/m],
      [
        ['--max-memory-per-child', '8'],
        /^bsworker: error: option '--max-memory-per-child <mb>' argument '8' is invalid\. expected a whole number from 16/m,
      ],
      [['--processes', '2', '--max-jobs', '3'], /--max-jobs-per-child/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(['--jobs', jobsDir, '--tubes', `${p}-fast`, ...args])));
    results.forEach((result, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      assert.equal(result.code, 2, `${args.join(' ')}: exit code (stderr: ${result.stderr})`);
      assert.match(result.stderr, message, args.join(' '));
    });

    // No task serves the tube: every child exits 2, and restarting them could never help.
    const cli = pool(p, ['--tubes', `${p}-none`, '--processes', '2']);
    const exit = await cli.waitForExit();
    assert.equal(exit.code, 2, cli.stderr);
    assert.match(cli.stderr, new RegExp(`bsworker: error: no task is registered in \`${p}-none\``));
    assert.ok(cli.lines.some((l) => isMsg(l, 'a child exited with a usage error')));
    assert.ok(!cli.lines.some((l) => isMsg(l, 'child died')), 'no restart');
  });

  it("a task's own IPC messages are ignored: one warning per child, no recycle, the pool goes on", TEST_TIMEOUT, async () => {
    const p = prefix('noise');
    const tube = `${p}-noise`;
    const cli = pool(p, ['--tubes', tube, '--processes', '1']);
    const ids = [
      await rawPut(server.url, tube, envelope('noise', tube, { n: 1 })),
      await rawPut(server.url, tube, envelope('noise', tube, { n: 2 })),
    ];
    for (const id of ids) await completed(cli, id);
    const warning = await cli.waitForLine((l) => isMsg(l, 'ignored a malformed IPC message from child 0'), 'the malformed-message warning');
    assert.equal(warning.level, 40);
    assert.equal(warning.child, 0);
    assert.match(String(warning.reason), /unknown message type "task:progress"/);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
    assert.equal(cli.lines.filter((l) => isMsg(l, 'ignored a malformed IPC message')).length, 1, 'the rest are debug lines');
    assert.ok(
      !cli.lines.some((l) => isMsg(l, 'child recycled') || isMsg(l, 'child died')),
      "a spoofed 'bsworker:recycled' is not a recycle",
    );
  });

  it('SIGKILL of one child: the survivor logs that it checks its next jobs for crashes', TEST_TIMEOUT, async () => {
    const p = prefix('sibling');
    const tube = `${p}-fast`;
    const cli = pool(p, ['--tubes', tube, '--processes', '2']);
    const started = (): LogLine[] => cli.lines.filter((line) => line.msg === 'worker started');
    await cli.waitForLine(() => new Set(started().map((line) => line.pid)).size >= 2, "two children's 'worker started'");
    const [victim, survivor] = started().map((line) => line.pid as number);
    assert.ok(victim !== undefined && survivor !== undefined && victim !== survivor);
    assert.deepEqual(
      cli.lines.filter((line) => line.msg === SIBLING_DIED),
      [],
      'nobody died yet',
    );

    process.kill(victim, 'SIGKILL');
    const told = await cli.waitForLine((line) => line.msg === SIBLING_DIED, `'${SIBLING_DIED}'`, 5_000);
    assert.equal(told.pid, survivor, 'logged by the surviving child');
    assert.equal(told.level, 30);
    // Awaited, not looked up: the supervisor tells the survivor before it logs the death, and each
    // process batches its own log lines, so the two may reach the shared stdout in either order.
    await cli.waitForLine(
      (line) => typeof line.msg === 'string' && line.msg.startsWith('child died') && line.childPid === victim,
      "the supervisor's 'child died' line for the victim",
      5_000,
    );
    assert.equal(told.child, started().find((line) => line.pid === survivor)?.child, "the survivor's child index");

    // The survivor still runs jobs.
    const id = await rawPut(server.url, tube, envelope('fast', tube, { n: 1 }));
    await cli.waitForLine((line) => line.msg === 'job completed' && line.jobId === id, `'job completed' for job ${id}`);
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0);
    assert.deepEqual(
      cli.lines.filter((line) => line.msg === SIBLING_DIED).map((line) => line.pid),
      [survivor],
      'only the survivor was told, once',
    );
  });
});
