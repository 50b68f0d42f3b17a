// The dashboard's Find, Tasks and Workers views and the per-job requeue, in a real browser over a real
// beanstalkd, a registry with a zod schema and a real worker whose metrics endpoint runs in this process;
// and the page as a keyboard-only user, a phone and a dark system theme get it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { z } from 'zod';
import { registryRenderer, startMetricsServer } from '../../src/metrics/http.js';
import { collectWorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { UnrecoverableError } from '../../src/tasks/errors.js';
import { findTask, listTasks } from '../../src/tasks/registry.js';
import { validateKwargs } from '../../src/tasks/schema.js';
import { Worker } from '../../src/worker/worker.js';
import { rawPeekBody, rawPut, rawStatsJob, rawStatsTube } from '../helpers/beanstalkd.js';
import { type DashboardRig, startDashboardRig, type WatchedPage } from '../helpers/browser.js';
import { envelope } from '../helpers/cli.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube, registry, until } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };

/** The little of the DOM the functions run in the page use (this program is typed for Node). */
declare const document: {
  readonly activeElement: { readonly id: string; readonly textContent: string | null; getAttribute(name: string): string | null } | null;
  readonly documentElement: { readonly scrollWidth: number };
  readonly body: object;
};
declare const window: { readonly innerWidth: number; getComputedStyle(node: object): { readonly backgroundColor: string } };

/** The tube of the schema task the Tasks form puts into (no worker watches it). */
const TASK_TUBE = freshTube('tasks');
/** The tube the worker watches; its dead letters go to DEAD_TUBE. */
const WORK_TUBE = freshTube('work');
const DEAD_TUBE = `${WORK_TUBE}-dead`;

registry.task(TASK_TUBE, { schema: z.object({ to: z.email(), count: z.number().int().min(1).default(1) }).strict(), retries: 1 })(
  function sendMail() {},
);
registry.task(TASK_TUBE, { ttr: 120 })(function plain() {});

/** Keys the work task failed once already: it fails a key's first run only, so a requeued letter then succeeds. */
const failedOnce = new Set<string>();
/** Resolves with each key the work task ran without failing. */
const succeeded: string[] = [];
registry.task(WORK_TUBE)(function work(kw: { key: string; fail?: boolean }) {
  if (kw.fail && !failedOnce.has(kw.key)) {
    failedOnce.add(kw.key);
    throw new UnrecoverableError(`first run of ${kw.key} fails`);
  }
  succeeded.push(kw.key);
});

/** Presses Tab until `selector`'s element has the focus (at most `max` times); fails if it never does. */
async function tabTo(page: WatchedPage['page'], selector: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await page.locator(selector).evaluate((node) => node === (node.ownerDocument as unknown as typeof document).activeElement)) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`${selector} cannot be reached with the Tab key`);
}

