/**
 * One job: its state and counters (`stats-job`), the envelope (kwargs pretty-printed in a <details>) or
 * the raw body marked as such, the whole failure history with stacks, and kick, delete (confirmed in the
 * page) and, for a dead letter, requeue.
 */
import { api } from './api.js';
import { button, type Child, duration, el, replace, toast, viewLink } from './dom.js';
import type { FailureEntry, JobReport } from './types.js';

function facts(job: JobReport): HTMLElement {
  const rows: [string, Child][] = [
    ['State', el('span', { id: 'job-state' }, job.state)],
    ['Tube', viewLink(job.tube, 'tube', job.tube)],
    ['Server', job.server],
    ['Priority', job.priority],
    ['Age', duration(job.ageSeconds)],
    ['Delay', `${job.delaySeconds}s`],
    ['TTR', `${job.ttrSeconds}s`],
    ['Time left', duration(job.timeLeftSeconds)],
    ['Reserves', job.reserves],
    ['Timeouts', job.timeouts],
    ['Releases', job.releases],
    ['Buries', job.buries],
    ['Kicks', job.kicks],
  ];
  return el('dl', { class: 'facts' }, ...rows.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
}

function body(job: JobReport): HTMLElement {
  if (job.envelope === null) {
    return el(
      'section',
      { 'aria-label': 'Body' },
      el('h2', {}, 'Body ', el('em', { class: 'raw-mark' }, 'not a bsworker envelope')),
      el('p', { class: 'hint' }, job.decodeError ?? ''),
      el('pre', { class: 'raw', id: 'raw-body' }, job.raw ?? ''),
    );
  }
  return el(
    'section',
    { 'aria-label': 'Envelope' },
    el('h2', {}, 'Envelope'),
    el(
      'dl',
      { class: 'facts' },
      el('dt', {}, 'Task'),
      el('dd', { id: 'func-name' }, el('code', {}, job.envelope.func_name)),
      el('dt', {}, 'Tube in body'),
      el('dd', {}, job.envelope.tube ?? '–'),
    ),
    el('details', { open: true }, el('summary', {}, 'kwargs'), el('pre', { id: 'kwargs' }, JSON.stringify(job.envelope.kwargs, null, 2))),
  );
}

function failure(entry: FailureEntry): HTMLElement {
  const worker = entry.worker ? `${entry.worker.host} pid ${entry.worker.pid}` : '–';
  return el(
    'li',
    { class: 'failure' },
    el('p', {}, el('strong', {}, `${entry.name}: `), entry.message),
    el(
      'p',
      { class: 'hint' },
      `${entry.reason}, attempt ${entry.attempt}, ${entry.kicks} kicks, ${worker}, ${new Date(entry.at).toLocaleString()}`,
    ),
    entry.stack ? el('details', {}, el('summary', {}, 'stack'), el('pre', {}, entry.stack)) : null,
  );
}

/** Renders job `id` into `main`. */
export function showJob(main: HTMLElement, id: string): () => void {
  let stopped = false;
  const load = async (): Promise<void> => {
    let job: JobReport;
    try {
      job = await api.job(id);
    } catch (error) {
      if (!stopped)
        replace(main, el('h1', {}, 'Job ', el('code', {}, id)), el('p', { class: 'error', id: 'job-error' }, (error as Error).message));
      return;
    }
    if (stopped) return;
    const confirmBox = el('div', { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm delete' });
    const run = (what: () => Promise<unknown>, done: string) => async () => {
      try {
        await what();
        toast(done);
        await load();
      } catch (error) {
        toast((error as Error).message, true);
      }
    };
    const cancel = button('Cancel', () => {
      confirmBox.hidden = true;
      remove.focus();
    });
    replace(
      confirmBox,
      el('span', {}, `Delete job ${job.id} for good?`),
      button(
        'Delete it',
        async () => {
          try {
            await api.deleteJob(job.id);
            toast(`Deleted ${job.id}`);
            // The job is gone: its tube is what is left to look at.
            window.location.hash = `#/tube/${encodeURIComponent(job.tube)}`;
          } catch (error) {
            toast((error as Error).message, true);
          }
        },
        { id: 'confirm-delete', class: 'danger' },
      ),
      cancel,
    );
    const remove = button(
      'Delete…',
      () => {
        confirmBox.hidden = false;
        cancel.focus();
      },
      { id: 'delete', class: 'danger', disabled: job.state === 'reserved' },
    );
    const dlTube = job.deadLetter?.tube ?? null;
    const actions = el(
      'section',
      { class: 'actions', 'aria-label': 'Actions' },
      job.state === 'buried' || job.state === 'delayed'
        ? button(
            'Kick',
            run(() => api.kickJob(job.id), `Kicked ${job.id}`),
            { id: 'kick' },
          )
        : null,
      remove,
      dlTube !== null && job.state !== 'reserved'
        ? button(
            `Requeue into ${dlTube}`,
            async () => {
              try {
                const result = await api.requeueJob(job.id);
                toast(
                  result.deadLetterDeleted
                    ? `Requeued as job ${result.id}`
                    : `Requeued as job ${result.id}; the dead letter could not be deleted and is still here`,
                  !result.deadLetterDeleted,
                );
                // The letter is gone: the new job is what is left to look at.
                if (result.deadLetterDeleted) window.location.hash = `#/job/${encodeURIComponent(result.id)}`;
                else await load();
              } catch (error) {
                toast((error as Error).message, true);
              }
            },
            { id: 'requeue' },
          )
        : null,
      dlTube !== null
        ? button(
            `Requeue every dead letter of ${dlTube}`,
            async () => {
              try {
                toast(`Requeued ${(await api.requeue(dlTube, job.tube)).requeued} dead letters into ${dlTube}`);
                await load();
              } catch (error) {
                toast((error as Error).message, true);
              }
            },
            { id: 'requeue-all', class: 'quiet' },
          )
        : null,
      confirmBox,
    );
    const failures = job.history?.failures ?? [];
    // Drawn again after an action: the focus stays on the same control when it is still there, else
    // goes to the view itself, so a keyboard user is not sent back to the top of the page.
    const focused = main.contains(document.activeElement) ? document.activeElement?.id : undefined;
    replace(
      main,
      el('h1', {}, 'Job ', el('code', {}, job.id)),
      actions,
      facts(job),
      body(job),
      el(
        'section',
        { 'aria-label': 'Failures' },
        el('h2', {}, `Failure history (${failures.length})`),
        failures.length > 0
          ? el('ol', { class: 'failures' }, ...failures.map((entry) => failure(entry)))
          : el('p', {}, 'No failure recorded.'),
      ),
    );
    if (focused !== undefined) (document.getElementById(focused) ?? main).focus({ preventScroll: true });
  };
  void load();
  return () => {
    stopped = true;
  };
}
