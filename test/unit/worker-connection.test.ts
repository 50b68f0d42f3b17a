/**
 * The worker's connections, against the in-memory beanstalkd (test/helpers/fake-server.ts): start()
 * and what each connection watches (one lane per tube, plus one for the wait when there are several),
 * the tube taken from the lane rather than the body, the reserve loop (timeouts, DEADLINE_SOON,
 * reconnects with backoff after a lost connection), and several reserved jobs on one connection with
 * concurrency.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { ConnectionError, DeadlineSoonError } from '../../src/beanstalk/errors.js';
import type { TaskContext } from '../../src/tasks/types.js';
import { Worker } from '../../src/worker/worker.js';
import {
  body,
  deferred,
  type FakeServer,
  letEventLoopTurn,
  payloads,
  queue,
  randomTube,
  SUITE,
  setup,
  stopWorkers,
  WAIT_MS,
  within,
} from '../helpers/fake-server.js';

// Fails a test that leaves a worker running, or whose fake saw what a correct worker never does.
afterEach(stopWorkers);

/**
 * Resolves once `connections` connections have been opened and have sent their watches (the wait's at
 * start; each tube's lane once a first job has made its tube worth asking), plus a turn of the event
 * loop for the lanes to take them up.
 */
async function lanesOpen(fake: FakeServer, connections: number): Promise<void> {
  await fake.waitUntil(() => {
    if (fake.connections.length < connections) return false;
    for (let conn = 0; conn < connections; conn += 1) {
      // Past its watches: an `ignore default`, or a first reserve on a lane that keeps default.
      if (!fake.sentOn(conn).some(([command]) => command === 'ignore' || command === 'reserve')) return false;
    }
    return true;
  }, `${connections} connections open and watching`);
  await letEventLoopTurn();
}

