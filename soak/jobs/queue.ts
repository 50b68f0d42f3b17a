// The JobQueue the soak's tasks register with. It is imported as `bsworker` (the built package, like
// jobs/queue.ts does): the CLI loads this directory, and its registry is the one in dist/.
import { JobQueue } from 'bsworker';

/** The soak's queue; its server comes from BEANSTALKD_URL, which the CLI and the soak set. */
export const queue = new JobQueue();
