/**
 * Failure records: why a job was buried, kept in the job itself.
 *
 * beanstalkd cannot change a job's body, so a worker that buries a job with its record puts a new copy
 * whose envelope carries `meta.failures` (one entry per bury, newest last) and `meta.carried` (the
 * original's counters, so the kick bound and the attempt count survive the copy), then buries the copy
 * and deletes the original (see ../worker/record-bury.ts for the steps and what a crash between them
 * leaves). Only the top-level `meta` member of the body's text is rewritten: every other byte (kwargs
 * as another language's producer wrote them, numbers JavaScript cannot hold) is kept as it was.
 */
import { isUtf8 } from 'node:buffer';
import type { JobStats } from '../beanstalk/types.js';
import { originalBody } from '../worker/dead-letter.js';
import { findTopLevelMember } from './json-members.js';

/** Why a job was buried (or moved to the dead-letter tube). */
export type FailureReason = 'failed' | 'undecodable' | 'unregistered' | 'crashed' | 'invalid' | 'dead-lettered' | (string & {});

/** One issue of a schema check, as Standard Schema reports it (path flattened to strings). */
export interface FailureIssue {
  readonly message: string;
  readonly path?: readonly string[];
}

/** One failure of a job: what was thrown, where and when. Text fields are capped. */
export interface FailureEntry {
  readonly reason: FailureReason;
  /** The error's name (`Error`, `TypeError`, `TaskTimeoutError`, ...). */
  readonly name: string;
  readonly message: string;
  /** Dropped first when the record must shrink to fit the server's `max-job-size`. */
  readonly stack?: string;
  /** Which attempt failed (1 for the first run), counted across copies. */
  readonly attempt: number;
  /** How often the job had been kicked before this failure, counted across copies. */
  readonly kicks: number;
  /** The worker that ran it. */
  readonly worker: { readonly host: string; readonly pid: number };
  /** The server the job was on, `host:port`. */
  readonly server: string;
  /** The job's id when it failed (the copy has a new one). */
  readonly job_id: string;
  readonly tube: string;
  /** ISO-8601 time of the failure. */
  readonly at: string;
  /** How long the failed run took, when it ran. */
  readonly duration_ms?: number;
  /** The schema's issues, when the kwargs were invalid. */
  readonly issues?: readonly FailureIssue[];
  /** The task threw UnrecoverableError: auto-kick leaves the job buried (an operator may still kick it). */
  readonly unrecoverable?: boolean;
}

/**
 * The counters of the jobs a copy replaces, added to the copy's own `stats-job` to give the job's
 * whole history. `from` names the job the copy replaced: a copy whose own `buries` is 0 was never
 * finished (its worker died before burying it), and the original it names is still the live job.
 */
export interface CarriedCounters {
  readonly from: string;
  readonly reserves: number;
  readonly releases: number;
  readonly buries: number;
  readonly kicks: number;
  readonly timeouts: number;
}

/** What a job body says about its past failures. */
export interface FailureHistory {
  /** Oldest first. Long histories keep the first entry and the latest ones. */
  readonly failures: readonly FailureEntry[];
  readonly carried: CarriedCounters | undefined;
}

/** Caps of one entry's text, before any shrinking to fit. */
export const MAX_MESSAGE_CHARS = 2_000;
export const MAX_STACK_CHARS = 4_000;
const MAX_NAME_CHARS = 200;
const MAX_ISSUES = 20;
/** Entries kept: the first failure and the latest ones. */
export const MAX_ENTRIES = 10;

/** Cuts `text` to `max` characters, saying how many were cut. */
export function capText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** An entry with every text field capped, ready to be written. */
export function cappedEntry(entry: FailureEntry): FailureEntry {
  const { stack, issues, ...rest } = entry;
  return {
    ...rest,
    name: capText(entry.name, MAX_NAME_CHARS),
    message: capText(entry.message, MAX_MESSAGE_CHARS),
    ...(stack === undefined ? {} : { stack: capText(stack, MAX_STACK_CHARS) }),
    ...(issues === undefined
      ? {}
      : {
          issues: issues.slice(0, MAX_ISSUES).map((issue) => ({
            message: capText(String(issue.message), 500),
            ...(issue.path === undefined ? {} : { path: issue.path.slice(0, 32).map((part) => capText(String(part), 100)) }),
          })),
        }),
  };
}