describe('Worker: start and watching', SUITE, () => {
  it('a connection per tube watching only it, and one watching them all for the wait; default ignored unless listed', async () => {
    const [a, b] = [randomTube(), randomTube()];
    queue.task(a)(function first(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [a, b, a] });
    await worker.start();
    // At start only the wait's connection, watching every tube: start-up does not grow with the tubes.
    await fake.waitForIdleReserve(0);
    assert.equal(fake.connections.length, 1);
    // The first job it hands out makes every tube worth asking: each tube's lane opens its own.
    const id = fake.addJob(body('first', a), { tube: a });
    await events.waitFor('job:deleted', (event) => event.jobId === id);
    await lanesOpen(fake, 3);
    assert.deepEqual(fake.sentOn(0).slice(0, 3), [
      ['watch', a],
      ['watch', b],
      ['ignore', 'default'],
    ]);
    // The lanes open in the order the engine's turn reaches them.
    const lanes = [fake.sentOn(1).slice(0, 2), fake.sentOn(2).slice(0, 2)].sort((x, y) =>
      String(x[0]?.[1]).localeCompare(String(y[0]?.[1])),
    );
    assert.deepEqual(
      lanes,
      [
        [
          ['watch', a],
          ['ignore', 'default'],
        ],
        [
          ['watch', b],
          ['ignore', 'default'],
        ],
      ].sort((x, y) => String(x[0]?.[1]).localeCompare(String(y[0]?.[1]))),
    );
    assert.deepEqual(worker.tubes, [a, b]);
  });

  it('keeps default when it is listed', async () => {
    const a = randomTube();
    queue.task(a)(function opener(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [a, 'default'] });
    await worker.start();
    await fake.waitForCommand('reserve');
    // The wait's connection watches both and ignores nothing.
    assert.deepEqual(fake.calls('watch'), [[a], ['default']]);
    assert.deepEqual(fake.calls('ignore'), []);
    // A first job opens the lanes: a's ignores default, default's keeps it.
    const id = fake.addJob(body('opener', a), { tube: a });
    await events.waitFor('job:deleted', (event) => event.jobId === id);
    await lanesOpen(fake, 3);
    assert.deepEqual(
      fake
        .calls('watch')
        .slice(2)
        .map(([tube]) => tube)
        .sort(),
      [a, 'default'].sort(),
    );
    assert.deepEqual(fake.calls('ignore'), [['default']]);
  });

  it('start() a second time throws, and so does start() after stop()', async () => {
    const tube = randomTube();
    const { worker, connects } = setup({ tubes: [tube] });
    await worker.start();
    await assert.rejects(worker.start(), /runs once/);
    await worker.stop();
    await assert.rejects(worker.start(), /runs once/);
    assert.equal(connects(), 1);
  });

  it('refuses bad options when it is constructed', () => {
    assert.throws(() => new Worker({ tubes: [] }), TypeError);
    assert.throws(
      () => new Worker({ tubes: ['bad tube'] }),
      (error: unknown) => error instanceof TypeError && error.message.includes('tubes[0]'),
    );
    assert.throws(() => new Worker({ tubes: ['ok'], maxKicks: -1 }), RangeError);
    assert.throws(() => new Worker({ tubes: ['ok'], graceMs: 1.5 }), RangeError);
  });

  it('with several tubes takes the tube from the lane that reserved the job, whatever the body says, without a stats-job per job', async () => {
    const [a, b] = [randomTube(), randomTube()];
    const ran: string[] = [];
    // The same task name in both tubes, so which one ran shows which tube the worker settled on.
    queue.task(a)(function route(kwargs: { n: number }) {
      ran.push(`${a}:${kwargs.n}`);
    });
    queue.task(b)(function route(kwargs: { n: number }) {
      ran.push(`${b}:${kwargs.n}`);
    });
    const { worker, fake, events } = setup({ tubes: [a, b], maxCrashes: 0 });
    // The body is untrusted: a producer may write any tube there, or none.
    const claimsOther = fake.addJob(body('route', b, { n: 1 }), { tube: a });
    const claimsUnwatched = fake.addJob(body('route', 'not-watched', { n: 2 }), { tube: b });
    const claimsNothing = fake.addJob(body('route', undefined, { n: 3 }), { tube: b });
    const claimsRight = fake.addJob(body('route', a, { n: 4 }), { tube: a });
    const ids = [claimsOther, claimsUnwatched, claimsNothing, claimsRight];
    await worker.start();
    for (const id of ids) await events.waitFor('job:deleted', (event) => event.jobId === id);

    assert.deepEqual([...ran].sort(), [`${a}:1`, `${b}:2`, `${b}:3`, `${a}:4`].sort());
    // The start's wait (open before the lanes) handed out the first job: its tube is read once. The
    // lanes reserved the other three and knew their tubes.
    assert.deepEqual(fake.calls('statsJob'), [[claimsOther]], 'only the wake-up job is read; the lanes know the tube');
    const deleted = new Map(payloads(events, 'job:deleted').map((event) => [event.jobId, event.tube]));
    assert.deepEqual(
      ids.map((id) => deleted.get(id)),
      [a, b, b, a],
    );
  });

  it("with several tubes reads the tube of the one job a wake-up hands out on the waiting connection, and runs only that tube's task", async () => {
    const [a, b] = [randomTube(), randomTube()];
    const ran: string[] = [];
    queue.task(a)(function woken(_kwargs: object) {
      ran.push(a);
    });
    queue.task(b)(function woken(_kwargs: object) {
      ran.push(b);
    });
    const { worker, fake, events } = setup({ tubes: [a, b], maxCrashes: 0 });
    await worker.start();
    // Nothing known of either tube yet: the worker waits on the connection that watches both.
    await fake.waitForIdleReserve(0);
    const id = fake.addJob(body('woken', a), { tube: b });
    const deleted = await events.waitFor('job:deleted', (event) => event.jobId === id);
    assert.equal(deleted.tube, b);
    assert.deepEqual(ran, [b]);
    assert.deepEqual(fake.calls('statsJob'), [[id]], 'one stats-job for the wake-up');
    assert.equal(fake.commands.find((entry) => entry.command === 'delete')?.conn, 0, 'settled where it was reserved');
  });

  it('with one tube takes the tube from stats-job whatever the body claims', async () => {
    const [watched, other] = [randomTube(), randomTube()];
    const ran: string[] = [];
    queue.task(watched)(function where(_kwargs: object) {
      ran.push(watched);
    });
    queue.task(other)(function where(_kwargs: object) {
      ran.push(other);
    });
    const { worker, fake, events } = setup({ tubes: [watched] });
    const id = fake.addJob(body('where', other), { tube: watched });
    await worker.start();
    const deleted = await events.waitFor('job:deleted');
    assert.deepEqual(ran, [watched]);
    assert.equal(deleted.tube, watched);
    assert.deepEqual(fake.calls('statsJob'), [[id]]);
  });
});

