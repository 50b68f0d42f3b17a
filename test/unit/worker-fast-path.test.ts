/**
 * The worker's fast path, against the in-memory beanstalkd (test/helpers/fake-server.ts): a job that
 * succeeds costs reserve + delete and no stats-job; the counters are read only where they are needed
 * (crash checks for the first jobs, failures, bad bodies, long tasks, ctx.stats()); the tube is the
 * lane's, so only the tube's own task runs; and the next reserve is written right behind the delete,
 * without waiting for its reply.
 *
 * Some tests wrap the fake's connections (never the fake itself) through `fake.connect`: a delete whose
 * reply the test holds back, or a stats-job that reports reservations no worker settled (crashes).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, it } from 'node:test';

import { NotFoundError } from '../../src/beanstalk/errors.js';
import type { TaskContext } from '../../src/tasks/types.js';
import {
  body,
  deferred,
  type FakeConnection,
  type FakeServer,
  forever,
  letEventLoopTurn,
  payloads,
  queue,
  randomTube,
  SUITE,
  setup,
  stopWorkers,
  within,
} from '../helpers/fake-server.js';

// Fails a test that leaves a worker running, or whose fake saw what a correct worker never does.
afterEach(stopWorkers);

/** The waiting reserve, with the timeout {@link setup} gives every worker, as the fake records it. */
const WAIT = ['reserve', 30];
/** A pipelined reserve: answers a job or TIMED_OUT at once. */
const ASK = ['reserve', 0];

/** Calls `patch` on every connection the worker opens from now on, with its index in `fake.connections`. */
function onEachConnection(fake: FakeServer, patch: (connection: FakeConnection, index: number) => void): void {
  const connect = fake.connect.bind(fake);
  fake.connect = async () => {
    const connection = await connect();
    patch(connection, fake.connections.length - 1);
    return connection;
  };
}

/**
 * Holds back the reply to the first delete on connection `conn`: the command is written (recorded) at
 * once, its promise settles only when `release()` is called. `settled` says whether it has.
 */
function holdFirstDelete(fake: FakeServer, conn = 0) {
  const gate = deferred();
  const state = { settled: false, release: () => gate.resolve() };
  let held = false;
  onEachConnection(fake, (connection, index) => {
    if (index !== conn) return;
    const remove = connection.delete.bind(connection);
    connection.delete = (id: string) => {
      const sent = remove(id);
      if (held) return sent;
      held = true;
      // Handled here too, so that a NOT_FOUND held back is not reported as unhandled meanwhile.
      sent.catch(() => undefined);
      const reply = gate.promise.then(() => sent);
      reply.then(
        () => {
          state.settled = true;
        },
        () => {
          state.settled = true;
        },
      );
      return reply;
    };
  });
  return state;
}

/**
 * Makes stats-job report `abandoned` more reservations of job `id` than the fake counts, none of them
 * settled: as if that many workers had died holding it.
 */
function crashedBefore(fake: FakeServer): Map<string, number> {
  const abandoned = new Map<string, number>();
  onEachConnection(fake, (connection) => {
    const statsJob = connection.statsJob.bind(connection);
    connection.statsJob = async (id: string) => {
      const stats = await statsJob(id);
      const extra = abandoned.get(id);
      return stats && extra !== undefined ? { ...stats, reserves: stats.reserves + extra } : stats;
    };
  });
  return abandoned;
}

