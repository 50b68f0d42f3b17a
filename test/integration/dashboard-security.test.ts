// The dashboard's security in a real browser and over plain HTTP: the login page, the session cookie
// (HttpOnly, SameSite=Strict, a random id rather than the token), the CSRF token every cookie-authenticated
// state-changing request must carry, and the headers (CSP without inline script, no framing) of every page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DASHBOARD_CSP } from '../../src/dashboard/routes.js';
import { rawPut, rawStatsJob } from '../helpers/beanstalkd.js';
import { type DashboardRig, startDashboardRig, watchedPage } from '../helpers/browser.js';
import { envelope } from '../helpers/cli.js';
import { send } from '../helpers/http.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };

/** The little of the DOM the functions run in the page use (this program is typed for Node). */
declare const document: { readonly cookie: string; querySelector(selector: string): { readonly content: string } | null };

describe('dashboard security', () => {
  let rig: DashboardRig;

  before(async () => {
    rig = await startDashboardRig();
  });
  after(async () => {
    await rig?.close();
  });

  /** Logs in over HTTP; returns the cookie pair (`name=value`) and the Set-Cookie line. */
  async function login(): Promise<{ cookie: string; setCookie: string }> {
    const reply = await send(rig.api.port, 'POST', '/login', null, {
      body: `token=${encodeURIComponent(rig.api.token)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(reply.status, 303, reply.text);
    assert.equal(reply.headers.location, '/');
    const setCookie = String(reply.headers['set-cookie'] ?? '');
    return { cookie: setCookie.split(';')[0] ?? '', setCookie };
  }

  it('without a session the dashboard redirects to the login page, which the browser shows', TEST_TIMEOUT, async () => {
    const { page, pageErrors } = await watchedPage(await rig.context());
    const response = await page.goto('/');
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal(response?.status(), 200);
    assert.equal(await page.locator('input[name=token][type=password]').count(), 1);
    assert.deepEqual(pageErrors, []);
  });

  it('a wrong token is refused on the login page and sets no cookie', TEST_TIMEOUT, async () => {
    const context = await rig.context();
    const { page } = await watchedPage(context);
    await page.goto('/login');
    await page.fill('input[name=token]', `${rig.api.token}x`);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
      page.click('button[type=submit]'),
    ]);
    assert.equal(response.status(), 401);
    assert.match(await page.locator('[role=alert]').innerText(), /not the token/);
    assert.deepEqual(await context.cookies(), []);
  });

  it(
    'the right token logs in: the overview is shown and the cookie is HttpOnly, SameSite=Strict and not the token',
    TEST_TIMEOUT,
    async () => {
      const { page, pageErrors, consoleErrors, failedResponses } = await rig.loggedIn();
      await page.locator('h1', { hasText: 'Overview' }).waitFor();
      const cookies = await page.context().cookies();
      assert.equal(cookies.length, 1);
      const [cookie] = cookies;
      assert.equal(cookie?.name, 'bsworker_session');
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.sameSite, 'Strict');
      assert.equal(cookie?.path, '/');
      assert.notEqual(cookie?.value, rig.api.token);
      assert.ok(!cookie?.value.includes(rig.api.token));
      // Script cannot read it.
      assert.equal(await page.evaluate(() => document.cookie), '');
      assert.deepEqual(pageErrors, []);
      assert.deepEqual(failedResponses, []);
      assert.deepEqual(consoleErrors, []);
    },
  );

  it('the cookie authenticates GETs to the API; logout ends the session on the server', TEST_TIMEOUT, async () => {
    const { cookie } = await login();
    const tubes = await send(rig.api.port, 'GET', '/api/tubes', null, { headers: { cookie } });
    assert.equal(tubes.status, 200);
    const page = await send(rig.api.port, 'GET', '/', null, { headers: { cookie } });
    assert.equal(page.status, 200);
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)?.[1];
    assert.ok(csrf);
    const out = await send(rig.api.port, 'POST', '/logout', null, { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.status, 200, out.text);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    const again = await send(rig.api.port, 'GET', '/api/tubes', null, { headers: { cookie } });
    assert.equal(again.status, 401);
  });

  it(
    'a state-changing request with the cookie but without the CSRF token is refused 403; the bearer token needs none',
    TEST_TIMEOUT,
    async () => {
      const tube = freshTube('csrf');
      const id = await rawPut(rig.beanstalkd.url, tube, envelope('f', tube, {}));
      await bury(rig.beanstalkd, [id]);
      const { page } = await rig.loggedIn();
      const statuses = await page.evaluate(async (jobId) => {
        const path = `/api/jobs/${jobId}/kick`;
        const without = await fetch(path, { method: 'POST' });
        const wrong = await fetch(path, { method: 'POST', headers: { 'x-csrf-token': 'nope' } });
        const body = (await without.json()) as { error: { code: string } };
        return { without: without.status, wrong: wrong.status, code: body.error.code };
      }, id);
      assert.deepEqual(statuses, { without: 403, wrong: 403, code: 'CSRF_TOKEN_REQUIRED' });
      assert.equal((await rawStatsJob(rig.beanstalkd.url, id))?.state, 'buried');
      // With the page's token it goes through.
      const withToken = await page.evaluate(async (jobId) => {
        const token = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
        return (await fetch(`/api/jobs/${jobId}/kick`, { method: 'POST', headers: { 'x-csrf-token': token } })).status;
      }, id);
      assert.equal(withToken, 200);
      assert.equal((await rawStatsJob(rig.beanstalkd.url, id))?.state, 'ready');
      // A bearer client (no cookie) is unaffected.
      const bearer = await rig.api.request('DELETE', `/api/jobs/${id}`);
      assert.equal(bearer.status, 200, bearer.text);
    },
  );

  it('every page carries the CSP without inline script, X-Frame-Options DENY and no referrer', TEST_TIMEOUT, async () => {
    const { cookie } = await login();
    const shell = await send(rig.api.port, 'GET', '/', null, { headers: { cookie } });
    const assets = [...shell.text.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1] as string);
    assert.ok(assets.some((path) => path.endsWith('/app.js')) && assets.some((path) => path.endsWith('/uPlot.iife.min.js')), shell.text);
    for (const path of ['/', '/login', ...assets]) {
      const reply = await send(rig.api.port, 'GET', path, null, { headers: { cookie } });
      assert.equal(reply.status, 200, path);
      assert.equal(reply.headers['content-security-policy'], DASHBOARD_CSP, path);
      assert.equal(reply.headers['x-frame-options'], 'DENY', path);
      assert.equal(reply.headers['referrer-policy'], 'no-referrer', path);
      assert.equal(reply.headers['x-content-type-options'], 'nosniff', path);
      if (path.startsWith('/assets/')) {
        assert.match(String(reply.headers['content-type']), path.endsWith('.js') ? /^text\/javascript/ : /^text\/css/, path);
        assert.match(String(reply.headers['cache-control']), /immutable/, path);
      } else {
        assert.match(String(reply.headers['content-type']), /^text\/html/, path);
        assert.equal(reply.headers['cache-control'], 'no-store', path);
        assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/.test(reply.text), `no inline script in ${path}`);
      }
    }
    const stale = await send(rig.api.port, 'GET', '/assets/0000000000000000/app.js', null);
    assert.equal(stale.status, 404);
    const traversal = await send(rig.api.port, 'GET', `/assets/${assets[0]?.split('/')[2]}/..%2F..%2Fpackage.json`, null);
    assert.equal(traversal.status, 404);
  });

  it('a login posted from another site is refused by the origin check', TEST_TIMEOUT, async () => {
    const reply = await send(rig.api.port, 'POST', '/login', null, {
      body: `token=${encodeURIComponent(rig.api.token)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.headers['set-cookie'], undefined);
  });
});
