/**
 * One job as {@link JobReport}: its `stats-job` counters, its body decoded (or kept raw and marked when it
 * is not an envelope), its failure history and its dead-letter record. Pure.
 *
 * Bodies are untrusted: whatever a producer (or anyone who can reach beanstalkd) wrote. Nothing here
 * trusts the shape of `meta`: every field read from it is checked, and a wrong type reads as absent.
 */
import type { JobStats } from '../beanstalk/types.js';
import { decodeEnvelope } from '../envelope/envelope.js';
import { readFailureHistory, withCarried } from '../failures/record.js';
import { describeFlow, displayMeta } from '../flows/describe.js';
import type { DeadLetterSummary, FailureSummary, JobHistory, JobReport } from './types.js';

/** The longest message and stack line a {@link FailureSummary} keeps; the whole entry is in `history`. */
const SUMMARY_MESSAGE_CHARS = 500;
const SUMMARY_STACK_CHARS = 300;

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const number = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

function cut(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}…`;
}

/**
 * The first frame of a stack (`at f (file:1:2)`): the line after the message lines. V8 stacks start with
 * `Name: message`, which may itself span lines, so the first line starting with `at ` is taken.
 */
export function firstStackLine(stack: string | undefined): string | null {
  if (stack === undefined) return null;
  const frame = stack.split('\n').find((line) => /^\s*at\s/.test(line));
  return frame === undefined ? null : cut(frame.trim(), SUMMARY_STACK_CHARS);
}

/** The last failure of a history, summarised for a list; null when the history is empty. */
export function summariseLastFailure(history: JobHistory | null): FailureSummary | null {
  const last = objectOf(history?.failures.at(-1));
  if (!last) return null;
  return {
    reason: text(last.reason) ?? 'failed',
    name: text(last.name) ?? 'Error',
    message: cut(text(last.message) ?? '', SUMMARY_MESSAGE_CHARS),
    stackLine: firstStackLine(text(last.stack) ?? undefined),
    attempt: number(last.attempt) ?? 0,
    kicks: number(last.kicks) ?? 0,
    at: text(last.at) ?? '',
  };
}

/** The `meta.dead_letter` record of a body, or null when it is not a dead letter. */
export function deadLetterOf(meta: unknown): DeadLetterSummary | null {
  const record = objectOf(objectOf(meta)?.dead_letter);
  if (!record) return null;
  return {
    tube: text(record.tube),
    jobId: text(record.job_id),
    name: text(record.name),
    message: text(record.error),
    attempts: number(record.attempts),
    kicks: number(record.kicks),
    at: text(record.failed_at),
  };
}

/**
 * The body's `meta` field, or undefined. The envelope decoder ignores fields it does not know, so `meta`
 * is read here from a body that already decoded (it parses, and has no `__proto__` key).
 */
function metaOf(body: Buffer): unknown {
  const value = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  return Object.hasOwn(value, 'meta') ? value.meta : undefined;
}

/** `meta` of a body that is any JSON object, or undefined. */
function parsedMeta(body: Buffer): unknown {
  try {
    return objectOf(JSON.parse(body.toString('utf8')))?.meta;
  } catch {
    return undefined;
  }
}

/** The history in `body` (checked field by field by the reader), or null. */
function historyOf(body: Buffer): JobHistory | null {
  const history = readFailureHistory(body);
  if (!history) return null;
  return history.carried === undefined ? { failures: history.failures } : { failures: history.failures, carried: history.carried };
}

/** Options of {@link describeJob}. */
export interface DescribeJobOptions {
  /**
   * The job's own view (read by id, or peeked): the links of its chain with their kwargs. A list
   * (false) names the links only, and leaves `meta.chain.next` out of `envelope.meta`.
   * @defaultValue false
   */
  readonly detail?: boolean;
}

/** Builds the {@link JobReport} of a job from its stats and body. */
export function describeJob(server: string, id: string, own: JobStats, body: Buffer, options: DescribeJobOptions = {}): JobReport {
  // A copy buried with its failure record carries the counters of the jobs it replaced: the report
  // gives the job's whole life, as the worker counts it (the kick bound, attempts).
  const stats = withCarried(own, readFailureHistory(body)?.carried);
  const counters = {
    id,
    server,
    tube: stats.tube,
    state: stats.state,
    priority: stats.priority,
    ageSeconds: stats.ageSeconds,
    delaySeconds: stats.delaySeconds,
    ttrSeconds: stats.ttrSeconds,
    timeLeftSeconds: stats.timeLeftSeconds,
    reserves: stats.reserves,
    timeouts: stats.timeouts,
    releases: stats.releases,
    buries: stats.buries,
    kicks: stats.kicks,
  };
  const decoded = decodeEnvelope(body);
  if (!decoded.ok) {
    return {
      ...counters,
      envelope: null,
      raw: body.toString('utf8'),
      decodeError: decoded.message,
      history: null,
      lastFailure: null,
      // A dead letter of a body that was not an envelope is `{"meta":{"dead_letter":{...}}}`.
      deadLetter: deadLetterOf(parsedMeta(body)),
      // A worker runs no flow of a body that is not an envelope.
      flow: null,
    };
  }
  const { func_name, tube, kwargs } = decoded.envelope;
  const meta = metaOf(body);
  const history = historyOf(body);
  const shownMeta = displayMeta(meta, options);
  return {
    ...counters,
    envelope: { func_name, tube: tube ?? null, kwargs, ...(meta === undefined ? {} : { meta: shownMeta }) },
    raw: null,
    decodeError: null,
    history,
    lastFailure: summariseLastFailure(history),
    deadLetter: deadLetterOf(meta),
    flow: describeFlow(meta, options),
  };
}