/**
 * The body of a copy of `body` with `entry` added to its history and `carried` as its counters, fitted
 * into `maxBytes` (older stacks go first, then older entries but the first); null when the body is not
 * a UTF-8 JSON object (the record cannot travel in it) or does not fit even with one short entry.
 */
export function withFailure(body: Buffer, entry: FailureEntry, carried: CarriedCounters | undefined, maxBytes: number): Buffer | null {
  const parts = metaOf(body);
  if (!parts) return null;
  const { before, after, meta } = parts;
  const previous = Array.isArray(meta.failures) ? (meta.failures as unknown[]) : [];
  let entries: unknown[] = [...previous, cappedEntry(entry)];
  if (entries.length > MAX_ENTRIES) entries = [entries[0], ...entries.slice(entries.length - MAX_ENTRIES + 1)];
  const { carried: _old, ...otherMeta } = meta;
  const write = (list: unknown[]): Buffer => {
    const next = { ...otherMeta, failures: list, ...(carried ? { carried } : {}) };
    return Buffer.from(`${before}${JSON.stringify(next)}${after}`, 'utf8');
  };
  let encoded = write(entries);
  if (encoded.length <= maxBytes) return encoded;
  // Shrink: drop stacks oldest first, then entries (keeping the first and the newest), then shorten the newest.
  for (let index = 0; index < entries.length && encoded.length > maxBytes; index += 1) {
    entries[index] = withoutStack(entries[index]);
    encoded = write(entries);
  }
  while (encoded.length > maxBytes && entries.length > 2) {
    entries.splice(1, 1);
    encoded = write(entries);
  }
  if (encoded.length > maxBytes && entries.length === 2) {
    entries = entries.slice(1);
    encoded = write(entries);
  }
  if (encoded.length > maxBytes) {
    const last = entries[entries.length - 1] as FailureEntry;
    const { issues: _issues, ...short } = last;
    entries[entries.length - 1] = { ...short, message: capText(last.message, 200) };
    encoded = write(entries);
  }
  return encoded.length <= maxBytes ? encoded : null;
}

function withoutStack(entry: unknown): unknown {
  if (typeof entry !== 'object' || entry === null || !('stack' in entry)) return entry;
  const { stack: _, ...rest } = entry as Record<string, unknown>;
  return { ...rest, stack_dropped: true };
}

/** The body's text around its top-level `meta` value, and that value (an empty object when absent). */
interface MetaParts {
  readonly before: string;
  readonly after: string;
  readonly meta: Record<string, unknown>;
}

function metaOf(body: Buffer): MetaParts | null {
  if (!isUtf8(body)) return null;
  const text = body.toString('utf8');
  const found = findTopLevelMember(text, 'meta');
  if (found === null) return null;
  if (found === 'absent') {
    // Add the member before the closing brace, after the others.
    const close = text.lastIndexOf('}');
    const empty = /^\{\s*$/.test(text.slice(0, close));
    return { before: `${text.slice(0, close)}${empty ? '' : ','}"meta":`, after: text.slice(close), meta: {} };
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text.slice(found.start, found.end));
  } catch {
    return null;
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return null;
  return { before: text.slice(0, found.start), after: text.slice(found.end), meta: meta as Record<string, unknown> };
}

/**
 * The failure history in a job body; undefined when it has none (or is not an envelope). Every field is
 * checked: the body is untrusted, and an entry that is not an object is left out.
 */
export function readFailureHistory(body: Buffer): FailureHistory | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  return historyOfMeta(isObject(parsed) ? parsed.meta : undefined);
}

/** The history in an envelope's already-decoded `meta` value (see {@link readFailureHistory}). */
export function historyOfMeta(meta: unknown): FailureHistory | undefined {
  if (!isObject(meta)) return undefined;
  const failures = Array.isArray(meta.failures) ? meta.failures.filter(isObject).map(entryOf) : [];
  const carried = carriedOf(meta.carried);
  if (failures.length === 0 && carried === undefined) return undefined;
  return { failures, carried };
}

