/**
 * From samples to results: medians per scenario, ratios to the raw limits, the targets with pass/miss,
 * the text table and the JSON document.
 */
import type { Group, Sample, Scenario, Sizes } from './context.js';
import { DRAIN, METRICS_CONCURRENCY } from './scenarios/drain.js';
import { drainCurveTargets } from './scenarios/drain-curve.js';
import { LATENCY } from './scenarios/latency.js';
import { PEERS } from './scenarios/peers.js';
import { PRODUCER } from './scenarios/producer.js';
import { producersTargets } from './scenarios/producers.js';
import { RAW } from './scenarios/raw.js';
import { sizeDetails, sizeTargets } from './scenarios/sizes.js';
import { median } from './stats.js';

/** One scenario's outcome: the median of every figure across runs, and the runs themselves. */
export interface ScenarioResult {
  readonly name: string;
  readonly group: Group;
  readonly label: string;
  readonly baseline: string;
  readonly note: string | undefined;
  /** Median of each figure across runs (jobs, seconds, jobsPerSecond, p50Us, maxRssMb, ...). */
  readonly medians: Readonly<Record<string, number>>;
  /** Median jobs/s divided by the baseline's median jobs/s. */
  readonly ratioToBaseline: number | undefined;
  readonly samples: readonly Sample[];
}

/** One target of the issue: a figure, its value in this run, and whether it meets the target. */
export interface TargetResult {
  readonly figure: string;
  /** undefined when a scenario it needs was not run (`--only`). */
  readonly value: number | undefined;
  readonly target: string;
  readonly pass: boolean | undefined;
  /** How the value was computed, with the figures it came from. */
  readonly detail: string;
}

/** Medians per scenario and ratios to each scenario's baseline. */
export function summarise(scenarios: readonly Scenario[], samples: ReadonlyMap<string, Sample[]>): ScenarioResult[] {
  const medians = new Map<string, Record<string, number>>();
  for (const scenario of scenarios) {
    const runs = samples.get(scenario.name) ?? [];
    if (runs.length === 0) continue;
    const fields = new Set(runs.flatMap((run) => Object.keys(run)));
    medians.set(
      scenario.name,
      Object.fromEntries([...fields].map((field) => [field, median(runs.map((run) => run[field] ?? Number.NaN))])),
    );
  }
  return scenarios.map((scenario) => {
    const own = medians.get(scenario.name);
    const base = medians.get(scenario.baseline);
    return {
      name: scenario.name,
      group: scenario.group,
      label: scenario.label,
      baseline: scenario.baseline,
      note: scenario.note,
      medians: own ?? {},
      ratioToBaseline: own && base ? (own.jobsPerSecond as number) / (base.jobsPerSecond as number) : undefined,
      samples: samples.get(scenario.name) ?? [],
    };
  });
}

/** A figure against its target; `pass` is undefined when the figure was not measured. */
export function target(name: string, value: number | undefined, comparison: '>=' | '<=', limit: number, detail: string): TargetResult {
  return {
    figure: name,
    value,
    target: `${comparison} ${limit}`,
    pass: value === undefined ? undefined : comparison === '>=' ? value >= limit : value <= limit,
    detail,
  };
}

