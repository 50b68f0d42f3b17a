/**
 * Many producer processes (`--only producers`, not in the default run): 1, 4 and 16 processes, each
 * putting jobs one at a time and awaiting each put, as the web processes of an application do. The
 * same number of raw-client processes putting the same bytes is measured next to each, in the same
 * round, so the ratio says what bsworker costs when producers compete for the two cores and for
 * beanstalkd, not only when one producer has the machine to itself.
 *
 * The processes start once per scenario (untimed, in the warm-up) and stay up across runs; a run is
 * the time from `go` sent to all of them to the last one's answer. Each reports its own CPU time, so
 * the table also shows the CPU per put and how it grows with the number of processes.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { childEnv, type Spawned } from '../children.js';
import { type BenchContext, freshTube, REPO, type Sample, type Scenario, type ScenarioGroup, sample } from '../context.js';
import { type TargetResult, target } from '../report.js';

const CHILD = join(REPO, 'bench', 'producer-process.ts');
/** How many producer processes each pair of scenarios runs. `--quick` keeps the smallest two. */
const PROCESS_COUNTS = [1, 4, 16] as const;
const QUICK_PROCESS_COUNTS = [1, 2] as const;
/** A child that does not answer within this is stuck: the run fails with its stderr. */
const ANSWER_TIMEOUT_MS = 120_000;

/** Scenario names the report refers to. */
export const PRODUCERS = Object.freeze({
  raw: (processes: number) => `producers-raw-${processes}`,
  bsworker: (processes: number) => `producers-bsworker-${processes}`,
});

/** The producer-processes scenarios. */
export function producersGroup(ctx: BenchContext): ScenarioGroup {
  const fleets: Fleet[] = [];
  const counts = ctx.sizes.jobs < 50_000 ? QUICK_PROCESS_COUNTS : PROCESS_COUNTS;
  const scenarios: Scenario[] = [];
  for (const processes of counts) {
    // About 20,000 puts a run with one process (about a second), twice that shared out with more.
    const perProcess = Math.ceil((ctx.sizes.oneAtATimeJobs * (processes === 1 ? 1 : 2)) / processes);
    const note = `${processes} process(es) x ${perProcess.toLocaleString('en-US')} puts a run, each put awaited before the next`;
    for (const kind of ['raw', 'bsworker'] as const) {
      const fleet = new Fleet(ctx, kind, processes, perProcess);
      fleets.push(fleet);
      const raw = PRODUCERS.raw(processes);
      scenarios.push({
        name: kind === 'raw' ? raw : PRODUCERS.bsworker(processes),
        group: 'producers',
        label:
          kind === 'raw'
            ? `raw clients, one put at a time: ${processes} process(es)`
            : `bsworker put(), awaited one at a time: ${processes} process(es)`,
        baseline: raw,
        ...(kind === 'bsworker' ? { measuredWith: raw } : {}),
        note,
        warmup: () => fleet.start(),
        run: () => fleet.run(),
      });
    }
  }
  return {
    scenarios,
    close: async () => {
      await Promise.all(fleets.map((fleet) => fleet.close()));
    },
  };
}

/** The target: 16 processes of bsworker against 16 raw clients; absent when not run. */
export function producersTargets(figure: (name: string, field?: string) => number | undefined): TargetResult[] {
  const raw = figure(PRODUCERS.raw(16));
  const ours = figure(PRODUCERS.bsworker(16));
  if (raw === undefined && ours === undefined) return [];
  const cpu = (name: string): string => figure(name, 'cpuUsPerJob')?.toFixed(1) ?? 'n/a';
  return [
    target(
      '16 producer processes, put() one at a time / 16 raw clients',
      raw === undefined || ours === undefined ? undefined : ours / raw,
      '>=',
      0.85,
      `${PRODUCERS.bsworker(16)} / ${PRODUCERS.raw(16)}; CPU per put ${cpu(PRODUCERS.bsworker(4))} us at 4 processes, ${cpu(PRODUCERS.bsworker(16))} at 16 (raw ${cpu(PRODUCERS.raw(4))}, ${cpu(PRODUCERS.raw(16))})`,
    ),
  ];
}

