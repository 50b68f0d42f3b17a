// `bsworker requeue --from DEAD --tube T`: dead letters made by a real worker go back into their tube with
// their failure record, letters of other tubes stay as they were, and a failure between the put and the
// delete leaves a duplicate, never a loss. Checked against the server's own view.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Admin } from '../../src/admin/admin.js';
import { UnavailableError } from '../../src/admin/errors.js';
import type { RequeueResult } from '../../src/admin/types.js';
import { resolveServerAddress } from '../../src/beanstalk/address.js';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { ConnectionError } from '../../src/beanstalk/errors.js';
import type { Beanstalk } from '../../src/beanstalk/types.js';
import { readFailureHistory, requeueBody } from '../../src/failures/record.js';
import { JobQueue } from '../../src/tasks/queue.js';
import { type BeanstalkdServer, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { run } from '../helpers/cli.js';
import { freshTube, startWorker, until } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 40_000 };

describe('bsworker requeue', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  let connection: Beanstalk;

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
    connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
  });
  after(async () => {
    await connection?.quit();
    await queue?.close();
    await server?.stop();
  });

  /** Ready jobs of `tube` by id: the ids, read with the admin layer's scan. */
  async function readyIds(tube: string): Promise<string[]> {
    const admin = new Admin({ urls: [server.url] });
    try {
      return (await admin.jobIds(tube, 'ready', { limit: 1_000 })).ids;
    } finally {
      await admin.close();
    }
  }

  /** A body as the server holds it. */
  async function body(id: string): Promise<Buffer> {
    const job = await connection.peek(id);
    assert.ok(job, `job ${id} exists`);
    return job.body;
  }

  /**
   * Tasks in two tubes that fail until `fixed`, a worker that dead-letters at the first failure, and
   * jobs put into both: resolves once every job is a dead letter, with the worker stopped.
   */
  async function deadLetters(t: Parameters<typeof startWorker>[0], counts: { main: number; other: number }) {
    const [main, other, dead] = [freshTube('rq'), freshTube('rq-other'), freshTube('rq-dead')];
    const state = { fixed: false, ran: [] as number[] };
    const task = queue.task(main)(async function chargeCard(kw: { n: number }) {
      if (!state.fixed) throw new Error(`bug: order ${kw.n}`);
      state.ran.push(kw.n);
    });
    const otherTask = queue.task(other)(async function sendMail(_kw: { n: number }) {
      throw new Error('mail bug');
    });
    const { worker } = await startWorker(t, { tubes: [main, other], url: server.url, maxKicks: 0, deadLetterTube: dead });
    for (let n = 0; n < counts.main; n += 1) await task.put({ n }, { priority: 10 + n, ttr: 30 });
    for (let n = 0; n < counts.other; n += 1) await otherTask.put({ n });
    const total = counts.main + counts.other;
    await until(
      () => rawStatsTube(server.url, dead),
      (stats) => stats?.['current-jobs-ready'] === String(total),
      15_000,
      `${total} dead letters`,
    );
    await worker.stop();
    return { main, other, dead, state };
  }

  it(
    'puts the letters of the tube back with their record, leaves the others as they were, and they run once fixed',
    TEST_TIMEOUT,
    async (t) => {
      const { main, other, dead, state } = await deadLetters(t, { main: 3, other: 2 });
      const letters = await readyIds(dead);
      const bodies = new Map(await Promise.all(letters.map(async (id) => [id, await body(id)] as const)));
      const mainLetters = letters.filter((id) => (JSON.parse(String(bodies.get(id))) as { tube: string }).tube === main);
      const otherLetters = letters.filter((id) => !mainLetters.includes(id));
      assert.deepEqual([mainLetters.length, otherLetters.length], [3, 2]);
      const otherBefore = await Promise.all(otherLetters.map((id) => rawStatsJob(server.url, id)));

      const result = await run(['requeue', '--from', dead, '--tube', main, '--json', '--url', server.url]);
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as RequeueResult;
      assert.deepEqual(
        [report.from, report.tube, report.requeued, report.otherTube, report.notDeadLetters, report.exhausted, report.stoppedBy],
        [dead, main, 3, 2, 0, true, 'end'],
      );
      assert.deepEqual([report.duplicates, report.failed], [[], []]);
      assert.deepEqual(
        report.jobs.map((job) => job.deadLetterId),
        mainLetters,
        'every letter of the tube, newest first',
      );

      for (const job of report.jobs) {
        assert.equal(await rawStatsJob(server.url, job.deadLetterId), null, 'the letter is gone');
        const stats = await rawStatsJob(server.url, job.id);
        assert.deepEqual([stats?.tube, stats?.state], [main, 'ready']);
        const letter = bodies.get(job.deadLetterId) as Buffer;
        const back = await body(job.id);
        assert.ok(back.equals(requeueBody(letter) as Buffer), 'the body requeueBody gives: original envelope, record kept');
        assert.ok((readFailureHistory(back)?.failures.length ?? 0) >= 1, 'the failure record travels with the job');
        // The dead letter's record kept the original's priority (10 + n) and TTR (30).
        assert.deepEqual([stats?.pri, stats?.ttr], [String(job.priority), '30']);
        assert.ok(job.priority >= 10 && job.priority < 13, `priority ${job.priority}`);
      }
      for (const [i, id] of otherLetters.entries()) {
        const now = await rawStatsJob(server.url, id);
        assert.deepEqual(
          [now?.tube, now?.state, now?.pri, now?.reserves, now?.releases],
          [dead, 'ready', otherBefore[i]?.pri, otherBefore[i]?.reserves, otherBefore[i]?.releases],
          'a letter of another tube is left exactly as it was',
        );
        assert.ok((await body(id)).equals(bodies.get(id) as Buffer));
      }
      assert.equal((await rawStatsTube(server.url, other))?.['current-jobs-ready'] ?? '0', '0', 'nothing was put into the other tube');

      // The bug is fixed: a worker runs the requeued jobs with their original kwargs.
      state.fixed = true;
      await startWorker(t, { tubes: [main], url: server.url, maxKicks: 0, deadLetterTube: dead });
      await until(
        () => state.ran.length,
        (n) => n === 3,
        10_000,
        'the requeued jobs ran',
      );
      assert.deepEqual([...state.ran].sort(), [0, 1, 2]);

      const text = await run(['requeue', '--from', dead, '--tube', other, '--url', server.url]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^requeued 2 dead letters from tube ${dead} into tube ${other} \\(new ids \\d+, \\d+\\)$`, 'm'));
    },
  );

  it('--limit puts back that many and gives the cursor to go on; a rerun finds the rest', TEST_TIMEOUT, async (t) => {
    const { main, dead } = await deadLetters(t, { main: 3, other: 0 });
    const one = JSON.parse(
      (await run(['requeue', '--from', dead, '--tube', main, '--limit', '1', '--json', '--url', server.url])).stdout,
    ) as RequeueResult;
    assert.deepEqual([one.requeued, one.stoppedBy, one.exhausted], [1, 'limit', false]);
    assert.ok(one.nextCursor !== null);
    const text = await run(['requeue', '--from', dead, '--tube', main, '--limit', '1', '--url', server.url]);
    assert.match(text.stdout, /^stopped before the oldest ids \(the --limit was reached\): go on with --cursor \d+$/m);
    const rest = JSON.parse(
      (await run(['requeue', '--from', dead, '--tube', main, '--cursor', one.nextCursor, '--json', '--url', server.url])).stdout,
    ) as RequeueResult;
    assert.deepEqual([rest.requeued, rest.exhausted], [1, true]);
    // An empty tube nobody uses is dropped by beanstalkd: no stats is no job.
    assert.equal((await rawStatsTube(server.url, dead))?.['current-jobs-ready'] ?? '0', '0');
    assert.equal((await rawStatsTube(server.url, main))?.['current-jobs-ready'], '3');
  });

  it(
    '--job puts one letter back into the tube its record names, with its priority and TTR; misuse is a usage error',
    TEST_TIMEOUT,
    async () => {
      const [main, dead] = [freshTube('rqj'), freshTube('rqj-dead')];
      const record = {
        error: 'boom',
        name: 'Error',
        attempts: 1,
        kicks: 0,
        tube: main,
        job_id: '5',
        failed_at: '2026-01-01T00:00:00.000Z',
      };
      const letter = JSON.stringify({
        func_name: 'f',
        tube: main,
        kwargs: { a: 1 },
        meta: { dead_letter: { ...record, original: 'envelope', meta_added: true, priority: 6, ttr: 90 } },
      });
      const [first, second] = [await rawPut(server.url, dead, letter), await rawPut(server.url, dead, letter)];
      const text = await run(['requeue', '--job', first, '--url', server.url]);
      assert.equal(text.code, 0, text.stderr);
      const match = new RegExp(`^requeued dead letter ${first} into tube ${main} as job (\\d+)$`, 'm').exec(text.stdout);
      assert.ok(match, text.stdout);
      const stats = await rawStatsJob(server.url, match[1] as string);
      assert.deepEqual([stats?.tube, stats?.pri, stats?.ttr], [main, '6', '90']);
      assert.equal(await rawStatsJob(server.url, first), null, 'the letter is gone');
      assert.equal((await rawStatsJob(server.url, second))?.state, 'ready', 'the other letter stays');

      const json = JSON.parse((await run(['requeue', '--job', second, '--json', '--url', server.url])).stdout) as {
        tube: string;
        deadLetterDeleted: boolean;
      };
      assert.deepEqual([json.tube, json.deadLetterDeleted], [main, true]);

      const plain = await rawPut(server.url, main, JSON.stringify({ func_name: 'f', tube: main, kwargs: {} }));
      const refused = await run(['requeue', '--job', plain, '--url', server.url]);
      // A job in the wrong state is bad input for an operating command: exit 2, one line.
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /no dead-letter record/);
      const mixed = await run(['requeue', '--job', plain, '--from', dead, '--url', server.url]);
      assert.equal(mixed.code, 2);
      assert.match(mixed.stderr, /--job puts back one letter/);
      const neither = await run(['requeue', '--url', server.url]);
      assert.equal(neither.code, 2);
      assert.match(neither.stderr, /give --from DEAD and --tube TUBE/);
    },
  );

  it("keeps the original's priority and TTR when the record has them; leaves what is not a dead letter", TEST_TIMEOUT, async () => {
    const [main, dead] = [freshTube('rq'), freshTube('rq-dead')];
    const record = { error: 'boom', name: 'Error', attempts: 1, kicks: 0, tube: main, job_id: '5', failed_at: '2026-01-01T00:00:00.000Z' };
    const letter = JSON.stringify({
      func_name: 'f',
      tube: main,
      kwargs: { a: 1 },
      meta: { dead_letter: { ...record, original: 'envelope', meta_added: true, priority: 5, ttr: 120 } },
    });
    const id = await rawPut(server.url, dead, letter);
    const junk = await rawPut(server.url, dead, 'not a dead letter');
    const admin = new Admin({ urls: [server.url] });
    try {
      const result = await admin.requeue({ from: dead, tube: main });
      assert.deepEqual([result.requeued, result.notDeadLetters, result.otherTube], [1, 1, 0]);
      const stats = await rawStatsJob(server.url, result.jobs[0]?.id as string);
      assert.deepEqual([stats?.pri, stats?.ttr], ['5', '120']);
      assert.equal(await rawStatsJob(server.url, id), null);
      assert.equal((await rawStatsJob(server.url, junk))?.state, 'ready', 'left alone');
    } finally {
      await admin.close();
    }
  });

  it('a failure between the put and the delete leaves a duplicate, never a loss', TEST_TIMEOUT, async (t) => {
    const { main, dead } = await deadLetters(t, { main: 1, other: 0 });
    const [letter] = await readyIds(dead);
    assert.ok(letter);
    // A connection that loses every delete: the put goes through, the delete never does.
    const admin = new Admin({
      urls: [server.url],
      connect: async (address, options) => {
        const real = await BeanstalkConnection.connect(address, options);
        return new Proxy(real, {
          get(target, property) {
            if (property === 'delete') return async () => Promise.reject(new ConnectionError(server.url, 'lost the connection (test)'));
            const value = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      },
    });
    try {
      await assert.rejects(admin.requeue({ from: dead, tube: main }), (error: unknown) => error instanceof UnavailableError);
    } finally {
      await admin.close();
    }
    assert.equal((await rawStatsJob(server.url, letter))?.state, 'ready', 'the letter is still there');
    const back = await readyIds(main);
    assert.equal(back.length, 1, 'and the job is back in its tube: twice, not zero times');
    assert.ok((await body(back[0] as string)).equals(requeueBody(await body(letter)) as Buffer));
  });

  it('refuses the same tube twice and a bad tube, exit 2', TEST_TIMEOUT, async () => {
    const same = await run(['requeue', '--from', 'a', '--tube', 'a', '--url', server.url]);
    assert.equal(same.code, 2);
    assert.match(same.stderr, /^bsworker: error: the dead-letter tube and the original tube are both a$/m);
    const bad = await run(['requeue', '--from', 'bad tube', '--tube', 'a', '--url', server.url]);
    assert.equal(bad.code, 2);
  });
});
