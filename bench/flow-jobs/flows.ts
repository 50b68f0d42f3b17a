// The tasks of the flows bench (bench/scenarios/flows.ts), on the worker's side. Their names, tubes and
// kwargs must match the producer's copies in that file: the bench puts from src/ while the worker runs
// dist/, so the two cannot share one definition. Both do next to nothing, so a figure is the cost of
// the flow (a reply, a chain's next put, a group's barrier) and not of the task.
import { queue } from './queue.js';

/** Where the bench tells the worker (and this module) which tube to serve. */
export const BENCH_TUBE_ENV = 'BSWORKER_BENCH_TUBE';

const tube = process.env[BENCH_TUBE_ENV] ?? 'bench_flows';

/** A link, member or plain job: returns a number, which a chain's next link may pipe in as `prev`. */
export const flowStep = queue.task(tube)(async function flowStep(kw: { n: number; prev?: number }): Promise<number> {
  return kw.n + (kw.prev ?? 0);
});

/** A group's collecting callback: gets every member's return value, in order. */
export const flowCollect = queue.task(tube)(async function flowCollect(kw: { values: number[] }): Promise<number> {
  return kw.values.length;
});
