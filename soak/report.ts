/** The soak's summary: one JSON document, and the same facts as readable text. */
import type { ChaosEvent } from './chaos.js';
import type { Counts } from './count.js';
import type { Stall } from './monitor.js';

/** Everything the soak reports; written as JSON and printed by {@link formatSummary}. */
export interface Summary {
  readonly verdict: 'pass' | 'fail';
  readonly seed: number;
  readonly quick: boolean;
  readonly minutes: number;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly loadMs: number;
  readonly targetJobsPerSecond: number;
  readonly drain: { readonly ms: number; readonly complete: boolean };
  readonly counts: Counts;
  /** Rejected and unknown puts by the chaos action that began last before them (`none` before the first). */
  readonly putErrorsAfter: Record<string, number>;
  /** Extra successful runs by the chaos action that began last before them. */
  readonly duplicatesAfter: Record<string, number>;
  readonly chaos: {
    readonly actions: number;
    readonly byAction: Record<string, number>;
    readonly failed: number;
    readonly events: readonly ChaosEvent[];
  };
  readonly workers: readonly { readonly name: string; readonly shape: string; readonly starts: number; readonly unexpectedExits: number }[];
  readonly beanstalkdStarts: number;
  readonly stall: Stall;
  readonly monitor: { readonly samples: number; readonly missedSamples: number; readonly maxReady: number };
  readonly machine: { readonly node: string; readonly cpus: number };
}

const n = (value: number): string => value.toLocaleString('en-US');
/** A share with three decimals: a few duplicates in 150,000 jobs must not print as 0.00%. */
const pct = (part: number, whole: number): string => (whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(3)}%`);

/** The summary as text, one fact a line. */
export function formatSummary(s: Summary): string {
  const c = s.counts;
  const errors = Object.entries(c.putErrors)
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `${name} ${n(count)}`);
  const actions = Object.entries(s.chaos.byAction)
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `${name} x${count}`);
  const byCount = (record: Record<string, number>): string[] =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .map(([name, count]) => `${name} ${n(count)}`);
  const after = byCount(s.putErrorsAfter);
  const duplicatesAfter = byCount(s.duplicatesAfter);
  const poison = Object.entries(c.poisonRunsBeforeDeadLetter)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([runs, count]) => `${runs} runs: ${n(count)}`);
  const lines = [
    `bsworker chaos soak: ${s.verdict === 'pass' ? 'PASS' : 'FAIL'} (seed ${s.seed}, ${s.quick ? 'quick' : `${s.minutes} min`}, ${(s.durationMs / 1000).toFixed(0)} s in all)`,
    `load          ${(s.loadMs / 1000).toFixed(0)} s at a target of ${n(s.targetJobsPerSecond)} jobs/s from 2 producers; ${n(Math.round(c.attempted / (s.loadMs / 1000)))} puts/s attempted`,
    `puts          ${n(c.attempted)} attempted: ${n(c.accepted)} accepted (fast ${n(c.acceptedByKind.fast)}, flaky ${n(c.acceptedByKind.flaky)}, poison ${n(c.acceptedByKind.poison)}), ${n(c.rejected)} rejected, ${n(c.unknownOutcome)} unknown outcome (${n(c.unknownThatRan)} of them stored)`,
    `put errors    ${errors.length === 0 ? 'none' : errors.join(', ')}`,
    `  after       ${after.length === 0 ? '-' : after.join(', ')}`,
    `runs          ${n(c.runs)} task runs, ${n(c.failedRuns)} failed (flaky and poison, by design)`,
    `ran           ${n(c.ran)} accepted jobs succeeded`,
    `dead-lettered ${n(c.deadLettered)}: poison ${n(c.deadLetteredByKind.poison)}, flaky ${n(c.deadLetteredByKind.flaky)}, fast ${n(c.deadLetteredByKind.fast)} (${n(c.poisonNotDeadLettered)} poison jobs not dead-lettered, ${n(c.duplicateDeadLetters)} duplicate dead letters, ${n(c.ranAndDeadLettered)} both succeeded and dead-lettered)`,
    `poison runs   before the dead letter (design: 4): ${poison.length === 0 ? 'none' : poison.join(', ')}`,
    ...c.shortPoison
      .slice(0, 3)
      .map((p) => `  e.g. id ${p.id}: runs at ${p.runs.map((r) => `+${r.ms} ms (attempt ${r.attempt})`).join(', ')}`),
    `duplicates    ${n(c.duplicates)} jobs succeeded more than once (${pct(c.duplicates, c.accepted)} of accepted; ${n(c.extraRuns)} extra runs)`,
    `  after       ${duplicatesAfter.length === 0 ? '-' : duplicatesAfter.join(', ')}`,
    `left in tube  ${n(c.leftInTube)} after the drain (${s.drain.complete ? 'drained' : 'drain bound reached'} in ${(s.drain.ms / 1000).toFixed(1)} s)`,
    `lost          ${n(c.lost)}${c.lost > 0 ? ` (first ids: ${c.lostIds.slice(0, 10).join(', ')})` : ''}`,
    `oddities      ${n(c.rejectedButStored)} rejected puts stored anyway, ${n(c.unrecorded)} runs of ids no producer recorded`,
    `chaos         ${s.chaos.actions} actions (${actions.join(', ') || 'none'}), ${s.chaos.failed} failed; beanstalkd started ${s.beanstalkdStarts} times`,
    `workers       ${s.workers.map((w) => `${w.name} [${w.shape}] started ${w.starts}x, ${w.unexpectedExits} unexpected exits`).join('; ')}`,
    `longest stall ${(s.stall.ms / 1000).toFixed(2)} s with jobs ready, nothing run and no chaos action in effect${s.stall.after === undefined ? '' : ` (at ${(s.stall.endedAtMs / 1000).toFixed(0)} s, after: ${s.stall.after})`}`,
    `queue depth   at most ${n(s.monitor.maxReady)} ready; ${s.monitor.missedSamples} of ${s.monitor.samples} samples could not reach beanstalkd`,
  ];
  return lines.join('\n');
}
