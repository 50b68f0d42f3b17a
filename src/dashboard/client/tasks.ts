/**
 * Tasks: the tasks `bsworker serve --jobs DIR` loaded, per tube, with the options each runs with and
 * its schema, and a form that puts a job. The form checks only that the kwargs are JSON; the server
 * checks them with the task's own schema (the same check as every API put), and its issues are shown
 * beside the field, so the page can never accept what the API would refuse.
 */
import { ApiError, api } from './api.js';
import { button, type Child, el, replace, table, toast, viewLink } from './dom.js';
import type { TaskDescription } from './types.js';

/** A starting value for a JSON Schema: its default, else an empty value of its type. */
function sampleOf(schema: unknown, depth = 0): unknown {
  if (typeof schema !== 'object' || schema === null || depth > 4) return null;
  const node = schema as { default?: unknown; type?: unknown; properties?: Record<string, unknown>; required?: unknown };
  if ('default' in node) return node.default;
  const type = Array.isArray(node.type) ? node.type[0] : node.type;
  switch (type) {
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object': {
      const required = new Set(Array.isArray(node.required) ? node.required : []);
      const out: Record<string, unknown> = {};
      // Required keys only: an optional key with an empty value could be wrong (an empty email, say).
      for (const [key, value] of Object.entries(node.properties ?? {})) if (required.has(key)) out[key] = sampleOf(value, depth + 1);
      return out;
    }
    default:
      return null;
  }
}

function backoffText(task: TaskDescription): string {
  if (task.retries === 0) return '–';
  const { type, delaySeconds, maxDelaySeconds, jitter } = task.backoff;
  return `${type} ${delaySeconds}s…${maxDelaySeconds}s${jitter ? ', jitter' : ''}`;
}

function numberInput(id: string, label: string, value: number, min: number): { node: HTMLElement; input: HTMLInputElement } {
  const input = el('input', { id, type: 'number', min, max: 4_294_967_295, value, inputmode: 'numeric' });
  return { node: el('label', { for: id }, label, input), input };
}

/** The put form of `task` in `tube`. */
function putForm(tube: string, task: TaskDescription): HTMLElement {
  const id = (part: string) => `put-${part}`;
  const kwargs = el('textarea', { id: id('kwargs'), rows: 8, spellcheck: 'false', 'aria-describedby': id('issues') });
  kwargs.value = JSON.stringify(sampleOf(task.schema?.jsonSchema) ?? {}, null, 2);
  const priority = numberInput(id('priority'), 'Priority', task.priority, 0);
  const delay = numberInput(id('delay'), 'Delay (s)', task.delay, 0);
  const ttr = numberInput(id('ttr'), 'TTR (s)', task.ttr, 2);
  const issues = el('ul', { id: id('issues'), class: 'error issues', 'aria-live': 'polite' });
  const result = el('p', { id: id('result'), class: 'hint' });
  const form = el(
    'form',
    { class: 'card put', 'aria-label': `Put a ${task.name} job` },
    el('h3', {}, 'Put a ', el('code', {}, task.name), ' job into ', el('code', {}, tube)),
    el('label', { for: id('kwargs') }, 'kwargs (JSON)'),
    kwargs,
    el('div', { class: 'row' }, priority.node, delay.node, ttr.node),
    issues,
    el('button', { type: 'submit', id: id('submit') }, 'Put job'),
    result,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(issues);
    replace(result);
    let value: unknown;
    try {
      value = JSON.parse(kwargs.value);
    } catch (error) {
      replace(issues, el('li', {}, `kwargs is not JSON: ${(error as Error).message}`));
      kwargs.focus();
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      replace(issues, el('li', {}, 'kwargs must be a JSON object'));
      kwargs.focus();
      return;
    }
    try {
      const put = await api.put(tube, task.name, value, {
        priority: Number(priority.input.value),
        delay: Number(delay.input.value),
        ttr: Number(ttr.input.value),
      });
      replace(result, 'Put as job ', viewLink(put.id, 'job', put.id));
      toast(`Put job ${put.id}`);
    } catch (error) {
      const listed = error instanceof ApiError && error.issues.length > 0 ? error.issues : [];
      replace(
        issues,
        el('li', {}, (error as Error).message),
        // `["body", "kwargs", "to"]` → `kwargs.to`: where in the form the problem is.
        ...listed.map((issue) => el('li', {}, el('code', {}, issue.path.slice(1).join('.')), ` ${issue.message}`)),
      );
      kwargs.focus();
    }
  });
  return form;
}

function tubeSection(tube: string, tasks: readonly TaskDescription[], slot: HTMLElement): HTMLElement {
  const rows: Child[][] = tasks.map((task) => [
    el('code', {}, task.name),
    task.priority,
    `${task.delay}s`,
    `${task.ttr}s`,
    task.retries,
    backoffText(task),
    task.timeoutMs === null ? '–' : `${task.timeoutMs} ms`,
    task.redact.length > 0 ? task.redact.join(', ') : '–',
    task.schema === null
      ? '–'
      : task.schema.jsonSchema === null
        ? task.schema.vendor
        : el('details', {}, el('summary', {}, task.schema.vendor), el('pre', {}, JSON.stringify(task.schema.jsonSchema, null, 2))),
    button(
      'Put…',
      () => {
        replace(slot, putForm(tube, task));
        slot.querySelector('textarea')?.focus();
      },
      { 'data-task': task.name, 'aria-label': `Put a ${task.name} job` },
    ),
  ]);
  return el(
    'section',
    { 'aria-label': `Tube ${tube}`, 'data-tube': tube },
    el('h2', {}, 'Tube ', viewLink(tube, 'tube', tube)),
    table(
      `Tasks of ${tube}`,
      ['Task', 'Priority', 'Delay', 'TTR', 'Retries', 'Backoff', 'Timeout', 'Redacted', 'Schema', ''],
      rows,
      'tasks',
    ),
    slot,
  );
}

/** Renders the Tasks view into `main`. */
export function showTasks(main: HTMLElement): () => void {
  let stopped = false;
  replace(main, el('h1', {}, 'Tasks'), el('p', { class: 'hint' }, 'Loading…'));
  void api
    .tasks()
    .then((reply) => {
      if (stopped) return;
      if (!reply.loaded) {
        replace(
          main,
          el('h1', {}, 'Tasks'),
          el(
            'p',
            { id: 'no-registry' },
            'No jobs directory is loaded: start the server with ',
            el('code', {}, 'bsworker serve --jobs DIR'),
            ' to see the registered tasks and put jobs from here.',
          ),
        );
        return;
      }
      replace(
        main,
        el('h1', {}, 'Tasks'),
        ...reply.tubes.map((entry) => tubeSection(entry.tube, entry.tasks, el('div', { class: 'put-slot' }))),
      );
    })
    .catch((error: Error) => {
      if (!stopped) replace(main, el('h1', {}, 'Tasks'), el('p', { class: 'error', role: 'alert' }, error.message));
    });
  return () => {
    stopped = true;
  };
}
