// The JobQueue the example tasks register with. It connects lazily, to BEANSTALKD_URL (which
// `bsworker --url` sets before loading this directory) or 127.0.0.1:11300.
import { JobQueue } from 'bsworker';

export const queue = new JobQueue();
