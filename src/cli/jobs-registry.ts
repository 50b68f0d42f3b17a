/**
 * The jobs directory as the command line's producer side sees it: `bsworker put --jobs DIR` loads it to
 * refuse a job that no worker could run, an unregistered task or kwargs its schema refuses, before
 * anything is put. The worker applies the same checks to the same jobs (src/worker/process-job.ts).
 */
import { resolve } from 'node:path';
import { loadJobs } from '../loader/load-jobs.js';
import { KwargsValidationError } from '../tasks/errors.js';
import { findTask, listTasks, type RegisteredTask } from '../tasks/registry.js';
import { validateKwargs } from '../tasks/schema.js';
import { UsageError } from './errors.js';

/**
 * Imports `jobsDir` and returns the task `funcName` of `tube`. Throws JobLoadError when a module cannot
 * be imported, and a UsageError naming what is registered when the task is not.
 */
export async function loadRegisteredTask(jobsDir: string, tube: string, funcName: string): Promise<RegisteredTask> {
  const files = await loadJobs(resolve(jobsDir));
  const task = findTask(tube, funcName);
  if (task) return task;
  const inTube = listTasks()
    .filter((registered) => registered.tube === tube)
    .map((registered) => registered.name)
    .sort();
  const registered = inTube.length === 0 ? 'no task in that tube' : `only ${inTube.map((name) => `\`${name}\``).join(', ')}`;
  throw new UsageError(
    `no task named ${JSON.stringify(funcName)} is registered in tube \`${tube}\` by ${jobsDir} (${files.length} module(s) register ${registered}); a worker would bury the job as unregistered`,
  );
}

/** Checks `kwargs` with the task's schema, if it has one; throws KwargsValidationError (exit 2) with the issues. */
export async function assertValidKwargs(task: RegisteredTask, kwargs: Record<string, unknown>): Promise<void> {
  const checked = await validateKwargs(task, kwargs);
  if (!checked.ok) throw new KwargsValidationError(task, checked.issues);
}