/** The `carried` counters of an envelope's `meta`, when well formed. */
export function carriedOf(value: unknown): CarriedCounters | undefined {
  if (!isObject(value) || typeof value.from !== 'string') return undefined;
  const count = (key: string): number => {
    const n = value[key];
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
  };
  return {
    from: value.from,
    reserves: count('reserves'),
    releases: count('releases'),
    buries: count('buries'),
    kicks: count('kicks'),
    timeouts: count('timeouts'),
  };
}

function entryOf(raw: Record<string, unknown>): FailureEntry {
  const text = (key: string): string => (typeof raw[key] === 'string' ? (raw[key] as string) : '');
  const number = (key: string): number => (typeof raw[key] === 'number' && Number.isFinite(raw[key]) ? (raw[key] as number) : 0);
  const worker = isObject(raw.worker) ? raw.worker : {};
  const issues = Array.isArray(raw.issues)
    ? raw.issues.filter(isObject).map((issue) => ({
        message: typeof issue.message === 'string' ? issue.message : '',
        ...(Array.isArray(issue.path) ? { path: issue.path.map(String) } : {}),
      }))
    : undefined;
  return {
    reason: text('reason') || 'failed',
    name: text('name'),
    message: text('message'),
    ...(typeof raw.stack === 'string' ? { stack: raw.stack } : {}),
    attempt: number('attempt'),
    kicks: number('kicks'),
    worker: { host: typeof worker.host === 'string' ? worker.host : '', pid: typeof worker.pid === 'number' ? worker.pid : 0 },
    server: text('server'),
    job_id: text('job_id'),
    tube: text('tube'),
    at: text('at'),
    ...(typeof raw.duration_ms === 'number' ? { duration_ms: raw.duration_ms } : {}),
    ...(issues ? { issues } : {}),
    ...(raw.unrecoverable === true ? { unrecoverable: true } : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The body to put back into its tube from a dead letter: the original body, with the dead-letter
 * record added to its failure history (reason `dead-lettered`) and its carried counters dropped, so
 * the requeued job starts a fresh round of attempts and kicks while its history stays readable.
 * Undefined when `deadLetter` is not a dead letter. A body the history cannot travel in (not a JSON
 * object) comes back as the original bytes.
 */
export function requeueBody(deadLetter: Buffer, options: { readonly maxBytes?: number } = {}): Buffer | undefined {
  const original = originalBody(deadLetter);
  if (original === undefined) return undefined;
  let record: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(deadLetter.toString('utf8')) as { meta?: { dead_letter?: unknown } };
    if (isObject(parsed?.meta?.dead_letter)) record = parsed.meta.dead_letter as Record<string, unknown>;
  } catch {
    // originalBody parsed it already; unreachable in practice.
  }
  const str = (value: unknown): string => (typeof value === 'string' ? value : '');
  const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
  const entry: FailureEntry = {
    reason: 'dead-lettered',
    name: str(record.name) || 'Error',
    message: str(record.error),
    ...(typeof record.stack === 'string' ? { stack: record.stack } : {}),
    attempt: num(record.attempts),
    kicks: num(record.kicks),
    worker: { host: '', pid: 0 },
    server: '',
    job_id: str(record.job_id),
    tube: str(record.tube),
    at: str(record.failed_at),
  };
  return withFailure(original, entry, undefined, options.maxBytes ?? Number.MAX_SAFE_INTEGER) ?? original;
}

/** `stats` + `carried`: a copy's counters over the job's whole life. */
export function withCarried(own: JobStats, carried: CarriedCounters | undefined): JobStats {
  if (!carried) return own;
  return {
    ...own,
    reserves: own.reserves + carried.reserves,
    releases: own.releases + carried.releases,
    buries: own.buries + carried.buries,
    kicks: own.kicks + carried.kicks,
    timeouts: own.timeouts + carried.timeouts,
  };
}
