/**
 * TEMPORARY STAND-IN, to be replaced by the lead's `src/failures/record.ts` from main: only the interface
 * the brief gives (types, `readFailureHistory`, `requeueBody`), so that the admin layer can be written
 * and tested against it before main has the real one.
 */
import { originalBody } from '../worker/dead-letter.js';

/** One failure of a job, as kept in its body under `meta.failures`. */
export interface FailureEntry {
  readonly reason: string;
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly attempt: number;
  readonly kicks: number;
  readonly worker: { readonly host: string; readonly pid: number };
  readonly server: string;
  readonly job_id: string;
  readonly tube: string;
  readonly at: string;
  readonly issues?: unknown;
}

/** Counters a copy of the job carries over from the job it replaced. */
export type CarriedCounters = Readonly<Record<string, number>>;

/** A job's failure history. */
export interface FailureHistory {
  readonly failures: readonly FailureEntry[];
  readonly carried?: CarriedCounters;
}

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The history in a job body (`meta.failures`), or undefined when it has none. */
export function readFailureHistory(body: Buffer): FailureHistory | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const meta = objectOf(objectOf(parsed)?.meta);
  if (!meta || !Array.isArray(meta.failures)) return undefined;
  const carried = objectOf(meta.carried) as CarriedCounters | undefined;
  return { failures: meta.failures as FailureEntry[], ...(carried ? { carried } : {}) };
}

/** The body to put back from a dead letter: the original with its history kept, the dead-letter record appended. */
export function requeueBody(deadLetter: Buffer): Buffer | undefined {
  const original = originalBody(deadLetter);
  if (original === undefined) return undefined;
  let envelope: Record<string, unknown> | undefined;
  try {
    envelope = objectOf(JSON.parse(original.toString('utf8')));
  } catch {
    envelope = undefined;
  }
  const record = objectOf(objectOf(objectOf(JSON.parse(deadLetter.toString('utf8')))?.meta)?.dead_letter);
  if (!envelope || !record) return original;
  const meta = objectOf(envelope.meta) ?? {};
  const failures = Array.isArray(meta.failures) ? meta.failures : [];
  const entry = {
    reason: 'dead_letter',
    name: String(record.name ?? 'Error'),
    message: String(record.error ?? ''),
    ...(typeof record.stack === 'string' ? { stack: record.stack } : {}),
    attempt: Number(record.attempts ?? 0),
    kicks: Number(record.kicks ?? 0),
    worker: { host: '', pid: 0 },
    server: '',
    job_id: String(record.job_id ?? ''),
    tube: String(record.tube ?? ''),
    at: String(record.failed_at ?? ''),
  };
  const { carried: _, ...rest } = meta;
  return Buffer.from(JSON.stringify({ ...envelope, meta: { ...rest, failures: [...failures, entry] } }), 'utf8');
}
