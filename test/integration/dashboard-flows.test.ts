// The dashboard shows flows and progress, in a real browser over a real beanstalkd and a real
// `bsworker --metrics-port` worker: a chain link's page gives its place and the links still to run, a
// buried link's failure history says which link failed, and a running job's progress (hostile text
// included) appears on the Workers view as text.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rawCommand, rawPut } from '../helpers/beanstalkd.js';
import { type DashboardRig, startDashboardRig } from '../helpers/browser.js';
import { Cli, envelope, prefix, writeFixtureJobs } from '../helpers/cli.js';
import { freshTube, until } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const HOSTILE = '<img src=x onerror="window.__pwned=1">';

declare const window: { __pwned?: number };

/** A task that reports progress, then waits for a file the test writes. */
const REPORT = `import { existsSync } from 'node:fs';
import { p, queue } from './queue.mjs';
export const report = queue.task(\`\${p}-report\`)(async function report(kw, ctx) {
  ctx.progress(kw.value);
  const deadline = Date.now() + 20_000;
  while (!existsSync(kw.releaseFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
});
`;

describe('dashboard: flows and progress', () => {
  let rig: DashboardRig;
  let cli: Cli | undefined;
  let temp: string;
  const p = prefix('dflow');

  before(async () => {
    temp = await mkdtemp(join(tmpdir(), 'bsworker-dflow-'));
    const jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir, { typescript: false });
    await writeFile(join(jobsDir, 'report.mjs'), REPORT);
    rig = await startDashboardRig(async (beanstalkd) => {
      cli = new Cli(['--jobs', jobsDir, '--url', beanstalkd.url, '--tubes', `${p}-report,${p}-fail`, '--metrics-port', '0', '-c', '2'], {
        FIXTURE_PREFIX: p,
      });
      const line = await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('metrics at'), 'the metrics line');
      await cli.waitForLine((l) => l.msg === 'worker started', "'worker started'");
      return { workerMetrics: [String(line.url)] };
    });
  });
  after(async () => {
    if (cli && cli.exit === undefined) cli.child.kill('SIGTERM');
    await cli?.exited;
    await rig?.close();
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it("a chain link's page shows its place and the links still to run; a buried link says which link failed", TEST_TIMEOUT, async () => {
    const url = rig.beanstalkd.url;
    const tube = freshTube('chain');
    const next = [
      { func_name: 'charge', tube: 'pay', kwargs: { amount: 10 } },
      { func_name: HOSTILE, tube: 'mail', kwargs: { to: HOSTILE } },
    ];
    const link = await rawPut(
      url,
      tube,
      JSON.stringify({ func_name: 'reserve', tube, kwargs: {}, meta: { chain: { index: 1, of: 4, next } } }),
    );
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto(`/#/job/${link}`);
    await page.locator('#flow-chain').waitFor();
    assert.equal(await page.locator('#flow-chain').innerText(), 'Link 2 of 4. Still to run:');
    const items = await page.locator('#flow-next > li').allInnerTexts();
    assert.equal(items.length, 2);
    assert.match(items[0] ?? '', /^charge in pay/);
    assert.ok(items[1]?.startsWith(`${HOSTILE} in mail`), items[1]);

    // The worker fails the link: its failure record's page says which link it was.
    const failTube = `${p}-fail`;
    const failing = JSON.stringify({
      func_name: 'fail',
      tube: failTube,
      kwargs: { orderId: 7 },
      meta: { chain: { index: 0, of: 2, next: [{ func_name: 'notify', tube: 'mail', kwargs: {} }] } },
    });
    await rawPut(url, failTube, failing);
    const buried = await until(
      async () => (await rig.api.admin.jobs(failTube, 'buried')).jobs,
      (jobs) => jobs.length === 1,
      10_000,
      'the failed link buried',
    );
    await page.goto(`/#/job/${encodeURIComponent(buried[0]?.id ?? '')}`);
    await page.locator('#failed-link').waitFor();
    assert.equal(await page.locator('#failed-link').innerText(), 'Link 1 of 2 (fail) failed; the 1 after it have not run.');
    await page.goto(`/#/tube/${failTube}`);
    await page.locator('[data-flow]').first().waitFor();
    assert.equal(await page.locator('[data-flow]').first().innerText(), 'link 1 of 2, then notify');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(watched.pageErrors, []);
  });

  it("a running job's progress appears on the Workers view, hostile text as text", TEST_TIMEOUT, async () => {
    const url = rig.beanstalkd.url;
    const releaseFile = join(temp, 'release');
    const tube = `${p}-report`;
    const id = await rawPut(url, tube, envelope('report', tube, { value: HOSTILE, releaseFile }));
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto('/#/workers');
    const row = page.locator('#progress table tbody tr', { has: page.locator(`a:text-is("${id}")`) });
    await row.waitFor({ timeout: 10_000 });
    assert.equal(await row.locator('.progress-value').innerText(), HOSTILE);
    assert.equal(await page.locator('#progress img').count(), 0, 'the value is text, not markup');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await writeFile(releaseFile, '');
    await page.locator('#no-progress').waitFor({ timeout: 10_000 });
    assert.deepEqual(watched.pageErrors, []);
  });
  it('the Workers view lists the schedules on the server and who is active, server text as text', TEST_TIMEOUT, async () => {
    const url = rig.beanstalkd.url;
    // A marker as a scheduler leaves it, with hostile text where a name and an expression go.
    const name = `${p}-nightly`;
    const marker = JSON.stringify({ schedule: name, tick: new Date(Date.now() + 3_600_000).toISOString(), cron: HOSTILE, timezone: 'UTC' });
    await rawCommand(url, `use bsworker.schedule.${name}\r\nput 0 3600 60 ${marker.length}\r\n${marker}\r\n`);
    const watched = await rig.loggedIn();
    const { page } = watched;
    await page.goto('/#/workers');
    const row = page.locator('#schedules table tbody tr', { has: page.locator(`td:text-is("${name}")`) });
    await row.waitFor({ timeout: 10_000 });
    assert.equal(await row.locator('code').innerText(), HOSTILE);
    assert.match(await row.innerText(), /not declared by the loaded jobs/);
    assert.match(await page.locator('#scheduler').innerText(), /No active scheduler/);
    assert.equal(await page.locator('#schedules img').count(), 0, 'server text is text, not markup');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(watched.pageErrors, []);
  });
});
