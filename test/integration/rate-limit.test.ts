/**
 * Rate limits against a real beanstalkd (src/worker/rate-limit.ts): a limited task starts at most `max`
 * jobs per window in one worker process; an unlimited task in the same tube keeps running while the
 * limited one waits; waiting spends none of a job's retries and its TTR is kept alive; a stop gives
 * waiting jobs back, ready again and with no release counted. Windows are fractions of a second, so the
 * file runs in a few seconds; every wait is on an event or a job's own start, never a fixed sleep.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type JobEvent, JobQueue, type TaskContext, Worker } from '../../src/index.js';
import { type BeanstalkdServer, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { EventRecorder } from '../helpers/events.js';

type Payload = JobEvent & { reason?: string; waitMs?: number; holdsPlace?: boolean };
const EVENTS = ['job:throttled', 'job:deleted', 'job:buried', 'job:released', 'job:failed'] as const;

const tube = (): string => `rl-${randomUUID().slice(0, 8)}`;
const silent = pino({ level: 'silent' });

/** Resolves once `count` calls of the returned `tick` have been made. */
function counter(count: number): { tick: () => void; done: Promise<void> } {
  let left = count;
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    tick: () => {
      left -= 1;
      if (left === 0) resolve();
    },
    done,
  };
}

describe('rate limits against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  const workers: Worker[] = [];

  const startWorker = async (tubes: string[], concurrency: number): Promise<{ worker: Worker; events: EventRecorder<Payload> }> => {
    const worker = new Worker({ tubes, url: server.url, logger: silent, concurrency });
    workers.push(worker);
    const events = new EventRecorder<Payload>(worker, EVENTS);
    await worker.start();
    return { worker, events };
  };

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop({ force: true })));
    await queue?.close();
    await server?.stop();
  });

  it('starts at most max jobs in any window of perSeconds (a fractional window)', async () => {
    const t = tube();
    const max = 3;
    const windowMs = 300;
    const jobs = 10;
    const starts: number[] = [];
    const all = counter(jobs);
    const limited = queue.task(t, { rateLimit: { max, perSeconds: windowMs / 1000 } })(async function limited() {
      starts.push(performance.now());
      all.tick();
    });
    const { events } = await startWorker([t], 16);
    await limited.putMany(Array.from({ length: jobs }, () => ({})));
    await all.done;
    assert.equal(starts.length, jobs);
    for (let i = max; i < starts.length; i += 1) {
      const apart = (starts[i] as number) - (starts[i - max] as number);
      // The window is kept at the grant; the task's own clock reading comes a little after it.
      assert.ok(apart >= windowMs - 5, `starts ${i - max} and ${i} only ${apart.toFixed(1)} ms apart`);
    }
    // Not stingier than the limit: 10 jobs at 3 per 300 ms start within four windows.
    assert.ok((starts.at(-1) as number) - (starts[0] as number) < 4 * windowMs, 'the limited jobs started too slowly');
    assert.ok(events.events.filter((e) => e.name === 'job:throttled').length >= jobs - max);
  });

  it('keeps running an unlimited task of the same tube while the limited one waits, within concurrency', async () => {
    const t = tube();
    const concurrency = 2;
    let active = 0;
    let most = 0;
    const limitedStarts: number[] = [];
    const unlimitedEnds: number[] = [];
    const unlimitedDone = counter(6);
    const limitedDone = counter(3);
    const track = async (work: () => void): Promise<void> => {
      active += 1;
      most = Math.max(most, active);
      await new Promise((resolve) => setImmediate(resolve));
      work();
      active -= 1;
    };
    const slow = queue.task(t, { rateLimit: { max: 1, perSeconds: 0.6 } })(async function slow() {
      limitedStarts.push(performance.now());
      await track(limitedDone.tick);
    });
    const fast = queue.task(t)(async function fast() {
      await track(() => {
        unlimitedEnds.push(performance.now());
        unlimitedDone.tick();
      });
    });
    // Limited jobs first: the worker meets them before the unlimited ones, in one tube.
    await slow.putMany([{}, {}, {}]);
    await fast.putMany(Array.from({ length: 6 }, () => ({})));
    const { events } = await startWorker([t], concurrency);
    await unlimitedDone.done;
    // Every unlimited job ended before the second limited one could start.
    assert.equal(limitedStarts.length, 1, `limited starts: ${limitedStarts.length}`);
    await limitedDone.done;
    assert.ok(most <= concurrency, `${most} jobs ran at once with concurrency ${concurrency}`);
    assert.ok((unlimitedEnds.at(-1) as number) < (limitedStarts[1] as number));
    const throttled = events.events.filter((e) => e.name === 'job:throttled').map((e) => e.payload);
    assert.equal(throttled.length, 2);
    // Both waited outside the run places (the bound is max(max, concurrency) = 2).
    assert.deepEqual(
      throttled.map((e) => e.holdsPlace),
      [false, false],
    );
  });

  it('spends no retries on waiting: a throttled job that fails once with retries: 1 is retried, not buried', async () => {
    const t = tube();
    const attempts = new Map<string, number[]>();
    const done = counter(3);
    const flaky = queue.task(t, {
      retries: 1,
      backoff: { type: 'fixed', delaySeconds: 0, jitter: false },
      rateLimit: { max: 1, perSeconds: 0.2 },
    })(async function flaky(_kwargs: object, ctx: TaskContext) {
      const attempt = await ctx.attempt();
      attempts.set(ctx.jobId, [...(attempts.get(ctx.jobId) ?? []), attempt]);
      if (attempt === 1) throw new Error('first attempt fails');
      done.tick();
    });
    const { events } = await startWorker([t], 4);
    const ids = await flaky.putMany([{}, {}, {}]);
    await done.done;
    for (const id of ids) {
      await events.waitFor('job:deleted', (e) => e.jobId === id);
      assert.deepEqual(attempts.get(id), [1, 2], `job ${id}`);
    }
    assert.equal(events.events.filter((e) => e.name === 'job:buried').length, 0);
    // Jobs did wait for their turn (some more than once: a retried job queues again).
    assert.ok(events.events.filter((e) => e.name === 'job:throttled').length >= 2);
    // The only releases are the three retries.
    assert.equal(events.events.filter((e) => e.name === 'job:released').length, 3);
  });

  it('keeps a waiting job alive past its TTR', async () => {
    const t = tube();
    const seen: Record<string, number>[] = [];
    const done = counter(2);
    const short = queue.task(t, { ttr: 2, rateLimit: { max: 1, perSeconds: 2.6 } })(async function short(
      _kwargs: object,
      ctx: TaskContext,
    ) {
      const stats = await ctx.stats();
      seen.push({ reserves: stats.reserves, timeouts: stats.timeouts, releases: stats.releases });
      done.tick();
    });
    await startWorker([t], 2);
    await short.putMany([{}, {}]);
    await done.done;
    // The second job waited 2.6 s with a 2 s TTR: touched, never timed out nor handed out again.
    assert.deepEqual(seen, [
      { reserves: 1, timeouts: 0, releases: 0 },
      { reserves: 1, timeouts: 0, releases: 0 },
    ]);
  });

  for (const force of [false, true]) {
    it(`a ${force ? 'forced' : 'graceful'} stop gives waiting jobs back at once: ready again, no release counted`, async () => {
      const t = tube();
      const ran = counter(1);
      let running: Promise<void> | undefined;
      const held = queue.task(t, { rateLimit: { max: 1, perSeconds: 60 } })(async function held() {
        ran.tick();
      });
      // A long job on the same worker: a graceful stop waits for it, the waiting jobs must not.
      const long = queue.task(t)(async function long(_kwargs: object, ctx: TaskContext) {
        running = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        await running;
      });
      const { worker, events } = await startWorker([t], 4);
      const first = await held.put({});
      await ran.done;
      await events.waitFor('job:deleted', (e) => e.jobId === first);
      const longId = await long.put({});
      const waiting = await held.putMany([{}, {}]);
      for (const id of waiting) await events.waitFor('job:throttled', (e) => e.jobId === id);
      const stopped = worker.stop({ force });
      // Given back before the stop ends, whatever it waits for.
      for (const id of waiting) await events.waitFor('job:released', (e) => e.jobId === id && e.reason === 'stop');
      if (!force) worker.stop({ force: true });
      const result = await stopped;
      assert.deepEqual(result.releasedJobIds, [longId]);
      for (const id of [...waiting, longId]) {
        const stats = await rawStatsJob(server.url, id);
        assert.equal(stats?.state, 'ready', `job ${id}`);
        assert.equal(stats?.releases, '0', `job ${id}`);
      }
    });
  }
});
