/**
 * The worker's schema check: a job whose kwargs its task's schema refuses is never run (process-job
 * buries it with reason `invalid`). Only tasks with a schema come here; the others pay nothing.
 */
import { KwargsValidationError } from '../tasks/errors.js';
import type { RegisteredTask } from '../tasks/registry.js';
import { validateKwargs } from '../tasks/schema.js';

/**
 * The kwargs the task runs with (the schema's output), or the error that says why the job cannot run.
 * With task threads, the decoded kwargs are returned as they are once they pass: the thread checks them
 * again with its own copy of the schema and gives the task that output, built in the thread that runs
 * it, since a transform may return values that cannot cross threads (functions, class instances).
 */
export async function checkJobKwargs(
  task: RegisteredTask,
  kwargs: Record<string, unknown>,
  inThread: boolean,
): Promise<Record<string, unknown> | KwargsValidationError> {
  const checked = await validateKwargs(task, kwargs);
  if (!checked.ok) return new KwargsValidationError(task, checked.issues);
  return inThread ? kwargs : (checked.value as Record<string, unknown>);
}
