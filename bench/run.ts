/**
 * `npm run bench`: starts a private beanstalkd (127.0.0.1, free port, no binlog), runs every scenario
 * `--runs` times, prints a table of medians and ratios to the raw limits, and writes
 * `<out>/latest.json` and `<out>/throughput.svg`. Every child it starts is stopped, whatever happens.
 *
 * Runs are interleaved (round 1 of every scenario, then round 2, ...) so that a figure and the raw
 * limit it is divided by are measured close together in time, and slow drift on a noisy machine
 * moves both.
 */
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, type as osType, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BeanstalkdServer, startBeanstalkd } from '../test/helpers/beanstalkd.js';
import { RawClient } from '../test/helpers/raw-client.js';
import { renderChart } from './chart.js';
import { Children } from './children.js';
import { type BenchContext, type Group, REPO, type Sample, type Scenario, type ScenarioGroup, type Sizes } from './context.js';
import { buildJson, evaluateTargets, formatTable, type MachineInfo, summarise } from './report.js';
import { drainGroup } from './scenarios/drain.js';
import { drainCurveGroup } from './scenarios/drain-curve.js';
import { flowsGroup } from './scenarios/flows.js';
import { latencyGroup } from './scenarios/latency.js';
import { peersGroup } from './scenarios/peers.js';
import { producerGroup } from './scenarios/producer.js';
import { producersGroup } from './scenarios/producers.js';
import { rawGroup } from './scenarios/raw.js';
import { sizesGroup } from './scenarios/sizes.js';
import { planSteps, runStep, type Step } from './schedule.js';

/** The default sizes: large enough to be stable, small enough for about three minutes on 2 cores. */
const FULL: Sizes = { jobs: 50_000, oneAtATimeJobs: 20_000, naiveJobs: 3_000, singleWorkerJobs: 20_000, latencySamples: 3_000 };
/** `--quick`: a smoke test in seconds. */
const QUICK: Sizes = { jobs: 2_000, oneAtATimeJobs: 500, naiveJobs: 100, singleWorkerJobs: 500, latencySamples: 100 };

const GROUPS: readonly Group[] = [
  'raw',
  'producer',
  'drain',
  'latency',
  'peers',
  'sizes',
  'drain-sizes',
  'drain-backlog',
  'drain-tubes',
  'producers',
  'flows',
];
/**
 * Groups that run only when `--only` names them: the curves take minutes of their own, and the flows
 * compare flows with plain jobs among themselves (a plain job's figure is the default run's drain).
 */
const OPT_IN: readonly Group[] = ['sizes', 'drain-sizes', 'drain-backlog', 'drain-tubes', 'producers', 'flows'];

/** A bad flag: reported as one line plus the usage, exit code 2. */
class UsageError extends Error {}

const USAGE = `Usage: npm run bench -- [options]

Runs every scenario against a private beanstalkd and prints medians, ratios to the raw limits and the
targets; writes <out>/latest.json and <out>/throughput.svg.

Options:
  --quick         small sizes (seconds), for a smoke test
  --runs N        runs per scenario (default 3, 1 with --quick)
  --jobs N        jobs per throughput run (default ${FULL.jobs.toLocaleString('en-US')}); the slow scenarios use at most their default
  --out DIR       where to write the results (default bench/results)
  --only LIST     comma-separated groups (${GROUPS.join(', ')}) or scenario names;
                  ${OPT_IN.join(', ')} run only when named (the producer's body-size
                  curve; the worker's body-size, backlog and watched-tubes curves;
                  1, 4 and 16 producer processes; results, chains and
                  groups against plain jobs through one -c 16 worker)
  --help          this text
`;

interface Flags {
  readonly quick: boolean;
  readonly runs: number;
  readonly sizes: Sizes;
  readonly out: string;
  readonly only: readonly string[] | undefined;
}

function parseFlags(argv: readonly string[]): Flags | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      jobs: { type: 'string' },
      out: { type: 'string', default: join(REPO, 'bench', 'results') },
      only: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const positive = (flag: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`Expected --${flag} to be a positive integer, got \`${text}\``);
    return n;
  };
  const quick = values.quick === true;
  const base = quick ? QUICK : FULL;
  const jobs = positive('jobs', values.jobs, base.jobs);
  const sizes: Sizes =
    values.jobs === undefined
      ? base
      : {
          ...base,
          jobs,
          oneAtATimeJobs: Math.min(jobs, base.oneAtATimeJobs),
          naiveJobs: Math.min(jobs, base.naiveJobs),
          singleWorkerJobs: Math.min(jobs, base.singleWorkerJobs),
        };
  const only = values.only
    ?.split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  return { quick, runs: positive('runs', values.runs, quick ? 1 : 3), sizes, out: resolve(values.out as string), only };
}

async function machineInfo(port: number): Promise<MachineInfo> {
  const client = await RawClient.connect(port);
  try {
    const stats = await client.stats();
    return {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      beanstalkd: stats.version ?? 'unknown',
      os: `${osType()} ${release()} ${process.arch}`,
    };
  } finally {
    client.close();
  }
}

