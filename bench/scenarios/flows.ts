/**
 * Results, chains and groups (`--only flows`, not in the default run): what a flow costs over the
 * same jobs without one, through one real `bsworker` CLI at `-c 16` on bench/flow-jobs/ (tasks that do
 * next to nothing), which starts in the warm-up and serves every scenario of the group. Each figure is
 * measured next to its baseline, in the same round:
 *
 * - results: N puts with `{ result: true }` in flight, every `result()` awaited, against N plain puts
 *   until the worker has deleted them all; and one job at a time, put with a result and awaited, against
 *   one plain put and a poll for its delete (back to back: the only witness of a delete in another
 *   process is the server's counter, so the baseline carries up to one extra round trip).
 * - chains: M chains of three links (the second and third pipe the previous link's value) against 3M
 *   single jobs; both counted in jobs, until the last delete.
 * - groups: one group of K members with a callback, from the put to the callback's result, with
 *   `callback.with(kw)` and with `callback.pipe('values')` (collecting the members' results), against K
 *   plain jobs drained; in parts, each part one group.
 *
 * Every sample carries the worker's CPU per job (`cpuUsPerJob`, from /proc) and the bench process's
 * (`callerCpuUsPerJob`: the producer, the reply listener and, for the baselines, the delete polls).
 * Between runs the tube is left empty (untimed), so a late delete cannot count in the next figure.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger, JobQueue } from '../../src/index.js';
import { RawClient } from '../../test/helpers/raw-client.js';
import { childEnv, type Spawned } from '../children.js';
import {
  type BenchContext,
  freshTube,
  PARTS_PER_RUN,
  type Part,
  REPO,
  type Sample,
  type Scenario,
  type ScenarioGroup,
  sample,
} from '../context.js';
import { cpuTimeMs } from '../cpu.js';
import { tubeCounter, waitForWaiting, waitUntil } from '../poll.js';

/** Scenario names. */
export const FLOWS = Object.freeze({
  plainDrain: 'flows-plain-drain',
  results: 'flows-results',
  plainRoundTrip: 'flows-plain-roundtrip',
  resultRoundTrip: 'flows-result-roundtrip',
  singles: 'flows-singles',
  chains: 'flows-chains',
  groupPlain: 'flows-group-plain',
  groupCallback: 'flows-group-callback',
  groupCollect: 'flows-group-collect',
});

/** The worker's concurrency: the c=16 drain of the default run is the figure of a job without a flow. */
export const FLOWS_CONCURRENCY = 16;
/** Links per chain. */
const CHAIN_LINKS = 3;
/** Members per group: 1,000 (100 with --quick); each part of a run is one group. */
const GROUP_MEMBERS = 1_000;
/** How often a drain's deletes are polled (a round trip each on the control connection). */
const POLL_MS = 2;
/** A run that makes no progress for this long has stalled (a stuck worker). */
const STALL_MS = 60_000;

const BIN = join(REPO, 'bin', 'bsworker');
const JOBS_DIR = join(REPO, 'bench', 'flow-jobs');

