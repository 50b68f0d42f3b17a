// The production behaviours of issue 3, each proved against a real beanstalkd: concurrency, retries with
// backoff, TTR keep-alive, task timeouts, reconnect after a restart from the binlog, a producer riding out
// an outage, auto-kick, dead letters, and a worker killed with SIGKILL in the middle of a job.
//
// Every test has its own random tubes. Most share one server; a test that kills the server starts its
// own. Waits are for events or server states, each with a bound, so a missing outcome fails the test
// instead of hanging it; the only timers are workloads (a task that runs for a while, an outage that
// lasts a while), never assertions.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { resolveServerAddress } from '../../src/beanstalk/address.js';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { ConnectionError, decodeEnvelope, JobQueue, type TaskContext, TaskTimeoutError, UnrecoverableError } from '../../src/index.js';
import {
  type BeanstalkdServer,
  freePort,
  rawCommand,
  rawPeekBody,
  rawStatsJob,
  rawStatsTube,
  startBeanstalkd,
} from '../helpers/beanstalkd.js';
import { childEnv, REPO } from '../helpers/cli.js';
import { LogCapture } from '../helpers/events.js';
import { deferred, eventsOf, startWorker, until, within } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });
const tube = (name = 'p'): string => `${name}-${randomUUID().slice(0, 8)}`;
const FIXTURE = fileURLToPath(new URL('../fixtures/slow-worker.ts', import.meta.url));

/** The server's state of a job, or 'gone'. */
const stateOf = async (url: string, id: string): Promise<string> => (await rawStatsJob(url, id))?.state ?? 'gone';

