/**
 * `npm run soak [-- --minutes N] [--seed S] [--quick] [--out FILE] [--keep]`: the chaos soak.
 *
 * Starts a private beanstalkd (127.0.0.1, free port, binlog in a temp dir), three bsworker CLIs of
 * different shapes and two producers (~500 jobs/s in all), and for N minutes kills, stops and restarts
 * workers and beanstalkd at random. Then it stops the chaos and the producers, lets the workers drain,
 * empties every tube and counts what happened to each accepted job. Exit 1 if any was lost, 2 on a
 * usage error. Every child is killed by pid at the end, whatever happens.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RawClient } from '../test/helpers/raw-client.js';
import { Chaos, type ChaosTiming, DEFAULT_TIMING } from './chaos.js';
import { Server, WorkerCli } from './cluster.js';
import { count, readRecords } from './count.js';
import { drainTube } from './drain.js';
import { Monitor, readTubeCounts, runLogBytes } from './monitor.js';
import { type Proc, Processes, sleep } from './procs.js';
import { formatSummary, type Summary } from './report.js';
import { DEAD_LETTER_TUBE, ENV, type PutRecord, type RunRecord, seededRandom, WORK_TUBES } from './shared.js';

const REPO = fileURLToPath(new URL('../', import.meta.url));
/** Jobs per second over both producers: what this 2-core machine sustains next to other work. */
const TARGET_RATE = 500;
/**
 * `--quick`: about 35 s in all, with actions every 2-4 s so that a short run still sees several, the
 * first of them a SIGKILL of beanstalkd.
 */
const QUICK = {
  loadMs: 20_000,
  drainBoundMs: 15_000,
  timing: { minPauseMs: 2_000, maxPauseMs: 4_000, minStopMs: 1_000, maxStopMs: 3_000 },
};
const DRAIN_BOUND_MS = 90_000;
/** The workers load tsx and the jobs directory before their first job. */
const FIRST_RUN_TIMEOUT_MS = 30_000;
const PRODUCER_STOP_MS = 30_000;

class UsageError extends Error {}

const USAGE = `Usage: npm run soak -- [--minutes N] [--seed S] [--quick] [--out FILE] [--keep]

  --minutes N   minutes of load and chaos (default 5)
  --seed S      seed for the chaos schedule and the task failures (default: random)
  --quick       about 35 s in all, for a test
  --out FILE    the JSON summary (default soak/results/latest.json)
  --keep        keep the temp dir (logs, run records, binlog) even on success
`;

interface Flags {
  readonly minutes: number;
  readonly seed: number;
  readonly quick: boolean;
  readonly out: string;
  readonly keep: boolean;
}

function parseFlags(argv: readonly string[]): Flags | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      minutes: { type: 'string' },
      seed: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: join(REPO, 'soak', 'results', 'latest.json') },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const minutes = values.minutes === undefined ? 5 : Number(values.minutes);
  if (!(Number.isFinite(minutes) && minutes > 0 && minutes <= 24 * 60)) {
    throw new UsageError(`Expected --minutes to be a number above 0 and at most 1440, got \`${values.minutes}\``);
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!(Number.isSafeInteger(seed) && seed >= 0))
    throw new UsageError(`Expected --seed to be a non-negative integer, got \`${values.seed}\``);
  return { minutes, seed, quick: values.quick === true, out: values.out as string, keep: values.keep === true };
}

/** The environment of every child: the soak's own Node and bsworker settings must not leak into it. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'BEANSTALKD_URL', 'LOG_LEVEL', 'BSWORKER_INLINE']) delete env[name];
  return { ...env, ...extra };
}

function log(startedAt: number, message: string): void {
  process.stderr.write(`[soak ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

/** Waits until the run logs grow (a worker ran a job) or the bound passes. */
async function firstRun(runsDir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (runLogBytes(runsDir) > 0) return true;
    await sleep(100);
  }
  return false;
}

