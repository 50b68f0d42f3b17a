/** The types every scenario shares: what a run gives a scenario, and what a scenario gives back. */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Children } from './children.js';

/** The repository root (bench/ is one level down). */
export const REPO = fileURLToPath(new URL('../', import.meta.url));

/** How many jobs each kind of scenario moves. */
export interface Sizes {
  /** Pipelined puts, puts in flight, putMany, pipelined reserve+delete, worker drains at c >= 4. */
  readonly jobs: number;
  /** One put at a time (raw and bsworker): about 13k/s, so fewer. */
  readonly oneAtATimeJobs: number;
  /** The connection-per-put producer: about 2.6k/s. */
  readonly naiveJobs: number;
  /** Drains by one-job-at-a-time workers: bsworker at c=1 and fivebeans' worker. */
  readonly singleWorkerJobs: number;
  /** put -> start samples per latency run. */
  readonly latencySamples: number;
}

/** What a run hands each scenario. */
export interface BenchContext {
  /** The private beanstalkd's port on 127.0.0.1. */
  readonly port: number;
  /** `127.0.0.1:<port>`, for `--url` and JobQueue/Worker options. */
  readonly url: string;
  readonly sizes: Sizes;
  /** A temporary directory for log files, removed at the end of the run. */
  readonly tmpDir: string;
  /** Every child process the bench starts, so that all of them are stopped whatever happens. */
  readonly children: Children;
  /** Progress lines, on stderr (stdout carries the table). */
  progress(line: string): void;
}

/**
 * One measurement. `jobsPerSecond` is the headline figure; scenarios add their own (latency
 * percentiles, RSS, log lines), all numbers so that medians across runs can be taken field by field.
 */
export interface Sample {
  readonly jobs: number;
  readonly seconds: number;
  readonly jobsPerSecond: number;
  readonly [figure: string]: number;
}

/** The scenario groups, which `--only` also accepts. */
export type Group =
  | 'raw'
  | 'producer'
  | 'drain'
  | 'latency'
  | 'peers'
  | 'sizes'
  | 'drain-sizes'
  | 'drain-backlog'
  | 'drain-tubes'
  | 'producers'
  | 'flows';

/**
 * A piece of a run: scenarios whose figure depends on round trips (one put at a time, latency) are
 * measured in {@link PARTS_PER_RUN} parts that alternate with their baseline's parts, so that both
 * see the same machine. On this VM a round trip flips between ~15 us and ~80 us from one minute to
 * the next, with the host's load: measured minutes apart, raw and bsworker would not be comparable.
 */
export interface Part {
  readonly jobs: number;
  readonly elapsedMs: number;
  /** One entry per job, for latency scenarios: percentiles are taken over all parts' samples. */
  readonly latenciesMs?: readonly number[];
}

/** How many parts make one run of a scenario measured in parts. */
export const PARTS_PER_RUN = 10;

/** What every scenario has. */
interface ScenarioInfo {
  /** The key in the JSON and in `--only`. */
  readonly name: string;
  readonly group: Group;
  /** What the table calls it. */
  readonly label: string;
  /** The scenario whose jobs/s this one is divided by (itself for the raw limits). */
  readonly baseline: string;
  /**
   * Measured next to this scenario in every round (part by part when both are measured in parts), so
   * that their ratio compares like with like on a noisy machine.
   */
  readonly measuredWith?: string;
  /** Anything the reader should know about the figure (smaller sizes, what jobs/s means here). */
  readonly note?: string;
  /** Untimed, once before the first run: opens connections and warms the JIT for in-process scenarios. */
  warmup?(): Promise<void>;
}

/** One figure of the table, measured `runs` times: whole, or in parts. */
export type Scenario = ScenarioInfo &
  (
    | { /** One timed run. */ run(): Promise<Sample>; readonly part?: undefined }
    | { /** One of the {@link PARTS_PER_RUN} parts of a timed run. */ part(): Promise<Part>; readonly run?: undefined }
  );

/** A group's scenarios plus what they share (connections, queues) and must close at the end. */
export interface ScenarioGroup {
  readonly scenarios: readonly Scenario[];
  close(): Promise<void>;
}

/** A fresh tube name: every run gets empty tubes, and nothing a previous run left can leak in. */
export function freshTube(prefix: string): string {
  return `bench-${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Builds a Sample from a count and a duration in milliseconds. */
export function sample(jobs: number, elapsedMs: number, extra: Record<string, number> = {}): Sample {
  const seconds = elapsedMs / 1000;
  return { ...extra, jobs, seconds, jobsPerSecond: jobs / seconds };
}
