// The JobQueue the flows bench's tasks register with, imported as `bsworker` (the built package) like
// bench/jobs/queue.ts: the CLI loads this directory, and its registry is the one in dist/.
import { JobQueue } from 'bsworker';

export const queue = new JobQueue();