/** Waits until the work tubes hold no job, or the bound passes; true when they are empty. */
async function drainWorkTubes(port: number, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    let client: RawClient | undefined;
    try {
      client = await RawClient.connect(port);
      const c = await readTubeCounts(client);
      if (c.ready + c.reserved + c.delayed + c.buried === 0) return true;
    } catch {
      // beanstalkd is back by now; a failed sample is tried again.
    } finally {
      client?.close();
    }
    await sleep(250);
  }
  return false;
}

async function soak(flags: Flags, processes: Processes): Promise<Summary> {
  const startedAt = Date.now();
  const timing: ChaosTiming = flags.quick ? QUICK.timing : DEFAULT_TIMING;
  const loadMs = flags.quick ? QUICK.loadMs : Math.round(flags.minutes * 60_000);
  const drainBoundMs = flags.quick ? QUICK.drainBoundMs : DRAIN_BOUND_MS;
  const work = mkdtempSync(join(tmpdir(), 'bsworker-soak-'));
  const runsDir = join(work, 'runs');
  const putsDir = join(work, 'puts');
  const logDir = join(work, 'logs');
  for (const dir of [runsDir, putsDir, logDir, join(work, 'binlog')]) mkdirSync(dir);
  log(startedAt, `seed ${flags.seed}; temp dir ${work}`);

  let keep = flags.keep;
  const server = new Server(join(work, 'binlog'));
  try {
    await server.start();
    log(startedAt, `beanstalkd pid ${server.pid} on ${server.url}, binlog ${server.binlogDir}`);
    const env = childEnv({ [ENV.runsDir]: runsDir, [ENV.seed]: String(flags.seed) });
    const context = { repo: REPO, server, env, logDir };
    const workers = [
      new WorkerCli('c1', ['-c', '1'], processes, context),
      new WorkerCli('c8', ['-c', '8'], processes, context),
      new WorkerCli('p2c4', ['--processes', '2', '-c', '4'], processes, context),
    ];
    for (const worker of workers) worker.start();

    const producers: Proc[] = [0, 1].map((index) =>
      processes.spawn(process.execPath, ['--import', 'tsx', join(REPO, 'soak', 'producer.ts')], {
        cwd: REPO,
        env: childEnv({
          [ENV.seed]: String(flags.seed),
          [ENV.producerIndex]: String(index),
          [ENV.producerRate]: String(TARGET_RATE / 2),
          [ENV.producerOut]: join(putsDir, `puts-${index}.jsonl`),
          BEANSTALKD_URL: server.url,
          LOG_LEVEL: 'warn',
        }),
        logFile: join(logDir, `producer-${index}.log`),
      }),
    );
    if (!(await firstRun(runsDir, FIRST_RUN_TIMEOUT_MS))) throw new Error(`no job ran within ${FIRST_RUN_TIMEOUT_MS} ms; see ${logDir}`);
    const loadStartedAt = Date.now();
    log(startedAt, `workers are running jobs; ${(loadMs / 1000).toFixed(0)} s of load and chaos`);

    const first = flags.quick ? ({ victim: 'beanstalkd', action: 'kill' } as const) : undefined;
    const chaos = new Chaos(server, workers, workers[2], seededRandom(flags.seed), timing, startedAt, first);
    const monitor = new Monitor(server, chaos, processes, () => workers[2]?.pid, runsDir, startedAt);
    chaos.start();
    monitor.start();
    const progress = setInterval(() => {
      const last = chaos.events.at(-1);
      log(startedAt, `${chaos.events.length} chaos actions${last ? `, last: ${last.action} ${last.victim}` : ''}`);
    }, 30_000);
    await sleep(loadMs);
    clearInterval(progress);
    await chaos.stop();
    log(startedAt, `chaos stopped after ${chaos.events.length} actions; stopping the producers`);
    if (server.pid === undefined) await server.start();

    await Promise.all(producers.map((producer) => processes.stop(producer, PRODUCER_STOP_MS)));
    const actualLoadMs = Date.now() - loadStartedAt;
    const drainStarted = Date.now();
    const drained = await drainWorkTubes(server.port, drainBoundMs);
    const drainMs = Date.now() - drainStarted;
    await monitor.stop();
    log(
      startedAt,
      `work tubes ${drained ? 'drained' : 'not drained within the bound'} in ${(drainMs / 1000).toFixed(1)} s; stopping the workers`,
    );
    await Promise.all(workers.map((worker) => worker.shutdown()));

    const leftOver: number[] = [];
    for (const tube of WORK_TUBES) leftOver.push(...(await drainTube(server.port, tube)).ids);
    const deadLetters = await drainTube(server.port, DEAD_LETTER_TUBE);
    await server.stop('SIGTERM');

    const puts = readRecords<PutRecord>(putsDir, 'puts-');
    const runs = readRecords<RunRecord>(runsDir, 'runs-');
    const counts = count({
      puts,
      runs,
      deadLettered: deadLetters.ids,
      leftOver,
    });
    const byAction: Record<string, number> = {};
    for (const event of chaos.events) {
      const key = `${event.action} ${event.victim}`;
      byAction[key] = (byAction[key] ?? 0) + 1;
    }
    const lastActionBefore = (at: number): string => {
      const last = chaos.events.findLast((event) => startedAt + event.atMs <= at);
      return last === undefined ? 'none' : `${last.action} ${last.victim}`;
    };
    const putErrorsAfter: Record<string, number> = {};
    for (const record of puts) {
      if (record.outcome === 'accepted') continue;
      const key = lastActionBefore(record.at);
      putErrorsAfter[key] = (putErrorsAfter[key] ?? 0) + 1;
    }
    // A duplicate is caused by what happened between its first success and its second: the last action
    // begun before the second success.
    const firstSuccess = new Map<number, number>();
    const duplicatesAfter: Record<string, number> = {};
    for (const run of [...runs].filter((r) => r.ok).sort((a, b) => a.at - b.at)) {
      if (!firstSuccess.has(run.id)) {
        firstSuccess.set(run.id, run.at);
        continue;
      }
      const key = lastActionBefore(run.at);
      duplicatesAfter[key] = (duplicatesAfter[key] ?? 0) + 1;
    }
    const verdict = counts.lost > 0 ? 'fail' : 'pass';
    if (verdict === 'fail') keep = true;
    return {
      verdict,
      seed: flags.seed,
      quick: flags.quick,
      minutes: flags.quick ? loadMs / 60_000 : flags.minutes,
      startedAt: new Date(startedAt).toISOString(),
      durationMs: Date.now() - startedAt,
      loadMs: actualLoadMs,
      targetJobsPerSecond: TARGET_RATE,
      drain: { ms: drainMs, complete: drained },
      counts,
      putErrorsAfter,
      duplicatesAfter,
      chaos: {
        actions: chaos.events.length,
        byAction,
        failed: chaos.events.filter((e) => e.error !== undefined).length,
        events: chaos.events,
      },
      workers: workers.map((w) => ({
        name: w.name,
        shape: w.shape.join(' '),
        starts: w.starts,
        unexpectedExits: w.unexpectedExits.length,
      })),
      beanstalkdStarts: server.starts,
      stall: monitor.longest,
      monitor: { samples: monitor.samples, missedSamples: monitor.missedSamples, maxReady: monitor.maxReady },
      machine: { node: process.version, cpus: cpus().length },
    };
  } catch (error) {
    keep = true;
    throw error;
  } finally {
    processes.killAll();
    await server.stop('SIGKILL').catch(() => undefined);
    if (keep) log(startedAt, `kept ${work} (logs/, runs/, puts/, binlog/)`);
    else rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let flags: Flags | undefined;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`soak: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (flags === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const processes = new Processes();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      processes.killAll();
      process.exit(130);
    });
  }
  try {
    const summary = await soak(flags, processes);
    mkdirSync(dirname(flags.out), { recursive: true });
    writeFileSync(flags.out, `${JSON.stringify(summary, null, 2)}\n`);
    process.stdout.write(`${formatSummary(summary)}\nsummary: ${flags.out}\n`);
    process.exitCode = summary.verdict === 'pass' ? 0 : 1;
  } catch (error) {
    processes.killAll();
    process.stderr.write(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}

await main();
