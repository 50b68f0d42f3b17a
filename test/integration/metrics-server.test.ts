// The server-side collector against real beanstalkd servers, scraped over HTTP: tube gauges after puts,
// delays and buries, beanstalkd's own counters, and a killed server reported down with no stale series.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseServerUrl } from '../../src/beanstalk/address.js';
import { registryRenderer, startMetricsServer } from '../../src/metrics/http.js';
import { monitorServer, ServerMetrics } from '../../src/metrics/server-metrics.js';
import { type BeanstalkdServer, freePort, rawCommand, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { scrape } from '../helpers/prometheus.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

describe('server metrics', { timeout: 30_000 }, () => {
  let server: BeanstalkdServer;

  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server?.stop();
  });

  it('reports every tube by state and the server counters; a killed server is down with no stale series', async (t) => {
    const own = await startBeanstalkd();
    t.after(() => own.stop());
    const monitored = monitorServer(parseServerUrl(own.url), own.url, { timeoutMs: 1_000 });
    t.after(() => monitored.close());
    const metrics = new ServerMetrics({ servers: [monitored], timeoutMs: 1_000 });
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());

    const tube = freshTube('srv');
    const other = freshTube('srv');
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) ids.push(await rawPut(own.url, tube, '{}', { priority: i < 2 ? 10 : 2_000 }));
    await rawPut(own.url, tube, '{}', { delay: 3_600 });
    await rawPut(own.url, other, '{}');
    await bury(own, [ids[3] as string]);

    const up = await scrape(endpoint.url);
    const jobs = (state: string, name = tube): number | undefined => up.value('bsworker_tube_jobs', { server: own.url, tube: name, state });
    assert.equal(up.value('bsworker_server_up', { server: own.url }), 1);
    assert.deepEqual(
      ['ready', 'urgent', 'reserved', 'delayed', 'buried'].map((state) => jobs(state)),
      [3, 2, 0, 1, 1],
    );
    assert.equal(jobs('ready', other), 1);
    assert.equal(jobs('ready', 'default'), 0);
    assert.equal(up.value('bsworker_tube_puts_total', { server: own.url, tube }), 5);
    assert.equal(up.value('bsworker_server_tubes', { server: own.url }), 3);
    assert.equal(up.value('beanstalkd_cmd_put_total', { server: own.url }), 6);
    assert.equal(up.value('beanstalkd_cmd_bury_total', { server: own.url }), 1);
    assert.equal(up.value('beanstalkd_total_jobs_total', { server: own.url }), 6);
    assert.equal(up.value('beanstalkd_current_jobs_buried', { server: own.url }), 1);
    assert.equal(up.value('beanstalkd_job_timeouts_total', { server: own.url }), 0);
    assert.equal(up.value('beanstalkd_max_job_size_bytes', { server: own.url }), 65_535);
    assert.equal(up.value('beanstalkd_draining', { server: own.url }), 0);
    assert.ok((up.value('beanstalkd_current_connections', { server: own.url }) as number) >= 1);
    assert.equal(up.all('beanstalkd_info', { server: own.url }).length, 1);
    assert.equal(up.types.get('beanstalkd_cmd_put_total'), 'counter');
    assert.equal(up.types.get('beanstalkd_current_connections'), 'gauge');
    assert.equal(up.types.get('bsworker_tube_jobs'), 'gauge');

    // Each scrape reads the server again.
    await rawCommand(own.url, `kick-job ${ids[3]}\r\n`);
    const kicked = await scrape(endpoint.url);
    assert.equal(kicked.value('bsworker_tube_jobs', { server: own.url, tube, state: 'buried' }), 0);
    assert.equal(kicked.value('bsworker_tube_jobs', { server: own.url, tube, state: 'ready' }), 4);

    await own.stop('SIGKILL');
    const down = await scrape(endpoint.url);
    assert.equal(down.value('bsworker_server_up', { server: own.url }), 0);
    assert.deepEqual(down.all('bsworker_tube_jobs'), []);
    assert.deepEqual(down.all('beanstalkd_cmd_put_total'), []);
    assert.deepEqual(down.all('bsworker_server_tubes'), []);
    // The HELP and TYPE lines stay: the families exist, with no series.
    assert.equal(down.types.get('bsworker_tube_jobs'), 'gauge');

    // Back on the same port: the next scrape connects again.
    const again = await startBeanstalkd({ port: own.port });
    t.after(() => again.stop());
    const back = await scrape(endpoint.url);
    assert.equal(back.value('bsworker_server_up', { server: own.url }), 1);
    assert.equal(back.value('beanstalkd_cmd_put_total', { server: own.url }), 0);
  });

  it('takes a list of servers: each has its own up, and one down does not hide the other', async (t) => {
    const deadPort = await freePort();
    const dead = `127.0.0.1:${deadPort}`;
    const servers = [
      monitorServer(parseServerUrl(server.url), 'first', { timeoutMs: 1_000 }),
      monitorServer(parseServerUrl(dead), 'second', { timeoutMs: 1_000 }),
    ];
    t.after(() => Promise.all(servers.map((s) => s.close())));
    const metrics = new ServerMetrics({ servers, timeoutMs: 1_000 });
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());
    const tube = freshTube('srv');
    await rawPut(server.url, tube, '{}');
    const started = performance.now();
    const scraped = await scrape(endpoint.url);
    assert.ok(performance.now() - started < 3_000, 'a refused connection is reported at once, within the deadline');
    assert.equal(scraped.value('bsworker_server_up', { server: 'first' }), 1);
    assert.equal(scraped.value('bsworker_server_up', { server: 'second' }), 0);
    assert.equal(scraped.value('bsworker_tube_jobs', { server: 'first', tube, state: 'ready' }), 1);
    assert.deepEqual(scraped.all('bsworker_tube_jobs', { server: 'second' }), []);
    // One read per server per scrape, shared by every metric: one `stats` and one `list-tubes` each.
    const stats = scraped.value('beanstalkd_cmd_stats_total', { server: 'first' }) as number;
    const again = await scrape(endpoint.url);
    assert.equal(again.value('beanstalkd_cmd_stats_total', { server: 'first' }), stats + 1);
  });

  it('gives a server that does not answer in time up 0 after the deadline', async (t) => {
    const source = {
      stats: () => new Promise<never>(() => undefined),
      listTubes: () => new Promise<never>(() => undefined),
      statsTube: () => new Promise<never>(() => undefined),
    };
    const metrics = new ServerMetrics({ servers: [{ name: 'stuck', connection: source }], timeoutMs: 300 });
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());
    const started = performance.now();
    const scraped = await scrape(endpoint.url);
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 2_000, `answered at the deadline: ${Math.round(took)} ms`);
    assert.equal(scraped.value('bsworker_server_up', { server: 'stuck' }), 0);
    assert.ok((scraped.value('bsworker_server_scrape_duration_seconds', { server: 'stuck' }) as number) >= 0.25);
  });
});
