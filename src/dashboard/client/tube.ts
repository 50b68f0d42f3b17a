/**
 * One tube: counts per server (a server that is down listed as down), pause/resume, kick N, and its
 * buried, delayed and ready jobs, each linking to the job. With several servers each server's jobs are
 * listed (a page is a scan of one server's ids), with their server, under qualified ids.
 */
import { api } from './api.js';
import { button, type Child, duration, el, replace, table, toast, viewLink } from './dom.js';
import type { JobReport, TubeReport } from './types.js';

/** Jobs listed per state: a page of the API's bounded scan. */
const LIST_LIMIT = 50;

function countsTable(report: TubeReport): HTMLElement {
  return table(
    'Counts per server',
    ['Server', 'Ready', 'Urgent', 'Reserved', 'Delayed', 'Buried', 'Total', 'Watching', 'Waiting', 'Paused'],
    report.servers
      .map((s) => [
        s.server,
        el('span', { 'data-count': 'ready' }, s.ready),
        s.urgent,
        s.reserved,
        el('span', { 'data-count': 'delayed' }, s.delayed),
        el('span', { 'data-count': 'buried' }, s.buried),
        s.total,
        s.watching,
        s.waiting,
        s.pausedSecondsLeft > 0 ? duration(s.pausedSecondsLeft) : 'no',
      ])
      .concat(
        (report.unavailable ?? []).map((server) => [
          server,
          el('span', { class: 'down', 'data-down': server }, 'down'),
          ...Array.from({ length: 8 }, () => '–'),
        ]),
      ),
    'numbers',
  );
}

/**
 * The jobs of the tube in each state: with one server the API's page; with several, a page of each
 * server that has the tube (and answers), one after another.
 */
async function jobLists(name: string, limit: number, several: boolean): Promise<(readonly JobReport[])[]> {
  const states = ['buried', 'delayed', 'ready'];
  if (!several) return Promise.all(states.map(async (state) => (await api.jobs(name, state, limit)).jobs));
  const report = await api.tube(name).catch((error: unknown) => {
    // No server that answered has the tube: nothing to list.
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  });
  const servers = report?.servers.map((entry) => entry.server) ?? [];
  return Promise.all(
    states.map(async (state) =>
      (await Promise.all(servers.map((server) => api.jobs(name, state, limit, server)))).flatMap((page) => page.jobs),
    ),
  );
}

/** The task, and the job's place in its flow (`link 2 of 3, then notify`) under it when it has one. */
function funcName(job: JobReport): Child {
  if (!job.envelope) return el('em', { class: 'raw-mark' }, 'not an envelope');
  if (!job.flow) return job.envelope.func_name;
  return el('span', {}, job.envelope.func_name, el('br', {}), el('small', { class: 'hint', 'data-flow': '' }, job.flow.summary));
}

function buriedRows(jobs: readonly JobReport[]): Child[][] {
  return jobs.map((job) => {
    const failure = job.lastFailure;
    return [
      viewLink(job.id, 'job', job.id),
      funcName(job),
      failure ? `${failure.name}: ${failure.message}` : '–',
      failure?.stackLine ? el('code', {}, failure.stackLine) : '–',
      failure ? failure.attempt : job.reserves,
      failure ? new Date(failure.at).toLocaleString() : '–',
    ];
  });
}

function waitingRows(jobs: readonly JobReport[]): Child[][] {
  return jobs.map((job) => [
    viewLink(job.id, 'job', job.id),
    funcName(job),
    job.priority,
    duration(job.ageSeconds),
    duration(job.timeLeftSeconds),
  ]);
}

/** A number input with a label, for the tube's actions. */
function numberField(id: string, label: string, value: number, min: number): { node: HTMLElement; input: HTMLInputElement } {
  const input = el('input', { id, type: 'number', min, value, inputmode: 'numeric' });
  return { node: el('label', { for: id }, `${label} `, input), input };
}

/** Renders tube `name` into `main`, `limit` jobs per state; returns the function that stops its refreshing. */
export function showTube(main: HTMLElement, name: string, limit = LIST_LIMIT): () => void {
  const counts = el('section', { 'aria-label': 'Counts' });
  const lists = el('section', { 'aria-label': 'Jobs' });
  const kickN = numberField('kick-bound', 'Kick', 100, 1);
  const pauseFor = numberField('pause-seconds', 'Pause for (s)', 60, 1);
  const act = (what: () => Promise<unknown>, done: string) => async () => {
    try {
      await what();
      toast(done);
      await Promise.all([refreshCounts(), refreshLists()]);
    } catch (error) {
      toast((error as Error).message, true);
    }
  };
  const actions = el(
    'section',
    { class: 'actions', 'aria-label': 'Actions' },
    el(
      'div',
      {},
      kickN.node,
      button(
        'Kick buried',
        act(() => api.kickTube(name, Number(kickN.input.value)), 'Kicked'),
        { id: 'kick-tube' },
      ),
    ),
    el(
      'div',
      {},
      pauseFor.node,
      button(
        'Pause',
        act(() => api.pause(name, Number(pauseFor.input.value)), 'Paused'),
        { id: 'pause' },
      ),
      button(
        'Resume',
        act(() => api.resume(name), 'Resumed'),
        { id: 'resume' },
      ),
    ),
    button('Refresh lists', () => void refreshLists(), { class: 'quiet' }),
  );
  replace(main, el('h1', {}, 'Tube ', el('code', {}, name)), counts, actions, lists);

  let stopped = false;
  let timer: number | undefined;
  // Several servers: each one's jobs are listed apart (the API lists one server's at a time then).
  const several = api.servers().then(
    (reply) => reply.servers.length > 1,
    () => false,
  );
  const refreshCounts = async (): Promise<void> => {
    try {
      const report = await api.tube(name);
      if (!stopped) replace(counts, countsTable(report));
    } catch (error) {
      if (!stopped) replace(counts, el('p', { class: 'error' }, (error as Error).message));
    }
  };
  const refreshLists = async (): Promise<void> => {
    try {
      const [buried, delayed, ready] = await jobLists(name, limit, await several);
      if (stopped || !buried || !delayed || !ready) return;
      replace(
        lists,
        el('h2', {}, 'Buried'),
        table('Buried jobs, newest first', ['Job', 'Task', 'Error', 'Where', 'Attempts', 'When'], buriedRows(buried), 'jobs buried'),
        el('h2', {}, 'Delayed'),
        table('Delayed jobs', ['Job', 'Task', 'Priority', 'Age', 'Ready in'], waitingRows(delayed), 'jobs delayed'),
        el('h2', {}, 'Ready'),
        table('Ready jobs', ['Job', 'Task', 'Priority', 'Age', ''], waitingRows(ready), 'jobs ready'),
      );
    } catch (error) {
      if (!stopped) replace(lists, el('p', { class: 'error' }, (error as Error).message));
    }
  };
  const loop = async (): Promise<void> => {
    await refreshCounts();
    if (!stopped) timer = window.setTimeout(loop, 2_000);
  };
  void loop();
  void refreshLists();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
