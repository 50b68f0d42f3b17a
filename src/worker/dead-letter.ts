/**
 * Dead letters: a job that reached the kick bound goes, with its failure recorded under `meta`, to a tube
 * no worker watches, where an operator can look at it, fix it, and put it back.
 */

/** What is recorded about the failure, under `meta.dead_letter` in the body. */
export interface DeadLetterInfo {
  readonly error: Error;
  readonly tube: string;
  readonly jobId: string;
  readonly attempts: number;
  readonly kicks: number;
}

/** A stack longer than this is cut, so the body stays well inside `max-job-size`. */
const MAX_STACK_CHARS = 4_000;

/**
 * The dead-letter body: the original envelope with `meta.dead_letter` added (other `meta` fields kept).
 * Decoders ignore `meta`, so the job can be put back into its tube as it is.
 */
export function deadLetterBody(body: Buffer, info: DeadLetterInfo, now: Date = new Date()): Buffer {
  // A body that is not a JSON object (an undecodable job at the kick bound) is kept whole under `raw`.
  let envelope: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    envelope =
      typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : { raw: body.toString('utf8') };
  } catch {
    envelope = { raw: body.toString('utf8') };
  }
  const meta = typeof envelope.meta === 'object' && envelope.meta !== null && !Array.isArray(envelope.meta) ? envelope.meta : {};
  const stack = info.error.stack ?? '';
  return Buffer.from(
    JSON.stringify({
      ...envelope,
      meta: {
        ...meta,
        dead_letter: {
          error: info.error.message,
          name: info.error.name,
          stack: stack.length > MAX_STACK_CHARS ? `${stack.slice(0, MAX_STACK_CHARS)}…` : stack,
          attempts: info.attempts,
          kicks: info.kicks,
          tube: info.tube,
          job_id: info.jobId,
          failed_at: now.toISOString(),
        },
      },
    }),
    'utf8',
  );
}