/** The targets, evaluated on this run's medians. */
export function evaluateTargets(results: readonly ScenarioResult[]): TargetResult[] {
  const figure = (name: string, field = 'jobsPerSecond'): number | undefined => results.find((r) => r.name === name)?.medians[field];
  const ratio = (top: number | undefined, bottom: number | undefined): number | undefined =>
    top === undefined || bottom === undefined ? undefined : top / bottom;
  const at = (name: string, field = 'jobsPerSecond'): string => {
    const value = figure(name, field);
    return `${name} ${value === undefined ? 'n/a' : formatNumber(value)}`;
  };
  const best = (names: readonly string[]): string | undefined => {
    let found: string | undefined;
    for (const name of names) {
      const value = figure(name);
      if (value !== undefined && (found === undefined || value > (figure(found) as number))) found = name;
    }
    return found;
  };

  const bestProducer = best([PRODUCER.inFlight, PRODUCER.putMany]) ?? PRODUCER.inFlight;
  const drains = [...[1, 4, 16, 64].map((c) => DRAIN.single(c)), DRAIN.twoProcesses];
  const bestDrain = best(drains) ?? DRAIN.single(64);
  return [
    target(
      'many put() in flight or putMany (best of the two) / raw pipelined put',
      ratio(figure(bestProducer), figure(RAW.putPipelined)),
      '>=',
      0.85,
      `${at(bestProducer)} / ${at(RAW.putPipelined)}`,
    ),
    target(
      'put() one at a time / raw one-at-a-time put',
      ratio(figure(PRODUCER.oneAtATime), figure(RAW.putOneAtATime)),
      '>=',
      0.9,
      `${at(PRODUCER.oneAtATime)} / ${at(RAW.putOneAtATime)}`,
    ),
    target(
      'worker drain, best configuration / raw pipelined reserve+delete',
      ratio(figure(bestDrain), figure(RAW.reserveDelete)),
      '>=',
      0.75,
      `${at(bestDrain)} / ${at(RAW.reserveDelete)}`,
    ),
    target(
      'worker drain at concurrency 64 / at concurrency 4 (throughput must not fall with concurrency)',
      ratio(figure(DRAIN.single(64)), figure(DRAIN.single(4))),
      '>=',
      0.95,
      `${at(DRAIN.single(64))} / ${at(DRAIN.single(4))}`,
    ),
    target(
      'worker CPU per job at concurrency 16, us (user + system of the worker process / jobs)',
      figure(DRAIN.single(16), 'cpuUsPerJob'),
      '<=',
      20,
      `${at(DRAIN.single(16), 'cpuUsPerJob')} us, read from /proc around the drain`,
    ),
    target(
      "worker drain at concurrency 1 / fivebeans' own worker",
      ratio(figure(DRAIN.single(1)), figure(PEERS.fivebeansWorker)),
      '>=',
      1.0,
      `${at(DRAIN.single(1))} / ${at(PEERS.fivebeansWorker)}`,
    ),
    target(
      'latency p50 / raw p50',
      ratio(figure(LATENCY.worker, 'p50Us'), figure(RAW.latency, 'p50Us')),
      '<=',
      1.3,
      `${at(LATENCY.worker, 'p50Us')} us / ${at(RAW.latency, 'p50Us')} us`,
    ),
    target(
      'latency p99 / raw p99',
      ratio(figure(LATENCY.worker, 'p99Us'), figure(RAW.latency, 'p99Us')),
      '<=',
      1.5,
      `${at(LATENCY.worker, 'p99Us')} us / ${at(RAW.latency, 'p99Us')} us`,
    ),
    target(
      'worker drain with --metrics-port / without (same concurrency, measured back to back)',
      ratio(figure(DRAIN.withMetrics), figure(DRAIN.single(METRICS_CONCURRENCY))),
      '>=',
      0.95,
      `${at(DRAIN.withMetrics)} / ${at(DRAIN.single(METRICS_CONCURRENCY))}`,
    ),
    target(
      'worker CPU per job with --metrics-port / without (the same drains)',
      ratio(figure(DRAIN.withMetrics, 'cpuUsPerJob'), figure(DRAIN.single(METRICS_CONCURRENCY), 'cpuUsPerJob')),
      '<=',
      1.05,
      `${at(DRAIN.withMetrics, 'cpuUsPerJob')} us / ${at(DRAIN.single(METRICS_CONCURRENCY), 'cpuUsPerJob')} us`,
    ),
    target(
      'worker drain over three servers / over one (-c 16; on 2 cores three cannot be faster)',
      ratio(figure(DRAIN.threeServers), figure(DRAIN.single(METRICS_CONCURRENCY))),
      '>=',
      0.8,
      `${at(DRAIN.threeServers)} / ${at(DRAIN.single(METRICS_CONCURRENCY))}`,
    ),
    target(
      'worker RSS at concurrency 64, MB (MiB)',
      figure(DRAIN.single(64), 'maxRssMb'),
      '<=',
      80,
      `max VmRSS of the bsworker process during the -c 64 drains (median of runs)`,
    ),
    target(
      'worker drain at concurrency 16 (cold): time to full speed, ms',
      figure(DRAIN.single(16), 'rampMs'),
      '<=',
      1000,
      'from the unpause to the first 100 ms window at 90% of the rate over the middle half of the jobs',
    ),
    ...sizeTargets(figure),
    ...drainCurveTargets(figure),
    ...producersTargets(figure),
  ];
}

