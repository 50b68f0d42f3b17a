/** The context a task gets when it runs in this process rather than in a worker. */
import type { JobStats } from '../beanstalk/types.js';
import type { Logger } from '../logging/logger.js';
import { PUT_DEFAULTS } from './put-options.js';
import type { TaskContext, TaskMetadata } from './types.js';

// Nothing can abort it: its controller is never handed out. One for every inline run.
const NEVER_ABORTS = new AbortController().signal;

/**
 * A {@link TaskContext} for an inline run: the task's own tube and name, a signal that never aborts, a
 * `touch()` that does nothing (there is no TTR), and the counters of a first run. The logger, a child of
 * `logger()` with `{ tube, jobId, task }`, is made on first use: calling a task inline must stay as cheap
 * as calling the function.
 */
export function inlineContext(jobId: string, metadata: TaskMetadata, logger: () => Logger): TaskContext {
  let child: Logger | undefined;
  return {
    jobId,
    tube: metadata.tube,
    name: metadata.name,
    signal: NEVER_ABORTS,
    get logger(): Logger {
      child ??= logger().child({ tube: metadata.tube, jobId, task: metadata.name });
      return child;
    },
    touch: async () => {},
    // What a fresh job on a server would report: its first run, never released, buried or kicked.
    stats: async () => inlineStats(jobId, metadata),
    attempt: async () => 1,
    meta: undefined,
    progress: () => {},
  };
}

/** The counters a job would have on its first reservation. */
function inlineStats(id: string, metadata: TaskMetadata): JobStats {
  const ttr = metadata.options.ttr ?? PUT_DEFAULTS.ttr;
  return {
    id,
    tube: metadata.tube,
    state: 'reserved',
    priority: metadata.options.priority ?? PUT_DEFAULTS.priority,
    ageSeconds: 0,
    delaySeconds: 0,
    ttrSeconds: ttr,
    timeLeftSeconds: ttr,
    reserves: 1,
    timeouts: 0,
    releases: 0,
    buries: 0,
    kicks: 0,
  };
}