describe('production worker against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    await queue?.close();
    await server?.stop();
  });

  it("concurrency: 4 jobs run at once, sharing the engine's connections (not one per job)", async (t) => {
    const tb = tube('conc');
    const gate = deferred();
    const allIn = deferred();
    let active = 0;
    let peak = 0;
    // The count is taken inside the handlers: it is what actually overlaps, not what the events say.
    const hold = queue.task(tb)(async function hold(_kw: { n: number }) {
      active += 1;
      peak = Math.max(peak, active);
      if (active === 4) allIn.resolve();
      try {
        await gate.promise;
      } finally {
        active -= 1;
      }
    });
    const { events } = await startWorker(t, { tubes: [tb], url: server.url, concurrency: 4 });
    const ids = await Promise.all([1, 2, 3, 4].map((n) => hold.put({ n })));

    await within(allIn.promise, 5_000, 'four handlers running at once');
    assert.equal(peak, 4);
    const stats = await rawStatsTube(server.url, tb);
    // The one that held the first job, and at most one more, opened for a wait when the tube looked
    // empty while the first held a running job.
    assert.ok(Number(stats?.['current-watching']) <= 2, `${stats?.['current-watching']} connections watch the tube`);
    assert.equal(stats?.['current-jobs-reserved'], '4');

    gate.resolve();
    await Promise.all(ids.map((id) => events.waitFor('job:deleted', (e) => e.jobId === id)));
    assert.equal(active, 0);
    for (const id of ids) assert.equal(await rawStatsJob(server.url, id), null);
    // Each delete worked because it went out on the connection that reserved the job.
    assert.equal(events.names().filter((n) => n === 'job:overrun').length, 0);
  });

  describe('retries with backoff', () => {
    const backoff = { type: 'fixed', delaySeconds: 1, jitter: false } as const;

    it('releases with the delay while retries are left, then buries', async (t) => {
      const tb = tube('retry');
      const runs: { attempt: number; at: number }[] = [];
      const flop = queue.task(tb, { retries: 2, backoff })(async function flop(_kw: { n: number }, ctx: TaskContext) {
        const attempt = await ctx.attempt();
        runs.push({ attempt, at: performance.now() });
        throw new Error(`flop ${attempt}`);
      });
      const { events } = await startWorker(t, { tubes: [tb], url: server.url });
      const id = await flop.put({ n: 1 });

      const released = await events.waitFor('job:released', (e) => e.jobId === id);
      assert.deepEqual([released.reason, released.delaySeconds], ['retry', 1]);
      const afterFirst = await rawStatsJob(server.url, id);
      assert.deepEqual([afterFirst?.state, afterFirst?.releases], ['delayed', '1']);

      await events.waitFor('job:failed', (e) => e.jobId === id && e.attempt === 2);
      const buried = await events.waitFor('job:buried', (e) => e.jobId === id);
      assert.equal(buried.reason, 'failed');
      // Buried as a copy with its failure record, which carries the original's two releases.
      const end = await rawStatsJob(server.url, buried.buriedAs);
      assert.equal(end?.state, 'buried');
      const record = JSON.parse((await rawPeekBody(server.url, buried.buriedAs)) as string).meta;
      assert.equal(record.carried.releases, 2);
      assert.deepEqual(
        record.failures.map((f: { attempt: number; message: string }) => [f.attempt, f.message]),
        [[3, 'flop 3']],
      );
      assert.deepEqual(
        runs.map((r) => r.attempt),
        [1, 2, 3],
        'the attempt in ctx counts the runs',
      );
      assert.equal(eventsOf(events, 'job:released', id).length, 2);
      // The backoff was honoured: beanstalkd held the job for the full second each time.
      for (let i = 1; i < runs.length; i += 1) {
        const gap = (runs[i]?.at ?? 0) - (runs[i - 1]?.at ?? 0);
        assert.ok(gap >= 900, `run ${i + 1} came ${Math.round(gap)} ms after run ${i}, sooner than the 1 s backoff`);
      }
      await rawCommand(server.url, `delete ${buried.buriedAs}\r\n`);
    });

    it('a job that fails once and then succeeds ends deleted', async (t) => {
      const tb = tube('retry-ok');
      const attempts: number[] = [];
      const shaky = queue.task(tb, { retries: 2, backoff })(async function shaky(_kw: { n: number }, ctx: TaskContext) {
        const attempt = await ctx.attempt();
        attempts.push(attempt);
        if (attempt === 1) throw new Error('first attempt fails');
      });
      const { events } = await startWorker(t, { tubes: [tb], url: server.url });
      const id = await shaky.put({ n: 1 });
      const deleted = await events.waitFor('job:deleted', (e) => e.jobId === id);
      assert.equal(deleted.reason, 'completed');
      assert.deepEqual(attempts, [1, 2]);
      assert.equal(await rawStatsJob(server.url, id), null);
    });

    it('UnrecoverableError buries at once, with retries left', async (t) => {
      const tb = tube('unrec');
      let runs = 0;
      const doomed = queue.task(tb, { retries: 5, backoff })(async function doomed(_kw: { n: number }) {
        runs += 1;
        throw new UnrecoverableError('no such record');
      });
      const { events } = await startWorker(t, { tubes: [tb], url: server.url });
      const id = await doomed.put({ n: 1 });
      const buried = await events.waitFor('job:buried', (e) => e.jobId === id);
      assert.equal(buried.reason, 'failed');
      const [failed] = eventsOf(events, 'job:failed', id);
      assert.ok(failed?.error instanceof UnrecoverableError);
      const stats = await rawStatsJob(server.url, buried.buriedAs);
      assert.equal(stats?.state, 'buried');
      const record = JSON.parse((await rawPeekBody(server.url, buried.buriedAs)) as string).meta;
      assert.deepEqual([record.carried.releases, record.failures[0].name], [0, 'UnrecoverableError']);
      assert.equal(runs, 1);
      assert.equal(eventsOf(events, 'job:released', id).length, 0);
      await rawCommand(server.url, `delete ${buried.buriedAs}\r\n`);
    });
  });

  it('TTR keep-alive: a job longer than two TTRs runs once, with a second worker waiting on the tube', async (t) => {
    const tb = tube('ttr');
    let runs = 0;
    let nearEnd: Record<string, string> | null = null;
    const long = queue.task(tb)(async function long(_kw: { n: number }, ctx: TaskContext) {
      runs += 1;
      // The workload: 4.5 s, more than twice the 2-second TTR.
      await sleep(4_500);
      nearEnd = await rawStatsJob(server.url, ctx.jobId);
    });
    const one = await startWorker(t, { tubes: [tb], url: server.url });
    const two = await startWorker(t, { tubes: [tb], url: server.url });
    const id = await long.put({ n: 1 }, { ttr: 2 });

    const done = await within(
      Promise.race([one.events.waitFor('job:deleted', (e) => e.jobId === id), two.events.waitFor('job:deleted', (e) => e.jobId === id)]),
      10_000,
      'the long job deleted',
    );
    assert.equal(done.reason, 'completed');
    assert.equal(runs, 1, 'no second worker got the job');
    assert.equal((nearEnd as Record<string, string> | null)?.state, 'reserved', 'still ours at the end');
    assert.equal((nearEnd as Record<string, string> | null)?.timeouts, '0', 'the TTR never ran out');
    for (const { events } of [one, two]) {
      assert.equal(events.names().filter((n) => n === 'job:overrun').length, 0);
    }
    assert.equal(eventsOf(one.events, 'job:reserved', id).length + eventsOf(two.events, 'job:reserved', id).length, 1);
    assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('timeoutMs: the signal aborts with TaskTimeoutError, the job fails and is buried', async (t) => {
    const tb = tube('timeout');
    let seen: { aborted: boolean; reason: string | undefined } | undefined;
    const stuck = queue.task(tb, { timeoutMs: 300 })(async function stuck(_kw: { n: number }, ctx: TaskContext) {
      ctx.signal.addEventListener('abort', () => {
        seen = { aborted: ctx.signal.aborted, reason: (ctx.signal.reason as Error | undefined)?.name };
      });
      // Ignores its signal and never settles: the worker must not wait for it.
      await new Promise(() => {});
    });
    const { events, worker } = await startWorker(t, { tubes: [tb], url: server.url });
    const id = await stuck.put({ n: 1 });

    const failed = await events.waitFor('job:failed', (e) => e.jobId === id);
    assert.ok(failed.error instanceof TaskTimeoutError, `got ${String(failed.error)}`);
    assert.deepEqual(seen, { aborted: true, reason: 'TaskTimeoutError' });
    const buried = await events.waitFor('job:buried', (e) => e.jobId === id);
    assert.equal(await stateOf(server.url, buried.buriedAs), 'buried');
    assert.equal(worker.state, 'running');
    await rawCommand(server.url, `delete ${buried.buriedAs}\r\n`);
  });

  it('auto-kick: a failing job is kicked every period and deleted after maxKicks, with no manual kick', async (t) => {
    const tb = tube('autokick');
    const kicksSeen: number[] = [];
    const flaky = queue.task(tb)(async function alwaysFails(_kw: { n: number }, ctx: TaskContext) {
      kicksSeen.push((await ctx.stats()).kicks);
      throw new Error('still broken');
    });
    const { events } = await startWorker(t, { tubes: [tb], url: server.url, kickPeriodSeconds: 1, maxKicks: 2 });
    const id = await flaky.put({ n: 1 });

    const deleted = await events.waitFor('job:deleted', (e) => e.reason === 'max-kicks', 10_000);
    assert.equal(deleted.reason, 'max-kicks');
    assert.deepEqual(kicksSeen, [0, 1, 2], 'three runs: the first, then one per automatic kick (counted across copies)');
    const buried = eventsOf(events, 'job:buried', id);
    assert.equal(buried.length, 1);
    assert.equal(eventsOf(events, 'job:buried', buried[0].buriedAs).length, 1, 'the copy is buried once more');
    assert.equal(await rawStatsJob(server.url, deleted.jobId), null);
  });

  it('dead letter: at the kick bound the job moves to the dead-letter tube with its failure under meta', async (t) => {
    const tb = tube('dl-src');
    const deadTube = tube('dl');
    const bad = queue.task(tb)(async function bad(_kw: { order: number }) {
      throw new Error('cannot process order');
    });
    const { events } = await startWorker(t, { tubes: [tb], url: server.url, maxKicks: 0, deadLetterTube: deadTube });
    const putAt = Date.now();
    const id = await bad.put({ order: 42 });

    const deleted = await events.waitFor('job:deleted', (e) => e.jobId === id);
    assert.equal(deleted.reason, 'dead-letter');
    assert.equal(await rawStatsJob(server.url, id), null, 'the original is gone');
    const deadStats = await rawStatsTube(server.url, deadTube);
    assert.equal(deadStats?.['current-jobs-ready'], '1');
    assert.equal(deadStats?.['current-watching'], '0', 'no worker watches the dead-letter tube');

    // The raw helpers cannot `use` a tube and peek on one connection, so the project's client reads it.
    const connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
    t.after(() => connection.quit());
    await connection.use(deadTube);
    const peeked = await connection.peekReady();
    assert.ok(peeked, 'a ready job in the dead-letter tube');
    const body = JSON.parse(peeked.body.toString('utf8')) as Record<string, unknown> & { meta: { dead_letter: Record<string, unknown> } };
    const { meta, ...original } = body;
    assert.deepEqual(original, { func_name: 'bad', tube: tb, kwargs: { order: 42 } });
    const info = meta.dead_letter;
    assert.equal(info.error, 'cannot process order');
    assert.match(String(info.stack), /cannot process order/);
    assert.deepEqual([info.attempts, info.kicks, info.tube, info.job_id], [1, 0, tb, id]);
    const failedAt = Date.parse(String(info.failed_at));
    assert.ok(failedAt >= putAt - 1_000 && failedAt <= Date.now() + 1_000, `failed_at ${String(info.failed_at)}`);

    const decoded = decodeEnvelope(peeked.body);
    assert.ok(decoded.ok, 'the envelope decoder accepts a dead-letter body');
    assert.deepEqual([decoded.envelope.func_name, decoded.envelope.tube, decoded.envelope.kwargs], ['bad', tb, { order: 42 }]);
    await connection.delete(peeked.id);
  });

  it('a worker killed with SIGKILL mid-job: the job is ready again at once and a second worker runs it', async (t) => {
    const tb = tube('kill');
    let runs = 0;
    // The same task as the fixture's, registered here for the put and for the second worker.
    const crunch = queue.task(tb)(async function crunch(_kw: { n: number }) {
      runs += 1;
    });
    const child = spawnFixture(t, server.url, tb);
    await within(
      child.line((l) => l === 'ready'),
      20_000,
      'the child worker ready',
    );
    const id = await crunch.put({ n: 1 }, { ttr: 60 });
    await within(
      child.line((l) => l === `started ${id}`),
      10_000,
      'the child running the job',
    );
    assert.equal(await stateOf(server.url, id), 'reserved');

    const killedAt = performance.now();
    child.process.kill('SIGKILL');
    await within(child.exited, 5_000, 'the child exited');
    // The kernel closes the dead process's socket, and beanstalkd gives the job back at once: well before
    // its 60-second TTR (the bound is 5 s).
    await until(
      () => stateOf(server.url, id),
      (state) => state === 'ready',
      5_000,
      'the job ready again',
    );
    const readyAfterMs = performance.now() - killedAt;
    const stats = await rawStatsJob(server.url, id);
    assert.deepEqual(
      [stats?.reserves, stats?.timeouts, stats?.releases],
      ['1', '0', '0'],
      'given back by the closed socket, not by a TTR timeout',
    );
    assert.ok(readyAfterMs < 5_000, `ready after ${Math.round(readyAfterMs)} ms`);
    t.diagnostic(`ready again ${Math.round(readyAfterMs)} ms after the kill`);

    const { events } = await startWorker(t, { tubes: [tb], url: server.url });
    const deleted = await events.waitFor('job:deleted', (e) => e.jobId === id);
    assert.equal(deleted.reason, 'completed');
    assert.equal(runs, 1);
    assert.equal(await rawStatsJob(server.url, id), null);
  });
});

