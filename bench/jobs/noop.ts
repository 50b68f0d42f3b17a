// The task every worker drain runs: nothing, so the figure is the worker's own cost per job. The tube
// comes from the environment so that each drain runs on a fresh, empty tube.
import { queue } from './queue.js';

/** Where the bench tells the worker (and this module) which tube to serve. */
export const BENCH_TUBE_ENV = 'BSWORKER_BENCH_TUBE';

export const noop = queue.task(process.env[BENCH_TUBE_ENV] ?? 'bench_noop')(async function noop(_kw: Record<string, unknown>) {});
