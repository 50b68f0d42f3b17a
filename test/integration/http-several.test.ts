// The HTTP API and its metrics over three servers: two beanstalkd started by the harness and one that
// was started and stopped. In-process, every reply is checked against each server's own counts and the
// schema the OpenAPI document gives; then `bsworker serve --url a,b,c` as a user runs it, for the wiring
// of /metrics (one monitor per server, a `server` label, the down one at bsworker_server_up 0).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Admin } from '../../src/admin/index.js';
import { type BeanstalkdServer, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, envelope, prefix } from '../helpers/cli.js';
import { assertDocumented, assertError, type OpenApiDocument, type Reply, send, startApi, type TestApi } from '../helpers/http.js';
import { parseExposition } from '../helpers/prometheus.js';
import { bury } from '../helpers/raw-session.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const TOKEN = 'several-servers-token-0123456789abcdef';

async function buried(server: BeanstalkdServer, tube: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await rawPut(server.url, tube, envelope('f', tube, { i })));
  await bury(server, ids);
  return ids;
}

const rawCount = async (server: BeanstalkdServer, tube: string, field: string): Promise<number> =>
  Number((await rawStatsTube(server.url, tube))?.[field] ?? 0);

describe('HTTP API over several servers, one of them down', () => {
  let a: BeanstalkdServer;
  let b: BeanstalkdServer;
  let down: string;
  let api: TestApi;
  let document: OpenApiDocument;

  async function call(method: string, route: string, path: string, options?: Parameters<TestApi['request']>[2]): Promise<Reply> {
    const reply = await api.request(method, path, options);
    assertDocumented(document, method, route, reply);
    return reply;
  }

  before(async () => {
    [a, b] = await Promise.all([startBeanstalkd(), startBeanstalkd()]);
    const c = await startBeanstalkd();
    down = c.url;
    await c.stop();
    api = await startApi(a.url, { admin: new Admin({ urls: [a.url, b.url, down], connectTimeoutMs: 2_000 }) });
    document = (await api.request('GET', '/api/openapi.json')).json as OpenApiDocument;
  });
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await api?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('lists every server with its state, and counts each tube per server and in total', TEST_TIMEOUT, async () => {
    const tube = prefix('count');
    await rawPut(a.url, tube, envelope('f', tube, {}));
    await buried(b, tube, 2);
    const servers = (await call('GET', '/api/servers', '/api/servers')).json as {
      servers: { server: string; up: boolean; error: string | null }[];
    };
    assert.deepEqual(
      servers.servers.map((entry) => [entry.server, entry.up]),
      [
        [a.url, true],
        [b.url, true],
        [down, false],
      ],
    );
    assert.ok(servers.servers[2]?.error);

    const all = await call('GET', '/api/tubes', '/api/tubes');
    assert.equal(all.status, 200, 'the servers that answer are shown, not a 503 for the whole request');
    const report = all.json as { tubes: { name: string; totals: { ready: number; buried: number } }[]; unavailable: string[] };
    assert.deepEqual(report.unavailable, [down]);
    const totals = report.tubes.find((entry) => entry.name === tube)?.totals;
    assert.deepEqual(
      [totals?.ready, totals?.buried],
      [await rawCount(a, tube, 'current-jobs-ready'), await rawCount(b, tube, 'current-jobs-buried')],
    );

    const one = await call('GET', '/api/tubes/{tube}', `/api/tubes/${tube}`);
    assert.equal(one.status, 200);
    const tubeReport = one.json as { servers: { server: string; ready: number; buried: number }[]; unavailable: string[] };
    assert.deepEqual(
      tubeReport.servers.map((entry) => [entry.server, entry.ready, entry.buried]),
      [
        [a.url, 1, 0],
        [b.url, 0, 2],
      ],
    );
    assert.deepEqual(tubeReport.unavailable, [down]);

    const ready = (await send(api.port, 'GET', '/readyz', null)).json as { ready: boolean; servers: { server: string; up: boolean }[] };
    assert.equal(ready.ready, true, 'ready while any of several servers answers');
    assert.deepEqual(
      ready.servers.map((entry) => entry.up),
      [true, true, false],
    );
  });

  it('kicks a bound in all, shared by buried counts; pauses name the down server', TEST_TIMEOUT, async () => {
    const tube = prefix('kick');
    await buried(a, tube, 4);
    await buried(b, tube, 2);
    const kick = await call('POST', '/api/tubes/{tube}/kick', `/api/tubes/${tube}/kick`, { body: { bound: 3 } });
    assert.equal(kick.status, 200, kick.text);
    const result = kick.json as { kicked: number; tubes: { server: string; kicked: number }[]; unavailable: string[] };
    assert.equal(result.kicked, 3);
    assert.deepEqual(
      result.tubes.map((entry) => [entry.server, entry.kicked]),
      [
        [a.url, 2],
        [b.url, 1],
      ],
    );
    assert.deepEqual(result.unavailable, [down]);
    assert.deepEqual([await rawCount(a, tube, 'current-jobs-buried'), await rawCount(b, tube, 'current-jobs-buried')], [2, 1]);

    const paused = await call('POST', '/api/tubes/{tube}/pause', `/api/tubes/${tube}/pause`, { body: { seconds: 60 } });
    assert.equal(paused.status, 200);
    assert.deepEqual((paused.json as { unavailable: string[] }).unavailable, [down]);
    assert.deepEqual([await rawCount(a, tube, 'pause'), await rawCount(b, tube, 'pause')], [60, 60]);
  });

  it('puts spread and give qualified ids; every job URL takes one; a bare id is ambiguous', TEST_TIMEOUT, async () => {
    const tube = prefix('put');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const put = await call('POST', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs`, { body: { func_name: 'f', kwargs: { i } } });
      assert.equal(put.status, 201, put.text);
      const { id, server } = put.json as { id: string; server: string };
      assert.equal(put.headers.location, `/api/jobs/${encodeURIComponent(id)}`);
      assert.ok(id.startsWith(`${server}/`));
      ids.push(id);
    }
    // One router for the API's life: the rotation goes on past the down server (its turn goes to the next
    // one), so both that answer get puts and every put is on one of them.
    const counts = [await rawCount(a, tube, 'current-jobs-ready'), await rawCount(b, tube, 'current-jobs-ready')];
    assert.equal(
      counts.reduce((sum, count) => sum + count, 0),
      4,
    );
    assert.ok(
      counts.every((count) => count > 0),
      String(counts),
    );

    const [first = ''] = ids;
    const job = await call('GET', '/api/jobs/{id}', `/api/jobs/${encodeURIComponent(first)}`);
    assert.equal(job.status, 200);
    assert.equal((job.json as { id: string }).id, first);
    const local = first.slice(first.lastIndexOf('/') + 1);
    assertError(await api.request('GET', `/api/jobs/${local}`), 400, 'AMBIGUOUS_JOB_ID');
    const server = first.slice(0, first.lastIndexOf('/'));
    const page = await call('GET', '/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?server=${encodeURIComponent(server)}&state=ready`);
    assert.ok((page.json as { jobs: { id: string }[] }).jobs.some((entry) => entry.id === first));
    assertError(await api.request('GET', `/api/tubes/${tube}/jobs`), 400, 'AMBIGUOUS_SERVER');
    assertError(await api.request('GET', `/api/jobs/${encodeURIComponent(`${down}/1`)}`), 503, 'SERVER_UNAVAILABLE');

    const removed = await call('DELETE', '/api/jobs/{id}', `/api/jobs/${encodeURIComponent(first)}`);
    assert.equal(removed.status, 200);
    assert.equal(await rawStatsJob(server, local), null);
  });

  it('bsworker serve --url a,b,c: /metrics has one server label each, the down one at bsworker_server_up 0', TEST_TIMEOUT, async () => {
    const tube = prefix('metrics');
    await rawPut(a.url, tube, 'x');
    await buried(b, tube, 1);
    const cli = new Cli(['serve', '--port', '0', '--url', `${a.url},${b.url},${down}`], { BSWORKER_TOKEN: TOKEN });
    const line = await cli.waitForLine((entry) => entry.msg === 'http: listening', 'http: listening');
    assert.deepEqual(line.servers, [a.url, b.url, down]);
    const port = Number(/:(\d+)$/.exec(String(line.url))?.[1]);
    const metrics = await send(port, 'GET', '/metrics', TOKEN);
    assert.equal(metrics.status, 200);
    const scrape = parseExposition(metrics.text);
    assert.deepEqual(
      [a.url, b.url, down].map((server) => scrape.value('bsworker_server_up', { server })),
      [1, 1, 0],
    );
    assert.equal(scrape.value('bsworker_tube_jobs', { server: a.url, tube, state: 'ready' }), 1);
    assert.equal(scrape.value('bsworker_tube_jobs', { server: b.url, tube, state: 'buried' }), 1);
    assert.equal(scrape.all('bsworker_tube_jobs', { server: down }).length, 0, 'no stale series for the down server');
    const servers = (await send(port, 'GET', '/api/servers', TOKEN)).json as { servers: { up: boolean }[] };
    assert.deepEqual(
      servers.servers.map((entry) => entry.up),
      [true, true, false],
    );
    cli.signal('SIGTERM');
    assert.equal((await cli.waitForExit()).code, 0, cli.stderr);
  });
});