describe('Worker: the reserve loop', SUITE, () => {
  it('goes round again when a reserve times out, and still takes the next job', async () => {
    const tube = randomTube();
    queue.task(tube)(function eventually(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube], reserveTimeoutSeconds: 0 });
    await worker.start();
    // A zero timeout answers null at once: a third reserve means the loop survived two empty ones.
    await fake.waitForCommand('reserve', 3);
    const id = fake.addJob(body('eventually', tube), { tube });
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
  });

  it('goes round again after DEADLINE_SOON and after an unexpected reserve error (reported as worker:error)', async () => {
    const tube = randomTube();
    queue.task(tube)(function afterErrors(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube] });
    const odd = new Error('odd reply');
    fake.reserveErrors.push(new DeadlineSoonError('reserve-with-timeout'), odd);
    const id = fake.addJob(body('afterErrors', tube), { tube });
    await worker.start();
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
    const errors = events.events.filter((event) => event.name === 'worker:error').map((event) => event.payload);
    assert.deepEqual(errors, [odd]);
  });

  it('reconnects with backoff when the connection is lost, watches its tubes again, and goes on processing', async () => {
    const tube = randomTube();
    queue.task(tube)(function afterOutage(_kwargs: object) {});
    const { worker, fake, events, connects } = setup({ tubes: [tube], reconnectMinMs: 1, reconnectMaxMs: 5 });
    await worker.start();
    await fake.waitForCommand('reserve');
    // The server goes away and refuses the first two reconnects.
    fake.refuseConnects = 2;
    fake.dropConnections();

    const reconnected = await events.waitFor('worker:reconnected');
    assert.deepEqual(reconnected, { slot: 0, attempts: 3, server: worker.servers[0] });
    // One try per attempt, no busy loop: the first connection, two refused, one that worked.
    assert.equal(connects(), 4);
    assert.equal(fake.connections.length, 2);
    assert.ok(payloads(events, 'worker:error')[0] instanceof ConnectionError, 'worker:error carries the ConnectionError');
    // A new connection watches only default: the tubes must be watched again before reserving.
    assert.deepEqual(fake.sentOn(1).slice(0, 2), [
      ['watch', tube],
      ['ignore', 'default'],
    ]);

    const id = fake.addJob(body('afterOutage', tube), { tube });
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
    assert.deepEqual(fake.sentOn(1)[2], ['reserve', 30]);
    assert.equal(worker.state, 'running');
    assert.equal(
      events.events.some((event) => event.name === 'worker:stopped'),
      false,
    );
    assert.deepEqual(await within(worker.stop(), 2_000, 'stop() after a reconnect'), { graceful: true, releasedJobIds: [] });
  });

  it('runs again, after the reconnect, a job whose connection was lost while it ran', async () => {
    const tube = randomTube();
    const runs: number[] = [];
    const firstRun = deferred();
    const gate = deferred();
    queue.task(tube)(async function interrupted(_kwargs: object, ctx: TaskContext) {
      runs.push(await ctx.attempt());
      if (runs.length === 1) {
        firstRun.resolve();
        await gate.promise;
      }
    });
    const { worker, fake, events } = setup({ tubes: [tube], reconnectMinMs: 1, reconnectMaxMs: 5 });
    const id = fake.addJob(body('interrupted', tube), { tube });
    await worker.start();
    await firstRun.promise;
    // The server drops the connection: beanstalkd makes the reserved job ready again.
    fake.dropConnections();
    gate.resolve();

    const deleted = await events.waitFor('job:deleted', (event) => event.jobId === id);
    assert.equal(deleted.reason, 'completed');
    // At least once: it ran twice, and the loss was not counted as a release.
    assert.deepEqual(runs, [1, 1]);
    // The first delete failed on the lost connection; the second, on the new one, worked.
    assert.deepEqual(
      fake.commands.filter((entry) => entry.command === 'delete').map((entry) => entry.conn),
      [0, 1],
    );
    assert.equal(fake.job(id)?.state, 'deleted');
    assert.deepEqual((await events.waitFor('worker:reconnected')).slot, 0);
  });
});

