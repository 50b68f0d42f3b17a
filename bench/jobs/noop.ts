// The task every worker drain runs: nothing, so the figure is the worker's own cost per job. The tube
// comes from the environment so that each drain runs on a fresh, empty tube; a comma-separated list
// registers it in each of several tubes (the watched-tubes curve).
import { queue } from './queue.js';

/** Where the bench tells the worker (and this module) which tube to serve. */
export const BENCH_TUBE_ENV = 'BSWORKER_BENCH_TUBE';

const [first = 'bench_noop', ...others] = (process.env[BENCH_TUBE_ENV] ?? 'bench_noop').split(',');

// The task's name is the function's: `noop`, what the bench's bodies call.
const run = async function noop(_kw: Record<string, unknown>): Promise<void> {};

export const noop = queue.task(first)(run);
for (const tube of others) queue.task(tube)(run);