/** The flows scenarios over one worker process, started by the first warm-up and stopped by `close()`. */
export function flowsGroup(ctx: BenchContext): ScenarioGroup {
  const tube = freshTube('flows');
  const queue = new JobQueue({ url: ctx.url, logger: createLogger({ level: 'silent' }) });
  // The producer's copies of bench/flow-jobs/flows.ts: the same names, tube and kwargs.
  const step = queue.task(tube)(async function flowStep(kw: { n: number; prev?: number }): Promise<number> {
    return kw.n + (kw.prev ?? 0);
  });
  const collect = queue.task(tube)(async function flowCollect(kw: { values: number[] }): Promise<number> {
    return kw.values.length;
  });
  const worker = new FlowWorker(ctx, tube);

  const quick = ctx.sizes.jobs < 50_000;
  // About a second per run at the worker's plain rate; results and chains take longer.
  const jobs = quick ? ctx.sizes.oneAtATimeJobs : 20_000;
  const chains = Math.ceil(jobs / CHAIN_LINKS);
  const members = quick ? 100 : GROUP_MEMBERS;
  const roundTrips = Math.ceil(ctx.sizes.latencySamples / PARTS_PER_RUN);

  const plainPuts = async (count: number): Promise<void> => {
    await Promise.all(Array.from({ length: count }, (_, n) => step.put({ n })));
  };
  const drainPlain = (count: number) => async () => {
    const before = await worker.deletes();
    await plainPuts(count);
    await worker.waitForDeletes(before + count);
  };
  const results = (count: number) => async () => {
    const put = await Promise.all(Array.from({ length: count }, (_, n) => step.put({ n }, { result: true })));
    await Promise.all(put.map((job) => job.result()));
  };
  const chainRun = (count: number) => async () => {
    const before = await worker.deletes();
    await Promise.all(
      Array.from({ length: count }, (_, n) =>
        queue.chain(step.with({ n }), step.pipe('prev', { n: 1 }), step.pipe('prev', { n: 2 })).put(),
      ),
    );
    await worker.waitForDeletes(before + CHAIN_LINKS * count);
  };
  const memberLinks = (count: number) => Array.from({ length: count }, (_, n) => step.with({ n }));
  const groupWith = (count: number) => async () => {
    const job = await queue
      .group(...(memberLinks(count) as [ReturnType<typeof step.with>]))
      .callback(step.with({ n: -1 }))
      .put({ result: true });
    await job.result();
  };
  const groupCollect = (count: number) => async () => {
    const job = await queue
      .group(...(memberLinks(count) as [ReturnType<typeof step.with>]))
      .callback(collect.pipe('values'))
      .put({ result: true });
    const value = await job.result();
    if (value !== count) throw new Error(`the collecting callback saw ${value} results of ${count}`);
  };
  const roundTrip = async (withResult: boolean): Promise<Part> => {
    await worker.start();
    const latenciesMs: number[] = [];
    for (let n = 0; n < roundTrips; n += 1) {
      if (withResult) {
        const start = performance.now();
        const job = await step.put({ n }, { result: true });
        await job.result();
        latenciesMs.push(performance.now() - start);
      } else {
        const before = await worker.deletes();
        const start = performance.now();
        await step.put({ n });
        await worker.waitForDeletes(before + 1, 0);
        latenciesMs.push(performance.now() - start);
      }
    }
    await worker.settle();
    return { jobs: latenciesMs.length, elapsedMs: 0, latenciesMs };
  };

  /** A whole run: `body` timed, CPU read around it, then the tube left empty. */
  const timed = (count: number, body: () => () => Promise<void>) => async (): Promise<Sample> => {
    const measured = await worker.measure(count, body());
    return sample(count, measured.elapsedMs, measured.extra);
  };
  const timedPart = (count: number, body: () => () => Promise<void>) => async (): Promise<Part> => {
    const measured = await worker.measure(count, body());
    return { jobs: count, elapsedMs: measured.elapsedMs };
  };
  /** Starts the worker (once), then runs `body` small and untimed: the JIT on both sides, the reply tube. */
  const warm = (body: () => Promise<void>) => async () => {
    await worker.start();
    await body();
    await worker.settle();
  };

  const note = (what: string): string => `${what}; one bsworker -c ${FLOWS_CONCURRENCY} worker process`;
  const scenarios: Scenario[] = [
    {
      name: FLOWS.plainDrain,
      group: 'flows',
      label: `plain put() x ${jobs.toLocaleString('en-US')} in flight, drained`,
      baseline: FLOWS.plainDrain,
      note: note('first put to last delete'),
      warmup: warm(drainPlain(Math.min(jobs, 500))),
      run: timed(jobs, () => drainPlain(jobs)),
    },
    {
      name: FLOWS.results,
      group: 'flows',
      label: `put(kw, { result: true }) x ${jobs.toLocaleString('en-US')} in flight, every result() awaited`,
      baseline: FLOWS.plainDrain,
      measuredWith: FLOWS.plainDrain,
      note: note('first put to last result'),
      warmup: warm(results(Math.min(jobs, 500))),
      run: timed(jobs, () => results(jobs)),
    },
    {
      name: FLOWS.plainRoundTrip,
      group: 'flows',
      label: 'plain put(), then poll until deleted, one at a time',
      baseline: FLOWS.plainRoundTrip,
      note: `${ctx.sizes.latencySamples.toLocaleString('en-US')} samples per run in ${PARTS_PER_RUN} parts; back-to-back stats-tube polls; jobs/s = 1 / mean`,
      warmup: warm(async () => void (await roundTrip(false))),
      part: () => roundTrip(false),
    },
    {
      name: FLOWS.resultRoundTrip,
      group: 'flows',
      label: 'put(kw, { result: true }) then await result(), one at a time',
      baseline: FLOWS.plainRoundTrip,
      measuredWith: FLOWS.plainRoundTrip,
      note: `${ctx.sizes.latencySamples.toLocaleString('en-US')} samples per run, parts alternating with the plain round trip's; jobs/s = 1 / mean`,
      warmup: warm(async () => void (await roundTrip(true))),
      part: () => roundTrip(true),
    },
    {
      name: FLOWS.singles,
      group: 'flows',
      label: `plain put() x ${(CHAIN_LINKS * chains).toLocaleString('en-US')} in flight, drained`,
      baseline: FLOWS.singles,
      note: note(`as many jobs as ${chains.toLocaleString('en-US')} chains of ${CHAIN_LINKS}`),
      run: timed(CHAIN_LINKS * chains, () => drainPlain(CHAIN_LINKS * chains)),
    },
    {
      name: FLOWS.chains,
      group: 'flows',
      label: `${chains.toLocaleString('en-US')} chains of ${CHAIN_LINKS} (with, pipe, pipe) in flight`,
      baseline: FLOWS.singles,
      measuredWith: FLOWS.singles,
      note: note('jobs = links; first put to last delete'),
      warmup: warm(chainRun(Math.min(chains, 200))),
      run: timed(CHAIN_LINKS * chains, () => chainRun(chains)),
    },
    {
      name: FLOWS.groupPlain,
      group: 'flows',
      label: `plain put() x ${members.toLocaleString('en-US')} in flight, drained`,
      baseline: FLOWS.groupPlain,
      note: note(`${PARTS_PER_RUN} parts a run`),
      part: timedPart(members, () => drainPlain(members)),
    },
    {
      name: FLOWS.groupCallback,
      group: 'flows',
      label: `group of ${members.toLocaleString('en-US')} + callback.with(), to the callback's result`,
      baseline: FLOWS.groupPlain,
      measuredWith: FLOWS.groupPlain,
      note: note(`jobs = members; ${PARTS_PER_RUN} parts a run (one group each), alternating with the plain drain's`),
      warmup: warm(groupWith(members)),
      part: timedPart(members, () => groupWith(members)),
    },
    {
      name: FLOWS.groupCollect,
      group: 'flows',
      label: `group of ${members.toLocaleString('en-US')} + callback.pipe('values'), to the callback's result`,
      baseline: FLOWS.groupPlain,
      note: note(`jobs = members; ${PARTS_PER_RUN} parts a run, measured right after the pair above`),
      warmup: warm(groupCollect(members)),
      part: timedPart(members, () => groupCollect(members)),
    },
  ];
  return {
    scenarios,
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}

/** The one worker process of the group, and a control connection that watches its tube's counters. */
class FlowWorker {
  readonly #ctx: BenchContext;
  readonly #tube: string;
  #started: Promise<void> | undefined;
  #spawned: Spawned | undefined;
  #control: RawClient | undefined;

  constructor(ctx: BenchContext, tube: string) {
    this.#ctx = ctx;
    this.#tube = tube;
  }

  /** Spawns the worker (once) and resolves once its reserve waits on the tube. */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#control = await RawClient.connect(this.#ctx.port);
    // A tube exists only while it is used, watched or holds jobs: used here, its counters can be read
    // before the worker watches it and between runs.
    await this.#control.expect(`use ${this.#tube}\r\n`, 'USING');
    const logFd = openSync(join(this.#ctx.tmpDir, `${this.#tube}.log`), 'a');
    try {
      this.#spawned = this.#ctx.children.spawn(
        process.execPath,
        [BIN, '--tubes', this.#tube, '--jobs', JOBS_DIR, '--url', this.#ctx.url, '--concurrency', String(FLOWS_CONCURRENCY)],
        { cwd: REPO, env: childEnv({ BSWORKER_BENCH_TUBE: this.#tube }), stdio: ['ignore', logFd, 'pipe'] },
      );
    } finally {
      closeSync(logFd);
    }
    await waitForWaiting(this.#control, this.#tube, 1, { timeoutMs: 60_000, abort: () => this.#exited() });
  }

  #exited(): string | undefined {
    const spawned = this.#spawned;
    return spawned?.exit ? `the worker exited (${JSON.stringify(spawned.exit)}): ${spawned.stderr().trim() || 'no stderr'}` : undefined;
  }

  #client(): RawClient {
    if (!this.#control) throw new Error('the flows worker has not started (no warm-up ran)');
    return this.#control;
  }

  /** The tube's `cmd-delete`: the worker is another process, and the server is the only witness. */
  deletes(): Promise<number> {
    return tubeCounter(this.#client(), this.#tube, 'cmd-delete');
  }

  /** Resolves once the tube's `cmd-delete` reaches `count`. */
  async waitForDeletes(count: number, intervalMs = POLL_MS): Promise<void> {
    let last = -1;
    let lastProgress = performance.now();
    await waitUntil(
      async () => {
        const deleted = await this.deletes();
        if (deleted !== last) {
          last = deleted;
          lastProgress = performance.now();
        }
        return deleted >= count;
      },
      {
        intervalMs,
        timeoutMs: Number.MAX_SAFE_INTEGER,
        what: `${count} deletes in ${this.#tube}`,
        abort: () => this.#exited() ?? (performance.now() - lastProgress > STALL_MS ? `no delete for ${STALL_MS} ms` : undefined),
      },
    );
  }

  /** Resolves once the tube holds no job in any state: nothing of this run can reach the next one's counts. */
  async settle(): Promise<void> {
    const client = this.#client();
    await waitUntil(
      async () => {
        const stats = await client.statsTube(this.#tube);
        return ['current-jobs-ready', 'current-jobs-reserved', 'current-jobs-delayed', 'current-jobs-buried'].every(
          (counter) => Number(stats[counter]) === 0,
        );
      },
      { intervalMs: POLL_MS, timeoutMs: STALL_MS, what: `${this.#tube} to be empty`, abort: () => this.#exited() },
    );
  }

  /** Times `body`, with the worker's and this process's CPU around it, then settles (untimed). */
  async measure(jobs: number, body: () => Promise<void>): Promise<{ elapsedMs: number; extra: Record<string, number> }> {
    await this.start();
    const pid = this.#spawned?.pid as number;
    const workerBefore = cpuTimeMs(pid);
    const callerBefore = process.cpuUsage();
    const start = performance.now();
    await body();
    const elapsedMs = performance.now() - start;
    const caller = process.cpuUsage(callerBefore);
    const workerAfter = cpuTimeMs(pid);
    await this.settle();
    const extra: Record<string, number> = { callerCpuUsPerJob: (caller.user + caller.system) / jobs };
    if (workerBefore !== undefined && workerAfter !== undefined) extra.cpuUsPerJob = ((workerAfter - workerBefore) * 1000) / jobs;
    return { elapsedMs, extra };
  }

  async close(): Promise<void> {
    const spawned = this.#spawned;
    if (spawned) {
      const exit = await spawned.stop();
      if (exit.code !== 0 && exit.signal === null)
        this.#ctx.progress(`the flows worker exited with ${JSON.stringify(exit)}: ${spawned.stderr().trim() || 'no stderr'}`);
    }
    this.#control?.close();
  }
}
