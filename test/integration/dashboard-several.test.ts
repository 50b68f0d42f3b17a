// The dashboard over two servers in a real browser, one of them stopped: the overview and the tube page
// list the down server as down (not an error that hides the other), a tube's jobs link by qualified id,
// and the job page's kick acts on the right server. No request of the page may fail on the way.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Admin } from '../../src/admin/index.js';
import { rawPut, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { type DashboardRig, startDashboardRig } from '../helpers/browser.js';
import { envelope } from '../helpers/cli.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };

describe('dashboard over several servers, one of them down', () => {
  let rig: DashboardRig;
  let down: string;

  before(async () => {
    rig = await startDashboardRig(async (beanstalkd) => {
      const stopped = await startBeanstalkd();
      down = stopped.url;
      await stopped.stop();
      return { admin: new Admin({ urls: [beanstalkd.url, down], connectTimeoutMs: 2_000 }) };
    });
  });
  after(async () => {
    await rig?.close();
  });

  it('lists the down server as down, and links the other server’s jobs by qualified id', TEST_TIMEOUT, async () => {
    const up = rig.beanstalkd.url;
    const tube = freshTube('several');
    const id = await rawPut(up, tube, envelope('pay', tube, { order: 1 }));
    await bury(rig.beanstalkd, [id]);
    const qualified = `${up}/${id}`;

    const watched = await rig.loggedIn();
    const { page } = watched;
    const servers = page.locator('section[aria-label=Servers]');
    await servers.locator('tr', { hasText: down }).waitFor();
    assert.match(await servers.locator('tr', { hasText: down }).innerText(), /down: /);
    assert.match(await servers.locator('tr', { hasText: up }).innerText(), /\bup\b/);
    await page.locator('#updated', { hasText: `unavailable: ${down}` }).waitFor();
    await page.locator(`tr[data-tube="${tube}"] [data-count="buried"]`, { hasText: '1' }).waitFor();

    await page.goto(`/#/tube/${encodeURIComponent(tube)}`);
    await page.locator(`[data-down="${down}"]`).waitFor();
    const link = page.locator('table.buried tbody tr a', { hasText: qualified });
    await link.waitFor();
    await link.click();
    await page.locator('h1 code', { hasText: qualified }).waitFor();
    assert.equal(await page.locator('#job-state').innerText(), 'buried');
    await page.locator('#kick').click();
    await page.locator('#job-state', { hasText: 'ready' }).waitFor();
    assert.equal((await rawStatsJob(up, id))?.state, 'ready');

    assert.deepEqual(watched.pageErrors, []);
    assert.deepEqual(watched.failedResponses, [], 'the down server fails no request of the page');
    assert.deepEqual(watched.consoleErrors, []);
  });
});
