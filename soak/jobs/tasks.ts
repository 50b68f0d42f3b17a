// The soak's three tasks. Each run appends one JSON line to a log file of its own process, so that the
// counter can see every run (and so every duplicate) without trusting the worker's own logs. The line is
// written synchronously before the task settles: a job can only be deleted after its success is on disk.
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskContext } from 'bsworker';
import { chance, ENV, FLAKY_FAILURE_RATE, type JobKind, type RunRecord, type SoakKwargs, TUBES } from '../shared.js';
import { queue } from './queue.js';

const seed = Number(process.env[ENV.seed] ?? '1');
let fd: number | undefined;

/** Appends one run record; the file is opened with O_APPEND on first use, one per process. */
function record(kind: JobKind, kw: SoakKwargs, attempt: number, ok: boolean): void {
  const dir = process.env[ENV.runsDir];
  if (dir === undefined) return;
  fd ??= openSync(join(dir, `runs-${process.pid}.jsonl`), 'a');
  const line: RunRecord = { id: kw.id, kind, attempt, pid: process.pid, at: Date.now(), ok };
  writeSync(fd, `${JSON.stringify(line)}\n`);
}

/** Succeeds at once. */
export const soakFast = queue.task(TUBES.fast)(async function soakFast(kw: SoakKwargs, ctx: TaskContext) {
  record('fast', kw, await ctx.attempt(), true);
});

/**
 * Fails about 5% of its runs, decided by (seed, id, attempt, kicks), and has retries to recover. The kicks
 * are part of the key because a kick does not grow the attempt: keyed on the attempt alone, a job that
 * failed its last retry would fail every kick too and end in the dead-letter tube by design.
 */
export const soakFlaky = queue.task(TUBES.flaky, { retries: 2, backoff: { type: 'fixed', delaySeconds: 1 } })(async function soakFlaky(
  kw: SoakKwargs,
  ctx: TaskContext,
) {
  const { kicks } = await ctx.stats();
  const attempt = await ctx.attempt();
  const fails = chance(seed, kw.id, attempt, kicks) < FLAKY_FAILURE_RATE;
  record('flaky', kw, attempt, !fails);
  if (fails) throw new Error(`soak: flaky job ${kw.id} failed on attempt ${attempt}`);
});

/**
 * Always fails: one retry (a delayed job), then buried, kicked by the workers' --kick-period until
 * --max-kicks, then dead-lettered.
 */
export const soakPoison = queue.task(TUBES.poison, { retries: 1, backoff: { type: 'fixed', delaySeconds: 1 } })(async function soakPoison(
  kw: SoakKwargs,
  ctx: TaskContext,
) {
  record('poison', kw, await ctx.attempt(), false);
  throw new Error(`soak: poison job ${kw.id} always fails`);
});
