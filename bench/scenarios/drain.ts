/**
 * Worker drains: the real `bsworker` CLI over bench/jobs/ (a no-op task), at concurrency 1, 4, 16 and
 * 64, and with `--processes 2`, at the default log level with stdout in a log file. The c=64 drain also
 * samples the worker's RSS (the memory figure). The c=16 drain is measured again with `--metrics-port`,
 * right after the plain one in every round: the cost of the metrics is their ratio.
 */
import { join } from 'node:path';
import { startBeanstalkd } from '../../test/helpers/beanstalkd.js';
import { childEnv } from '../children.js';
import { type BenchContext, freshTube, REPO, type Scenario, type ScenarioGroup } from '../context.js';
import { measureDrain } from '../measure-drain.js';
import { envelopeBody } from '../payload.js';
import { RAW } from './raw.js';

/** The concurrencies of the single-process drains, the chart's x axis. */
export const CONCURRENCIES = [1, 4, 16, 64] as const;
/** Concurrency per process of the `--processes 2` drain. */
export const P2_CONCURRENCY = 16;
/** Concurrency of the drain measured with and without `--metrics-port`. */
export const METRICS_CONCURRENCY = 16;

/** Scenario names other groups and the report refer to. */
export const DRAIN = Object.freeze({
  single: (concurrency: number) => `worker-drain-c${concurrency}`,
  twoProcesses: `worker-drain-p2-c${P2_CONCURRENCY}`,
  /** The c=16 drain with `--metrics-port 0`. */
  withMetrics: `worker-drain-c${METRICS_CONCURRENCY}-metrics`,
  /** The c=16 drain of one worker over three servers (this one and two more), the jobs split evenly. */
  threeServers: `worker-drain-3servers-c${METRICS_CONCURRENCY}`,
});

const BIN = join(REPO, 'bin', 'bsworker');
const JOBS_DIR = join(REPO, 'bench', 'jobs');

/** The drain scenarios; each run starts its own worker on a fresh tube. */
export function drainGroup(ctx: BenchContext): ScenarioGroup {
  const drain =
    (concurrency: number, processes: number, sampleRss: boolean, jobs: number, metrics = false, extraServers = 0) =>
    async () => {
      const tube = freshTube(`drain-p${processes}-c${concurrency}${metrics ? '-m' : ''}${extraServers > 0 ? '-s' : ''}`);
      // More servers for this run only, stopped after it (they cost ~50 ms to start).
      const extra = await Promise.all(Array.from({ length: extraServers }, () => startBeanstalkd()));
      const urls = [ctx.url, ...extra.map((server) => server.url)].join(',');
      const args = [BIN, '--tubes', tube, '--jobs', JOBS_DIR, '--url', urls, '--concurrency', String(concurrency)];
      if (processes > 1) args.push('--processes', String(processes));
      // Port 0: a free port on 127.0.0.1. Nothing scrapes during the drain (a scrape costs at scrape
      // time, once per interval, not per job): what is measured is the per-job cost of counting.
      if (metrics) args.push('--metrics-port', '0');
      try {
        return await measureDrain(ctx, {
          command: process.execPath,
          args,
          cwd: REPO,
          env: childEnv({ BSWORKER_BENCH_TUBE: tube }),
          tube,
          body: envelopeBody(tube),
          jobs,
          // One waiting reserve per worker process (the engine waits once per server, not once per slot).
          waiting: processes,
          logFile: join(ctx.tmpDir, `${tube}.log`),
          sampleRss,
          expectCleanExit: true,
          ports: [ctx.port, ...extra.map((server) => server.port)],
        });
      } finally {
        await Promise.all(extra.map((server) => server.stop()));
      }
    };
  const { jobs, singleWorkerJobs } = ctx.sizes;
  const scenarios: Scenario[] = CONCURRENCIES.map((concurrency) => ({
    name: DRAIN.single(concurrency),
    group: 'drain',
    label: `bsworker drain, -c ${concurrency}${concurrency === 64 ? ' (+ max RSS)' : ''}`,
    baseline: RAW.reserveDelete,
    ...(concurrency === 1 ? { note: `${singleWorkerJobs.toLocaleString('en-US')} jobs per run` } : {}),
    run: drain(concurrency, 1, concurrency === 64, concurrency === 1 ? singleWorkerJobs : jobs),
  }));
  scenarios.push({
    name: DRAIN.twoProcesses,
    group: 'drain',
    label: `bsworker drain, --processes 2 -c ${P2_CONCURRENCY} (${2 * P2_CONCURRENCY} slots)`,
    baseline: RAW.reserveDelete,
    run: drain(P2_CONCURRENCY, 2, false, jobs),
  });
  scenarios.push({
    name: DRAIN.withMetrics,
    group: 'drain',
    label: `bsworker drain, -c ${METRICS_CONCURRENCY} --metrics-port 0`,
    baseline: DRAIN.single(METRICS_CONCURRENCY),
    measuredWith: DRAIN.single(METRICS_CONCURRENCY),
    run: drain(METRICS_CONCURRENCY, 1, false, jobs, true),
  });
  scenarios.push({
    name: DRAIN.threeServers,
    group: 'drain',
    label: `bsworker drain over three servers, -c ${METRICS_CONCURRENCY}`,
    baseline: DRAIN.single(METRICS_CONCURRENCY),
    measuredWith: DRAIN.single(METRICS_CONCURRENCY),
    run: drain(METRICS_CONCURRENCY, 1, false, jobs, false, 2),
  });
  return { scenarios, close: async () => undefined };
}
