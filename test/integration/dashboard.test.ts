// The dashboard's views in a real browser (Chromium through playwright-core) over a real beanstalkd:
// what they show is checked against the server's own stats, and what their buttons do, against the
// server's state afterwards. Hostile job data must show as text and run nothing.
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { rawPut, rawStatsJob, rawStatsTube } from '../helpers/beanstalkd.js';
import { type DashboardRig, startDashboardRig, type WatchedPage } from '../helpers/browser.js';
import { envelope } from '../helpers/cli.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };
/** With BSWORKER_SCREENSHOTS=1 the screenshots go to docs/ (to be committed); else to a temporary directory. */
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));

/** The window's marker properties the tests read. */
declare const window: { __pwned?: unknown; __noReload?: unknown };

/** A body with a failure history of two entries, the last with a stack. */
function failedBody(tube: string, funcName: string, kwargs: Record<string, unknown>): string {
  const entry = (attempt: number, message: string) => ({
    reason: 'failed',
    name: 'PaymentDeclined',
    message,
    stack: `PaymentDeclined: ${message}\n    at charge (/app/jobs/pay.js:10:5)\n    at run (/app/node_modules/bsworker/dist/worker/run.js:42:11)`,
    attempt,
    kicks: attempt - 1,
    worker: { host: 'worker-1', pid: 4242 },
    server: '127.0.0.1:11300',
    job_id: String(100 + attempt),
    tube,
    at: new Date(Date.UTC(2026, 0, 2, 3, 4, attempt)).toISOString(),
  });
  return JSON.stringify({
    func_name: funcName,
    tube,
    kwargs,
    meta: { failures: [entry(1, 'card expired'), entry(2, 'card still expired')] },
  });
}

/** Opens the job view of `id` and waits until it shows that job (not the one shown before). */
async function openJob(page: WatchedPage['page'], id: string): Promise<void> {
  await page.goto(`/#/job/${encodeURIComponent(id)}`);
  await page.locator('h1 code', { hasText: new RegExp(`^${id}$`) }).waitFor();
  await page.locator('#job-state').waitFor();
}

/** Fails the test if the page ran any script it should not have or logged an error. */
async function assertInert(watched: WatchedPage): Promise<void> {
  assert.equal(await watched.page.evaluate(() => window.__pwned), undefined, 'a hostile body ran script');
  assert.deepEqual(watched.pageErrors, []);
  assert.deepEqual(watched.consoleErrors, [], watched.failedResponses.join('\n'));
}