describe('Worker: the success path needs no stats-job', SUITE, () => {
  it('one watched tube: each job is reserve, run, delete (whatever tube its envelope names), the next reserve right behind, then one wait', async () => {
    const tube = randomTube();
    const seen: { jobId: string; tube: string }[] = [];
    queue.task(tube)(function quick(_kwargs: object, ctx: TaskContext) {
      seen.push({ jobId: ctx.jobId, tube: ctx.tube });
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    // With one watched tube the job can only come from it, whatever its envelope says (or omits).
    const ids = [tube, undefined, 'some-other-tube'].map((named, n) => fake.addJob(body('quick', named, { n }), { tube }));
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === ids[2]);
    await fake.waitForIdleReserve(0);

    assert.deepEqual(fake.calls('statsJob'), []);
    assert.deepEqual(fake.sentOn(0), [
      ['watch', tube],
      ['ignore', 'default'],
      ASK,
      ['delete', ids[0]],
      ASK,
      ['delete', ids[1]],
      ASK,
      ['delete', ids[2]],
      // TIMED_OUT: the tube is empty, and once the delete has answered the connection holds nothing.
      ASK,
      WAIT,
    ]);
    assert.deepEqual(
      seen,
      ids.map((jobId) => ({ jobId, tube })),
    );
    assert.deepEqual(
      payloads(events, 'job:deleted'),
      ids.map((jobId) => ({ jobId, tube, task: 'quick', reason: 'completed' })),
    );
  });

  it("several watched tubes: no stats-job whatever the envelope names, and only a task registered in the job's own tube runs", async () => {
    const [a, b] = [randomTube(), randomTube()];
    const seen = new Map<string, string>();
    queue.task(a)(function inA(_kwargs: object, ctx: TaskContext) {
      seen.set(ctx.jobId, ctx.tube);
    });
    queue.task(b)(function inB(_kwargs: object, ctx: TaskContext) {
      seen.set(ctx.jobId, ctx.tube);
    });
    const { worker, fake, events } = setup({ tubes: [a, b], maxCrashes: 0 });
    const named = fake.addJob(body('inB', b), { tube: b });
    const otherTube = fake.addJob(body('inA', a), { tube: a });
    // A producer that put the job into b but named a tube this worker does not watch.
    const misnamed = fake.addJob(body('inB', 'not-watched-here'), { tube: b });
    // A producer that named no tube at all.
    const unnamed = fake.addJob(body('inB', undefined), { tube: b });
    // In tube a, naming b's task and tube b: b's task must not run for a job of tube a.
    const crossing = fake.addJob(body('inB', b), { tube: a });
    const ids = [named, otherTube, misnamed, unnamed, crossing];
    await worker.start();
    await fake.waitUntil(
      () => ids.every((id) => fake.job(id)?.state === 'deleted' || fake.job(id)?.state === 'buried'),
      'the five jobs settled',
    );

    // The start's wait (open before the lanes) handed out the first job, whose tube is read once; the
    // other stats-job is the crossing job's bury, which reads the counters. None per job to learn a tube.
    assert.deepEqual(fake.calls('statsJob'), [[named], [crossing]]);
    assert.deepEqual(Object.fromEntries(seen), { [named]: b, [otherTube]: a, [misnamed]: b, [unnamed]: b }, 'ctx.tube');
    for (const [id, tube] of [
      [named, b],
      [otherTube, a],
      [misnamed, b],
      [unnamed, b],
    ] as const) {
      const deleted = await events.waitFor('job:deleted', (event) => event.jobId === id);
      assert.equal(deleted.tube, tube, `job:deleted tube of job ${id}`);
      assert.equal((await events.waitFor('job:reserved', (event) => event.jobId === id)).tube, tube, `job:reserved tube of job ${id}`);
    }
    const buried = await events.waitFor('job:buried', (event) => event.jobId === crossing);
    assert.equal(buried.reason, 'unregistered');
    assert.equal(buried.tube, a);
    assert.match(buried.detail, /no task named "inB" is registered in tube/);
  });
});

describe('Worker: crash checks', SUITE, () => {
  it('buries a job with maxCrashes abandoned reservations (maxCrashes * (kicks + 1)) without running it', async () => {
    const tube = randomTube();
    const ran: string[] = [];
    queue.task(tube)(function maybePoison(_kwargs: object, ctx: TaskContext) {
      ran.push(ctx.jobId);
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxCrashes: 3 });
    const abandoned = crashedBefore(fake);
    const poison = fake.addJob(body('maybePoison', tube), { tube, priority: 321 });
    const below = fake.addJob(body('maybePoison', tube), { tube });
    const kickedBelow = fake.addJob(body('maybePoison', tube), { tube, kicks: 1 });
    const kickedPoison = fake.addJob(body('maybePoison', tube), { tube, kicks: 1, priority: 9 });
    abandoned.set(poison, 3);
    abandoned.set(below, 2);
    // One kick allows maxCrashes more: 3 * (1 + 1) = 6.
    abandoned.set(kickedBelow, 5);
    abandoned.set(kickedPoison, 6);
    await worker.start();

    const buried = await events.waitFor('job:buried', (event) => event.jobId === poison);
    assert.equal(buried.reason, 'crashed');
    assert.match(buried.detail, /reserved 4 times, 3 of them ended without a result/);
    assert.equal((await events.waitFor('job:buried', (event) => event.jobId === kickedPoison)).reason, 'crashed');
    await events.waitFor('job:deleted', (event) => event.jobId === below);
    await events.waitFor('job:deleted', (event) => event.jobId === kickedBelow);

    assert.deepEqual(ran, [below, kickedBelow], 'only the jobs under the limit ran');
    assert.deepEqual(fake.calls('bury'), [
      [poison, 321],
      [kickedPoison, 9],
    ]);
    // One stats-job per job, before it runs: the crash check, whose counters the bury reuses.
    assert.deepEqual(fake.calls('statsJob'), [[poison], [below], [kickedBelow], [kickedPoison]]);
    assert.equal(payloads(events, 'job:reserved').length, 2, 'a crashed job is not announced as reserved');
    assert.ok(
      lines.some((line) => line.level === 50 && line.jobId === poison && line.reason === 'crashed'),
      'an error line for the crashed job',
    );
  });

  it('checks the first max(16, 4 * concurrency) jobs, then none; checkNextJobsForCrashes() checks the next ones again', async () => {
    const tube = randomTube();
    const ran = new Set<string>();
    queue.task(tube)(function counted(_kwargs: object, ctx: TaskContext) {
      ran.add(ctx.jobId);
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const abandoned = crashedBefore(fake);
    const first = Array.from({ length: 20 }, (_, n) => fake.addJob(body('counted', tube, { n }), { tube }));
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === first[19]);
    assert.deepEqual(
      fake.calls('statsJob'),
      first.slice(0, 16).map((id) => [id]),
      'the first 16 jobs (concurrency 1) were checked, the other 4 were not',
    );

    // Past the budget a job is not checked, so one that crashed workers before runs: what the budget trades.
    const unchecked = fake.addJob(body('counted', tube), { tube });
    abandoned.set(unchecked, 3);
    await events.waitFor('job:deleted', (event) => event.jobId === unchecked);
    assert.ok(ran.has(unchecked));
    assert.equal(fake.calls('statsJob').length, 16);

    worker.checkNextJobsForCrashes();
    const poison = fake.addJob(body('counted', tube), { tube });
    abandoned.set(poison, 3);
    const again = Array.from({ length: 17 }, (_, n) => fake.addJob(body('counted', tube, { n }), { tube }));
    await events.waitFor('job:deleted', (event) => event.jobId === again[16]);
    assert.equal((await events.waitFor('job:buried', (event) => event.jobId === poison)).reason, 'crashed');
    assert.ok(!ran.has(poison), 'the crashed job did not run');
    assert.deepEqual(
      fake.calls('statsJob').slice(16),
      [poison, ...again.slice(0, 15)].map((id) => [id]),
      'a fresh budget of 16 checks after checkNextJobsForCrashes()',
    );
  });

  it('the budget grows with concurrency: 4 * 5 = 20 checks for 5 slots', async () => {
    const tube = randomTube();
    queue.task(tube)(function many(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube], concurrency: 5 });
    const ids = Array.from({ length: 30 }, (_, n) => fake.addJob(body('many', tube, { n }), { tube }));
    await worker.start();
    for (const id of ids) await events.waitFor('job:deleted', (event) => event.jobId === id);
    assert.equal(fake.calls('statsJob').length, 20);

    worker.checkNextJobsForCrashes();
    const more = Array.from({ length: 30 }, (_, n) => fake.addJob(body('many', tube, { n }), { tube }));
    for (const id of more) await events.waitFor('job:deleted', (event) => event.jobId === id);
    assert.equal(fake.calls('statsJob').length, 40);
    const checked = new Set(fake.calls('statsJob').map(([id]) => id));
    assert.equal(checked.size, 40, 'each checked job was checked once');
  });

  it('maxCrashes 0 turns the checks off: no stats-job even for the first jobs or after checkNextJobsForCrashes()', async () => {
    const tube = randomTube();
    const ran: string[] = [];
    queue.task(tube)(function unchecked(_kwargs: object, ctx: TaskContext) {
      ran.push(ctx.jobId);
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    const abandoned = crashedBefore(fake);
    const crashed = fake.addJob(body('unchecked', tube), { tube });
    abandoned.set(crashed, 50);
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === crashed);
    worker.checkNextJobsForCrashes();
    const next = fake.addJob(body('unchecked', tube), { tube });
    abandoned.set(next, 50);
    await events.waitFor('job:deleted', (event) => event.jobId === next);
    assert.deepEqual(ran, [crashed, next]);
    assert.deepEqual(fake.calls('statsJob'), []);
    assert.deepEqual(fake.calls('bury'), []);
  });
});

describe('Worker: the counters are read only when needed', SUITE, () => {
  it('a failure reads them once per run, after the task, and keeps the priority on release and bury', async () => {
    const tube = randomTube();
    const statsJobsAtRun: number[] = [];
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    queue.task(tube, { retries: 1, backoff: { type: 'fixed', delaySeconds: 7, jitter: false } })(function flops(_kwargs: object) {
      statsJobsAtRun.push(fake.calls('statsJob').length);
      throw new Error('flop');
    });
    const id = fake.addJob(body('flops', tube), { tube, priority: 77 });
    await worker.start();
    assert.equal((await events.waitFor('job:buried', (event) => event.jobId === id)).reason, 'failed');

    assert.deepEqual(statsJobsAtRun, [0, 1], 'not read before either run');
    assert.deepEqual(fake.calls('statsJob'), [[id], [id]]);
    assert.deepEqual(fake.calls('release'), [[id, 77, 7]]);
    assert.deepEqual(fake.calls('bury'), [[id, 77]]);
    assert.deepEqual(
      payloads(events, 'job:failed').map((event) => event.attempt),
      [1, 2],
    );
    // The next reserve follows the release and the bury as it follows a delete.
    await fake.waitForIdleReserve(0);
    const sent = fake.sentOn(0).map(([command]) => command);
    assert.equal(sent[sent.indexOf('release') + 1], 'reserve');
    assert.equal(sent[sent.indexOf('bury') + 1], 'reserve');
  });

  it('an undecodable or unregistered body reads them, to bury it with its priority', async () => {
    const tube = randomTube();
    queue.task(tube)(function registered(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    const garbage = fake.addJob('not json', { tube, priority: 5 });
    const stranger = fake.addJob(body('nobodyHome', tube), { tube, priority: 6 });
    const fine = fake.addJob(body('registered', tube), { tube });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === fine);
    assert.equal((await events.waitFor('job:buried', (event) => event.jobId === garbage)).reason, 'undecodable');
    assert.equal((await events.waitFor('job:buried', (event) => event.jobId === stranger)).reason, 'unregistered');
    assert.deepEqual(fake.calls('statsJob'), [[garbage], [stranger]]);
    assert.deepEqual(fake.calls('bury'), [
      [garbage, 5],
      [stranger, 6],
    ]);
  });

  it('ctx.stats() and ctx.attempt() share one stats-job, which a failure then reuses', async () => {
    const tube = randomTube();
    const seen: { attempt: number; kicks: number; again: number; priority: number }[] = [];
    queue.task(tube)(async function curious(kwargs: { fail: boolean }, ctx: TaskContext) {
      const [stats, attempt] = await Promise.all([ctx.stats(), ctx.attempt()]);
      const again = await ctx.attempt();
      seen.push({ attempt, kicks: stats.kicks, again, priority: (await ctx.stats()).priority });
      if (kwargs.fail) throw new Error('after reading the stats');
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    const ok = fake.addJob(body('curious', tube, { fail: false }), { tube, releases: 2, kicks: 1, priority: 3 });
    const failing = fake.addJob(body('curious', tube, { fail: true }), { tube, priority: 4 });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === ok);
    await events.waitFor('job:buried', (event) => event.jobId === failing);
    assert.deepEqual(seen, [
      { attempt: 3, kicks: 1, again: 3, priority: 3 },
      { attempt: 1, kicks: 0, again: 1, priority: 4 },
    ]);
    assert.deepEqual(fake.calls('statsJob'), [[ok], [failing]], 'one stats-job per job');
    assert.deepEqual(fake.calls('bury'), [[failing, 4]]);
  });

  it('a task still running after 250 ms reads its TTR once and is touched about every TTR / 2', async () => {
    const tube = randomTube();
    // Two workers side by side: one reads the TTR when the task has run 250 ms, one already has it from
    // its crash check. Each task runs until its job has been touched twice: about 2.25 s and 2 s.
    const probing = setup({ tubes: [tube], maxCrashes: 0 });
    const checking = setup({ tubes: [tube] });
    type Timeline = { started: number; statsJob: number[]; touches: number[] };
    const timelines = new Map<FakeServer, Timeline>();
    for (const { fake } of [probing, checking]) {
      const timeline: Timeline = { started: 0, statsJob: [], touches: [] };
      timelines.set(fake, timeline);
      onEachConnection(fake, (connection) => {
        const statsJob = connection.statsJob.bind(connection);
        connection.statsJob = (id: string) => {
          timeline.statsJob.push(performance.now());
          return statsJob(id);
        };
        const touch = connection.touch.bind(connection);
        connection.touch = (id: string) => {
          timeline.touches.push(performance.now());
          return touch(id);
        };
      });
    }
    const fakes = [probing.fake, checking.fake];
    queue.task(tube)(async function long(kwargs: { fake: number }, ctx: TaskContext) {
      const fake = fakes[kwargs.fake] as FakeServer;
      (timelines.get(fake) as Timeline).started = performance.now();
      await fake.waitUntil(() => fake.calls('touch').length >= 2, `two touches of job ${ctx.jobId}`);
    });
    const ids = fakes.map((fake, n) => fake.addJob(body('long', tube, { fake: n }), { tube, ttrSeconds: 2 }));
    await Promise.all([probing.worker.start(), checking.worker.start()]);
    await Promise.all([probing, checking].map(({ events }, i) => events.waitFor('job:deleted', (event) => event.jobId === ids[i])));

    for (const { fake, events } of [probing, checking]) {
      assert.deepEqual(fake.calls('statsJob'), [[fake.calls('delete')[0]?.[0]]], 'one stats-job for the job');
      assert.equal(fake.calls('touch').length, 2);
      assert.deepEqual(payloads(events, 'job:overrun'), []);
      const { started, statsJob, touches } = timelines.get(fake) as Timeline;
      const [touch1 = 0, touch2 = 0] = touches;
      // A TTR of 2 s gives a touch interval of 1 s, not the 500 ms floor and not a tight loop.
      assert.ok(touch2 - touch1 >= 900, `touches ${Math.round(touch2 - touch1)} ms apart`);
      assert.ok(
        statsJob.every((at) => at < touch1),
        'the TTR was read before the first touch',
      );
      if (fake === probing.fake) {
        assert.ok(statsJob[0] !== undefined && statsJob[0] - started >= 200, 'read by the 250 ms probe, not before the task');
        assert.ok(touch1 - started >= 1_150, `first touch ${Math.round(touch1 - started)} ms after the start: 250 ms + TTR / 2`);
      } else {
        assert.ok(statsJob[0] !== undefined && statsJob[0] < started, 'read by the crash check, before the task');
        assert.ok(touch1 - started >= 900, `first touch ${Math.round(touch1 - started)} ms after the start: TTR / 2`);
      }
    }
  });
});

describe('Worker: the next reserve is pipelined behind the delete', SUITE, () => {
  it('writes the next reserve right after the delete, before the delete has answered', async () => {
    const tube = randomTube();
    queue.task(tube)(function done(_kwargs: object) {});
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxCrashes: 0 });
    const held = holdFirstDelete(fake);
    const id = fake.addJob(body('done', tube), { tube });
    await worker.start();
    await fake.waitUntil(() => fake.calls('reserve').length >= 2, 'the next reserve');
    await letEventLoopTurn();

    // The tube is empty, but the connection holds a job whose delete has not answered: no wait yet.
    assert.deepEqual(fake.sentOn(0).slice(2), [ASK, ['delete', id], ASK]);
    assert.equal(held.settled, false, 'the delete has not answered');
    assert.deepEqual(payloads(events, 'job:deleted'), [], 'job:deleted waits for the reply');
    assert.equal(lines.filter((line) => line.msg === 'job completed').length, 0);

    held.release();
    assert.deepEqual(await events.waitFor('job:deleted'), { jobId: id, tube, task: 'done', reason: 'completed' });
    assert.equal(held.settled, true);
    assert.equal(fake.job(id)?.state, 'deleted');
    // Once the delete has answered, the connection holds nothing: the one wait goes there.
    await fake.waitForIdleReserve(0);
    assert.deepEqual(fake.sentOn(0).slice(2), [ASK, ['delete', id], ASK, WAIT]);
    assert.equal(fake.connections.length, 1);
  });

  it('a delete answering NOT_FOUND after the next reserve was written is still an overrun, and the loop goes on', async () => {
    const tube = randomTube();
    const ran: string[] = [];
    queue.task(tube)(function overran(_kwargs: object, ctx: TaskContext) {
      ran.push(ctx.jobId);
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxCrashes: 0 });
    const held = holdFirstDelete(fake);
    const late = fake.addJob(body('overran', tube), { tube });
    fake.deleteErrors.push(new NotFoundError('delete', late));
    await worker.start();
    await fake.waitUntil(() => fake.calls('reserve').length >= 2, 'the next reserve');
    assert.deepEqual(fake.sentOn(0).slice(2), [ASK, ['delete', late], ASK]);
    assert.deepEqual(payloads(events, 'job:overrun'), []);

    held.release();
    assert.deepEqual(await events.waitFor('job:overrun'), {
      jobId: late,
      tube,
      task: 'overran',
      command: 'delete',
      detail: `delete found no job ${late}: beanstalkd had already handed it out again`,
    });
    assert.ok(
      lines.some((line) => line.level === 40 && line.jobId === late && /TTR overrun/.test(String(line.msg))),
      'a warn line for the overrun',
    );
    assert.equal(events.count('job:deleted', late), 0);

    // The wait written once the failed delete had answered takes the next job.
    await fake.waitForIdleReserve(0);
    const next = fake.addJob(body('overran', tube), { tube });
    assert.equal((await events.waitFor('job:deleted', (event) => event.jobId === next)).reason, 'completed');
    assert.deepEqual(ran, [late, next]);
    await fake.waitForIdleReserve(0);
    assert.deepEqual(fake.sentOn(0).slice(2), [ASK, ['delete', late], ASK, WAIT, ['delete', next], ASK, WAIT]);
  });
});

describe('Worker: a graceful stop with pipelining', SUITE, () => {
  it('waits for a job whose delete is in flight, and writes no reserve after the stop began', async () => {
    const tube = randomTube();
    const ran: string[] = [];
    queue.task(tube)(function finishing(_kwargs: object, ctx: TaskContext) {
      ran.push(ctx.jobId);
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    const held = holdFirstDelete(fake);
    const id = fake.addJob(body('finishing', tube), { tube });
    await worker.start();
    await fake.waitUntil(() => fake.calls('reserve').length >= 2, 'the reserve written behind the delete');

    const commandsBeforeStop = fake.commands.length;
    let stopped = false;
    const stopping = worker.stop();
    void stopping.then(() => {
      stopped = true;
    });
    await letEventLoopTurn();
    assert.equal(stopped, false, 'stop() waits for the delete');
    assert.equal(worker.state, 'stopping');
    // A job handed to the reserve written behind the delete must not run: the stop has begun.
    const tooLate = fake.addJob(body('finishing', tube), { tube });
    await letEventLoopTurn();
    assert.equal(stopped, false, 'stop() still waits for the delete');

    held.release();
    const result = await within(stopping, 2_000, 'stop() once the delete answered');
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.equal(fake.job(id)?.state, 'deleted');
    assert.equal(events.count('job:deleted', id), 1);
    assert.deepEqual(ran, [id], 'the job handed out during the stop did not run');
    assert.equal(fake.job(tooLate)?.state, 'ready', 'given back with the closed connection');
    assert.equal(events.count('job:reserved', tooLate), 0);
    const afterStop = fake.commands.slice(commandsBeforeStop).map((entry) => entry.command);
    assert.deepEqual(afterStop, ['quit'], 'nothing but the quit after the stop began');
  });

  it('a stop during the task: the delete is written, no reserve after it', async () => {
    const tube = randomTube();
    const started = deferred();
    const gate = deferred();
    queue.task(tube)(async function running(_kwargs: object) {
      started.resolve();
      await gate.promise;
    });
    queue.task(tube)(function never(_kwargs: object) {
      return forever();
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxCrashes: 0 });
    const id = fake.addJob(body('running', tube), { tube });
    const queued = fake.addJob(body('never', tube), { tube });
    await worker.start();
    await started.promise;
    const commandsBeforeStop = fake.commands.length;
    const stopping = worker.stop();
    await letEventLoopTurn();
    gate.resolve();
    const result = await within(stopping, 2_000, 'stop() once the task ended');
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.equal(events.count('job:deleted', id), 1);
    assert.deepEqual(
      fake.commands.slice(commandsBeforeStop).map((entry) => [entry.command, ...entry.args]),
      [['delete', id], ['quit']],
    );
    assert.equal(fake.job(queued)?.state, 'ready', 'the next job was never reserved');
  });
});