describe('production worker when beanstalkd restarts', () => {
  it('reconnects after a SIGKILL and a restart from the binlog, and finishes every job', async (t) => {
    const binlogDir = await mkdtemp(join(tmpdir(), 'bsworker-binlog-'));
    let srv = await startBeanstalkd({ binlogDir });
    const { port } = srv;
    t.after(async () => {
      await srv.stop('SIGKILL');
      await rm(binlogDir, { recursive: true, force: true });
    });
    const q = new JobQueue({ url: srv.url, logger: silent });
    t.after(() => q.close());

    const tb = tube('restart');
    // The run log: per job key, how often the task started and how often it ran to its end.
    const started = new Map<string, number>();
    const completed = new Map<string, number>();
    const bump = (map: Map<string, number>, key: string): number => {
      const count = (map.get(key) ?? 0) + 1;
      map.set(key, count);
      return count;
    };
    const gate = deferred();
    const bothSlowIn = deferred();
    let slowActive = 0;
    const step = q.task(tb)(async function step(kw: { key: string; slow?: boolean; failFirst?: boolean }) {
      const run = bump(started, kw.key);
      if (kw.failFirst && run === 1) throw new Error('the first run fails, so the job is buried');
      if (kw.slow) {
        slowActive += 1;
        if (slowActive === 2) bothSlowIn.resolve();
        await gate.promise;
      }
      bump(completed, kw.key);
    });

    const logs = new LogCapture();
    const { worker, events } = await startWorker(t, {
      tubes: [tb],
      url: srv.url,
      concurrency: 2,
      maxKicks: 100,
      // A short cap keeps the test quick; the backoff curve itself is unit-tested.
      reconnectMaxMs: 500,
      logger: pino({ level: 'warn' }, logs.stream),
    });

    // Buried: a job whose first run fails.
    const failingId = await step.put({ key: 'buried', failFirst: true });
    // Buried with its failure record, as a copy with a new id.
    const buriedId: string = (await events.waitFor('job:buried', (e) => e.jobId === failingId)).buriedAs;
    // Reserved: both slots busy with slow jobs, so that the jobs put next stay where they are.
    const slowKeys = ['slow-1', 'slow-2'];
    const slowIds = await Promise.all(slowKeys.map((key) => step.put({ key, slow: true })));
    await within(bothSlowIn.promise, 5_000, 'both slow jobs running');
    const readyKeys = ['ready-1', 'ready-2', 'ready-3'];
    const readyIds = await Promise.all(readyKeys.map((key) => step.put({ key })));
    const delayedKeys = ['delayed-1', 'delayed-2'];
    const delayedIds = await Promise.all(delayedKeys.map((key) => step.put({ key }, { delay: 1 })));
    const states = async (ids: string[]): Promise<string[]> => Promise.all(ids.map((id) => stateOf(srv.url, id)));
    assert.deepEqual(
      {
        buried: await states([buriedId]),
        reserved: await states(slowIds),
        ready: await states(readyIds),
        delayed: await states(delayedIds),
      },
      { buried: ['buried'], reserved: ['reserved', 'reserved'], ready: ['ready', 'ready', 'ready'], delayed: ['delayed', 'delayed'] },
      'every kind of job is on the server when it dies',
    );

    await srv.stop('SIGKILL');
    // The slow tasks finish while the server is down: their deletes cannot reach it, so the binlog still
    // has those jobs as reserved, and they come back ready after the restart (at-least-once).
    gate.resolve();
    await until(
      () => logs.find(/reconnect attempt \d+ .* failed/).length,
      (n) => n >= 1,
      5_000,
      'a failed reconnect attempt while the server is down',
    );
    assert.equal(worker.state, 'running', 'the worker rides out the outage');

    srv = await startBeanstalkd({ port, binlogDir });
    await events.waitFor('worker:reconnected');
    const finished = [...slowIds, ...readyIds, ...delayedIds];
    await within(
      Promise.all(finished.map((id) => events.waitFor('job:deleted', (e) => e.jobId === id))),
      15_000,
      'every ready, delayed and reserved job deleted after the restart',
    );
    for (const id of finished) assert.equal(await rawStatsJob(srv.url, id), null, `job ${id} deleted`);
    for (const key of [...slowKeys, ...readyKeys, ...delayedKeys]) {
      assert.ok((completed.get(key) ?? 0) >= 1, `${key} completed at least once`);
    }
    // A slow job's first run ended while the server was down, so it ran again.
    for (const key of slowKeys) assert.equal(started.get(key), 2, `${key} ran again after the restart`);

    // The buried job stays buried through the restart until someone kicks it.
    assert.equal(await stateOf(srv.url, buriedId), 'buried');
    assert.equal(started.get('buried'), 1);
    assert.equal(await rawCommand(srv.url, `kick-job ${buriedId}\r\n`), 'KICKED\r\n');
    await events.waitFor('job:deleted', (e) => e.jobId === buriedId);
    assert.equal(completed.get('buried'), 1);

    const tubeStats = await rawStatsTube(srv.url, tb);
    const left = ['ready', 'reserved', 'delayed', 'buried'].map((s) => tubeStats?.[`current-jobs-${s}`]);
    assert.deepEqual(left, ['0', '0', '0', '0'], 'nothing left behind');
    assert.equal(worker.state, 'running');
    for (const { name, payload } of events.events) {
      if (name === 'worker:error') assert.ok(payload instanceof ConnectionError, `only connection losses: ${String(payload)}`);
    }
  });

  it('a put during an outage waits for the server, up to connectTimeoutMs', async (t) => {
    let srv = await startBeanstalkd();
    const { port } = srv;
    t.after(() => srv.stop());
    await srv.stop('SIGKILL');
    // A producer that meets the outage: its put finds nothing listening and waits. (A put written in the
    // very instant the server dies fails instead: it may or may not have been stored, see the README.)
    const q = new JobQueue({ url: `127.0.0.1:${port}`, logger: silent, connectTimeoutMs: 3_000 });
    t.after(() => q.close());
    const tb = tube('outage');
    const note = q.task(tb)(async function note(_kw: { n: number }) {});
    const put = note.put({ n: 1 });
    // A failure before the restart would otherwise be an unhandled rejection while the test sleeps.
    put.catch(() => undefined);
    // The workload: an outage of half a second.
    await sleep(500);
    srv = await startBeanstalkd({ port });
    const id = await within(put, 5_000, 'the put made during the outage');
    assert.match(id, /^\d+$/);
    const stats = await rawStatsJob(srv.url, id);
    assert.deepEqual([stats?.state, stats?.tube], ['ready', tb]);
  });

  it('a put with nothing to connect to rejects with ConnectionError after about connectTimeoutMs', async (t) => {
    const port = await freePort();
    const q = new JobQueue({ url: `127.0.0.1:${port}`, logger: silent, connectTimeoutMs: 300 });
    t.after(() => q.close());
    const note = q.task(tube('nowhere'))(async function note(_kw: { n: number }) {});
    const startedAt = performance.now();
    await assert.rejects(note.put({ n: 1 }), ConnectionError);
    const elapsed = performance.now() - startedAt;
    // It retried (two backoff sleeps, 50 and 100 ms, come before a give-up) and gave up near its bound.
    assert.ok(elapsed >= 100, `gave up after ${Math.round(elapsed)} ms, without waiting`);
    assert.ok(elapsed < 3_000, `gave up after ${Math.round(elapsed)} ms`);
  });
});

/** A spawned fixture worker: its stdout lines, a wait for a line, and its exit. */
interface FixtureChild {
  readonly process: ChildProcessWithoutNullStreams;
  line(match: (line: string) => boolean): Promise<string>;
  readonly exited: Promise<void>;
}

/** Spawns test/fixtures/slow-worker.ts; the test's `after` kills it if it is still running. */
function spawnFixture(t: TestContext, url: string, tb: string): FixtureChild {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, tb], { cwd: REPO, env: childEnv({}) });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    process: child,
    exited,
    line(match) {
      return new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found !== undefined) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        // A child that dies first would otherwise leave only the caller's timeout, without the reason.
        void exited.then(() => {
          waiters.delete(check);
          reject(new Error(`the fixture exited (code ${String(child.exitCode)}); stderr: ${stderr.trim()}`));
        });
        check();
      });
    },
  };
}
