/**
 * The dashboard client's entry: routes on the URL's fragment (`#/`, `#/tube/NAME[?limit=N]`, `#/job/ID`,
 * `#/find[?tube=...]`, `#/tasks`, `#/workers`), marks the current view in the navigation and wires
 * the logout button. Hash routing keeps one HTML document on one server route: a reload or a shared
 * link opens the same view, and the view's parameters never reach the server's request log.
 */
import { api } from './api.js';
import { replace } from './dom.js';
import { showFind } from './find.js';
import { showJob } from './job.js';
import { showOverview } from './overview.js';
import { showTasks } from './tasks.js';
import { showTube } from './tube.js';
import { showWorkers } from './workers.js';

let stop: (() => void) | undefined;

function route(): void {
  const main = document.getElementById('main');
  if (!main) return;
  stop?.();
  const [path = '', query = ''] = window.location.hash.replace(/^#\/?/, '').split('?');
  const [view, arg] = path.split('/');
  const param = arg === undefined ? '' : decodeURIComponent(arg);
  // `#/tube/NAME?limit=N` lists up to N jobs per state (the API's bound is 1,000).
  const params = new URLSearchParams(query);
  const limit = Number(params.get('limit'));
  if (view === 'tube' && param !== '') stop = showTube(main, param, Number.isSafeInteger(limit) && limit > 0 ? limit : undefined);
  else if (view === 'job' && param !== '') stop = showJob(main, param);
  else if (view === 'find') stop = showFind(main, params);
  else if (view === 'tasks') stop = showTasks(main);
  else if (view === 'workers') stop = showWorkers(main);
  else stop = showOverview(main);
  // The navigation says where one is (for screen readers too); a tube or a job is under the overview.
  const current = view === 'find' || view === 'tasks' || view === 'workers' ? view : 'overview';
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a[data-view]')) {
    if (link.dataset.view === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.focus({ preventScroll: true });
}

document.getElementById('logout')?.addEventListener('click', async () => {
  try {
    await api.logout();
  } finally {
    window.location.assign('/login');
  }
});
window.addEventListener('hashchange', route);
const main = document.getElementById('main');
if (main) replace(main);
route();
