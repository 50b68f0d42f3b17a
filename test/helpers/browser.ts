// The dashboard in a real browser: the system's Chromium (found or installed by
// scripts/ensure-chromium.sh) driven by playwright-core, once per test file, over a real beanstalkd and
// the API server in-process on a free 127.0.0.1 port. Every page records its console errors and uncaught
// errors, so a test can assert that nothing ran that should not have.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import type { ApiServerOptions } from '../../src/http/types.js';
import { type BeanstalkdServer, startBeanstalkd } from './beanstalkd.js';
import { startApi, type TestApi } from './http.js';

const ENSURE_SCRIPT = fileURLToPath(new URL('../../scripts/ensure-chromium.sh', import.meta.url));
/** An apt-get install on a cold machine is slow. */
const ENSURE_TIMEOUT_MS = 10 * 60_000;

let executable: Promise<string> | undefined;

/** The Chromium binary's path, from scripts/ensure-chromium.sh (run once per process). */
export function findChromium(): Promise<string> {
  executable ??= new Promise((resolve, reject) => {
    execFile('bash', [ENSURE_SCRIPT], { timeout: ENSURE_TIMEOUT_MS }, (error, stdout, stderr) => {
      const path = stdout.trim();
      if (error || path === '') reject(new Error(`no Chromium for the browser tests: ${stderr.trim() || error?.message}`));
      else resolve(path);
    });
  });
  return executable;
}

/** Launches the system's Chromium headless (without its sandbox when running as root, which it refuses). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = await findChromium();
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath, headless: true, args });
}

/** A page and what it reported. */
export interface WatchedPage {
  readonly page: Page;
  /** `console.error` lines and CSP reports, as the browser printed them. */
  readonly consoleErrors: string[];
  /** Uncaught exceptions in the page. */
  readonly pageErrors: string[];
  /** `STATUS METHOD URL` of every response of 400 or more. */
  readonly failedResponses: string[];
}

/** Opens a page in `context` that records its console errors and uncaught errors. */
export async function watchedPage(context: BrowserContext): Promise<WatchedPage> {
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  const failedResponses: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('response', (response) => {
    if (response.status() >= 400) failedResponses.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  });
  return { page, consoleErrors, pageErrors, failedResponses };
}

/** A beanstalkd, the API over it and a browser: what a dashboard test file needs. */
export interface DashboardRig {
  readonly beanstalkd: BeanstalkdServer;
  readonly api: TestApi;
  readonly browser: Browser;
  /** `http://127.0.0.1:PORT`. */
  readonly base: string;
  /** A fresh browser context (its own cookies), closed by {@link DashboardRig.close}. */
  context(): Promise<BrowserContext>;
  /** A fresh context already logged in (through the login form), and a watched page in it at `/`. */
  loggedIn(): Promise<WatchedPage>;
  close(): Promise<void>;
}

/**
 * Starts beanstalkd, the API and Chromium. Call once per file (in `before`), close in `after`.
 * `apiOptions` gives the API more options (a registry, worker endpoints) once beanstalkd is up.
 */
export async function startDashboardRig(
  apiOptions: (beanstalkd: BeanstalkdServer) => Promise<Partial<ApiServerOptions>> = async () => ({}),
): Promise<DashboardRig> {
  const beanstalkd = await startBeanstalkd();
  let api: TestApi;
  try {
    api = await startApi(beanstalkd.url, await apiOptions(beanstalkd));
  } catch (error) {
    await beanstalkd.stop();
    throw error;
  }
  let browser: Browser;
  try {
    browser = await launchBrowser();
  } catch (error) {
    await api.close();
    await beanstalkd.stop();
    throw error;
  }
  const base = `http://127.0.0.1:${api.port}`;
  const contexts: BrowserContext[] = [];
  const context = async (): Promise<BrowserContext> => {
    const made = await browser.newContext({ baseURL: base });
    contexts.push(made);
    return made;
  };
  return {
    beanstalkd,
    api,
    browser,
    base,
    context,
    async loggedIn() {
      const watched = await watchedPage(await context());
      await watched.page.goto('/login');
      await watched.page.fill('input[name=token]', api.token);
      await Promise.all([watched.page.waitForURL(`${base}/`), watched.page.click('button[type=submit]')]);
      return watched;
    },
    async close() {
      for (const made of contexts) await made.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await api.close();
      await beanstalkd.stop();
    },
  };
}