/** 12345.6 -> "12,346"; small values keep two decimals. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

/** A count: always a whole number. */
function formatCount(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/** The figures worth a column of their own, after jobs/s and the ratio. */
function details(result: ScenarioResult): string {
  const m = result.medians;
  const parts: string[] = [];
  if (m.p50Us !== undefined)
    parts.push(
      `p50 ${formatNumber(m.p50Us)} us, p90 ${formatNumber(m.p90Us ?? Number.NaN)} us, p99 ${formatNumber(m.p99Us ?? Number.NaN)} us`,
    );
  if (m.maxRssMb !== undefined)
    parts.push(`max RSS ${m.maxRssMb.toFixed(1)} MB (idle before the drain ${m.idleRssMb?.toFixed(1) ?? 'n/a'} MB)`);
  if (m.cpuUsPerJob !== undefined) parts.push(`${formatNumber(m.cpuUsPerJob)} us CPU per job`);
  if (m.callerCpuUsPerJob !== undefined) parts.push(`caller ${formatNumber(m.callerCpuUsPerJob)} us CPU per job`);
  if (m.coldJobsPerSecond !== undefined)
    parts.push(`cold batch ${formatNumber(m.coldJobsPerSecond)} jobs/s (full speed after ${formatNumber(m.coldRampMs ?? Number.NaN)} ms)`);
  if (m.rampMs !== undefined) parts.push(`full speed after ${formatNumber(m.rampMs)} ms`);
  if (m.startupMs !== undefined) parts.push(`start-up ${formatNumber(m.startupMs)} ms`);
  if (m.logLines !== undefined)
    parts.push(`${formatCount(m.logLines)} log lines (${formatCount(m.completedLines ?? Number.NaN)} "job completed")`);
  parts.push(...sizeDetails(m));
  if (result.note) parts.push(result.note);
  return parts.join('; ');
}

/** Pads cells into aligned columns; numbers right-aligned. */
function columns(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The table printed at the end of a run. */
export function formatTable(results: readonly ScenarioResult[], targets: readonly TargetResult[], runs: number): string {
  const rows: string[][] = [['scenario', 'jobs', 'jobs/s', 'ratio', 'to', 'details']];
  for (const result of results) {
    if (result.samples.length === 0) continue;
    const m = result.medians;
    rows.push([
      result.label,
      formatCount(m.jobs ?? Number.NaN),
      formatNumber(m.jobsPerSecond ?? Number.NaN),
      result.ratioToBaseline === undefined ? 'n/a' : result.ratioToBaseline.toFixed(2),
      result.baseline === result.name ? '(itself)' : result.baseline,
      details(result),
    ]);
  }
  const targetRows: string[][] = [['target', 'value', 'target', 'result', 'from']];
  for (const t of targets) {
    targetRows.push([
      t.figure,
      t.value === undefined ? 'n/a' : formatNumber(t.value),
      t.target,
      t.pass === undefined ? 'n/a' : t.pass ? 'pass' : 'MISS',
      t.detail,
    ]);
  }
  return [
    `Medians of ${runs} run(s) per scenario; ratios divide median jobs/s by the baseline's, measured in the same run.`,
    '',
    columns(rows, new Set([1, 2, 3])),
    '',
    columns(targetRows, new Set([1])),
  ].join('\n');
}

/** Everything about the machine that the figures depend on. */
export interface MachineInfo {
  readonly cpus: number;
  readonly model: string;
  readonly node: string;
  readonly beanstalkd: string;
  readonly os: string;
}

/** The JSON document written to `<out>/latest.json`. */
export function buildJson(options: {
  machine: MachineInfo;
  date: Date;
  quick: boolean;
  runs: number;
  sizes: Sizes;
  results: readonly ScenarioResult[];
  targets: readonly TargetResult[];
}): unknown {
  const scenarios: Record<string, unknown> = {};
  for (const r of options.results) {
    if (r.samples.length === 0) continue;
    scenarios[r.name] = {
      label: r.label,
      group: r.group,
      note: r.note,
      ...r.medians,
      baseline: r.baseline,
      ratioToBaseline: r.ratioToBaseline,
      samples: r.samples,
    };
  }
  return {
    machine: options.machine,
    date: options.date.toISOString(),
    quick: options.quick,
    runs: options.runs,
    sizes: options.sizes,
    scenarios,
    ratios: options.targets.map((t) => ({
      figure: t.figure,
      value: t.value ?? null,
      target: t.target,
      pass: t.pass ?? null,
      detail: t.detail,
    })),
  };
}
