/** The overview: every server and every tube, with live rates; refreshed by polling the API every 2 s. */
import { api } from './api.js';
import { RateCharts } from './charts.js';
import { type Child, duration, el, replace, table, viewLink } from './dom.js';
import type { ServersReply, TubeCounts, TubesReport } from './types.js';

/** How often the overview polls the API. */
export const POLL_MS = 2_000;

const COUNTS: readonly (keyof TubeCounts)[] = ['ready', 'urgent', 'reserved', 'delayed', 'buried', 'total'];

function counts(values: TubeCounts): Child[] {
  return COUNTS.map((key) => el('span', { 'data-count': key }, values[key]));
}

function serversTable(reply: ServersReply): HTMLElement {
  return table(
    'Servers',
    ['Server', 'State', 'Version', 'Uptime', 'Connections'],
    reply.servers.map((server) => [
      server.server,
      el(
        'span',
        { class: server.up ? 'up' : 'down' },
        server.up ? (server.stats?.draining ? 'draining' : 'up') : `down: ${server.error ?? ''}`,
      ),
      server.stats?.version ?? '–',
      server.stats ? duration(server.stats.uptimeSeconds) : '–',
      server.stats?.connections ?? '–',
    ]),
  );
}

function tubesTable(report: TubesReport): HTMLElement {
  const sums = COUNTS.map((key) => report.tubes.reduce((total, tube) => total + tube.totals[key], 0));
  const rows: Child[][] = report.tubes.map((tube) => [
    viewLink(tube.name, 'tube', tube.name),
    ...counts(tube.totals),
    tube.totals.pausedSecondsLeft > 0 ? `paused ${duration(tube.totals.pausedSecondsLeft)}` : '',
  ]);
  rows.push([el('strong', {}, 'All tubes'), ...sums.map((value, i) => el('strong', { 'data-total': COUNTS[i] as string }, value)), '']);
  const node = table('Tubes', ['Tube', 'Ready', 'Urgent', 'Reserved', 'Delayed', 'Buried', 'Total', 'Paused'], rows, 'numbers');
  for (const [i, tube] of report.tubes.entries()) node.querySelectorAll('tbody tr')[i]?.setAttribute('data-tube', tube.name);
  return node;
}

/** Renders the overview into `main`; returns the function that stops its polling. */
export function showOverview(main: HTMLElement): () => void {
  const charts = new RateCharts();
  const servers = el('section', { 'aria-label': 'Servers' });
  const tubes = el('section', { 'aria-label': 'Tubes' });
  const updated = el('p', { class: 'hint', id: 'updated' });
  replace(
    main,
    el('h1', {}, 'Overview'),
    el('section', { 'aria-label': 'Rates' }, el('h2', {}, 'Rates'), charts.node),
    servers,
    tubes,
    updated,
  );
  let timer: number | undefined;
  let stopped = false;
  const poll = async (): Promise<void> => {
    try {
      const [serverReply, tubeReply] = await Promise.all([api.servers(), api.tubes()]);
      if (stopped) return;
      charts.push(serverReply.servers);
      replace(servers, serversTable(serverReply));
      replace(tubes, tubesTable(tubeReply));
      const missing = tubeReply.unavailable.length > 0 ? ` (unavailable: ${tubeReply.unavailable.join(', ')})` : '';
      updated.textContent = `Updated ${new Date(tubeReply.at).toLocaleTimeString()}${missing}`;
    } catch (error) {
      updated.textContent = `Could not read the API: ${(error as Error).message}`;
    }
    if (!stopped) timer = window.setTimeout(poll, POLL_MS);
  };
  void poll();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    charts.destroy();
  };
}
