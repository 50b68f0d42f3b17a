/**
 * The soak's verdict, from the records alone: what the producers say was accepted, what the tasks say
 * ran, and what the end found in the dead-letter tube and left in the work tubes.
 *
 * - accepted: puts that resolved with a job id;
 * - ran: accepted ids with at least one successful run;
 * - dead-lettered: accepted ids found in the dead-letter tube;
 * - left in a tube: accepted ids still in a work tube after the drain (not lost, but not done);
 * - duplicates: ids with more than one successful run (at-least-once delivery made visible);
 * - lost: accepted ids that did none of the above. The soak fails when there is any.
 *
 * An id whose put had an unknown outcome is expected to either run or not: it is counted under
 * "unknown outcome", as ran or not, and never as lost or as a duplicate of its put.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobKind, PutRecord, RunRecord } from './shared.js';

/** Everything the counter reads. */
export interface Inputs {
  readonly puts: readonly PutRecord[];
  readonly runs: readonly RunRecord[];
  readonly deadLettered: readonly number[];
  readonly leftOver: readonly number[];
}

/** The counts the summary reports. */
export interface Counts {
  readonly attempted: number;
  readonly accepted: number;
  readonly acceptedByKind: Record<JobKind, number>;
  readonly rejected: number;
  readonly unknownOutcome: number;
  readonly unknownThatRan: number;
  /** Put errors by class and outcome, e.g. `{ "ConnectionError (unknown)": 12 }`. */
  readonly putErrors: Record<string, number>;
  readonly runs: number;
  readonly failedRuns: number;
  readonly ran: number;
  readonly deadLettered: number;
  /** Dead letters by kind: fast or flaky ones mean a job that could succeed was given up on. */
  readonly deadLetteredByKind: Record<JobKind, number>;
  /** Dead letters beyond the first of the same id. */
  readonly duplicateDeadLetters: number;
  readonly leftInTube: number;
  readonly duplicates: number;
  /** Successful runs beyond the first, over all duplicated ids. */
  readonly extraRuns: number;
  readonly lost: number;
  readonly lostIds: readonly number[];
  /** Ids that both succeeded and were dead-lettered (a failure after a success). */
  readonly ranAndDeadLettered: number;
  /** Poison jobs that were not dead-lettered (they can never succeed). */
  readonly poisonNotDeadLettered: number;
  /** Ids that ran or were dead-lettered although their producer recorded them as rejected. */
  readonly rejectedButStored: number;
  /** Ids that ran but no producer recorded at all (a producer killed mid-put would do this). */
  readonly unrecorded: number;
  /**
   * How many runs each dead-lettered poison job had before it was dead-lettered: `{ "4": 950, "3": 12 }`.
   * With one retry and `--max-kicks 2` the design gives 4 (run, retry, and one run per kick).
   */
  readonly poisonRunsBeforeDeadLetter: Record<string, number>;
  /**
   * Up to 10 dead-lettered poison jobs with fewer runs than the design's 4, each with its runs' times
   * (ms after its first run) and attempts: a second run sooner than the 1 s retry delay means a kick
   * moved the delayed job, spending a kick.
   */
  readonly shortPoison: readonly { readonly id: number; readonly runs: readonly { readonly ms: number; readonly attempt: number }[] }[];
}

/** Runs of a poison job by design: the run, its one retry, and one run per kick (`--max-kicks 2`). */
export const POISON_RUNS = 4;

/** Reads every `*.jsonl` file in `dir` as records of type T; a torn last line is skipped. */
export function readRecords<T>(dir: string, prefix: string): T[] {
  const records: T[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith('.jsonl')) continue;
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        records.push(JSON.parse(line) as T);
      } catch {
        // A process killed mid-write leaves at most one partial line.
      }
    }
  }
  return records;
}

