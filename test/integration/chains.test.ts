// Chains and groups against a real beanstalkd: links run in order with the previous value piped in, a
// failing middle link stops the chain and a kick resumes it, and a group's callback runs exactly once,
// after its last member, with two workers competing for the members.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { GroupPutError, JobFailedError, JobQueue, Worker } from '../../src/index.js';
import { type BeanstalkdServer, rawCommand, rawPeekBody, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { EventRecorder } from '../helpers/events.js';
import { deferred, freshTube, until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

type Event = { jobId?: string; task?: string; reason?: string; buriedAs?: string };

describe('chains and groups', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  const workers: Worker[] = [];
  const startWorker = async (tubes: string[], concurrency = 1): Promise<{ worker: Worker; events: EventRecorder<Event> }> => {
    const worker = new Worker({ tubes, url: server.url, logger: silent, concurrency });
    workers.push(worker);
    const events = new EventRecorder<Event>(worker, ['job:deleted', 'job:buried', 'job:released', 'job:completed']);
    await worker.start();
    return { worker, events };
  };

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await queue?.close();
    await server?.stop();
  });

  it('runs the links in order, piping each return value into the next, and returns the last one', async () => {
    const t = freshTube('chain');
    const order: string[] = [];
    const places: unknown[] = [];
    const fetchUser = queue.task(t)(async function fetchUser(kw: { id: number }, ctx) {
      order.push('fetch');
      places.push(ctx.meta?.chain);
      return { id: kw.id, name: 'Ann' };
    });
    const greet = queue.task(t)(async function greet(kw: { user: { id: number; name: string }; greeting: string }) {
      order.push('greet');
      return `${kw.greeting}, ${kw.user.name}`;
    });
    const shout = queue.task(t)(async function shout(kw: { text: string }) {
      order.push('shout');
      return kw.text.toUpperCase();
    });
    await startWorker([t], 4);
    const job = await queue
      .chain(fetchUser.with({ id: 7 }), greet.pipe('user', { greeting: 'Hello' }), shout.pipe('text'))
      .put({ result: true });
    const text: string = await job.result({ timeoutMs: 10_000 });
    assert.equal(text, 'HELLO, ANN');
    assert.deepEqual(order, ['fetch', 'greet', 'shout']);
    assert.deepEqual((places[0] as { index: number; of: number }).index, 0);
    assert.equal((places[0] as { of: number }).of, 3);
  });

  it('stops at a failing middle link, keeps its place in the failure record, and resumes when the link is kicked', async () => {
    const t = freshTube('chain-fail');
    const ran: string[] = [];
    let broken = true;
    const first = queue.task(t)(async function first() {
      ran.push('first');
      return 41;
    });
    const middle = queue.task(t)(async function middle(kw: { n: number }) {
      ran.push('middle');
      if (broken) throw new Error('the middle link is broken');
      return kw.n + 1;
    });
    const last = queue.task(t)(async function last(kw: { n: number }) {
      ran.push(`last ${kw.n}`);
    });
    const { events } = await startWorker([t]);
    const job = await queue.chain(first.with({}), middle.pipe('n'), last.pipe('n')).put({ result: true });
    // The caller learns of the failure: the middle link is buried and no retry follows.
    await assert.rejects(
      job.result({ timeoutMs: 10_000 }),
      (error: unknown) => error instanceof JobFailedError && /broken/.test(error.message),
    );
    const buried = await events.waitFor('job:buried', (event) => event.task === 'middle');
    assert.deepEqual(ran, ['first', 'middle']);
    const copyId = buried.buriedAs as string;
    const body = JSON.parse((await rawPeekBody(server.url, copyId)) as string) as {
      kwargs: { n: number };
      meta: { chain: { index: number; of: number; next: unknown[] }; failures: { message: string }[] };
    };
    // Which link failed, what it was given, and what was still to run: all in the buried job.
    assert.equal(body.meta.chain.index, 1);
    assert.equal(body.meta.chain.of, 3);
    assert.equal(body.meta.chain.next.length, 1);
    assert.equal(body.kwargs.n, 41);
    assert.match(body.meta.failures[0]?.message ?? '', /broken/);

    broken = false;
    assert.match(await rawCommand(server.url, `kick-job ${copyId}\r\n`), /^KICKED/);
    await events.waitFor('job:deleted', (event) => event.task === 'last');
    assert.deepEqual(ran, ['first', 'middle', 'middle', 'last 42']);
  });

  it("runs a group's callback exactly once, after every member, with two workers competing", async () => {
    const t = freshTube('group');
    const members = 24;
    let done = 0;
    const callbacks: number[] = [];
    const part = queue.task(t)(async function part(kw: { i: number }) {
      // Members finish at nearly the same moment, on both workers: the race the kick must survive.
      await new Promise((resolve) => setImmediate(resolve));
      done += 1;
      return kw.i;
    });
    const summarize = queue.task(t)(async function summarize(kw: { label: string }) {
      callbacks.push(done);
      return `${kw.label}: ${done}`;
    });
    const one = await startWorker([t], 4);
    const two = await startWorker([t], 4);
    const links = Array.from({ length: members }, (_, i) => part.with({ i }));
    const job = await queue
      .group(...(links as [ReturnType<typeof part.with>, ...ReturnType<typeof part.with>[]]))
      .callback(summarize.with({ label: 'all' }))
      .put({ result: true });
    assert.equal(await job.result({ timeoutMs: 20_000 }), `all: ${members}`);
    assert.deepEqual(callbacks, [members]);
    // Both workers took members.
    const parts = (recorder: EventRecorder<Event>): number =>
      recorder.events.filter((event) => event.name === 'job:deleted' && event.payload.task === 'part').length;
    const byOne = parts(one.events);
    const byTwo = parts(two.events);
    assert.ok(byOne > 0 && byTwo > 0, `both workers took members (${byOne} and ${byTwo})`);
    assert.equal(byOne + byTwo, members);
    // The callback ran as the last member's kick released it, not after its fallback delay, and once.
    const callbackStats = await rawStatsJob(server.url, job.id);
    assert.equal(callbackStats, null);
    assert.deepEqual(callbacks, [members]);
  });

  it("holds a group's callback released unrun while a member is unfinished, then runs it once", async () => {
    const t = freshTube('group-wait');
    const gate = deferred();
    const runs: string[] = [];
    const slow = queue.task(t)(async function slow() {
      await gate.promise;
      runs.push('slow');
    });
    const fast = queue.task(t)(async function fast() {
      runs.push('fast');
    });
    const after = queue.task(t)(async function after() {
      runs.push('callback');
    });
    const { events } = await startWorker([t], 2);
    const ids = await queue.group(slow.with(), fast.with()).callback(after.with()).put();
    await events.waitFor('job:deleted', (event) => event.task === 'fast');
    // An operator (or the fallback delay) wakes the callback early: it looks at the barrier and waits.
    assert.match(await rawCommand(server.url, `kick-job ${ids.callback}\r\n`), /^KICKED/);
    const released = await events.waitFor('job:released', (event) => event.task === 'after');
    assert.equal(released.reason, 'barrier');
    assert.equal((await rawStatsJob(server.url, ids.callback as string))?.state, 'delayed');
    assert.deepEqual(runs, ['fast']);
    gate.resolve();
    await events.waitFor('job:deleted', (event) => event.task === 'after');
    assert.deepEqual(runs, ['fast', 'slow', 'callback']);
    // The barrier tube is gone once empty: nothing is left behind.
    await until(
      async () => {
        const body = await rawPeekBody(server.url, ids.members[0] as string);
        return body;
      },
      (body) => body === null,
      5_000,
      'the member deleted',
    );
    const barrier = `bsworker.group.`;
    const tubes = await rawCommand(server.url, 'list-tubes\r\n');
    for (const line of tubes.split('\n').filter((l) => l.includes(barrier))) {
      const stats = await rawStatsTube(server.url, line.replace(/^- /, '').trim());
      assert.equal(Number(stats?.['current-jobs-ready'] ?? 0), 0);
    }
  });
  it("hands the members' results to a callback made with pipe, in order, again on its retry, and leaves none behind", async () => {
    const t = freshTube('group-results');
    let callbackRuns = 0;
    const square = queue.task(t)(async function square(kw: { n: number }) {
      return kw.n * kw.n;
    });
    const total = queue.task(t, { retries: 1, backoff: { type: 'fixed', delaySeconds: 0 } })(async function total(kw: {
      squares: number[];
      label: string;
    }) {
      callbackRuns += 1;
      // The first run fails: its retry must find the results again.
      if (callbackRuns === 1) throw new Error('first run fails');
      return `${kw.label}: ${kw.squares.join(',')}`;
    });
    await startWorker([t], 4);
    await startWorker([t], 4);
    const members = [0, 1, 2, 3, 4, 5].map((n) => square.with({ n }));
    const job = await queue
      .group(...(members as [(typeof members)[0], ...typeof members]))
      .callback(total.pipe('squares', { label: 'sum' }))
      .put({ result: true });
    assert.equal(await job.result({ timeoutMs: 20_000 }), 'sum: 0,1,4,9,16,25');
    assert.equal(callbackRuns, 2);
    const tubes = await rawCommand(server.url, 'list-tubes\r\n');
    for (const line of tubes.split('\n').filter((l) => l.includes('.results'))) {
      const stats = await rawStatsTube(server.url, line.replace(/^- /, '').trim());
      assert.equal(Number(stats?.['current-jobs-ready'] ?? 0) + Number(stats?.['current-jobs-reserved'] ?? 0), 0, `${line} is empty`);
    }
  });
  it('says what a group put only in part left behind', async () => {
    const t = freshTube('group-part');
    const echo = queue.task(t)(async function echo(_kw: { text: string }) {});
    const done = queue.task(t)(async function done() {});
    await assert.rejects(
      queue
        .group(echo.with({ text: 'short' }), echo.with({ text: 'x'.repeat(70_000) }))
        .callback(done.with())
        .put(),
      (error: unknown) => {
        assert.ok(error instanceof GroupPutError, String(error));
        assert.equal(error.barriersPut, 2);
        assert.equal(error.memberIds.length, 1);
        assert.match(error.message, /1 of 2 members/);
        return true;
      },
    );
  });
});
