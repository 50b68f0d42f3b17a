/**
 * Dead letters: a job that reached the kick bound (or failed for good) goes, with its failure recorded
 * under `meta.dead_letter`, to a tube no worker watches, where an operator can look at it, fix it, and
 * put it back. The original body is always recoverable byte for byte (see {@link deadLetterBody}).
 */

/** What is recorded about the failure, under `meta.dead_letter` in the body. */
export interface DeadLetterInfo {
  readonly error: Error;
  readonly tube: string;
  readonly jobId: string;
  readonly attempts: number;
  readonly kicks: number;
  /** The job's priority and TTR, so that putting it back (`bsworker requeue`) keeps them. */
  readonly priority?: number;
  readonly ttrSeconds?: number;
}

/** Options of {@link deadLetterBody}. */
export interface DeadLetterBodyOptions {
  /** The server's `max-job-size`: the dead letter must fit in it. */
  readonly maxBytes: number;
  /** @defaultValue now */
  readonly now?: Date;
}

/** The longest error message and stack kept in a dead letter, before any shrinking to fit. */
const MAX_MESSAGE_CHARS = 2_000;
const MAX_STACK_CHARS = 4_000;
/** What is left of the message when the dead letter only fits with a shorter one. */
const SHORT_MESSAGE_CHARS = 200;

/**
 * The dead-letter body, or null when not even the body with a minimal record fits in `maxBytes`.
 *
 * - A body that is a JSON object and reads back to the same bytes (every body bsworker writes) keeps its
 *   shape: the envelope with `meta.dead_letter` added, other `meta` fields kept, so it can be put back
 *   into its tube as it is. `dead_letter.original` is `"envelope"`, and the original bytes are this
 *   object's JSON without `meta.dead_letter` (and without `meta` when `dead_letter.meta_added` is true).
 * - Any other body (not JSON, not an object, JSON written differently, or not UTF-8) is kept whole in
 *   `meta.dead_letter.body`, with `original` set to `"utf8"` (the text as it is) or `"base64"` (bytes
 *   that are not valid UTF-8), so nothing about it is lost.
 *
 * To fit the server's limit the stack is dropped first, then the message is cut short, then dropped.
 */
export function deadLetterBody(body: Buffer, info: DeadLetterInfo, options: DeadLetterBodyOptions): Buffer | null {
  const failedAt = (options.now ?? new Date()).toISOString();
  const base = originalOf(body);
  const attempts: readonly { readonly message: string; readonly stack: string | undefined }[] = [
    { message: cap(info.error.message, MAX_MESSAGE_CHARS), stack: cap(info.error.stack ?? '', MAX_STACK_CHARS) },
    { message: cap(info.error.message, MAX_MESSAGE_CHARS), stack: undefined },
    { message: cap(info.error.message, SHORT_MESSAGE_CHARS), stack: undefined },
    { message: '', stack: undefined },
  ];
  for (const { message, stack } of attempts) {
    const record: Record<string, unknown> = {
      error: message,
      name: cap(info.error.name, 200),
      ...(stack === undefined ? { stack_dropped: true } : { stack }),
      attempts: info.attempts,
      kicks: info.kicks,
      ...(info.priority === undefined ? {} : { priority: info.priority }),
      ...(info.ttrSeconds === undefined ? {} : { ttr: info.ttrSeconds }),
      tube: info.tube,
      job_id: info.jobId,
      failed_at: failedAt,
      ...base.record,
    };
    const encoded = Buffer.from(JSON.stringify(base.wrap(record)), 'utf8');
    if (encoded.length <= options.maxBytes) return encoded;
  }
  return null;
}

/** How the original body is kept: the fields recorded about it and how the record is wrapped around it. */
interface Original {
  readonly record: Record<string, unknown>;
  readonly wrap: (deadLetter: Record<string, unknown>) => Record<string, unknown>;
}

function originalOf(body: Buffer): Original {
  const text = body.toString('utf8');
  // Invalid UTF-8 decodes with U+FFFD in place of the bad bytes: only bytes that survive the round trip
  // may be kept as text.
  if (!Buffer.from(text, 'utf8').equals(body)) {
    return { record: { original: 'base64', body: body.toString('base64') }, wrap: (record) => ({ meta: { dead_letter: record } }) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  if (isObject && JSON.stringify(parsed) === text) {
    const envelope = parsed as Record<string, unknown>;
    const hasMeta = Object.hasOwn(envelope, 'meta');
    const meta = envelope.meta;
    if (!hasMeta || (typeof meta === 'object' && meta !== null && !Array.isArray(meta) && !Object.hasOwn(meta, 'dead_letter'))) {
      return {
        record: hasMeta ? { original: 'envelope' } : { original: 'envelope', meta_added: true },
        wrap: (record) => ({ ...envelope, meta: { ...(meta as Record<string, unknown> | undefined), dead_letter: record } }),
      };
    }
  }
  return { record: { original: 'utf8', body: text }, wrap: (record) => ({ meta: { dead_letter: record } }) };
}

/** Cuts `text` to `max` characters, saying how many were cut. */
function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * The original body of a dead letter written by {@link deadLetterBody}, byte for byte; undefined when
 * `deadLetter` is not one.
 */
export function originalBody(deadLetter: Buffer): Buffer | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(deadLetter.toString('utf8'));
  } catch {
    return undefined;
  }
  const meta = (parsed as { meta?: unknown } | null)?.meta as Record<string, unknown> | undefined;
  const record = meta?.dead_letter as Record<string, unknown> | undefined;
  if (typeof record !== 'object' || record === null) return undefined;
  if (record.original === 'base64' && typeof record.body === 'string') return Buffer.from(record.body, 'base64');
  if (record.original === 'utf8' && typeof record.body === 'string') return Buffer.from(record.body, 'utf8');
  if (record.original !== 'envelope') return undefined;
  const envelope = { ...(parsed as Record<string, unknown>) };
  const { dead_letter: _, ...rest } = meta as Record<string, unknown>;
  if (record.meta_added === true) delete envelope.meta;
  else envelope.meta = rest;
  return Buffer.from(JSON.stringify(envelope), 'utf8');
}
