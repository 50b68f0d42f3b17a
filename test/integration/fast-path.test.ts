// The worker's fast path against a real beanstalkd, seen through the server's own counters: a job that
// succeeds costs no stats-job once the crash-check budget is spent, checkNextJobsForCrashes() grants a
// new budget, and a job whose earlier workers died is buried as crashed by a fresh worker. (A child's
// death turning the checks back on in its siblings is tested with the pool, in supervisor.test.ts.)
//
// Waits are for events, log lines or the server's counters, each with a bound; none is a sleep.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { JobQueue } from '../../src/tasks/queue.js';
import type { TaskContext } from '../../src/tasks/types.js';
import type { JobEvent } from '../../src/worker/events.js';
import { Worker } from '../../src/worker/worker.js';
import { type BeanstalkdServer, rawCommand, rawPeekBody, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { EventRecorder } from '../helpers/events.js';

const silent = pino({ level: 'silent' });
const TEST_TIMEOUT = { timeout: 15_000 };

/** One counter of the server's `stats`, e.g. `cmd-stats-job`. */
async function serverCounter(url: string, name: string): Promise<number> {
  const reply = await rawCommand(url, 'stats\r\n');
  const match = new RegExp(`^${name}: (\\d+)$`, 'm').exec(reply);
  assert.ok(match?.[1] !== undefined, `stats has no ${name}: ${reply.slice(0, 200)}`);
  return Number(match[1]);
}

/** The counters these tests follow, read together. */
async function counters(url: string): Promise<{ statsJob: number; delete: number; bury: number }> {
  return {
    statsJob: await serverCounter(url, 'cmd-stats-job'),
    delete: await serverCounter(url, 'cmd-delete'),
    bury: await serverCounter(url, 'cmd-bury'),
  };
}

/** Puts `count` jobs one after another; resolves to their ids in order. */
async function putEach(count: number, put: (n: number) => Promise<string>): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n += 1) ids.push(await put(n));
  return ids;
}

type Recorder = EventRecorder<JobEvent & { reason?: string }, 'job:deleted' | 'job:buried'>;

/** Records the worker's deletes and burials from now on: a job can be done before its put resolves. */
function record(worker: Worker): Recorder {
  return new EventRecorder(worker, ['job:deleted', 'job:buried']);
}

/** Resolves once `event` was recorded for every id in `ids`; each wait is bounded by the recorder. */
async function settled(events: Recorder, event: 'job:deleted' | 'job:buried', ids: readonly string[]): Promise<void> {
  for (const id of ids) await events.waitFor(event, (payload) => payload.jobId === id);
}

describe('the fast path against beanstalkd', () => {
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

  it('200 jobs cost 16 stats-jobs (the budget at concurrency 4), not 200; checkNextJobsForCrashes() 16 more', TEST_TIMEOUT, async (t) => {
    const tube = `fast-${randomUUID().slice(0, 8)}`;
    let runs = 0;
    const task = queue.task(tube)(async function quick(_kwargs: { n: number }) {
      runs += 1;
    });
    const ids = await putEach(200, (n) => task.put({ n }));
    const before = await counters(server.url);

    const worker = new Worker({ tubes: [tube], url: server.url, logger: silent, concurrency: 4 });
    t.after(() => worker.stop({ force: true }));
    const events = record(worker);
    await worker.start();
    await settled(events, 'job:deleted', ids);

    const afterRun = await counters(server.url);
    assert.equal(runs, 200);
    assert.equal(afterRun.delete - before.delete, 200, 'one delete per job');
    assert.equal(afterRun.statsJob - before.statsJob, 16, 'stats-job for the first max(16, 4 * 4) jobs only, not for all 200');
    assert.equal(afterRun.bury - before.bury, 0);
    const stats = await rawStatsTube(server.url, tube);
    assert.deepEqual(
      [stats?.['current-jobs-ready'], stats?.['current-jobs-reserved'], stats?.['current-jobs-buried'], stats?.['total-jobs']],
      ['0', '0', '0', '200'],
    );

    worker.checkNextJobsForCrashes();
    const more = await putEach(20, (n) => task.put({ n }));
    await settled(events, 'job:deleted', more);
    const afterMore = await counters(server.url);
    assert.equal(afterMore.statsJob - afterRun.statsJob, 16, 'a fresh budget of 16 checks');
    assert.equal(afterMore.delete - afterRun.delete, 20);
    assert.equal(runs, 220);
  });

  it('a fresh worker buries, without running it, a job whose reservations were abandoned maxCrashes times', TEST_TIMEOUT, async (t) => {
    const tube = `poison-${randomUUID().slice(0, 8)}`;
    const ran: string[] = [];
    const task = queue.task(tube)(async function suspect(_kwargs: { n: number }, ctx: TaskContext) {
      ran.push(ctx.jobId);
    });
    const poison = await task.put({ n: 0 });
    // Three workers that died holding it: each reservation ends with its connection, unsettled.
    for (let i = 0; i < 3; i += 1) assert.match(await rawCommand(server.url, `reserve-job ${poison}\r\n`), /^RESERVED /);
    const seen = await rawStatsJob(server.url, poison);
    assert.deepEqual([seen?.state, seen?.reserves, seen?.releases, seen?.timeouts], ['ready', '3', '0', '0']);
    const others = await putEach(10, (n) => task.put({ n: n + 1 }));
    const before = await counters(server.url);

    const worker = new Worker({ tubes: [tube], url: server.url, logger: silent, concurrency: 4 });
    t.after(() => worker.stop({ force: true }));
    const events = record(worker);
    await worker.start();
    const burial = await events.waitFor('job:buried');
    await settled(events, 'job:deleted', others);

    assert.equal(burial.jobId, poison);
    assert.equal(burial.reason, 'crashed');
    assert.equal(events.events.filter((entry) => entry.name === 'job:buried').length, 1, 'only the poison job was buried');
    assert.ok(!ran.includes(poison), 'the poison job never ran');
    assert.deepEqual([...ran].sort(), [...others].sort());
    const afterRun = await counters(server.url);
    assert.equal(afterRun.statsJob - before.statsJob, 11, 'each of the 11 jobs checked once, within the budget');
    assert.equal(afterRun.bury - before.bury, 1);
    // Buried as a copy with its failure record, which carries the original's reserves.
    const copy = (burial as { buriedAs?: string }).buriedAs as string;
    assert.equal(await rawStatsJob(server.url, poison), null);
    assert.equal((await rawStatsJob(server.url, copy))?.state, 'buried');
    assert.equal(JSON.parse((await rawPeekBody(server.url, copy)) as string).meta.carried.reserves, 3);
  });
});
