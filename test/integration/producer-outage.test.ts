// The producer when beanstalkd stops answering, dies or restarts: every put is bounded by
// connectTimeoutMs, a put that was never written is retried on the new connection, a put whose reply was
// lost says that the job may have been inserted, and an idle producer does not keep its process alive.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { MAX_IN_FLIGHT } from '../../src/beanstalk/connection.js';
import { ConnectionError, JobQueue, PutManyError, PutOutcomeUnknownError } from '../../src/index.js';
import { type BeanstalkdServer, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { childEnv, REPO } from '../helpers/cli.js';

const tube = (): string => `po-${randomUUID().slice(0, 8)}`;
const silent = pino({ level: 'silent' });

/** How a promise settled, and after how many ms; `pending` if it had not within `limitMs`. */
async function settleWithin<T>(promise: Promise<T>, limitMs: number): Promise<{ state: string; value?: T; error?: unknown; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'pending'>((resolve) => {
    timer = setTimeout(() => resolve('pending'), limitMs);
  });
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ state: 'resolved', value }),
      (error: unknown) => ({ state: 'rejected', error }),
    ),
    limit.then((state) => ({ state })),
  ]);
  clearTimeout(timer);
  return { ...outcome, ms: Date.now() - started };
}

/** Resolves once every promise has settled, with the fulfilled values and the rejection reasons apart. */
async function partition<T>(promises: Promise<T>[]): Promise<{ values: T[]; errors: unknown[] }> {
  const results = await Promise.allSettled(promises);
  return {
    values: results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    errors: results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : [])),
  };
}

describe('a producer while beanstalkd is stopped', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    process.kill(server.pid, 'SIGCONT');
    await server.stop();
  });

  it('bounds a put on an open connection by connectTimeoutMs, as it bounds one on a fresh queue', async () => {
    const bound = 400;
    const open = new JobQueue({ url: server.url, logger: silent, connectTimeoutMs: bound });
    const fresh = new JobQueue({ url: server.url, logger: silent, connectTimeoutMs: bound });
    const onOpen = open.task(tube())(async function ping() {});
    const onFresh = fresh.task(tube())(async function ping() {});
    try {
      assert.match(await onOpen.put(), /^\d+$/, 'the connection is open');
      process.kill(server.pid, 'SIGSTOP');
      try {
        const [a, b] = await Promise.all([settleWithin(onOpen.put(), 5_000), settleWithin(onFresh.put(), 5_000)]);
        // Before: the put on the open connection waited as long as the stop lasted.
        assert.equal(a.state, 'rejected', `the put on the open connection settled (${a.state} after ${a.ms} ms)`);
        assert.equal(b.state, 'rejected');
        assert.ok(a.error instanceof ConnectionError && b.error instanceof ConnectionError, String(a.error));
        // Written to a server that never answered: it may yet insert the job when the server resumes.
        assert.ok(a.error instanceof PutOutcomeUnknownError, String(a.error));
        assert.equal(a.error.code, 'OUTCOME_UNKNOWN');
        assert.match(a.error.message, /may have been inserted/);
        assert.ok(!(b.error instanceof PutOutcomeUnknownError), 'the fresh queue never sent its put');
        for (const { ms } of [a, b]) assert.ok(ms >= bound * 0.8 && ms < bound * 4, `rejected after about ${bound} ms (${ms} ms)`);
      } finally {
        process.kill(server.pid, 'SIGCONT');
      }
      // Once the server answers again, the next put opens a new connection and succeeds.
      assert.match(await onOpen.put(), /^\d+$/);
    } finally {
      await Promise.all([open.close(), fresh.close()]);
    }
  });
});