describe('dashboard: find, tasks, workers, keyboard, phone, themes', () => {
  let rig: DashboardRig;
  let worker: Worker;
  let closeEndpoint: () => Promise<void> = async () => undefined;

  before(async () => {
    rig = await startDashboardRig(async (beanstalkd) => {
      worker = new Worker({ tubes: [WORK_TUBE], url: beanstalkd.url, deadLetterTube: DEAD_TUBE, logger: pino({ level: 'silent' }) });
      const metrics = collectWorkerMetrics(worker);
      await worker.start();
      const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
      closeEndpoint = () => endpoint.close();
      return { registry: { findTask, listTasks }, validate: validateKwargs, workerMetrics: [endpoint.url] };
    });
  });
  after(async () => {
    await worker?.stop({ force: true });
    await closeEndpoint();
    await rig?.close();
  });

  it('Find opens a job by its id, plain or qualified, and finds jobs by task name and by text in kwargs', TEST_TIMEOUT, async () => {
    const tube = freshTube('find');
    const url = rig.beanstalkd.url;
    const invoice = await rawPut(url, tube, envelope('invoice', tube, { customer: 'ACME Corp', total: 12 }));
    await rawPut(url, tube, envelope('invoice', tube, { customer: 'Globex', total: 3 }));
    const refund = await rawPut(url, tube, envelope('refund', tube, { customer: 'acme corp' }));
    await bury(rig.beanstalkd, [refund]);
    const watched = await rig.loggedIn();
    const { page } = watched;

    await page.goto('/#/find');
    await page.fill('#find-id', invoice);
    await page.press('#find-id', 'Enter');
    await page.locator('#func-name', { hasText: 'invoice' }).waitFor();
    const server = (await rig.api.admin.job(invoice)).server;
    await page.goto('/#/find');
    await page.fill('#find-id', `${server}/${refund}`);
    await page.click('form[aria-label="Find a job by id"] button');
    await page.locator('#job-state', { hasText: 'buried' }).waitFor();

    await page.goto('/#/find');
    await page.fill('#find-tube', tube);
    await page.fill('#find-func', 'invoice');
    await page.click('form[aria-label="Find jobs in a tube"] button[type=submit]');
    await page.waitForURL(/#\/find\?tube=.*func_name=invoice/);
    const rows = page.locator('table.found tbody tr');
    await page.locator('#find-summary').waitFor();
    assert.equal(await rows.count(), 2);
    assert.match(await page.locator('#find-summary').innerText(), /^2 found; \d+ ids examined/);

    // Text in kwargs, case-insensitive, across tasks; a state narrows it to the buried refund.
    await page.fill('#find-func', '');
    await page.fill('#find-text', 'acme');
    await page.selectOption('#find-state', 'buried');
    await page.click('form[aria-label="Find jobs in a tube"] button[type=submit]');
    await page.waitForURL(/q=acme/);
    await page.locator('#find-summary', { hasText: /^1 found/ }).waitFor();
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), new RegExp(`^${refund}\\s+refund\\s+buried`));
    // The search is in the URL: a reload shows it again.
    await page.reload();
    await page.locator('#find-summary', { hasText: /^1 found/ }).waitFor();
    assert.equal(await page.inputValue('#find-text'), 'acme');
    assert.deepEqual(watched.pageErrors, []);
  });

  it('Tasks lists the registry with options and schema; the put form is checked by the schema on the server', TEST_TIMEOUT, async () => {
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto('/#/tasks');
    const section = page.locator(`section[data-tube="${TASK_TUBE}"]`);
    await section.waitFor();
    const text = await section.locator('table.tasks').innerText();
    assert.match(text, /sendMail\s+1024\s+0s\s+60s\s+1\s+exponential 1s…3600s, jitter\s+–\s+–\s+zod/);
    assert.match(text, /plain\s+1024\s+0s\s+120s\s+0\s+–/);
    await section.locator('summary', { hasText: 'zod' }).click();
    assert.equal(JSON.parse(await section.locator('table.tasks pre').innerText()).required[0], 'to');

    await section.locator('button[data-task="sendMail"]').click();
    // The form starts from the schema: its required keys, empty.
    assert.deepEqual(JSON.parse(await page.inputValue('#put-kwargs')), { to: '' });
    await page.click('#put-submit');
    await page.locator('#put-issues li code', { hasText: 'kwargs.to' }).waitFor();
    assert.match(await page.locator('#put-issues').innerText(), /do not match the schema of task "sendMail"/);
    await page.fill('#put-kwargs', '{"to": "a@example.com", "count": 0}');
    await page.click('#put-submit');
    await page.locator('#put-issues li code', { hasText: 'kwargs.count' }).waitFor();
    await page.fill('#put-kwargs', '{"to": "a@example.com",');
    await page.click('#put-submit');
    await page.locator('#put-issues', { hasText: 'kwargs is not JSON' }).waitFor();
    assert.equal((await rawStatsTube(rig.beanstalkd.url, TASK_TUBE))?.['current-jobs-ready'] ?? '0', '0', 'nothing was put');

    await page.fill('#put-kwargs', '{"to": "a@example.com", "count": 2}');
    await page.fill('#put-priority', '7');
    await page.click('#put-submit');
    const link = page.locator('#put-result a');
    await link.waitFor();
    const id = await link.innerText();
    assert.equal((await rawStatsJob(rig.beanstalkd.url, id))?.pri, '7');
    assert.deepEqual(JSON.parse((await rawPeekBody(rig.beanstalkd.url, id)) ?? ''), {
      func_name: 'sendMail',
      tube: TASK_TUBE,
      kwargs: { to: 'a@example.com', count: 2 },
    });
    await link.click();
    await page.locator('#func-name', { hasText: 'sendMail' }).waitFor();
    assert.deepEqual(watched.pageErrors, []);
  });

  it("Workers shows the connections watching each tube and the worker's own state and counts", TEST_TIMEOUT, async () => {
    const url = rig.beanstalkd.url;
    const key = `ok-${Date.now()}`;
    await rawPut(url, WORK_TUBE, envelope('work', WORK_TUBE, { key }));
    await until(
      () => succeeded.includes(key),
      (done) => done,
      10_000,
      'the worker ran the job',
    );
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto('/#/workers');
    const row = page.locator('table tbody tr', { has: page.locator(`a:text-is("${WORK_TUBE}")`) });
    await row.waitFor();
    const stats = await rawStatsTube(url, WORK_TUBE);
    assert.equal(await row.locator('[data-count=watching]').innerText(), stats?.['current-watching']);
    assert.ok(Number(stats?.['current-watching']) >= 1);
    const workerRow = page.locator('table.workers tbody tr').first();
    await workerRow.waitFor();
    const cells = await workerRow.locator('td').allInnerTexts();
    assert.match(cells[1] ?? '', /^reserving \(1 up\)$/);
    assert.ok(Number(cells[3]) >= 1, `completed: ${cells.join(' | ')}`);
    // The second poll gives a rate.
    await workerRow.locator('td:nth-child(7)', { hasText: /^\d+\.\d$/ }).waitFor({ timeout: 10_000 });
    assert.deepEqual(watched.pageErrors, []);
  });

  it('a dead letter is requeued from its page into the tube it failed in, history kept, and runs there', TEST_TIMEOUT, async () => {
    const url = rig.beanstalkd.url;
    const key = `dl-${Date.now()}`;
    await rawPut(url, WORK_TUBE, envelope('work', WORK_TUBE, { key, fail: true }));
    await until(
      async () => Number((await rawStatsTube(url, DEAD_TUBE))?.['current-jobs-ready'] ?? 0),
      (ready) => ready >= 1,
      10_000,
      'the worker dead-lettered the job',
    );
    const page1 = await rig.api.admin.jobs(DEAD_TUBE, 'ready', { funcName: 'work', text: key });
    const letter = page1.jobs[0]?.id;
    assert.ok(letter, 'the letter is found');
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto(`/#/job/${letter}`);
    await page.locator('#requeue').click();
    await page.locator('#toast', { hasText: /^Requeued as job \d+$/ }).waitFor();
    assert.equal(await rawStatsJob(url, letter), null, 'the letter was deleted');
    await until(
      () => succeeded.includes(key),
      (done) => done,
      10_000,
      'the requeued job ran in its own tube',
    );
    assert.deepEqual(watched.pageErrors, []);
  });

  it('works with the keyboard alone: navigate, find a job, kick it', TEST_TIMEOUT, async () => {
    const tube = freshTube('keys');
    const id = await rawPut(rig.beanstalkd.url, tube, envelope('f', tube, {}));
    await bury(rig.beanstalkd, [id]);
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.locator('section[aria-label=Tubes] table').waitFor();
    await tabTo(page, 'nav a[data-view=find]');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/find$/);
    await page.locator('#find-id').waitFor();
    assert.equal(await page.locator('nav a[aria-current=page]').innerText(), 'Find');
    await tabTo(page, '#find-id');
    await page.keyboard.type(id);
    await page.keyboard.press('Enter');
    await page.locator('#job-state', { hasText: 'buried' }).waitFor();
    await tabTo(page, '#kick');
    // The focused control shows it (the :focus-visible outline), as every control does.
    const outline = await page.evaluate(() => {
      const active = document.activeElement as unknown as object;
      return (window as unknown as { getComputedStyle(node: object): { outlineStyle: string } }).getComputedStyle(active).outlineStyle;
    });
    assert.equal(outline, 'solid');
    await page.keyboard.press('Enter');
    await page.locator('#job-state', { hasText: 'ready' }).waitFor();
    assert.equal((await rawStatsJob(rig.beanstalkd.url, id))?.state, 'ready');
    // The view was drawn again without the Kick button: the focus goes to the view, not back to the page's top.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'delete');
    assert.deepEqual(watched.pageErrors, []);
  });

  it('fits a phone screen: no view scrolls sideways; wide tables scroll in their own box', TEST_TIMEOUT, async () => {
    const tube = freshTube('phone');
    const id = await rawPut(rig.beanstalkd.url, tube, envelope('a_task_with_a_rather_long_name', tube, { note: 'x'.repeat(300) }));
    const context = await rig.browser.newContext({
      baseURL: rig.base,
      viewport: { width: 360, height: 740 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      const page = await context.newPage();
      await page.goto('/login');
      await page.fill('input[name=token]', rig.api.token);
      await Promise.all([page.waitForURL(`${rig.base}/`), page.click('button[type=submit]')]);
      for (const [hash, ready] of [
        ['#/', 'section[aria-label=Tubes] table'],
        [`#/tube/${tube}`, 'table.ready'],
        [`#/job/${id}`, '#kwargs'],
        ['#/find', '#find-tube'],
        ['#/tasks', 'table.tasks'],
        ['#/workers', 'table.workers'],
      ] as const) {
        await page.goto(`/${hash}`);
        await page.locator(ready).first().waitFor();
        const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert.ok(scrollWidth <= innerWidth, `${hash}: the page is ${scrollWidth} px wide on a ${innerWidth} px screen`);
      }
    } finally {
      await context.close();
    }
  });

  it('follows the system theme: dark and light', TEST_TIMEOUT, async () => {
    const background = async (colorScheme: 'dark' | 'light'): Promise<string> => {
      const context = await rig.browser.newContext({ baseURL: rig.base, colorScheme });
      try {
        const page = await context.newPage();
        await page.goto('/login');
        return await page.evaluate(() => window.getComputedStyle(document.body).backgroundColor);
      } finally {
        await context.close();
      }
    };
    assert.equal(await background('dark'), 'rgb(13, 17, 23)');
    assert.equal(await background('light'), 'rgb(255, 255, 255)');
  });
});
