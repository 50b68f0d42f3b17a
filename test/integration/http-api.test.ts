// The HTTP API's endpoints against a real beanstalkd, the server in-process on a free port. Every reply
// is checked against the server's own view (raw stats-job, stats-tube, peek) and against the schema the
// OpenAPI document gives for it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deadLetterBody } from '../../src/worker/dead-letter.js';
import { type BeanstalkdServer, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope } from '../helpers/cli.js';
import {
  assertDocumented,
  assertError,
  assertJsonHeaders,
  firstIssuePath,
  type OpenApiDocument,
  type Reply,
  startApi,
  type TestApi,
} from '../helpers/http.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 20_000 };

describe('HTTP API endpoints', () => {
  let beanstalkd: BeanstalkdServer;
  let api: TestApi;
  let document: OpenApiDocument;

  /** A request whose reply is checked against the document's schema for `route`. */
  async function call(method: string, route: string, path: string, options?: Parameters<TestApi['request']>[2]): Promise<Reply> {
    const reply = await api.request(method, path, options);
    assertJsonHeaders(reply);
    assertDocumented(document, method, route, reply);
    return reply;
  }

  before(async () => {
    beanstalkd = await startBeanstalkd();
    api = await startApi(beanstalkd.url);
    const reply = await api.request('GET', '/api/openapi.json');
    assert.equal(reply.status, 200);
    document = reply.json as OpenApiDocument;
  });
  after(async () => {
    await api?.close();
    await beanstalkd?.stop();
  });

  it('GET /api/servers lists the server, up, with its stats as the server reports them', TEST_TIMEOUT, async () => {
    await rawPut(beanstalkd.url, freshTube('srv'), 'x');
    const reply = await call('GET', '/api/servers', '/api/servers');
    assert.equal(reply.status, 200);
    const { servers } = reply.json as {
      servers: { server: string; up: boolean; error: null; stats: { version: string; jobs: { total: number } } }[];
    };
    assert.equal(servers.length, 1);
    const [only] = servers;
    assert.equal(only?.server, beanstalkd.url);
    assert.equal(only?.up, true);
    assert.equal(only?.error, null);
    const raw = await rawCommand(beanstalkd.url, 'stats\r\n');
    assert.ok(raw.includes(`version: "${only?.stats.version}"`) || raw.includes(`version: ${only?.stats.version}`), raw.slice(0, 200));
    const total = Number(/total-jobs: (\d+)/.exec(raw)?.[1]);
    assert.equal(only?.stats.jobs.total, total);
  });

  it('GET /api/tubes and /api/tubes/{tube} count jobs by state per server and in total', TEST_TIMEOUT, async () => {
    const tube = freshTube('count');
    await rawPut(beanstalkd.url, tube, envelope('f', tube, {}));
    await rawPut(beanstalkd.url, tube, envelope('f', tube, {}));
    await rawPut(beanstalkd.url, tube, envelope('f', tube, {}), { delay: 3_600 });
    const buried = await rawPut(beanstalkd.url, tube, envelope('f', tube, {}));
    await bury(beanstalkd, [buried]);

    const all = await call('GET', '/api/tubes', '/api/tubes');
    assert.equal(all.status, 200);
    const report = all.json as {
      tubes: { name: string; totals: Record<string, number>; servers: { server: string }[] }[];
      unavailable: string[];
    };
    assert.deepEqual(report.unavailable, []);
    const listed = report.tubes.find((candidate) => candidate.name === tube);
    assert.ok(listed, 'the tube is listed');
    assert.deepEqual(
      { ready: listed.totals.ready, delayed: listed.totals.delayed, buried: listed.totals.buried, total: listed.totals.total },
      { ready: 2, delayed: 1, buried: 1, total: 4 },
    );
    assert.deepEqual(
      listed.servers.map((entry) => entry.server),
      [beanstalkd.url],
    );

    const one = await call('GET', '/api/tubes/{tube}', `/api/tubes/${tube}`);
    assert.equal(one.status, 200);
    const stats = await rawStatsTube(beanstalkd.url, tube);
    const totals = (one.json as { totals: Record<string, number> }).totals;
    assert.equal(totals.ready, Number(stats?.['current-jobs-ready']));
    assert.equal(totals.buried, Number(stats?.['current-jobs-buried']));
    assert.equal(totals.delayed, Number(stats?.['current-jobs-delayed']));
  });

  it('GET /api/tubes/{tube} is 404 for a tube no server has and 400 for a name beanstalkd refuses', TEST_TIMEOUT, async () => {
    const missing = await call('GET', '/api/tubes/{tube}', `/api/tubes/${freshTube('none')}`);
    assertError(missing, 404, 'TUBE_NOT_FOUND');
    const bad = await call('GET', '/api/tubes/{tube}', `/api/tubes/${encodeURIComponent('bad tube!')}`);
    assertError(bad, 400, 'INVALID_TUBE');
  });

  it('GET /api/tubes/{tube}/jobs pages through a state, newest first, by cursor', TEST_TIMEOUT, async () => {
    const tube = freshTube('page');
    const ids: string[] = [];
    for (let n = 0; n < 3; n += 1) ids.push(await rawPut(beanstalkd.url, tube, envelope('f', tube, { n })));
    await bury(beanstalkd, ids);
    const ready = await rawPut(beanstalkd.url, tube, envelope('f', tube, { n: 'ready' }));

    const first = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?state=buried&limit=2`);
    assert.equal(first.status, 200);
    const page = first.json as { jobs: { id: string; state: string }[]; nextCursor: string | null; exhausted: boolean };
    assert.deepEqual(
      page.jobs.map((job) => job.id),
      [ids[2], ids[1]],
    );
    assert.ok(page.jobs.every((job) => job.state === 'buried'));
    assert.equal(page.exhausted, false);
    assert.ok(page.nextCursor !== null);

    const second = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?state=buried&limit=2&cursor=${page.nextCursor}`);
    const rest = second.json as { jobs: { id: string }[] };
    assert.deepEqual(
      rest.jobs.map((job) => job.id),
      [ids[0]],
    );

    const readyPage = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?state=ready`);
    assert.deepEqual(
      (readyPage.json as { jobs: { id: string }[] }).jobs.map((job) => job.id),
      [ready],
    );
    const every = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs`);
    assert.equal((every.json as { jobs: unknown[] }).jobs.length, 4);
  });

  it('GET /api/tubes/{tube}/jobs refuses a bad state, limit or cursor with 400 and where it is wrong', TEST_TIMEOUT, async () => {
    const tube = freshTube('badq');
    const state = assertError(await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?state=lost`), 400, 'INVALID_REQUEST');
    assert.deepEqual(firstIssuePath(state), ['querystring', 'state']);
    const limit = assertError(await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?limit=ten`), 400, 'INVALID_REQUEST');
    assert.deepEqual(firstIssuePath(limit), ['querystring', 'limit']);
    assertError(await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?limit=5000`), 400, 'INVALID_OPTION');
    const unknown = assertError(
      await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?status=buried`),
      400,
      'INVALID_REQUEST',
    );
    assert.deepEqual(firstIssuePath(unknown), ['querystring', 'status']);
  });

  it('GET /api/jobs/{id} gives the envelope, the stats and the failure history', TEST_TIMEOUT, async () => {
    const tube = freshTube('job');
    const failure = {
      reason: 'failed',
      name: 'TypeError',
      message: 'card declined',
      stack: 'TypeError: card declined\n    at charge (/app/jobs/pay.js:10:5)',
      attempt: 1,
      kicks: 0,
      worker: { host: 'w1', pid: 42 },
      server: beanstalkd.url,
      job_id: '7',
      tube,
      at: '2026-01-02T03:04:05.000Z',
    };
    const body = JSON.stringify({ func_name: 'charge', tube, kwargs: { order: 9 }, meta: { failures: [failure] } });
    const id = await rawPut(beanstalkd.url, tube, body, { priority: 7, ttr: 30 });
    await bury(beanstalkd, [id]);

    const reply = await call('GET', '/api/jobs/{id}', `/api/jobs/${id}`);
    assert.equal(reply.status, 200);
    const job = reply.json as Record<string, unknown> & {
      envelope: { func_name: string; kwargs: unknown };
      history: { failures: { message: string }[] };
      lastFailure: { name: string; stackLine: string };
    };
    assert.equal(job.id, id);
    assert.equal(job.tube, tube);
    assert.equal(job.state, 'buried');
    // The harness's bury sets priority 1024; the TTR is the put's.
    assert.equal(job.priority, 1024);
    assert.equal(job.ttrSeconds, 30);
    assert.equal(job.buries, 1);
    assert.equal(job.raw, null);
    assert.equal(job.envelope.func_name, 'charge');
    assert.deepEqual(job.envelope.kwargs, { order: 9 });
    assert.deepEqual(
      job.history.failures.map((entry) => entry.message),
      ['card declined'],
    );
    assert.equal(job.lastFailure.name, 'TypeError');
    assert.equal(job.lastFailure.stackLine, 'at charge (/app/jobs/pay.js:10:5)');
  });

  it('GET /api/jobs/{id} returns a body that is not an envelope raw and marked, with HTML characters escaped', TEST_TIMEOUT, async () => {
    const tube = freshTube('raw');
    const id = await rawPut(beanstalkd.url, tube, '<script>alert(1)</script> & not JSON');
    const reply = await call('GET', '/api/jobs/{id}', `/api/jobs/${id}`);
    assert.equal(reply.status, 200);
    const job = reply.json as { envelope: unknown; raw: string; decodeError: string };
    assert.equal(job.envelope, null);
    assert.equal(job.raw, '<script>alert(1)</script> & not JSON');
    assert.equal(typeof job.decodeError, 'string');
    // The same string in the JSON, but no byte of it reads as markup.
    assert.ok(!reply.text.includes('<') && !reply.text.includes('>') && !reply.text.includes('&'), reply.text);
    assert.ok(reply.text.includes('\\u003cscript\\u003e'));
  });

  it('GET /api/jobs/{id} is 404 for a job that does not exist and 400 for an id that is not one', TEST_TIMEOUT, async () => {
    assertError(await call('GET', '/api/jobs/{id}', '/api/jobs/999999999'), 404, 'JOB_NOT_FOUND');
    assertError(await call('GET', '/api/jobs/{id}', '/api/jobs/abc'), 400, 'INVALID_JOB_ID');
  });

  it('POST /api/tubes/{tube}/jobs puts an envelope with the options, 201 and a Location', TEST_TIMEOUT, async () => {
    const tube = freshTube('put');
    const reply = await call('POST', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs`, {
      body: { func_name: 'send_email', kwargs: { to: 'ann@example.com' }, options: { priority: 5, delay: 120, ttr: 30 } },
    });
    assert.equal(reply.status, 201);
    const put = reply.json as { id: string; tube: string; func_name: string; priority: number; delaySeconds: number; ttrSeconds: number };
    assert.equal(reply.headers.location, `/api/jobs/${put.id}`);
    assert.deepEqual(
      { tube: put.tube, func_name: put.func_name, priority: put.priority, delay: put.delaySeconds, ttr: put.ttrSeconds },
      { tube, func_name: 'send_email', priority: 5, delay: 120, ttr: 30 },
    );
    const stats = await rawStatsJob(beanstalkd.url, put.id);
    assert.deepEqual(
      { tube: stats?.tube, state: stats?.state, pri: stats?.pri, delay: stats?.delay, ttr: stats?.ttr },
      { tube, state: 'delayed', pri: '5', delay: '120', ttr: '30' },
    );
    const peeked = await rawCommand(beanstalkd.url, `peek ${put.id}\r\n`);
    assert.ok(peeked.includes(envelope('send_email', tube, { to: 'ann@example.com' })), peeked);

    const plain = await call('POST', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs`, { body: { func_name: 'noop' } });
    assert.equal(plain.status, 201);
    const defaults = await rawStatsJob(beanstalkd.url, (plain.json as { id: string }).id);
    assert.deepEqual({ pri: defaults?.pri, delay: defaults?.delay, ttr: defaults?.ttr }, { pri: '1024', delay: '0', ttr: '60' });
  });

  it('POST /api/tubes/{tube}/jobs refuses what the library would refuse, with 400 and where, and puts nothing', TEST_TIMEOUT, async () => {
    const tube = freshTube('badput');
    const path = `/api/tubes/${tube}/jobs`;
    const route = '/api/tubes/{tube}/jobs';
    const ttr = assertError(await call('POST', route, path, { body: { func_name: 'f', options: { ttr: 1 } } }), 400, 'INVALID_REQUEST');
    assert.deepEqual(firstIssuePath(ttr), ['body', 'options', 'ttr']);
    const typo = assertError(await call('POST', route, path, { body: { func_name: 'f', option: {} } }), 400, 'INVALID_REQUEST');
    assert.deepEqual(firstIssuePath(typo), ['body', 'option']);
    // No coercion: "10" is not a priority.
    assertError(await call('POST', route, path, { body: { func_name: 'f', options: { priority: '10' } } }), 400, 'INVALID_REQUEST');
    assertError(await call('POST', route, path, { body: { func_name: 'f', kwargs: [1, 2] } }), 400, 'INVALID_REQUEST');
    const missing = assertError(await call('POST', route, path, { body: { kwargs: {} } }), 400, 'INVALID_REQUEST');
    assert.deepEqual(firstIssuePath(missing), ['body', 'func_name']);
    assertError(
      await call('POST', route, path, { body: '{"func_name": "f",', headers: { 'content-type': 'application/json' } }),
      400,
      'INVALID_JSON',
    );
    assertError(
      await call('POST', route, path, { body: 'func_name=f', headers: { 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    assertError(
      await call('POST', route, path, {
        body: '{"func_name":"f","kwargs":{"__proto__":{"x":1}}}',
        headers: { 'content-type': 'application/json' },
      }),
      400,
      'INVALID_JSON',
    );
    // A body the server's max-job-size (64 KiB by default) cannot hold: refused before anything is sent.
    assertError(await call('POST', route, path, { body: { func_name: 'f', kwargs: { blob: 'x'.repeat(70_000) } } }), 400, 'JOB_TOO_BIG');
    assert.equal(await rawStatsTube(beanstalkd.url, tube), null, 'nothing was put');
  });

  it('POST /api/tubes/{tube}/kick kicks buried jobs up to the bound, or all of them', TEST_TIMEOUT, async () => {
    const tube = freshTube('kick');
    const ids = [await rawPut(beanstalkd.url, tube, 'a'), await rawPut(beanstalkd.url, tube, 'b'), await rawPut(beanstalkd.url, tube, 'c')];
    await bury(beanstalkd, ids);
    const one = await call('POST', '/api/tubes/{tube}/kick', `/api/tubes/${tube}/kick`, { body: { bound: 1 } });
    assert.equal(one.status, 200);
    assert.equal((one.json as { kicked: number }).kicked, 1);
    assert.equal((await rawStatsTube(beanstalkd.url, tube))?.['current-jobs-buried'], '2');
    // No body at all: every buried job.
    const rest = await call('POST', '/api/tubes/{tube}/kick', `/api/tubes/${tube}/kick`);
    assert.equal((rest.json as { kicked: number }).kicked, 2);
    const stats = await rawStatsTube(beanstalkd.url, tube);
    assert.deepEqual({ ready: stats?.['current-jobs-ready'], buried: stats?.['current-jobs-buried'] }, { ready: '3', buried: '0' });
    assertError(await call('POST', '/api/tubes/{tube}/kick', `/api/tubes/${tube}/kick`, { body: { bound: 0 } }), 400, 'INVALID_REQUEST');
  });

  it('POST /api/jobs/{id}/kick kicks one buried job; a ready one is a 409', TEST_TIMEOUT, async () => {
    const tube = freshTube('kickjob');
    const id = await rawPut(beanstalkd.url, tube, 'x');
    await bury(beanstalkd, [id]);
    const reply = await call('POST', '/api/jobs/{id}/kick', `/api/jobs/${id}/kick`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { id, server: beanstalkd.url, kicked: true, from: 'buried', tube });
    assert.equal((await rawStatsJob(beanstalkd.url, id))?.state, 'ready');
    assertError(await call('POST', '/api/jobs/{id}/kick', `/api/jobs/${id}/kick`), 409, 'WRONG_STATE');
    assertError(await call('POST', '/api/jobs/{id}/kick', '/api/jobs/999999999/kick'), 404, 'JOB_NOT_FOUND');
  });

  it('DELETE /api/jobs/{id} deletes the job; a second delete is a 404', TEST_TIMEOUT, async () => {
    const tube = freshTube('del');
    const id = await rawPut(beanstalkd.url, tube, 'x', { delay: 600 });
    const reply = await call('DELETE', '/api/jobs/{id}', `/api/jobs/${id}`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { id, server: beanstalkd.url, tube, state: 'delayed' });
    assert.equal(await rawStatsJob(beanstalkd.url, id), null);
    assertError(await call('DELETE', '/api/jobs/{id}', `/api/jobs/${id}`), 404, 'JOB_NOT_FOUND');
  });

  it('POST /api/tubes/{tube}/pause and /resume set and end the pause the server reports', TEST_TIMEOUT, async () => {
    const tube = freshTube('pause');
    await rawPut(beanstalkd.url, tube, 'x');
    const paused = await call('POST', '/api/tubes/{tube}/pause', `/api/tubes/${tube}/pause`, { body: { seconds: 600 } });
    assert.equal(paused.status, 200);
    assert.equal((paused.json as { pauseSeconds: number }).pauseSeconds, 600);
    assert.equal((await rawStatsTube(beanstalkd.url, tube))?.pause, '600');
    const resumed = await call('POST', '/api/tubes/{tube}/resume', `/api/tubes/${tube}/resume`);
    assert.equal(resumed.status, 200);
    assert.equal((resumed.json as { pauseSeconds: number }).pauseSeconds, 0);
    assert.equal((await rawStatsTube(beanstalkd.url, tube))?.pause, '0');
    assertError(await call('POST', '/api/tubes/{tube}/pause', `/api/tubes/${tube}/pause`, { body: {} }), 400, 'INVALID_REQUEST');
    assertError(
      await call('POST', '/api/tubes/{tube}/pause', `/api/tubes/${freshTube('nope')}/pause`, { body: { seconds: 5 } }),
      404,
      'TUBE_NOT_FOUND',
    );
  });

  it('POST /api/tubes/{tube}/requeue puts the dead letters of that tube back, failure history kept', TEST_TIMEOUT, async () => {
    const [tube, other, dead] = [freshTube('rq'), freshTube('rq-other'), freshTube('rq-dead')];
    const letter = (into: string, n: number): Buffer => {
      const body = deadLetterBody(
        Buffer.from(envelope('charge', into, { n })),
        { error: new Error(`bug ${n}`), tube: into, jobId: String(100 + n), attempts: 1, kicks: 0 },
        { maxBytes: 65_535 },
      );
      assert.ok(body);
      return body;
    };
    const mine = [await rawPut(beanstalkd.url, dead, letter(tube, 1)), await rawPut(beanstalkd.url, dead, letter(tube, 2))];
    const theirs = await rawPut(beanstalkd.url, dead, letter(other, 3));

    const reply = await call('POST', '/api/tubes/{tube}/requeue', `/api/tubes/${tube}/requeue`, { body: { from: dead } });
    assert.equal(reply.status, 200);
    const result = reply.json as { requeued: number; otherTube: number; jobs: { id: string; deadLetterId: string }[] };
    assert.equal(result.requeued, 2);
    assert.equal(result.otherTube, 1);
    assert.deepEqual(result.jobs.map((job) => job.deadLetterId).sort(), [...mine].sort());
    for (const id of mine) assert.equal(await rawStatsJob(beanstalkd.url, id), null, 'the letter is gone');
    assert.equal((await rawStatsJob(beanstalkd.url, theirs))?.state, 'ready', "another tube's letter stays");
    const back = await call('GET', '/api/jobs/{id}', `/api/jobs/${result.jobs[0]?.id}`);
    const job = back.json as { tube: string; envelope: { func_name: string }; history: { failures: { reason: string }[] } };
    assert.equal(job.tube, tube);
    assert.equal(job.envelope.func_name, 'charge');
    assert.equal(job.history.failures.at(-1)?.reason, 'dead-lettered');

    assertError(await call('POST', '/api/tubes/{tube}/requeue', `/api/tubes/${tube}/requeue`, { body: {} }), 400, 'INVALID_REQUEST');
  });

  it('POST /api/jobs/{id}/requeue puts one dead letter back into the tube it names; a plain job is refused', TEST_TIMEOUT, async () => {
    const [tube, dead] = [freshTube('rq1'), freshTube('rq1-dead')];
    const body = deadLetterBody(
      Buffer.from(envelope('charge', tube, { n: 9 })),
      { error: new Error('bug 9'), tube, jobId: '99', attempts: 2, kicks: 1 },
      { maxBytes: 65_535 },
    );
    assert.ok(body);
    const letter = await rawPut(beanstalkd.url, dead, body, { priority: 5 });
    const reply = await call('POST', '/api/jobs/{id}/requeue', `/api/jobs/${letter}/requeue`);
    assert.equal(reply.status, 200, reply.text);
    const result = reply.json as { id: string; deadLetterId: string; tube: string; deadLetterDeleted: boolean; priority: number };
    assert.deepEqual([result.deadLetterId, result.tube, result.deadLetterDeleted], [letter, tube, true]);
    assert.equal(await rawStatsJob(beanstalkd.url, letter), null, 'the letter is gone');
    const stats = await rawStatsJob(beanstalkd.url, result.id);
    assert.deepEqual([stats?.tube, stats?.state], [tube, 'ready']);
    const back = (await call('GET', '/api/jobs/{id}', `/api/jobs/${result.id}`)).json as { history: { failures: { reason: string }[] } };
    assert.equal(back.history.failures.at(-1)?.reason, 'dead-lettered');

    const plain = await rawPut(beanstalkd.url, tube, envelope('charge', tube, {}));
    assertError(await call('POST', '/api/jobs/{id}/requeue', `/api/jobs/${plain}/requeue`), 409, 'NOT_A_DEAD_LETTER');
    assert.equal((await rawStatsJob(beanstalkd.url, plain))?.state, 'ready', 'a refused requeue changes nothing');
    assertError(await call('POST', '/api/jobs/{id}/requeue', '/api/jobs/999999999/requeue'), 404, 'JOB_NOT_FOUND');
  });

  it(
    'GET /api/tubes/{tube}/jobs finds jobs by func_name and by text in kwargs, paging below the last one found',
    TEST_TIMEOUT,
    async () => {
      const tube = freshTube('find');
      const ids: string[] = [];
      for (let n = 0; n < 30; n += 1) {
        ids.push(
          await rawPut(
            beanstalkd.url,
            tube,
            envelope(n % 3 === 0 ? 'charge' : 'mail', tube, { order: `A-${n}`, note: n === 7 ? 'Needle here' : '' }),
          ),
        );
      }
      ids.push(await rawPut(beanstalkd.url, tube, 'plain text with a needle'));
      const charges = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?func_name=charge&limit=4`);
      assert.equal(charges.status, 200, charges.text);
      const first = charges.json as { jobs: { id: string; envelope: { func_name: string } }[]; nextCursor: string | null };
      const expected = ids.filter((_, n) => n % 3 === 0 && n < 30).reverse();
      assert.deepEqual(
        first.jobs.map((job) => job.id),
        expected.slice(0, 4),
        'the newest four charges',
      );
      const next = await call(
        'GET',
        '/api/tubes/{tube}/jobs',
        `/api/tubes/${tube}/jobs?func_name=charge&limit=100&cursor=${first.nextCursor}`,
      );
      const rest = next.json as { jobs: { id: string }[]; exhausted: boolean };
      assert.deepEqual(
        rest.jobs.map((job) => job.id),
        expected.slice(4),
        'the next page goes on below the last one found',
      );
      assert.equal(rest.exhausted, true);
      // Text in kwargs, case-insensitive; a body that is not an envelope is searched as its raw text.
      const found = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?q=NEEDLE`);
      assert.deepEqual(
        (found.json as { jobs: { id: string }[] }).jobs.map((job) => job.id),
        [ids[30], ids[7]],
      );
      assertError(await api.request('GET', `/api/tubes/${tube}/jobs?q=${'x'.repeat(201)}`), 400, 'INVALID_REQUEST');
    },
  );

  it('GET /api/tasks says no registry is loaded without --jobs', TEST_TIMEOUT, async () => {
    const reply = await call('GET', '/api/tasks', '/api/tasks');
    assert.deepEqual(reply.json, { loaded: false, tubes: [] });
  });

  it('/healthz and /readyz answer without a token; /readyz names the server', TEST_TIMEOUT, async () => {
    const health = await call('GET', '/healthz', '/healthz', { token: null });
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: 'ok' });
    const ready = await call('GET', '/readyz', '/readyz', { token: null });
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json, { ready: true, servers: [{ server: beanstalkd.url, up: true, error: null }] });
  });

  it('unknown routes are a JSON 404, a known route with another method a 405 with Allow', TEST_TIMEOUT, async () => {
    assertError(await api.request('GET', '/api/nothing'), 404, 'ROUTE_NOT_FOUND');
    // `/` is the dashboard's (it redirects to /login); any other path outside the routes is a 404.
    assertError(await api.request('GET', '/no/such/page'), 404, 'ROUTE_NOT_FOUND');
    const put = await api.request('PUT', '/api/tubes/x/jobs', { body: { func_name: 'f' } });
    assertError(put, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(put.headers.allow, 'GET, HEAD, POST');
    assertError(await api.request('GET', '/api/jobs/%zz'), 400, 'BAD_URL');
  });
});