/** The processes of one scenario, driven by lines (see bench/producer-process.ts). */
class Fleet {
  readonly #ctx: BenchContext;
  readonly #kind: 'raw' | 'bsworker';
  readonly #processes: number;
  readonly #perProcess: number;
  #children: LineChild[] = [];

  constructor(ctx: BenchContext, kind: 'raw' | 'bsworker', processes: number, perProcess: number) {
    this.#ctx = ctx;
    this.#kind = kind;
    this.#processes = processes;
    this.#perProcess = perProcess;
  }

  /** Starts the processes (each on a tube of its own) and waits until every one has warmed up. */
  async start(): Promise<void> {
    for (let i = 0; i < this.#processes; i += 1) {
      const tube = freshTube(`producers-${this.#kind}`);
      const spawned = this.#ctx.children.spawn(
        process.execPath,
        ['--import', 'tsx', CHILD, this.#kind, String(this.#ctx.port), tube, String(this.#perProcess)],
        { cwd: REPO, env: childEnv({}), stdio: ['pipe', 'pipe', 'pipe'] },
      );
      this.#children.push(new LineChild(spawned));
    }
    // Started together but awaited one by one: a failure names the child whose stderr explains it.
    for (const child of this.#children) await child.expect('ready');
  }

  /** One timed run: `go` to every process, until the last has answered; then the untimed clean-up. */
  async run(): Promise<Sample> {
    const answers = this.#children.map((child) => child.next());
    const start = performance.now();
    for (const child of this.#children) child.send('go');
    const results = (await Promise.all(answers)).map((line) => JSON.parse(line) as { jobs: number; cpuUs: number });
    const elapsed = performance.now() - start;
    const jobs = results.reduce((sum, result) => sum + result.jobs, 0);
    const cpuUs = results.reduce((sum, result) => sum + result.cpuUs, 0);
    const cleaned = this.#children.map((child) => child.expect('cleaned'));
    for (const child of this.#children) child.send('clean');
    await Promise.all(cleaned);
    return sample(jobs, elapsed, { cpuUsPerJob: cpuUs / jobs });
  }

  async close(): Promise<void> {
    await Promise.all(this.#children.map((child) => child.end()));
  }
}

/** A child that answers lines with lines. */
class LineChild {
  readonly #spawned: Spawned;
  readonly #lines: string[] = [];
  readonly #waiting: ((line: string) => void)[] = [];
  #buffer = '';

  constructor(spawned: Spawned) {
    this.#spawned = spawned;
    spawned.stdout?.setEncoding('utf8');
    spawned.stdout?.on('data', (chunk: string) => {
      this.#buffer += chunk;
      for (let end = this.#buffer.indexOf('\n'); end >= 0; end = this.#buffer.indexOf('\n')) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 1);
        const waiter = this.#waiting.shift();
        if (waiter) waiter(line);
        else this.#lines.push(line);
      }
    });
  }

  send(line: string): void {
    this.#spawned.stdin?.write(`${line}\n`);
  }

  /** The next line; rejects if the child exits or stays silent for {@link ANSWER_TIMEOUT_MS}. */
  next(): Promise<string> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(this.#failure('did not answer in time')), ANSWER_TIMEOUT_MS);
      const exited = (): void => reject(this.#failure('exited'));
      void this.#spawned.exited.then(exited);
      this.#waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  async expect(word: string): Promise<void> {
    const line = await this.next();
    if (line !== word) throw this.#failure(`answered ${JSON.stringify(line)} where ${word} was expected`);
  }

  /** Ends stdin (the child closes its connections and exits); stops it if it has not within 5 s. */
  async end(): Promise<void> {
    this.#spawned.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 5_000);
    });
    await Promise.race([this.#spawned.exited, late]);
    clearTimeout(timer);
    await this.#spawned.stop(1_000);
  }

  #failure(what: string): Error {
    return new Error(`producer process ${this.#spawned.pid} ${what}: ${this.#spawned.stderr().trim() || '(no stderr)'}`);
  }
}
