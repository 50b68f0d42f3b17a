/**
 * One job: its state and counters (`stats-job`), the envelope (kwargs pretty-printed in a <details>) or
 * the raw body marked as such, the whole failure history with stacks, and kick, delete (confirmed in the
 * page) and, for a dead letter, requeue.
 */
import { api } from './api.js';
import { button, type Child, duration, el, replace, toast, viewLink } from './dom.js';
import type { FailureEntry, FlowDescription, JobReport } from './types.js';

/**
 * A job id of the group's, as this page links to it: ids in a flow are the server's own, and with
 * several servers (ids read `host:port/42`) the job's own server qualifies them.
 */
function sameServerId(job: JobReport, id: string): string {
  return job.id.includes('/') ? `${job.server}/${id}` : id;
}

/** The job's chain, group, chord and reply: its place, what runs after it, who waits for it. */
function flowSection(job: JobReport, flow: FlowDescription): HTMLElement {
  const parts: Child[] = [];
  if (flow.malformed !== null) {
    parts.push(
      el('p', { class: 'error', id: 'flow-malformed' }, `Malformed flow: ${flow.malformed}. A worker buries this job as invalid.`),
    );
  }
  const { chain, group, chord } = flow;
  if (chain !== null) {
    parts.push(
      el('p', { id: 'flow-chain' }, `Link ${chain.position} of ${chain.of}`, chain.nextCount === 0 ? ', the last.' : '. Still to run:'),
    );
    if (chain.nextCount > 0) {
      parts.push(
        el(
          'ol',
          { id: 'flow-next', start: chain.position + 1 },
          ...chain.next.map((link) =>
            el(
              'li',
              {},
              el('code', {}, link.func_name),
              ' in ',
              viewLink(link.tube, 'tube', link.tube),
              link.pipe ? ` (the return value goes to kwargs.${link.pipe})` : '',
              link.kwargs === undefined
                ? null
                : el('details', {}, el('summary', {}, 'kwargs'), el('pre', {}, JSON.stringify(link.kwargs, null, 2))),
            ),
          ),
        ),
      );
    }
  }
  if (group !== null) {
    parts.push(
      el(
        'p',
        { id: 'flow-group' },
        'Member of the group whose barrier tube is ',
        viewLink(group.tube, 'tube', group.tube),
        ` (its barrier job ${group.barrier})`,
        group.callback === null ? '; the group has no callback.' : '; callback: job ',
        group.callback === null ? null : viewLink(group.callback, 'job', sameServerId(job, group.callback)),
      ),
    );
  }
  if (chord !== null) {
    const left =
      chord.membersLeft === null ? 'members left unknown' : `${chord.membersLeft} ${chord.membersLeft === 1 ? 'member' : 'members'} left`;
    parts.push(
      el('p', { id: 'flow-chord' }, 'Callback of the group whose barrier tube is ', viewLink(chord.tube, 'tube', chord.tube), `: ${left}.`),
    );
  }
  if (flow.reply) parts.push(el('p', { id: 'flow-reply' }, 'A caller waits for its result.'));
  return el('section', { 'aria-label': 'Flow' }, el('h2', {}, 'Flow'), ...parts);
}

/** Over a buried chain link's failures: which link it was, and that the links after it did not run. */
function failedLink(job: JobReport): HTMLElement | null {
  const chain = job.flow?.chain;
  if (!chain || (job.history?.failures.length ?? 0) === 0) return null;
  const task = job.envelope?.func_name ?? '?';
  const after = chain.nextCount === 0 ? 'it is the last link' : `the ${chain.nextCount} after it have not run`;
  return el('p', { id: 'failed-link' }, `Link ${chain.position} of ${chain.of} (${task}) failed; ${after}.`);
}

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
      job.flow ? flowSection(job, job.flow) : null,
      el(
        'section',
        { 'aria-label': 'Failures' },
        el('h2', {}, `Failure history (${failures.length})`),
        failedLink(job),
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
