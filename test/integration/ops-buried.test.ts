// `bsworker buried --tube T` lists every buried job of a tube (paged, newest first, with each job's last
// failure) and `bsworker peek` shows a job's whole failure history: the real binary against a real
// beanstalkd, every id checked against the server's own view.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { JobQueue } from '../../src/tasks/queue.js';
import { type BeanstalkdServer, rawPut, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope, prefix, run } from '../helpers/cli.js';
import { bury } from '../helpers/raw-session.js';
import { startWorker, until } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };

/** A failure entry as the worker records it under `meta.failures`. */
function failure(n: number, tube: string, message: string): Record<string, unknown> {
  return {
    reason: 'error',
    name: 'TypeError',
    message,
    stack: `TypeError: ${message}\n    at charge (/app/jobs/pay.js:${10 + n}:5)\n    at process (/app/node_modules/x.js:1:1)`,
    attempt: n,
    kicks: n - 1,
    worker: { host: 'web-1', pid: 4242 },
    server: '127.0.0.1:11300',
    job_id: String(100 + n),
    tube,
    at: `2026-01-0${n}T00:00:00.000Z`,
  };
}

interface BuriedJson {
  tube: string;
  buried: number;
  first: { id: string } | null;
  jobs: { id: string; func_name: string | null; failures: number; lastFailure: Record<string, unknown> | null; priority: number }[];
  scanned: number;
  nextCursor: string | null;
  exhausted: boolean;
  stoppedBy: string;
}

