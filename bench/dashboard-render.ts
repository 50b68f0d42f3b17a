/**
 * `npm run bench:dashboard`: how long the tube view takes to show a page of 1,000 buried jobs, each
 * with a failure history, in the system's Chromium. A figure for the README, not a timed test: the
 * time from the view's navigation to the 1,000th row in the DOM, with the API's part of it (the same
 * request, fetched alone by the page) reported beside it. Median of `--runs` (default 5).
 */
import { parseArgs } from 'node:util';
import { rawPut, startBeanstalkd } from '../test/helpers/beanstalkd.js';
import { launchBrowser } from '../test/helpers/browser.js';
import { envelope } from '../test/helpers/cli.js';
import { startApi } from '../test/helpers/http.js';
import { bury } from '../test/helpers/raw-session.js';

const JOBS = 1_000;
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const beanstalkd = await startBeanstalkd();
const api = await startApi(beanstalkd.url);
const browser = await launchBrowser();
try {
  const tube = 'bench-buried';
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const body = JSON.parse(envelope('charge', tube, { order: i, note: 'x'.repeat(200) })) as Record<string, unknown>;
    body.meta = {
      failures: [1, 2, 3].map((attempt) => ({
        reason: 'failed',
        name: 'PaymentDeclined',
        message: `card declined (attempt ${attempt})`,
        stack: `PaymentDeclined: card declined\n    at charge (/app/jobs/pay.js:10:5)\n    at run (/app/worker.js:1:1)`,
        attempt,
        kicks: attempt - 1,
        worker: { host: 'w1', pid: 1 },
        server: beanstalkd.url,
        job_id: String(i),
        tube,
        at: new Date().toISOString(),
      })),
    };
    ids.push(await rawPut(beanstalkd.url, tube, JSON.stringify(body)));
  }
  await bury(beanstalkd, ids);
  const context = await browser.newContext({ baseURL: `http://127.0.0.1:${api.port}` });
  const page = await context.newPage();
  await page.goto('/login');
  await page.fill('input[name=token]', api.token);
  await Promise.all([page.waitForURL('**/'), page.click('button[type=submit]')]);
  const totals: number[] = [];
  const apiTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    await page.goto('/#/');
    await page.locator('h1', { hasText: 'Overview' }).waitFor();
    apiTimes.push(
      await page.evaluate(async (path) => {
        const start = performance.now();
        await (await fetch(path)).json();
        return performance.now() - start;
      }, `/api/tubes/${tube}/jobs?state=buried&limit=${JOBS}`),
    );
    const start = performance.now();
    await page.goto(`/#/tube/${tube}?limit=${JOBS}`);
    await page.locator(`table.buried tbody tr:nth-child(${JOBS})`).waitFor({ timeout: 60_000 });
    totals.push(performance.now() - start);
  }
  const total = median(totals);
  const apiPart = median(apiTimes);
  process.stdout.write(
    `${JOBS} buried jobs with 3 failures each, ${runs} runs (median): view shown in ${total.toFixed(0)} ms, of which the API's reply ~${apiPart.toFixed(0)} ms, rendering ~${Math.max(0, total - apiPart).toFixed(0)} ms\n`,
  );
} finally {
  await browser.close();
  await api.close();
  await beanstalkd.stop();
}
