// The JobQueue the bench's no-op task registers with, imported as `bsworker` (the built package) like
// jobs/queue.ts: the CLI loads this directory, and its registry is the one in dist/.
import { JobQueue } from 'bsworker';

export const queue = new JobQueue();
