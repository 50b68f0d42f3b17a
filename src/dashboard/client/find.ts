/**
 * Find: a job by its id (qualified `host:port/id` or not), and the jobs of a tube by task name or by
 * text in their kwargs. beanstalkd cannot search, so a search is the API's bounded scan of recent ids
 * (newest first), and the page says how far it went; "Older" goes on below where it stopped. The form's
 * values live in the URL (`#/find?tube=...&func_name=...`), so a search can be reloaded and shared.
 */
import { api } from './api.js';
import { type Child, duration, el, replace, table, toast, viewLink } from './dom.js';
import type { JobPage, JobReport } from './types.js';

/** The search fields, as the URL and the API name them (`server`: which one, when there are several). */
const FIELDS = ['tube', 'state', 'func_name', 'q', 'scan', 'server'] as const;

/** A labelled input; `list` names a <datalist> of suggestions. */
function field(
  id: string,
  label: string,
  value: string,
  props: Record<string, string> = {},
): { node: HTMLElement; input: HTMLInputElement } {
  const input = el('input', { id, name: id, value, spellcheck: 'false', autocomplete: 'off', ...props });
  return { node: el('label', { for: id }, label, input), input };
}

function resultRows(jobs: readonly JobReport[]): Child[][] {
  return jobs.map((job) => [
    viewLink(job.id, 'job', job.id),
    job.envelope ? job.envelope.func_name : el('em', { class: 'raw-mark' }, 'not an envelope'),
    job.state,
    job.priority,
    duration(job.ageSeconds),
    job.lastFailure ? `${job.lastFailure.name}: ${job.lastFailure.message}` : '–',
  ]);
}

function scanNote(page: JobPage, shown: number): string {
  const where = page.exhausted ? 'every id down to 1' : `ids down from ${page.startId ?? '–'}, stopped by ${page.stoppedBy}`;
  return `${shown} found; ${page.scanned} ids examined (${where}).`;
}

/** Renders the Find view into `main` with the search in `params` (run at once when it names a tube). */
export function showFind(main: HTMLElement, params: URLSearchParams): () => void {
  let stopped = false;
  const byId = field('find-id', 'Job id', '', { placeholder: '42 or host:port/42', required: 'true' });
  const idForm = el(
    'form',
    { class: 'card find', 'aria-label': 'Find a job by id' },
    byId.node,
    el('button', { type: 'submit' }, 'Open job'),
  );
  idForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = byId.input.value.trim();
    if (id !== '') window.location.hash = `#/job/${encodeURIComponent(id)}`;
  });

  const tube = field('find-tube', 'Tube', params.get('tube') ?? '', { list: 'tube-names', required: 'true' });
  const funcName = field('find-func', 'Task name', params.get('func_name') ?? '', { maxlength: '200' });
  const text = field('find-text', 'Text in kwargs', params.get('q') ?? '', { maxlength: '200', type: 'search' });
  const scan = field('find-scan', 'Ids to examine', params.get('scan') ?? '5000', {
    type: 'number',
    min: '1',
    max: '1000000',
    inputmode: 'numeric',
  });
  const state = el(
    'select',
    { id: 'find-state', name: 'state' },
    ...['', 'ready', 'delayed', 'reserved', 'buried'].map((value) =>
      el('option', { value, selected: value === (params.get('state') ?? '') }, value === '' ? 'any' : value),
    ),
  );
  const tubeNames = el('datalist', { id: 'tube-names' });
  // A search scans one server's ids: with several servers, pick one (shown only then; down ones marked).
  const server = el('select', { id: 'find-server', name: 'server' });
  const serverField = el('label', { for: 'find-server', hidden: true }, 'Server', server);
  const searchForm = el(
    'form',
    { class: 'card find', 'aria-label': 'Find jobs in a tube' },
    tube.node,
    el('label', { for: 'find-state' }, 'State', state),
    funcName.node,
    text.node,
    scan.node,
    serverField,
    tubeNames,
    el('button', { type: 'submit' }, 'Search'),
  );
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const values: Record<(typeof FIELDS)[number], string> = {
      tube: tube.input.value.trim(),
      state: state.value,
      func_name: funcName.input.value.trim(),
      q: text.input.value,
      scan: scan.input.value.trim(),
      server: serverField.hidden ? '' : server.value,
    };
    const query = new URLSearchParams(FIELDS.flatMap((name) => (values[name] === '' ? [] : [[name, values[name]]]))).toString();
    // The URL holds the search: the router renders it, and the back button returns to it.
    window.location.hash = `#/find?${query}`;
  });

  const results = el('section', { 'aria-label': 'Results', id: 'find-results' });
  replace(main, el('h1', {}, 'Find'), idForm, searchForm, results);

  void api
    .servers()
    .then((reply) => {
      if (stopped || reply.servers.length < 2) return;
      const wanted = params.get('server') ?? '';
      replace(
        server,
        ...reply.servers.map((entry) =>
          el('option', { value: entry.server, selected: entry.server === wanted }, entry.up ? entry.server : `${entry.server} (down)`),
        ),
      );
      serverField.hidden = false;
    })
    .catch(() => undefined);
  void api
    .tubes()
    .then((report) => {
      if (!stopped) replace(tubeNames, ...report.tubes.map((entry) => el('option', { value: entry.name })));
    })
    .catch(() => undefined);

  const searchTube = params.get('tube')?.trim() ?? '';
  if (searchTube !== '') {
    const filters: Record<string, string> = { limit: '50' };
    for (const name of FIELDS) if (name !== 'tube') filters[name] = params.get(name) ?? '';
    let found: JobReport[] = [];
    const more = async (cursor: string | null): Promise<void> => {
      replace(results, el('p', { class: 'hint' }, 'Searching…'));
      try {
        const page = await api.find(searchTube, cursor === null ? filters : { ...filters, cursor });
        if (stopped) return;
        found = [...found, ...page.jobs];
        const older =
          page.nextCursor === null ? null : el('button', { type: 'button', id: 'find-more', class: 'quiet' }, 'Search older ids');
        older?.addEventListener('click', () => void more(page.nextCursor));
        replace(
          results,
          el('p', { class: 'hint', id: 'find-summary' }, scanNote(page, found.length)),
          table(`Jobs of ${searchTube}`, ['Job', 'Task', 'State', 'Priority', 'Age', 'Last failure'], resultRows(found), 'jobs found'),
          older,
        );
      } catch (error) {
        if (!stopped) replace(results, el('p', { class: 'error', role: 'alert' }, (error as Error).message));
        toast((error as Error).message, true);
      }
    };
    void more(null);
  }
  return () => {
    stopped = true;
  };
}
