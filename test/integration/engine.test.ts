// The reservation engine against a real beanstalkd (issue 11, step 1): several reserved jobs on one
// connection, the tube of every job known from the connection that reserved it (no stats-job, and only
// that tube's tasks run), one waiting reserve per server when the tubes are empty, and a TTR keep-alive
// that never waits behind that reserve.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { encodeEnvelope, JobQueue, type TaskContext } from '../../src/index.js';
import { type BeanstalkdServer, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { deferred, eventsOf, freshTube, registry, startWorker, until, within } from '../helpers/real-worker.js';

/** A server-wide counter of `stats`, read on a raw connection. */
async function serverCounter(url: string, name: string): Promise<number> {
  const reply = await rawCommand(url, 'stats\r\n');
  const match = new RegExp(`^${name}: (\\d+)$`, 'm').exec(reply);
  if (match?.[1] === undefined) throw new Error(`no ${name} in stats`);
  return Number(match[1]);
}

describe('the reservation engine against beanstalkd', { timeout: 60_000 }, () => {
  let server: BeanstalkdServer;

  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server?.stop();
  });

  it('three watched tubes: each job runs the task of its own tube, whatever its envelope says, with no stats-job per job', async (t) => {
    const [a, b, c] = [freshTube('ea'), freshTube('eb'), freshTube('ec')];
    const ran: string[] = [];
    for (const tube of [a, b, c]) {
      registry.task(tube)(function where(kwargs: { n: number }, ctx: TaskContext) {
        ran.push(`${tube}:${kwargs.n}:${ctx.tube}`);
      });
    }
    // Registered only in b: a job of tube a naming it (and naming tube b) must not run it.
    let crossed = 0;
    registry.task(b)(function onlyInB(_kwargs: object) {
      crossed += 1;
    });
    const ids: { id: string; tube: string; n: number }[] = [];
    for (let n = 0; n < 30; n += 1) {
      const tube = [a, b, c][n % 3] as string;
      // Every envelope names another watched tube than the one the job is in.
      const named = [b, c, a][n % 3] as string;
      ids.push({ id: await rawPut(server.url, tube, encodeEnvelope('where', named, { n })), tube, n });
    }
    const crossing = await rawPut(server.url, a, encodeEnvelope('onlyInB', b, {}));
    const statsJobsBefore = await serverCounter(server.url, 'cmd-stats-job');

    const { events } = await startWorker(t, { tubes: [a, b, c], url: server.url, concurrency: 8, maxCrashes: 0 });
    for (const { id } of ids) await events.waitFor('job:deleted', (event) => event.jobId === id, 10_000);
    const buried = await events.waitFor('job:buried', (event) => event.jobId === crossing, 10_000);

    assert.equal(buried.reason, 'unregistered');
    assert.equal(buried.tube, a);
    assert.equal(crossed, 0, "b's task never ran for a job of tube a");
    assert.deepEqual([...ran].sort(), ids.map(({ tube, n }) => `${tube}:${n}:${tube}`).sort());
    for (const { id, tube } of ids) assert.equal(eventsOf(events, 'job:deleted', id)[0]?.tube, tube);
    // The bury's stats-job (it reads the counters), and one for the job the start's wait handed out
    // (its tube is read once; then the lanes open and know their tubes): none per job.
    assert.equal((await serverCounter(server.url, 'cmd-stats-job')) - statsJobsBefore, 2);
  });

  it("twenty watched tubes: an idle worker holds one connection (the wait's), the first job opens each tube's lane, and no listener-leak warning", async (t) => {
    const tubes = Array.from({ length: 20 }, (_, i) => freshTube(`many${i}`));
    const ran: string[] = [];
    for (const tube of tubes) {
      registry.task(tube)(function many(_kwargs: object, ctx: TaskContext) {
        ran.push(ctx.tube);
      });
    }
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(`${warning.name}: ${warning.message}`);
    };
    process.on('warning', onWarning);
    t.after(() => {
      process.off('warning', onWarning);
    });
    const last = tubes[tubes.length - 1] as string;
    const watching = async (): Promise<number> => Number((await rawStatsTube(server.url, last))?.['current-watching'] ?? 0);
    const { worker } = await startWorker(t, { tubes, url: server.url, concurrency: 4, maxCrashes: 0 });
    // Idle on twenty tubes: one connection, watching them all, and none per tube.
    assert.equal(await watching(), 1);
    for (const tube of tubes) await rawPut(server.url, tube, encodeEnvelope('many', tube, {}));
    await until(
      () => ran.length,
      (count) => count >= tubes.length,
      10_000,
      'a job of every tube ran',
    );
    assert.deepEqual([...ran].sort(), [...tubes].sort());
    // The first job opened the tubes' lanes: the last tube's own and the wait's.
    assert.equal(await watching(), 2);
    await worker.stop();
    assert.deepEqual(
      warnings.filter((warning) => warning.startsWith('MaxListenersExceededWarning')),
      [],
      'one stop listener per connecting lane is expected',
    );
  });

  it('idle: one waiting reserve for the server, not one per place; a wake-up on several tubes costs one stats-job', async (t) => {
    const [a, b] = [freshTube('wa'), freshTube('wb')];
    let ran = 0;
    registry.task(b)(function woken(_kwargs: object) {
      ran += 1;
    });
    const { events } = await startWorker(t, { tubes: [a, b], url: server.url, concurrency: 16 });
    // current-waiting counts connections with a reserve waiting on the tube: one, for 16 places.
    await until(
      () => rawStatsTube(server.url, b),
      (stats) => stats?.['current-waiting'] === '1',
      5_000,
      'one reserve waiting on the tube',
    );
    assert.equal((await rawStatsTube(server.url, a))?.['current-waiting'], '1');
    const statsJobsBefore = await serverCounter(server.url, 'cmd-stats-job');
    const id = await rawPut(server.url, b, encodeEnvelope('woken', b, {}));
    const deleted = await events.waitFor('job:deleted', (event) => event.jobId === id, 5_000);
    assert.equal(deleted.tube, b);
    assert.equal(ran, 1);
    // One to learn the woken job's tube, and the crash check of a worker's first jobs.
    assert.ok((await serverCounter(server.url, 'cmd-stats-job')) - statsJobsBefore <= 2);
  });

  it('connections opened for waits during bursts of long jobs are closed once the worker is idle again', async (t) => {
    const tube = freshTube('trim');
    const release = deferred();
    let started = 0;
    registry.task(tube)(async function held(_kwargs: object) {
      started += 1;
      await release.promise;
    });
    await startWorker(t, { tubes: [tube], url: server.url, concurrency: 8 });
    const watching = async (): Promise<number> => Number((await rawStatsTube(server.url, tube))?.['current-watching'] ?? 0);
    // One job at a time, each started before the next is put: every wake-up leaves its connection
    // holding a running job, so the next wait needs a new connection.
    for (let n = 1; n <= 8; n += 1) {
      await rawPut(server.url, tube, encodeEnvelope('held', tube, {}));
      await until(
        () => started,
        (count) => count >= n,
        5_000,
        `job ${n} started`,
      );
    }
    const busy = await until(watching, (count) => count >= 8, 5_000, 'a connection per running job and one waiting');
    release.resolve();
    // Idle again: the waiting connection and one spare are left, not one per place.
    const idle = await until(watching, (count) => count <= 2, 5_000, 'the extra connections closed');
    assert.ok(busy > idle, `${busy} connections while busy, ${idle} idle`);
  });

  it('a job longer than two TTRs is touched on time while its tube is empty and the worker waits for more', async (t) => {
    const tube = freshTube('ttr');
    const started = deferred();
    let runs = 0;
    registry.task(tube)(async function long(_kwargs: object) {
      runs += 1;
      started.resolve();
      // Longer than two TTRs of 2 s: only touches keep it.
      await sleep(4_500);
    });
    const quick = new Set<string>();
    registry.task(tube)(function quickOne(_kwargs: object, ctx: TaskContext) {
      quick.add(ctx.jobId);
    });
    const { events } = await startWorker(t, { tubes: [tube], url: server.url, concurrency: 4 });
    const queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
    t.after(() => queue.close());
    const id = await rawPut(server.url, tube, encodeEnvelope('long', tube, {}), { ttr: 2 });
    await within(started.promise, 5_000, 'the long job started');
    // Meanwhile the tube is empty: the engine waits, on a connection that holds no job.
    await until(
      () => rawStatsTube(server.url, tube),
      (stats) => stats?.['current-waiting'] === '1',
      5_000,
      'the worker waiting on the tube beside the running job',
    );
    const others = [];
    for (let n = 0; n < 5; n += 1) others.push(await rawPut(server.url, tube, encodeEnvelope('quickOne', tube, { n })));
    for (const other of others) await events.waitFor('job:deleted', (event) => event.jobId === other, 5_000);
    const deleted = await events.waitFor('job:deleted', (event) => event.jobId === id, 15_000);
    assert.equal(deleted.reason, 'completed');
    assert.equal(runs, 1, 'ran once: the touches kept the reservation');
    assert.deepEqual(eventsOf(events, 'job:overrun', id), []);
    assert.equal(await rawStatsJob(server.url, id), null);
    assert.equal(quick.size, 5);
  });
});