describe('bsworker buried --tube and the failure history in peek', () => {
  let server: BeanstalkdServer;

  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server?.stop();
  });

  it('pages through every buried job, newest first, with --limit and --cursor until exhausted', TEST_TIMEOUT, async () => {
    const [t, other] = [prefix('buried'), prefix('buried')];
    const buried: string[] = [];
    for (let n = 0; n < 8; n += 1) {
      buried.push(await rawPut(server.url, t, envelope('pay', t, { n })));
      // Between them: a ready job of the tube and a buried job of another tube, which must not be listed.
      await rawPut(server.url, t, envelope('pay', t, { ready: n }));
      await bury(server, [await rawPut(server.url, other, envelope('pay', other, { n }))]);
    }
    await bury(server, buried);

    const listed: string[] = [];
    let cursor: string[] = [];
    let pages = 0;
    for (;;) {
      const result = await run(['buried', '--tube', t, '--limit', '3', '--json', ...cursor, '--url', server.url]);
      assert.equal(result.code, 0, result.stderr);
      const page = JSON.parse(result.stdout) as BuriedJson;
      pages += 1;
      assert.equal(page.buried, Number((await rawStatsTube(server.url, t))?.['current-jobs-buried']));
      assert.equal(page.first?.id, buried[0], 'first: the oldest, the next one a kick moves');
      listed.push(...page.jobs.map((job) => job.id));
      if (page.exhausted) {
        assert.equal(page.nextCursor, null);
        break;
      }
      assert.ok(page.jobs.length === 3 && page.nextCursor !== null, JSON.stringify(page));
      cursor = ['--cursor', page.nextCursor];
      assert.ok(pages < 10, 'it ends');
    }
    assert.deepEqual(listed, [...buried].reverse());
    assert.ok(pages >= 3, `${pages} pages of 3`);

    const text = await run(['buried', '--tube', t, '--limit', '3', '--url', server.url]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split('\n');
    assert.equal(lines[0], `tube ${t}: 8 buried jobs`);
    assert.equal(lines[1], `next to be kicked: job ${buried[0]}`);
    assert.equal(lines.filter((line) => /^ {2}id: +\d+$/.test(line)).length, 3);
    assert.match(text.stdout, new RegExp(`^ {2}id: +${buried[7]}$`, 'm'), 'the newest first');
    assert.match(text.stdout, /^ {2}failure: +\(no failure record in the body\)$/m);
    assert.match(
      text.stdout,
      new RegExp(`^more may lie below id ${buried[5]} \\(the page is full\\): bsworker buried --tube ${t} --cursor ${buried[5]}$`, 'm'),
    );
  });

  it("shows each job's last failure: name, message, first stack line, attempt, kicks, when", TEST_TIMEOUT, async () => {
    const t = prefix('buried');
    const body = {
      func_name: 'pay',
      tube: t,
      kwargs: { order: 7 },
      meta: { failures: [failure(1, t, 'card declined'), failure(2, t, 'card \u001b[31mdeclined again')] },
    };
    const id = await rawPut(server.url, t, JSON.stringify(body));
    await bury(server, [id]);

    const [json, text] = await Promise.all([
      run(['buried', '--tube', t, '--json', '--url', server.url]),
      run(['buried', '--tube', t, '--url', server.url]),
    ]);
    assert.equal(json.code, 0, json.stderr);
    const page = JSON.parse(json.stdout) as BuriedJson;
    assert.deepEqual(page.jobs[0], {
      id,
      func_name: 'pay',
      kwargs: { order: 7 },
      kicks: 0,
      ageSeconds: (page.jobs[0] as { ageSeconds?: number } | undefined)?.ageSeconds,
      // The test's bury gives 1024.
      priority: 1024,
      failures: 2,
      lastFailure: {
        reason: 'error',
        name: 'TypeError',
        message: 'card \u001b[31mdeclined again',
        stackLine: 'at charge (/app/jobs/pay.js:12:5)',
        attempt: 2,
        kicks: 1,
        at: '2026-01-02T00:00:00.000Z',
      },
    });
    assert.ok(!json.stdout.includes('\u001b'), 'escaped in JSON too');

    assert.equal(text.code, 0, text.stderr);
    assert.ok(!text.stdout.includes('\u001b'), 'no escape character reaches the terminal');
    assert.match(text.stdout, /^ {2}failure: +TypeError: card \\u001b\[31mdeclined again$/m);
    assert.match(text.stdout, /^ +at charge \(\/app\/jobs\/pay\.js:12:5\)$/m);
    assert.match(
      text.stdout,
      /^ +error, attempt 2, kicks 1, at 2026-01-02T00:00:00\.000Z \(2 failures recorded; bsworker peek shows them all\)$/m,
    );
    assert.match(text.stdout, /^no more buried jobs below \(every id was scanned\)$/m);

    // peek: the whole history, every entry with its stack; --json carries it as `history`.
    const [peek, peekJson] = await Promise.all([run(['peek', id, '--url', server.url]), run(['peek', id, '--json', '--url', server.url])]);
    assert.equal(peek.code, 0, peek.stderr);
    assert.match(peek.stdout, /^failures: +2$/m);
    assert.match(
      peek.stdout,
      new RegExp(`^ {2}#1 2026-01-01T00:00:00\\.000Z {2}error, attempt 1, kicks 0, worker web-1:4242, job 101 in ${t}$`, 'm'),
    );
    assert.match(peek.stdout, /^ {5}TypeError: card declined$/m);
    assert.match(peek.stdout, /^ {7}at charge \(\/app\/jobs\/pay\.js:11:5\)$/m);
    assert.match(peek.stdout, /^ {7}at process \(\/app\/node_modules\/x\.js:1:1\)$/m);
    assert.match(peek.stdout, /^ {2}#2 /m);
    assert.doesNotMatch(peek.stdout, /^meta:/m, 'the history is not printed a second time as meta');
    assert.ok(!peek.stdout.includes('\u001b'));
    const doc = JSON.parse(peekJson.stdout) as { history: { failures: unknown[] }; envelope: { meta: unknown } };
    assert.deepEqual(doc.history, { failures: body.meta.failures });
    assert.deepEqual(doc.envelope.meta, body.meta);
  });

  it('a job buried by a real worker: its record shows the error the task threw', TEST_TIMEOUT, async (t) => {
    const tube = prefix('buried-real');
    const queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
    t.after(() => queue.close());
    const task = queue.task(tube)(async function chargeCard(kw: { order: number }) {
      throw new RangeError(`order ${kw.order}: amount out of range`);
    });
    const { worker } = await startWorker(t, { tubes: [tube], url: server.url, maxKicks: 3 });
    await task.put({ order: 9 });
    await until(
      () => rawStatsTube(server.url, tube),
      (stats) => stats?.['current-jobs-buried'] === '1',
      10_000,
      'the job buried',
    );
    await worker.stop();

    const result = await run(['buried', '--tube', tube, '--json', '--url', server.url]);
    assert.equal(result.code, 0, result.stderr);
    const [job] = (JSON.parse(result.stdout) as BuriedJson).jobs;
    assert.equal(job?.failures, 1);
    assert.deepEqual(
      [job?.lastFailure?.name, job?.lastFailure?.message, job?.lastFailure?.attempt],
      ['RangeError', 'order 9: amount out of range', 1],
    );
    assert.match(String(job?.lastFailure?.stackLine), /^at chargeCard /);
    const text = await run(['buried', '--tube', tube, '--url', server.url]);
    assert.match(text.stdout, /^ {2}failure: +RangeError: order 9: amount out of range$/m);
  });

  it('says when a page stopped at the scan bound, and refuses a bad cursor or bound', TEST_TIMEOUT, async () => {
    const t = prefix('buried');
    const ids: string[] = [];
    for (let n = 0; n < 4; n += 1) ids.push(await rawPut(server.url, t, envelope('pay', t, { n })));
    await bury(server, ids);
    for (let n = 0; n < 10; n += 1) await rawPut(server.url, prefix('filler'), 'x');

    const bounded = await run(['buried', '--tube', t, '--scan', '5', '--json', '--url', server.url]);
    assert.equal(bounded.code, 0, bounded.stderr);
    const page = JSON.parse(bounded.stdout) as BuriedJson;
    assert.deepEqual([page.jobs.length, page.scanned, page.stoppedBy, page.exhausted], [0, 5, 'scan-bound', false]);
    const text = await run(['buried', '--tube', t, '--scan', '5', '--url', server.url]);
    assert.match(text.stdout, /^this page: 0 jobs, newest first \(5 ids scanned\)$/m);
    assert.match(
      text.stdout,
      new RegExp(`\\(the scan reached its bound of ids \\(--scan\\)\\): bsworker buried --tube ${t} --cursor ${page.nextCursor}$`, 'm'),
    );

    for (const args of [
      ['--cursor', 'abc'],
      ['--scan', '0'],
      ['--limit', '1001'],
    ]) {
      const result = await run(['buried', '--tube', t, ...args, '--url', server.url]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^bsworker: error: /);
    }
  });
});
