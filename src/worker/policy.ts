/**
 * What to do with a job that did not succeed: pure, no I/O. The worker reads the job's counters, asks
 * {@link decideFailure}, and applies the answer; tests can check every branch without a server.
 */
import type { BackoffOptions } from '../tasks/types.js';
import { retryDelaySeconds } from './backoff.js';
import type { BuryReason } from './events.js';

/** What the policy needs to know about one failed (or unrunnable) job. */
export interface FailureFacts {
  /** Why the job did not succeed: a task failure, or a job that could not be run at all. */
  readonly reason: BuryReason;
  /** The task threw UnrecoverableError: trying again cannot help. */
  readonly unrecoverable: boolean;
  /** From stats-job: how often the job was released (retries used) and kicked. */
  readonly releases: number;
  readonly kicks: number;
  /** The task's `retries` (0 when the job never ran). */
  readonly retries: number;
  readonly backoff: BackoffOptions | undefined;
  /** The worker's kick bound. */
  readonly maxKicks: number;
  /** A dead-letter tube is set. */
  readonly deadLetter: boolean;
  /** Auto-kick is on: a buried job will be kicked (and run) again without anyone asking. */
  readonly autoKick: boolean;
  /**
   * The job can be buried with a failure record that marks it unrecoverable, which auto-kick leaves
   * alone (failure records are on, and the server has `reserve-job`).
   */
  readonly parkable: boolean;
}

/** The policy's answer. */
export type FailureDecision =
  /** Release for another attempt after `delaySeconds`. */
  | { readonly action: 'release'; readonly delaySeconds: number; readonly attempt: number }
  /** Bury: an operator (or auto-kick) may kick it. */
  | { readonly action: 'bury' }
  /** Put it into the dead-letter tube and delete it. */
  | { readonly action: 'dead-letter' }
  /** Delete it with its body logged: no dead-letter tube, and it must not run again. */
  | { readonly action: 'discard' };

/**
 * Decides a failed job's fate:
 * - a task failure with retries left (and not unrecoverable) is released with backoff;
 * - below the kick bound it is buried, except an unrecoverable failure, which must not run again: it is
 *   dead-lettered at once; without a dead-letter tube it is buried, marked in its failure record so
 *   that auto-kick leaves it, or, when no record can mark it and auto-kick would revive it, given the
 *   bound's outcome (deleted with its body logged);
 * - at the kick bound it is dead-lettered, or deleted with its body logged.
 */
export function decideFailure(facts: FailureFacts): FailureDecision {
  const attempt = facts.releases + 1;
  if (facts.reason === 'failed' && !facts.unrecoverable && facts.releases < facts.retries) {
    return { action: 'release', delaySeconds: retryDelaySeconds(facts.backoff, attempt), attempt };
  }
  const atBound = facts.kicks >= facts.maxKicks;
  if (!atBound && !facts.unrecoverable) return { action: 'bury' };
  if (facts.deadLetter) return { action: 'dead-letter' };
  if (!atBound && (!facts.autoKick || facts.parkable)) return { action: 'bury' };
  return { action: 'discard' };
}
