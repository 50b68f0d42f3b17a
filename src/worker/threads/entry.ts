/**
 * A task thread: imports the jobs directory (rebuilding the registry here, as the CLI does in the main
 * thread), then runs the tasks it is asked to, one at a time. Its event loop is its own: CPU-bound task
 * code here cannot hold back the keep-alive in the worker's thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import type { JobStats } from '../../beanstalk/types.js';
import { loadJobs } from '../../loader/load-jobs.js';
import { toError } from '../../logging/logger.js';
import { isUnrecoverable, KwargsValidationError } from '../../tasks/errors.js';
import { findTask, listTasks } from '../../tasks/registry.js';
import { validateKwargs } from '../../tasks/schema.js';
import type { TaskContext } from '../../tasks/types.js';
import type { ErrorData, FromTaskThread, TaskThreadData, ToTaskThread } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('bsworker: the task-thread entry runs only as a worker thread');
const data = workerData as TaskThreadData;
// JSON lines on the thread's stdout, which Node forwards to the process's stdout.
const logger = pino({ level: data.logLevel, base: { pid: process.pid, thread: true } });

const send = (message: FromTaskThread): void => port.postMessage(message);

/** Replies the worker's thread still owes, by request number. */
const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
/** The abort switch of each run in this thread. */
const aborts = new Map<number, AbortController>();
let nextRequest = 1;

function toData(thrown: unknown): ErrorData {
  const error = toError(thrown);
  let unrecoverable = false;
  try {
    unrecoverable = isUnrecoverable(thrown);
  } catch {
    // A value whose properties cannot be read is no UnrecoverableError.
  }
  return { name: error.name, message: error.message, stack: error.stack, unrecoverable };
}

function fromData(error: ErrorData): Error {
  const result = new Error(error.message);
  result.name = error.name;
  if (error.stack !== undefined) result.stack = error.stack;
  return result;
}

function ask<T>(type: 'stats' | 'touch', run: number): Promise<T> {
  const request = nextRequest++;
  return new Promise<T>((resolve, reject) => {
    waiting.set(request, { resolve: resolve as (value: unknown) => void, reject });
    send({ type, run, request });
  });
}

async function runOne(message: Extract<ToTaskThread, { type: 'run' }>): Promise<void> {
  const { run, tube, name, jobId, kwargs, meta, wantsValue } = message;
  const task = findTask(tube, name);
  if (!task) {
    send({
      type: 'done',
      run,
      error: { name: 'Error', message: `no task named ${JSON.stringify(name)} in tube ${JSON.stringify(tube)} in the task thread` },
    });
    return;
  }
  const abort = new AbortController();
  aborts.set(run, abort);
  let log: pino.Logger | undefined;
  const stats = (): Promise<JobStats> => ask<JobStats>('stats', run);
  const context: TaskContext = {
    jobId,
    tube,
    name,
    signal: abort.signal,
    get logger() {
      log ??= logger.child({ tube, jobId, task: name });
      return log;
    },
    touch: () => ask<void>('touch', run),
    meta,
    progress: (value: unknown) => {
      try {
        send({ type: 'progress', run, value });
      } catch (error) {
        // A value structured clone cannot carry (a function, a class with private state): dropped.
        logger.warn({ err: toError(error), jobId }, 'a progress value could not leave the task thread');
      }
    },
    stats,
    attempt: async () => (await stats()).releases + 1,
  };
  try {
    // The worker's thread has checked these kwargs already (and buried the job if they failed); the
    // check runs again here so that the task gets its schema's output built in this thread.
    let value: unknown = kwargs;
    if (task.options.schema !== undefined) {
      const checked = await validateKwargs(task, kwargs);
      if (!checked.ok) throw new KwargsValidationError(task, checked.issues);
      value = checked.value;
    }
    const result: unknown = await task.run(value as Record<string, unknown>, context);
    if (wantsValue !== true) send({ type: 'done', run });
    else {
      try {
        send({ type: 'done', run, value: result });
      } catch (error) {
        send({ type: 'done', run, error: toData(new Error(`the return value cannot leave the task thread: ${toError(error).message}`)) });
      }
    }
  } catch (thrown) {
    send({ type: 'done', run, error: toData(thrown) });
  } finally {
    aborts.delete(run);
  }
}

port.on('message', (message: ToTaskThread) => {
  switch (message.type) {
    case 'run':
      void runOne(message);
      return;
    case 'abort':
      aborts.get(message.run)?.abort(fromData(message.reason));
      return;
    case 'stats':
    case 'touched': {
      const pending = waiting.get(message.request);
      waiting.delete(message.request);
      if (!pending) return;
      if (message.error) pending.reject(fromData(message.error));
      else pending.resolve(message.type === 'stats' ? message.stats : undefined);
      return;
    }
  }
});

loadJobs(data.jobsDir).then(
  () => send({ type: 'ready', tasks: listTasks().length }),
  (error: unknown) => send({ type: 'load-failed', error: toData(error) }),
);