function selected(scenario: Scenario, only: readonly string[] | undefined): boolean {
  if (only === undefined) return !OPT_IN.includes(scenario.group);
  return only.includes(scenario.group) || only.includes(scenario.name);
}

async function main(): Promise<number> {
  let flags: Flags | undefined;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    // parseArgs throws TypeErrors for unknown flags and missing values: usage errors as well.
    throw error instanceof UsageError ? error : new UsageError((error as Error).message);
  }
  if (!flags) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) {
    process.stderr.write('bench: dist/ is missing; run `npm run build` first (`npm run bench` does it)\n');
    return 1;
  }
  const { runs, sizes, quick, only } = flags;
  const progress = (line: string): void => {
    process.stderr.write(`bench: ${line}\n`);
  };

  const children = new Children();
  const groups: ScenarioGroup[] = [];
  let server: BeanstalkdServer | undefined;
  const tmpDir = await mkdtemp(join(tmpdir(), 'bsworker-bench-'));
  // Ctrl-C or a kill must not leave workers or the server behind: stop them, then exit.
  const interrupted = (signal: NodeJS.Signals): void => {
    progress(`${signal}: stopping every child`);
    void Promise.allSettled([children.stopAll(1_000), server?.stop('SIGKILL')]).finally(() => {
      rmSync(tmpDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    server = await startBeanstalkd();
    const ctx: BenchContext = { port: server.port, url: server.url, sizes, tmpDir, children, progress };
    const machine = await machineInfo(server.port);
    progress(`beanstalkd ${machine.beanstalkd} on ${server.url}; ${quick ? 'quick' : 'full'} run, ${runs} run(s) per scenario`);

    // One at a time, so that the groups made before a failing one are still closed.
    for (const makeGroup of [
      rawGroup,
      producerGroup,
      drainGroup,
      latencyGroup,
      peersGroup,
      sizesGroup,
      drainCurveGroup,
      producersGroup,
      flowsGroup,
    ])
      groups.push(await makeGroup(ctx));
    const all = groups.flatMap((group) => group.scenarios);
    const unknown = only?.filter((name) => !all.some((scenario) => scenario.name === name || scenario.group === name)) ?? [];
    if (unknown.length > 0) {
      throw new UsageError(
        `--only: unknown ${unknown.map((name) => `\`${name}\``).join(', ')}; expected groups (${GROUPS.join(', ')}) or scenarios (${all.map((scenario) => scenario.name).join(', ')})`,
      );
    }
    const scenarios = all.filter((scenario) => selected(scenario, only));

    const started = performance.now();
    for (const scenario of scenarios) {
      if (!scenario.warmup) continue;
      progress(`${scenario.name}: warm-up`);
      await scenario.warmup();
    }
    const samples = new Map<string, Sample[]>();
    const steps = planSteps(scenarios);
    for (let round = 1; round <= runs; round += 1) {
      for (const planned of steps) {
        // A pair swaps its order every other round: whichever runs second (a warmer server, a busier
        // machine) is not always the same one.
        const step: Step = planned.length === 2 && round % 2 === 0 ? [planned[1], planned[0]] : planned;
        const results = await runStep(step);
        for (const [index, scenario] of step.entries()) {
          const result = results[index] as Sample;
          samples.set(scenario.name, [...(samples.get(scenario.name) ?? []), result]);
          progress(`${scenario.name} run ${round}/${runs}: ${Math.round(result.jobsPerSecond).toLocaleString('en-US')} jobs/s`);
        }
      }
    }
    progress(`measured in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const results = summarise(scenarios, samples);
    const targets = evaluateTargets(results);
    process.stdout.write(`${formatTable(results, targets, runs)}\n`);

    const date = new Date();
    await mkdir(flags.out, { recursive: true });
    const json = buildJson({ machine, date, quick, runs, sizes, results, targets });
    const jsonPath = join(flags.out, 'latest.json');
    const svgPath = join(flags.out, 'throughput.svg');
    await writeFile(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    const subtitle = `${date.toISOString().slice(0, 10)}, ${machine.cpus} x ${machine.model}, Node ${machine.node}, beanstalkd ${machine.beanstalkd}${quick ? ' (--quick)' : ''}`;
    await writeFile(svgPath, renderChart(results, { subtitle }));
    process.stdout.write(`\nWrote ${jsonPath} and ${svgPath}\n`);
    return 0;
  } finally {
    // Each step on its own: a failure in one must not leave the others undone.
    for (const group of groups)
      await group.close().catch((error: unknown) => progress(`closing a scenario group failed: ${String(error)}`));
    await children.stopAll().catch((error: unknown) => progress(`stopping children failed: ${String(error)}`));
    await server?.stop().catch((error: unknown) => progress(`stopping beanstalkd failed: ${String(error)}`));
    await rm(tmpDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