describe('dashboard views', () => {
  let rig: DashboardRig;

  before(async () => {
    rig = await startDashboardRig();
  });
  after(async () => {
    await rig?.close();
  });

  it('the overview shows the counts the server has, and a put through the API appears without a reload', TEST_TIMEOUT, async () => {
    const tube = freshTube('ov');
    const url = rig.beanstalkd.url;
    await rawPut(url, tube, envelope('f', tube, {}));
    await rawPut(url, tube, envelope('f', tube, {}), { priority: 10 });
    await rawPut(url, tube, envelope('f', tube, {}), { delay: 3_600 });
    await bury(rig.beanstalkd, [await rawPut(url, tube, envelope('f', tube, {}))]);
    const watched = await rig.loggedIn();
    const { page } = watched;
    const row = page.locator(`tr[data-tube="${tube}"]`);
    await row.waitFor();
    const stats = await rawStatsTube(url, tube);
    const expected: Record<string, string | undefined> = {
      ready: stats?.['current-jobs-ready'],
      urgent: stats?.['current-jobs-urgent'],
      reserved: stats?.['current-jobs-reserved'],
      delayed: stats?.['current-jobs-delayed'],
      buried: stats?.['current-jobs-buried'],
      total: stats?.['total-jobs'],
    };
    assert.deepEqual(expected, { ready: '2', urgent: '1', reserved: '0', delayed: '1', buried: '1', total: '4' });
    for (const [key, value] of Object.entries(expected)) assert.equal(await row.locator(`[data-count="${key}"]`).innerText(), value, key);
    assert.match(await page.locator('section[aria-label=Servers]').innerText(), /up/);

    await page.evaluate(() => {
      window.__noReload = true;
    });
    const put = await rig.api.request('POST', `/api/tubes/${tube}/jobs`, { body: { func_name: 'f', kwargs: { n: 1 } } });
    assert.equal(put.status, 201, put.text);
    await row.locator('[data-count="ready"]', { hasText: '3' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
    // The rate charts received readings: the "in" rate is a number by now.
    await page.locator('[data-rate="cmd-put"]', { hasText: /^\d+\.\d$/ }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('.chart canvas').count(), 3);
    await assertInert(watched);
  });

  it('the tube page lists buried jobs with their last failure, and its kick button kicks N of them', TEST_TIMEOUT, async () => {
    const tube = freshTube('tb');
    const url = rig.beanstalkd.url;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await rawPut(url, tube, failedBody(tube, 'pay', { order: i })));
    await bury(rig.beanstalkd, ids);
    const delayed = await rawPut(url, tube, envelope('later', tube, {}), { delay: 3_600 });
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto(`/#/tube/${encodeURIComponent(tube)}`);
    const buried = page.locator('table.buried tbody tr');
    await buried.first().waitFor();
    assert.equal(await buried.count(), 3);
    const first = await buried.first().innerText();
    assert.match(first, /PaymentDeclined: card still expired/);
    assert.match(first, /at charge \(\/app\/jobs\/pay\.js:10:5\)/);
    assert.match(first, /\b2\b/);
    assert.equal(await page.locator('table.delayed tbody tr a', { hasText: delayed }).count(), 1);

    await page.fill('#kick-bound', '2');
    await page.click('#kick-tube');
    await page.locator('#toast', { hasText: 'Kicked' }).waitFor();
    const stats = await rawStatsTube(url, tube);
    assert.equal(stats?.['current-jobs-buried'], '1');
    assert.equal(stats?.['current-jobs-ready'], '2');

    await page.fill('#pause-seconds', '120');
    await page.click('#pause');
    await page.locator('#toast', { hasText: 'Paused' }).waitFor();
    assert.ok(Number((await rawStatsTube(url, tube))?.pause) === 120);
    await page.click('#resume');
    await page.locator('#toast', { hasText: 'Resumed' }).waitFor();
    assert.equal((await rawStatsTube(url, tube))?.pause, '0');
    await assertInert(watched);
  });

  it(
    'the job page shows the envelope and the whole failure history; kick and delete (confirmed) change the server',
    TEST_TIMEOUT,
    async () => {
      const tube = freshTube('job');
      const url = rig.beanstalkd.url;
      const id = await rawPut(url, tube, failedBody(tube, 'pay', { order: 7, customer: { id: 'c-1' } }));
      await bury(rig.beanstalkd, [id]);
      // A second job keeps the tube in existence for the tube view the delete goes back to.
      await rawPut(url, tube, envelope('other', tube, {}));
      const watched = await rig.loggedIn();
      const { page } = watched;
      await openJob(page, id);
      await page.locator('#job-state', { hasText: 'buried' }).waitFor();
      assert.equal(JSON.parse(await page.locator('#kwargs').innerText()).customer.id, 'c-1');
      assert.equal(await page.locator('ol.failures > li').count(), 2);
      assert.match(await page.locator('ol.failures').innerText(), /card expired[\s\S]*card still expired/);
      await page.locator('ol.failures > li').last().locator('summary').click();
      assert.match(await page.locator('ol.failures > li').last().locator('pre').innerText(), /at run \(/);
      if (process.env.BSWORKER_SCREENSHOTS === '1') await page.screenshot({ path: join(DOCS, 'dashboard-job.png'), fullPage: true });

      await page.click('#kick');
      await page.locator('#job-state', { hasText: 'ready' }).waitFor();
      assert.equal((await rawStatsJob(url, id))?.state, 'ready');

      await page.click('#delete');
      // Keyboard: the confirmation takes the focus on Cancel; the job is still there until "Delete it".
      assert.equal(
        await page.evaluate(
          () => (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement.textContent,
        ),
        'Cancel',
      );
      assert.equal((await rawStatsJob(url, id))?.state, 'ready');
      await page.click('#confirm-delete');
      await page.locator('#toast', { hasText: `Deleted ${id}` }).waitFor();
      await page.waitForURL(`**/#/tube/${tube}`);
      assert.equal(await rawStatsJob(url, id), null);
      await assertInert(watched);
    },
  );

  it('hostile job data is inert: in kwargs, in func_name and in a raw body it shows as text and runs nothing', TEST_TIMEOUT, async () => {
    const tube = freshTube('xss');
    const url = rig.beanstalkd.url;
    const script = '<script>window.__pwned=1</script>';
    const img = '"><img src=x onerror="window.__pwned=1">';
    const inKwargs = await rawPut(url, tube, failedBody(tube, 'ok', { a: script, b: img, [img]: 1 }));
    const inName = await rawPut(url, tube, envelope(`${img}${script}`, tube, {}));
    const raw = await rawPut(url, tube, `not json ${script}${img}`);
    await bury(rig.beanstalkd, [inKwargs, inName, raw]);
    const watched = await rig.loggedIn();
    const { page } = watched;

    await page.goto(`/#/tube/${encodeURIComponent(tube)}`);
    await page.locator('table.buried tbody tr').nth(2).waitFor();
    const list = await page.locator('table.buried').innerText();
    assert.ok(list.includes(`${img}${script}`), list);
    assert.ok(list.includes('not an envelope'), list);

    await openJob(page, inKwargs);
    await page.locator('#kwargs').waitFor();
    const kwargs = await page.locator('#kwargs').innerText();
    assert.equal(JSON.parse(kwargs).a, script);
    assert.equal(JSON.parse(kwargs).b, img);

    await openJob(page, inName);
    await page.locator('#func-name').waitFor();
    assert.equal(await page.locator('#func-name').innerText(), `${img}${script}`);

    await openJob(page, raw);
    await page.locator('#raw-body').waitFor();
    assert.equal(await page.locator('#raw-body').innerText(), `not json ${script}${img}`);
    assert.match(await page.locator('main').innerText(), /not a bsworker envelope/);

    // No element was made from the data: the only images are none, the only scripts the shell's two.
    assert.equal(await page.locator('main img').count(), 0);
    assert.equal(await page.locator('script').count(), 2);
    await assertInert(watched);
  });

  it('takes the overview screenshot (into docs/ with BSWORKER_SCREENSHOTS=1)', TEST_TIMEOUT, async () => {
    const tube = freshTube('emails');
    for (let i = 0; i < 5; i++) await rawPut(rig.beanstalkd.url, tube, envelope('send', tube, { i }));
    const { page } = await rig.loggedIn();
    await page.locator(`tr[data-tube="${tube}"]`).waitFor();
    await page.locator('[data-rate="cmd-put"]', { hasText: /^\d/ }).waitFor({ timeout: 10_000 });
    const dir = process.env.BSWORKER_SCREENSHOTS === '1' ? DOCS : await mkdtemp(join(tmpdir(), 'bsworker-shots-'));
    const path = join(dir, 'dashboard-overview.png');
    await page.setViewportSize({ width: 1100, height: 760 });
    await page.screenshot({ path, fullPage: true });
    assert.ok((await stat(path)).size > 1_000);
  });
});