describe('Worker: several tubes after a lost server', SUITE, () => {
  it('every lane and the waiting connection reconnect, and the jobs of each tube run their own tasks again', async () => {
    const [a, b] = [randomTube(), randomTube()];
    const ran: string[] = [];
    queue.task(a)(function back(_kwargs: object) {
      ran.push(a);
    });
    queue.task(b)(function back(_kwargs: object) {
      ran.push(b);
    });
    const { worker, fake, events } = setup({ tubes: [a, b], reconnectMinMs: 1, reconnectMaxMs: 5, maxCrashes: 0 });
    await worker.start();
    // A first job opens the tubes' lanes; once they find their tubes empty, the wait is back on 0.
    const first = fake.addJob(body('back', a), { tube: a });
    await events.waitFor('job:deleted', (event) => event.jobId === first);
    await lanesOpen(fake, 3);
    await fake.waitForIdleReserve(0);
    ran.length = 0;
    fake.dropConnections();
    // Three lanes (a, b, and the one waiting on both) each get a connection back.
    await fake.waitUntil(() => fake.connections.filter((connection) => !connection.isClosed).length >= 3, 'three connections back');
    const slots = new Set<number>();
    await fake.waitUntil(() => {
      for (const event of payloads(events, 'worker:reconnected')) slots.add(event.slot);
      return slots.size === 3;
    }, 'worker:reconnected for each lane');
    assert.deepEqual([...slots].sort(), [0, 1, 2]);
    const ids = [fake.addJob(body('back', b), { tube: a }), fake.addJob(body('back', a), { tube: b })];
    for (const id of ids) await events.waitFor('job:deleted', (event) => event.jobId === id);
    assert.deepEqual([...ran].sort(), [a, b].sort());
    assert.equal(worker.state, 'running');
  });
});

describe('Worker: concurrency', SUITE, () => {
  it('concurrency 3: one connection holds three reserved jobs, all running at once, each settled where it was reserved', async () => {
    const tube = randomTube();
    let active = 0;
    let most = 0;
    const allIn = deferred();
    // A barrier: no handler leaves before three are inside at once, so the test ends only if they overlap.
    queue.task(tube)(async function overlap(_kwargs: object) {
      active += 1;
      most = Math.max(most, active);
      if (active === 3) allIn.resolve();
      await allIn.promise;
      active -= 1;
    });
    const { worker, fake, events, connects } = setup({ tubes: [tube], concurrency: 3 });
    const ids = [1, 2, 3].map((n) => fake.addJob(body('overlap', tube, { n }), { tube }));
    await worker.start();
    assert.equal(connects(), 1);
    await within(allIn.promise, WAIT_MS, 'three handlers running at once');
    for (const id of ids) await events.waitFor('job:deleted', (event) => event.jobId === id);

    assert.equal(most, 3);
    assert.deepEqual(payloads(events, 'job:overrun'), []);
    // Three reserves pipelined on one connection, each answered at once with a job.
    assert.deepEqual(fake.sentOn(0).slice(0, 5), [
      ['watch', tube],
      ['ignore', 'default'],
      ['reserve', 0],
      ['reserve', 0],
      ['reserve', 0],
    ]);
    // Each job was asked about and deleted on the connection that reserved it (the fake answers
    // NOT_FOUND to a delete anywhere else, which would show as an overrun above).
    const connOf = (command: string, id: string) => fake.commands.find((entry) => entry.command === command && entry.args[0] === id)?.conn;
    assert.deepEqual(
      ids.map((id) => [connOf('statsJob', id), connOf('delete', id)]),
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    );
  });

  it('stop() with three running jobs waits for all three, then closes the connection', async () => {
    const tube = randomTube();
    const gate = deferred();
    let started = 0;
    const allStarted = deferred();
    queue.task(tube)(async function busy(_kwargs: object) {
      started += 1;
      if (started === 3) allStarted.resolve();
      await gate.promise;
    });
    const { worker, fake, events } = setup({ tubes: [tube], concurrency: 3 });
    for (const n of [1, 2, 3]) fake.addJob(body('busy', tube, { n }), { tube });
    await worker.start();
    await within(allStarted.promise, WAIT_MS, 'three jobs started');
    const stopping = worker.stop();
    await letEventLoopTurn();
    assert.deepEqual(fake.calls('quit'), []);
    gate.resolve();
    assert.deepEqual(await within(stopping, 2_000, 'stop() with three running jobs'), { graceful: true, releasedJobIds: [] });
    assert.equal(payloads(events, 'job:deleted').length, 3);
    assert.deepEqual(fake.connectionsThatSent('quit'), [0]);
    assert.deepEqual(fake.calls('release'), [], 'nothing was reserved that had to be released');
  });
});