describe('a producer across a beanstalkd restart', () => {
  /** Starts a server, fills the queue's window while it is stopped, then kills it and starts another. */
  async function restartUnder(fill: (server: BeanstalkdServer) => Promise<void>): Promise<BeanstalkdServer> {
    const first = await startBeanstalkd();
    process.kill(first.pid, 'SIGSTOP');
    await fill(first);
    await first.stop('SIGKILL');
    return startBeanstalkd({ port: first.port });
  }

  it('retries the puts that were never written and rejects the written ones with PutOutcomeUnknownError', async () => {
    const t = tube();
    let queue: JobQueue | undefined;
    let settled: Promise<{ values: string[]; errors: unknown[] }> | undefined;
    const extra = 50;
    const second = await restartUnder(async (first) => {
      queue = new JobQueue({ url: first.url, logger: silent, connectTimeoutMs: 8_000 });
      const ping = queue.task(t)(async function ping(_kw: { n: number }) {});
      // The connection opens before the stop, with a put that is answered.
      process.kill(first.pid, 'SIGCONT');
      await ping.put({ n: -1 });
      process.kill(first.pid, 'SIGSTOP');
      // MAX_IN_FLIGHT puts are written and unanswered; the rest wait in the client for room.
      settled = partition(Array.from({ length: MAX_IN_FLIGHT + extra }, (_, n) => ping.put({ n })));
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    try {
      const { values, errors } = await (settled as Promise<{ values: string[]; errors: unknown[] }>);
      // Before: every put rejected with "closed the connection", the never-written ones too.
      assert.equal(values.length, extra, `the ${extra} puts never written were put on the new server`);
      assert.equal(errors.length, MAX_IN_FLIGHT);
      for (const error of errors) assert.ok(error instanceof PutOutcomeUnknownError, String(error));
      assert.equal((await rawStatsTube(second.url, t))?.['current-jobs-ready'], String(extra));
      for (const id of values) assert.equal((await rawStatsJob(second.url, id))?.tube, t);
    } finally {
      await queue?.close();
      await second.stop();
    }
  });

  it("says in putMany's error which items may have been inserted and which were not put", async () => {
    const t = tube();
    let queue: JobQueue | undefined;
    let batch: Promise<unknown> | undefined;
    const total = MAX_IN_FLIGHT + 30;
    const second = await restartUnder(async (first) => {
      queue = new JobQueue({ url: first.url, logger: silent, connectTimeoutMs: 8_000 });
      const ping = queue.task(t)(async function ping(_kw: { n: number }) {});
      process.kill(first.pid, 'SIGCONT');
      await ping.put({ n: -1 });
      process.kill(first.pid, 'SIGSTOP');
      // Handled at once: it may reject while the new server starts.
      batch = ping
        .putMany(
          Array.from({ length: total }, (_, n) => ({ n })),
          { window: MAX_IN_FLIGHT },
        )
        .then(
          () => 'resolved',
          (error: unknown) => error,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    try {
      const error = await batch;
      assert.ok(error instanceof PutManyError, String(error));
      assert.deepEqual(
        error.outcomeUnknown,
        Array.from({ length: MAX_IN_FLIGHT }, (_, n) => n),
      );
      assert.ok(
        error.jobIds.every((id) => id === undefined),
        'nothing was confirmed',
      );
      assert.match(error.message, new RegExp(`${MAX_IN_FLIGHT} may have been .*the other 30 were not`));
      assert.equal((await rawStatsTube(second.url, t))?.['current-jobs-ready'] ?? '0', '0', 'the rest were not put');
    } finally {
      await queue?.close();
      await second.stop();
    }
  });
});

describe('a producer script', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => server?.stop());

  it('exits by itself after its put, without calling close(), and the job is in the tube', async () => {
    const t = tube();
    const script = [
      `import { JobQueue } from ${JSON.stringify(join(REPO, 'src', 'index.ts'))};`,
      'const queue = new JobQueue();',
      `const ping = queue.task(${JSON.stringify(t)})(async function ping(kw) {});`,
      'console.log(await ping.put({ n: 1 }));',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO,
      env: childEnv({ BEANSTALKD_URL: server.url }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const outcome = await settleWithin(exited, 10_000);
    if (outcome.state === 'pending') child.kill('SIGKILL');
    // Before: the idle connection kept the process alive until killed.
    assert.equal(outcome.state, 'resolved', 'the script exited by itself');
    assert.deepEqual(outcome.value, [0, null], stderr);
    const id = stdout.trim();
    assert.match(id, /^\d+$/);
    assert.equal((await rawStatsJob(server.url, id))?.tube, t);
  });
});