function tally(ids: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Computes the {@link Counts}. */
export function count(inputs: Inputs): Counts {
  const outcome = new Map<number, PutRecord>();
  for (const put of inputs.puts) outcome.set(put.id, put);
  const successes = tally(inputs.runs.filter((run) => run.ok).map((run) => run.id));
  const everRan = new Set(inputs.runs.map((run) => run.id));
  const dead = tally(inputs.deadLettered);
  const left = new Set(inputs.leftOver);

  const acceptedByKind: Record<JobKind, number> = { fast: 0, flaky: 0, poison: 0 };
  const deadLetteredByKind: Record<JobKind, number> = { fast: 0, flaky: 0, poison: 0 };
  const putErrors: Record<string, number> = {};
  let accepted = 0;
  let rejected = 0;
  let unknownOutcome = 0;
  let unknownThatRan = 0;
  let ran = 0;
  let deadLettered = 0;
  let leftInTube = 0;
  let lost = 0;
  const lostIds: number[] = [];
  let ranAndDeadLettered = 0;
  let poisonNotDeadLettered = 0;
  let rejectedButStored = 0;

  for (const put of outcome.values()) {
    const succeeded = (successes.get(put.id) ?? 0) > 0;
    const isDead = dead.has(put.id);
    if (put.outcome !== 'accepted') {
      const key = `${put.error ?? 'unknown'} (${put.outcome})`;
      putErrors[key] = (putErrors[key] ?? 0) + 1;
    }
    if (put.outcome === 'rejected') {
      rejected += 1;
      if (everRan.has(put.id) || isDead || left.has(put.id)) rejectedButStored += 1;
      continue;
    }
    if (put.outcome === 'unknown') {
      unknownOutcome += 1;
      if (everRan.has(put.id) || isDead || left.has(put.id)) unknownThatRan += 1;
      continue;
    }
    accepted += 1;
    acceptedByKind[put.kind] += 1;
    if (succeeded) ran += 1;
    if (isDead) {
      deadLettered += 1;
      deadLetteredByKind[put.kind] += 1;
    }
    if (succeeded && isDead) ranAndDeadLettered += 1;
    if (put.kind === 'poison' && !isDead) poisonNotDeadLettered += 1;
    if (!succeeded && !isDead && left.has(put.id)) leftInTube += 1;
    if (!succeeded && !isDead && !left.has(put.id)) {
      lost += 1;
      if (lostIds.length < 50) lostIds.push(put.id);
    }
  }

  let duplicates = 0;
  let extraRuns = 0;
  for (const [, times] of successes) {
    if (times > 1) {
      duplicates += 1;
      extraRuns += times - 1;
    }
  }
  let duplicateDeadLetters = 0;
  for (const [, times] of dead) duplicateDeadLetters += times - 1;
  const runsOf = tally(inputs.runs.map((run) => run.id));
  const poisonRunsBeforeDeadLetter: Record<string, number> = {};
  const shortIds = new Set<number>();
  for (const put of outcome.values()) {
    if (put.kind !== 'poison' || !dead.has(put.id)) continue;
    const times = runsOf.get(put.id) ?? 0;
    poisonRunsBeforeDeadLetter[String(times)] = (poisonRunsBeforeDeadLetter[String(times)] ?? 0) + 1;
    if (times < POISON_RUNS && shortIds.size < 10) shortIds.add(put.id);
  }
  const shortPoison = [...shortIds].map((id) => {
    const runs = inputs.runs.filter((run) => run.id === id).sort((a, b) => a.at - b.at);
    const first = runs[0]?.at ?? 0;
    return { id, runs: runs.map((run) => ({ ms: run.at - first, attempt: run.attempt })) };
  });
  let unrecorded = 0;
  for (const id of new Set([...everRan, ...dead.keys()])) if (!outcome.has(id)) unrecorded += 1;

  return {
    attempted: outcome.size,
    accepted,
    acceptedByKind,
    rejected,
    unknownOutcome,
    unknownThatRan,
    putErrors,
    runs: inputs.runs.length,
    failedRuns: inputs.runs.filter((run) => !run.ok).length,
    ran,
    deadLettered,
    deadLetteredByKind,
    duplicateDeadLetters,
    leftInTube,
    duplicates,
    extraRuns,
    lost,
    lostIds,
    ranAndDeadLettered,
    poisonNotDeadLettered,
    rejectedButStored,
    unrecorded,
    poisonRunsBeforeDeadLetter,
    shortPoison,
  };
}
